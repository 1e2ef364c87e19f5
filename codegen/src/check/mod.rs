//! `forge check`: the static rules of DESIGN.md over the IR, one module per rule family.
//! A rule's code tells where it lives: FG1xx `scope`, FG2xx `dispatch`, FG3xx `cron`,
//! FG4xx `workflow`, FG5xx `handler`, FG6xx `migration`. FG001/FG002 come from the parser and
//! FG503 from the resolver; FG701 (stale generated files) is the CLI's, since it needs the
//! files on disk. FG8xx `contract` compares the IR with an earlier one
//! ([`compare_contracts`], `forge check --against`).
//!
//! # Rule decisions
//!
//! - **FG101** accepts an owner-column `=` a bind in the top-level `AND` chain of `WHERE`, the
//!   `ON` of an inner join, a restricted `IN`/`= ANY`/`=` subquery, a restricted and
//!   correlated `EXISTS`, a restricted CTE or derived table read in `FROM`; every side of a set
//!   operation and every statement of a call must be restricted. `OR`, `NOT`, literals, other
//!   columns, `IS NULL`, outer-join `ON`s and uncorrelated `EXISTS` do not count. The bind must
//!   come from the auth context; one from an argument is FG102 at the bind, anything else
//!   (a computed value, no bind) is FG101. SQL that reads no table passes. The full list is
//!   the module doc of `check/scope.rs`.
//! - **FG103** fires for SQL forge cannot read (not a literal, `QueryBuilder`, `query_file!`,
//!   does not parse) in a private query, and in an `unscoped` one without `tables(...)`.
//! - **FG202** suggests a close name (Damerau-Levenshtein, one edit per three characters) and
//!   says when the name is the other kind or a workflow's function name; a non-literal target
//!   is not checked.
//! - **FG301** validates with `croner` (seconds optional, no year field, day-of-month OR
//!   day-of-week), the crate the runtime's scheduler must use with the same settings; an
//!   expression that never fires is refused; `every` is at least 1s; `daily_at` is `HH:MM`;
//!   time zones are chrono-tz names, with a suggestion.
//! - **FG502** namespaces: queries and mutations share the RPC namespace; jobs, crons,
//!   daemons, webhooks (and webhook paths) and MCP tool names each have their own; workflows
//!   are keyed by (name, version).
//! - **FG601** names: `NNNN_name.sql` with at least four digits, one width across the
//!   directory, lowercase words joined by `_`; `*.md` and dotfiles are notes and ignored;
//!   anything else is refused. **FG602** compares with the SHA-256 forge.lock recorded; a
//!   recorded file that is gone is reported at forge.lock.
//! - **Compile time**: the attributes run FG101–FG103, FG201, FG301, FG402, FG403, FG501 and
//!   FG503 (for types that cannot cross the wire; a type the function does not define is the
//!   crate's business) with the project's `[check]` settings from forge.toml.

mod contract;
mod cron;
mod dispatch;
mod generated;
mod handler;
mod migration;
mod scope;
mod workflow;

use crate::config::CheckConfig;
use crate::ir::{Diagnostic, Ir};
use crate::lock::Lock;
use crate::migrations::MigrationFile;

pub use contract::compare as compare_contracts;

/// Everything the rules read.
pub struct Project<'a> {
    pub ir: &'a Ir,
    pub config: &'a CheckConfig,
    pub lock: &'a Lock,
    /// Files under `migrations/`, sorted by name.
    pub migrations: &'a [MigrationFile],
}

/// A rule's documentation, for `forge check --explain`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub code: &'static str,
    /// One line.
    pub title: &'static str,
    /// Why the rule exists, one paragraph.
    pub explanation: &'static str,
    /// A failing example and its fix.
    pub example: &'static str,
}

/// Runs every rule; the result is sorted like the resolver's diagnostics.
pub fn check(project: &Project) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    scope::check(project, &mut out);
    dispatch::check(project, &mut out);
    cron::check(project, &mut out);
    workflow::check(project, &mut out);
    handler::check(project, &mut out);
    migration::check(project, &mut out);
    out.retain(|d| !project.config.allow.contains(&d.code));
    out.sort_by(|a: &Diagnostic, b| {
        (&a.span, &a.code, &a.message).cmp(&(&b.span, &b.code, &b.message))
    });
    out
}

/// FG601 and FG602 alone, which need no source: `forge migrate verify` runs them offline.
/// Filtered by `config.allow` and sorted like [`check`].
pub fn check_migrations(
    files: &[MigrationFile],
    lock: &Lock,
    config: &CheckConfig,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    migration::check_files(files, lock, &mut out);
    out.retain(|d| !config.allow.contains(&d.code));
    out.sort_by(|a: &Diagnostic, b| {
        (&a.span, &a.code, &a.message).cmp(&(&b.span, &b.code, &b.message))
    });
    out
}

/// Every rule's documentation, by code.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    [
        scope::RULES,
        dispatch::RULES,
        cron::RULES,
        workflow::RULES,
        handler::RULES,
        migration::RULES,
        generated::RULES,
        contract::RULES,
    ]
    .into_iter()
    .flatten()
}

/// The documentation of one rule (`forge check --explain FG101`).
pub fn explain(code: &str) -> Option<&'static Rule> {
    rules().find(|rule| rule.code.eq_ignore_ascii_case(code))
}
