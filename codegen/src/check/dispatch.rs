//! FG201 and FG202: where jobs and workflows may be dispatched from, and whether the job or
//! workflow a dispatch names exists.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use forge_attrs::{Kind, Options};

use super::{Project, Rule};
use crate::ir::{Diagnostic, Dispatch, DispatchKind, Handler};

pub const RULES: &[Rule] = &[
    Rule {
        code: "FG201",
        title: "a job or workflow is dispatched outside a transaction",
        explanation: "`dispatch_job`, `start_workflow` and `send_event` write the new job, run or event so that it commits together with the handler's own work: either both happen or neither does. A query has no transaction (it only reads) and no dispatch methods, and a mutation with `transactional = false` commits each statement on its own: a dispatch there can enqueue work for a change that then fails, or lose the work after the change committed. Everywhere else a dispatch has a transaction story. Mutations (the default, transactional ones), webhooks and MCP tools dispatch inside their transaction: nothing is queued when they fail. Jobs and crons hold their dispatches and write them in the transaction that records the attempt or tick as completed: a failed attempt queues nothing (its retry dispatches again), and the ids are returned at once. In a workflow a dispatch is a step: the row and the step commit together, so a replay returns the stored id and never dispatches twice. A daemon has no outcome to commit with: each of its dispatches commits at once, on its own.",
        example: r#"// refused: the mutation commits statement by statement
#[forge::mutation(transactional = false)]
pub async fn sign_up(ctx: &MutationContext, input: SignUp) -> Result<()> {
    ctx.dispatch_job("send_welcome", input).await?;
    Ok(())
}

// accepted: the job is enqueued in the mutation's transaction
#[forge::mutation]
pub async fn sign_up(ctx: &MutationContext, input: SignUp) -> Result<()> {
    ctx.dispatch_job("send_welcome", input).await?;
    Ok(())
}"#,
    },
    Rule {
        code: "FG202",
        title: "a dispatch names no job or workflow of the crate",
        explanation: "Jobs and workflows are dispatched by name, as a string, so the compiler cannot tell when the name is misspelt or names a handler that was renamed or removed: the mistake shows up in production as a job that fails for ever. forge check compares every literal name given to `dispatch_job` with the crate's jobs, and every name given to `start_workflow` with its workflows' registered names (the `name` option, or the function's name), suggests the closest existing name, and says when the name belongs to the other kind. A name that is not a string literal is only known at run time and is not checked.",
        example: r#"// refused: there is no job `send_welcom`
ctx.dispatch_job("send_welcom", input).await?;
// refused: `onboarding` is a workflow
ctx.dispatch_job("onboarding", input).await?;

// accepted
ctx.dispatch_job("send_welcome", input).await?;
ctx.start_workflow("onboarding", input).await?;"#,
    },
];

pub fn check(project: &Project, out: &mut Vec<Diagnostic>) {
    let targets = Targets::of(&project.ir.handlers);
    for handler in &project.ir.handlers {
        for dispatch in &handler.dispatches {
            out.extend(outside_transaction(handler, dispatch));
            out.extend(unknown_target(&targets, dispatch));
        }
    }
}

fn method(kind: DispatchKind) -> &'static str {
    match kind {
        DispatchKind::Job => "dispatch_job",
        DispatchKind::Workflow => "start_workflow",
    }
}

fn noun(kind: DispatchKind) -> &'static str {
    match kind {
        DispatchKind::Job => "job",
        DispatchKind::Workflow => "workflow",
    }
}

fn other(kind: DispatchKind) -> DispatchKind {
    match kind {
        DispatchKind::Job => DispatchKind::Workflow,
        DispatchKind::Workflow => DispatchKind::Job,
    }
}

/// FG201.
fn outside_transaction(handler: &Handler, dispatch: &Dispatch) -> Option<Diagnostic> {
    let (why, help) = match &handler.options {
        Options::Query(_) => (
            format!("query `{}` only reads and has no transaction", handler.name),
            "move the dispatch into a mutation, where it commits together with the mutation's writes",
        ),
        Options::Mutation(options) if !options.transactional => (
            format!(
                "mutation `{}` has `transactional = false`, so the dispatch commits apart from its writes",
                handler.name
            ),
            "remove `transactional = false` so that the dispatch commits or rolls back with the mutation's writes",
        ),
        _ => return None,
    };
    Some(
        Diagnostic::error(
            "FG201",
            format!(
                "`{}` outside a transaction: {why}",
                method(dispatch.target_kind)
            ),
            Some(dispatch.span.clone()),
        )
        .with_label(format!(
            "this {} is not enqueued atomically",
            noun(dispatch.target_kind)
        ))
        .with_help(help),
    )
}

