//! `forge check`: the static rules of DESIGN.md over the IR, one module per rule family.
//! A rule's code tells where it lives: FG1xx `scope`, FG2xx `dispatch`, FG3xx `cron`,
//! FG4xx `workflow`, FG5xx `handler`, FG6xx `migration`. FG001/FG002 come from the parser and
//! FG503 from the resolver; FG701 (stale generated files) is the CLI's, since it needs the
//! files on disk. FG8xx `contract` compares the IR with an earlier one
//! ([`compare_contracts`], `forge check --against`).

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

pub use contract::compare as compare_contracts;
pub use migration::{new_file_name, NewMigrationError};

/// Everything the rules read.
pub struct Project<'a> {
    pub ir: &'a Ir,
    pub config: &'a CheckConfig,
    pub lock: &'a Lock,
    /// Files under `migrations/`, sorted by name.
    pub migrations: &'a [MigrationFile],
}

/// One file under `migrations/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The file name (`0001_init.sql`).
    pub name: String,
    /// SHA-256 of the content, lowercase hex, as `forge migrate` records it.
    pub sha256: String,
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
