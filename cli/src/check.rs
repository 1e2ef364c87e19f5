//! `forge check`: every rule over the whole crate, reported in one run.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use forge_codegen::check::{self, Project as CheckedProject};
use forge_codegen::ir::{Diagnostic, Severity, Span};
use forge_codegen::lock::{Lock, LOCK_FILE};
use forge_codegen::resolve;

use crate::generate::{plan, read_optional};
use crate::output::{self, State};
use crate::project::Project;
use crate::sources::{self, ParseCache};
use crate::{format, render, Fatal, Outcome};

#[derive(clap::Args)]
pub struct Args {
    /// How to report: rustc-style text, JSON lines, GitHub workflow commands or SARIF 2.1.0.
    #[arg(long, value_enum, default_value_t = format::Format::Human)]
    format: format::Format,
    /// Fail on warnings too (`--deny warnings`).
    #[arg(long, value_name = "LEVEL", value_parser = ["warnings"])]
    deny: Option<String>,
    /// Print what a rule checks and why, with an example, and exit.
    #[arg(long, value_name = "CODE")]
    explain: Option<String>,
    /// Also report what breaks clients of an earlier version (FG801–FG804): a git
    /// revision (read from the object store; the work tree is not touched) or an IR file
    /// from `forge generate --emit-ir`.
    #[arg(long, value_name = "REF|IR_JSON")]
    against: Option<String>,
}

pub fn run(project: Option<&Path>, args: &Args) -> Result<Outcome, Fatal> {
    if let Some(code) = &args.explain {
        return explain(code);
    }
    let started = Instant::now();
    let project = Project::locate(project)?;
    let earlier = match &args.against {
        Some(against) => Some(crate::against::earlier_ir(&project.root, against)?),
        None => None,
    };
    let sources = sources::read(&project.root)?;
    let lock_text = read_optional(&project.root.join(LOCK_FILE))?;
    let migrations = sources::read_migrations(&project.root)?;
    let lock = match &lock_text {
        Some(text) => Lock::parse(text).map_err(|e| Fatal(format!("{LOCK_FILE}: {e}")))?,
        None => Lock::default(),
    };
    let build = sources::build_id();
    let parsed = ParseCache::load(&project.cache_dir(), &build).parse_all(&sources);
    let resolved = resolve::build(&parsed);
    let checked = CheckedProject {
        ir: &resolved.ir,
        config: &project.config.check,
        lock: &lock,
        migrations: &migrations,
    };
    let allow = &project.config.check.allow;
    let mut diagnostics: Vec<Diagnostic> = resolved
        .diagnostics
        .iter()
        .filter(|d| !allow.contains(&d.code))
        .cloned()
        .chain(check::check(&checked))
        .collect();
    if let Some(earlier) = &earlier {
        diagnostics.extend(
            check::compare_contracts(earlier, &resolved.ir)
                .into_iter()
                .filter(|d| !allow.contains(&d.code)),
        );
    }
    let planned = plan(
        &project,
        &resolved.ir,
        lock_text.as_deref(),
        &migrations,
        None,
    )?;
    let mut diffs = Vec::new();
    if !allow.iter().any(|code| code == "FG701") {
        for planned in &planned {
            if let State::Stale { current } = output::state(planned) {
                diagnostics.push(if planned.new_file {
                    missing_migration(&planned.rel)
                } else {
                    stale(&planned.rel, current.is_none())
                });
                // A missing file's diff would be the whole file: the message says enough.
                if let Some(current) = current {
                    diffs.push(output::diff(planned, Some(&current)));
                }
            }
        }
    }
    diagnostics.sort_by(|a, b| (&a.span, &a.code, &a.message).cmp(&(&b.span, &b.code, &b.message)));

    let texts: HashMap<&str, &str> = sources
        .iter()
        .filter_map(|s| Some((s.rel.as_str(), std::str::from_utf8(&s.content).ok()?)))
        .collect();
    let report = match args.format {
        format::Format::Human => {
            let mut text =
                render::render(&diagnostics, &texts, render::use_color(&std::io::stdout()));
            for diff in &diffs {
                text.push_str(diff);
            }
            text
        }
        other => format::format(other, &diagnostics),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(report.as_bytes());
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    if args.format == format::Format::Human {
        let elapsed = started.elapsed().as_millis();
        if diagnostics.is_empty() {
            eprintln!(
                "forge check: no problems in {} handlers from {} source files ({elapsed} ms)",
                resolved.ir.handlers.len(),
                sources.len()
            );
        } else {
            eprintln!("forge check: {errors} error(s), {warnings} warning(s) ({elapsed} ms)");
        }
    }
    let fails = errors > 0 || (warnings > 0 && args.deny.is_some());
    std::mem::forget((parsed, resolved, sources));
    Ok(if fails {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

fn stale(rel: &str, missing: bool) -> Diagnostic {
    let message = if missing {
        format!("generated file `{rel}` is missing")
    } else {
        format!("generated file `{rel}` is out of date")
    };
    Diagnostic::error(
        "FG701",
        message,
        Some(Span {
            file: rel.to_owned(),
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 1,
        }),
    )
    .with_help("run `forge generate` and commit the result")
}

/// The reactivity migration generate would write; its path is where it would go.
fn missing_migration(rel: &str) -> Diagnostic {
    Diagnostic::error(
        "FG701",
        format!(
            "migration `{rel}` is missing: the tables queries read differ from those the \
             migrations enable change notifications for"
        ),
        Some(Span {
            file: rel.to_owned(),
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 1,
        }),
    )
    .with_help("run `forge generate` and commit the new migration")
}

fn explain(code: &str) -> Result<Outcome, Fatal> {
    let Some(rule) = check::explain(code) else {
        let codes: Vec<&str> = check::rules().map(|r| r.code).collect();
        return Err(Fatal(format!(
            "no rule `{code}`; the rules are {}",
            codes.join(", ")
        )));
    };
    println!(
        "{}: {}\n\n{}\n\nExample:\n\n{}",
        rule.code,
        rule.title,
        rule.explanation,
        rule.example.trim_end()
    );
    Ok(Outcome::Clean)
}