/// The names dispatches can refer to.
struct Targets<'a> {
    jobs: BTreeSet<&'a str>,
    /// Registered workflow names (several versions share one).
    workflows: BTreeSet<&'a str>,
    /// A workflow's function name → its registered name, where they differ.
    workflow_functions: BTreeMap<&'a str, &'a str>,
}

impl<'a> Targets<'a> {
    fn of(handlers: &'a [Arc<Handler>]) -> Self {
        let mut targets = Targets {
            jobs: BTreeSet::new(),
            workflows: BTreeSet::new(),
            workflow_functions: BTreeMap::new(),
        };
        for handler in handlers {
            match handler.kind {
                Kind::Job => {
                    targets.jobs.insert(&handler.name);
                }
                Kind::Workflow => {
                    targets.workflows.insert(&handler.name);
                    if handler.function != handler.name {
                        targets
                            .workflow_functions
                            .insert(&handler.function, &handler.name);
                    }
                }
                _ => {}
            }
        }
        targets
    }

    fn names(&self, kind: DispatchKind) -> &BTreeSet<&'a str> {
        match kind {
            DispatchKind::Job => &self.jobs,
            DispatchKind::Workflow => &self.workflows,
        }
    }
}

/// FG202. A target that is not a string literal is skipped: its value is only known at run
/// time, and guessing would give false alarms.
fn unknown_target(targets: &Targets, dispatch: &Dispatch) -> Option<Diagnostic> {
    let target = dispatch.target.as_deref()?;
    let kind = dispatch.target_kind;
    let names = targets.names(kind);
    if names.contains(target) {
        return None;
    }
    let span = Some(dispatch.span.clone());
    let other_kind = other(kind);
    if targets.names(other_kind).contains(target) {
        return Some(
            Diagnostic::error(
                "FG202",
                format!(
                    "`{target}` is a {}, not a {}; use {}",
                    noun(other_kind),
                    noun(kind),
                    method(other_kind)
                ),
                span,
            )
            .with_label(format!("a {}", noun(other_kind)))
            .with_help(format!(
                "write `ctx.{}(\"{target}\", …)`",
                method(other_kind)
            )),
        );
    }
    let diagnostic = Diagnostic::error(
        "FG202",
        format!(
            "`{}(\"{target}\")` names no {} in this crate",
            method(kind),
            noun(kind)
        ),
        span,
    )
    .with_label(format!("unknown {}", noun(kind)));
    Some(diagnostic.with_help(unknown_help(targets, kind, target)))
}

fn unknown_help(targets: &Targets, kind: DispatchKind, target: &str) -> String {
    if kind == DispatchKind::Workflow {
        if let Some(registered) = targets.workflow_functions.get(target) {
            return format!(
                "`{target}` is the workflow's function; it is registered as `{registered}`: write `\"{registered}\"`"
            );
        }
    }
    let names = targets.names(kind);
    if let Some(close) = closest(target, names.iter().copied()) {
        return format!("did you mean `{close}`?");
    }
    if names.is_empty() {
        return format!(
            "the crate defines no {}; add one with #[forge::{}]",
            noun(kind),
            noun(kind)
        );
    }
    format!("the crate's {}s are: {}", noun(kind), listing(names))
}

/// At most ten names, so that a large crate does not flood the terminal.
fn listing(names: &BTreeSet<&str>) -> String {
    const SHOWN: usize = 10;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// The candidate closest to `name` when it is close enough to be a likely typo: a
/// case-insensitive Damerau-Levenshtein distance (a swap of two letters is one edit) of at
/// most one edit per three characters, the bound rustc uses for its suggestions. Ties go to
/// the alphabetically first candidate, so the suggestion does not depend on input order.
pub(super) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = name.to_lowercase();
    let limit = (wanted.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(&wanted, &candidate.to_lowercase());
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::super::handler::testing::run;
    use super::*;
    use crate::lock::Lock;

    const CRATE: &str = r#"
use forge::prelude::*;

#[forge::job]
pub async fn send_welcome(ctx: &JobContext) -> Result<()> { Ok(()) }

#[forge::workflow(name = "onboarding")]
pub async fn onboard(ctx: &WorkflowContext) -> Result<()> { Ok(()) }
"#;

    fn findings(handlers: &str) -> Vec<(String, String, Option<String>)> {
        run(&format!("{CRATE}{handlers}"), &Lock::default(), check)
            .into_iter()
            .map(|d| (d.code, d.message, d.help))
            .collect()
    }

    #[test]
    fn transactional_handlers_may_dispatch() {
        for attr in [
            "mutation",
            "job",
            "cron(every = \"1m\")",
            "workflow",
            "daemon",
        ] {
            let context = match attr {
                "mutation" => "MutationContext",
                "job" => "JobContext",
                "workflow" => "WorkflowContext",
                "daemon" => "DaemonContext",
                _ => "CronContext",
            };
            let source = format!(
                "#[forge::{attr}]\npub async fn h(ctx: &{context}) -> Result<()> {{\n    ctx.dispatch_job(\"send_welcome\", ()).await?;\n    ctx.start_workflow(\"onboarding\", ()).await?;\n    Ok(())\n}}\n"
            );
            assert_eq!(findings(&source), [], "{attr}");
        }
        let webhook = "#[forge::webhook(path = \"/h\")]\npub async fn h(ctx: &WebhookContext) -> Result<()> { ctx.dispatch_job(\"send_welcome\", ()).await?; Ok(()) }";
        assert_eq!(findings(webhook), []);
    }

    #[test]
    fn fg201_queries_and_non_transactional_mutations() {
        let found = findings(
            r#"
#[forge::query]
pub async fn q(ctx: &QueryContext) -> Result<()> { ctx.dispatch_job("send_welcome", ()).await?; Ok(()) }
#[forge::mutation(transactional = false)]
pub async fn m(ctx: &MutationContext) -> Result<()> { ctx.start_workflow("onboarding", ()).await?; Ok(()) }
"#,
        );
        let codes: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(codes, ["FG201", "FG201"]);
        assert!(found[0].1.contains("query `q` only reads"));
        assert!(found[1]
            .1
            .contains("mutation `m` has `transactional = false`"));
    }

    #[test]
    fn fg202_suggests_close_names_and_the_other_kind() {
        let found = findings(
            r#"
#[forge::mutation]
pub async fn m(ctx: &MutationContext, name: String) -> Result<()> {
    ctx.dispatch_job("send_welcom", ()).await?;
    ctx.dispatch_job("onboarding", ()).await?;
    ctx.start_workflow("onboard", ()).await?;
    ctx.start_workflow("billing", ()).await?;
    ctx.dispatch_job(&name, ()).await?;
    Ok(())
}
"#,
        );
        let helps: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|f| (f.1.as_str(), f.2.as_deref()))
            .collect();
        assert_eq!(
            helps,
            [
                (
                    "`dispatch_job(\"send_welcom\")` names no job in this crate",
                    Some("did you mean `send_welcome`?")
                ),
                (
                    "`onboarding` is a workflow, not a job; use start_workflow",
                    Some("write `ctx.start_workflow(\"onboarding\", …)`")
                ),
                (
                    "`start_workflow(\"billing\")` names no workflow in this crate",
                    Some("the crate's workflows are: `onboarding`")
                ),
                (
                    "`start_workflow(\"onboard\")` names no workflow in this crate",
                    Some("`onboard` is the workflow's function; it is registered as `onboarding`: write `\"onboarding\"`")
                ),
            ]
        );
    }

    #[test]
    fn closest_only_suggests_likely_typos() {
        let names = ["send_welcome", "send_invoice", "cleanup"];
        assert_eq!(closest("send_welcom", names), Some("send_welcome"));
        assert_eq!(closest("sned_welcome", names), Some("send_welcome"));
        assert_eq!(closest("Send_Invoice", names), Some("send_invoice"));
        assert_eq!(closest("cleanp", names), Some("cleanup"));
        assert_eq!(closest("reindex", names), None);
        assert_eq!(closest("ab", ["xy"]), None);
    }
}
