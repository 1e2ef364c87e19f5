//! FG401–FG403: what keeps a workflow's runs resumable: a contract that only changes with
//! its version, step and event keys fixed at compile time, and sleeps that are persisted.

use super::{Project, Rule};
use crate::ir::{Diagnostic, Handler, Span, WorkflowContract};
use crate::lock::LockedWorkflow;

pub const RULES: &[Rule] = &[
    Rule {
        code: "FG401",
        title: "a workflow's contract changed but its version did not",
        explanation: "A workflow run is persisted step by step and can sleep or wait for days; when it wakes, the code registered under its name and version replays it, matching stored step results to step keys. If the steps, awaited events, timeout or input, output and event types change under the same version, a run in flight resumes into code that no longer fits what it stored and fails or, worse, skips or repeats work. forge.lock records each version's contract signature when `forge generate` first sees it; forge check compares the code with it and says what changed. Give the changed workflow a new version and keep the old function registered under the old version until its runs finish. While a version has never run anywhere, its entry may instead be deleted from forge.lock and regenerated.",
        example: r#"// forge.lock recorded version "1" with steps ["reserve", "charge"]
// refused: a step was added under the same version
#[forge::workflow(name = "checkout", version = "1")]
pub async fn checkout(ctx: &WorkflowContext, order: Order) -> Result<()> {
    ctx.step("reserve").run(|| async { Ok(()) }).await?;
    ctx.step("charge").run(|| async { Ok(()) }).await?;
    ctx.step("ship").run(|| async { Ok(()) }).await?;
    Ok(())
}

// accepted: a new version, the old one kept for runs in flight
#[forge::workflow(name = "checkout", version = "2", active)]
pub async fn checkout(ctx: &WorkflowContext, order: Order) -> Result<()> { … }
#[forge::workflow(name = "checkout", version = "1")]
pub async fn checkout_v1(ctx: &WorkflowContext, order: Order) -> Result<()> { … }"#,
    },
    Rule {
        code: "FG402",
        title: "a workflow step or event key is not a string literal",
        explanation: "Step keys are how a resumed run finds the results it already stored, and event keys are how `send_event` finds the run waiting for it. A key computed at run time can differ between the run that stored a result and the code that resumes it, and it is invisible to the contract in forge.lock, so a change to it slips past FG401. Keys must be string literals; work over a list belongs in one step that handles the whole list, or in jobs dispatched per item.",
        example: r#"// refused
for item in &order.items {
    ctx.step(&format!("reserve_{}", item.id)).run(|| async { Ok(()) }).await?;
}

// accepted
ctx.step("reserve_items").run(|| async { Ok(()) }).await?;"#,
    },
    Rule {
        code: "FG403",
        title: "a workflow sleeps with tokio::time::sleep or std::thread::sleep",
        explanation: "A workflow may sleep for hours or days. `tokio::time::sleep` keeps the run in the memory of one process, where a deploy or crash loses it, and `std::thread::sleep` additionally blocks a runtime worker thread. `ctx.sleep(duration)` persists the run as sleeping with its wake time, frees the worker, and resumes the run on any node once the time has come.",
        example: r#"// refused
tokio::time::sleep(Duration::from_secs(3600)).await;

// accepted
ctx.sleep(Duration::from_secs(3600)).await?;"#,
    },
];

pub fn check(project: &Project, out: &mut Vec<Diagnostic>) {
    for handler in &project.ir.handlers {
        let Some(contract) = &handler.workflow else {
            continue;
        };
        let key = (contract.name.clone(), contract.version.clone());
        if let Some(locked) = project.lock.workflows.get(&key) {
            out.extend(contract_changed(handler, contract, locked));
        }
        for span in &contract.dynamic_keys {
            out.push(dynamic_key(handler, span));
        }
        for span in &handler.blocking_sleeps {
            out.push(blocking_sleep(handler, span));
        }
    }
}

/// FG401. The signature alone decides; the recorded parts only explain what changed.
fn contract_changed(
    handler: &Handler,
    contract: &WorkflowContract,
    locked: &LockedWorkflow,
) -> Option<Diagnostic> {
    if locked.signature == contract.signature {
        return None;
    }
    let mut changes = changes(contract, locked);
    if changes.is_empty() {
        // Only a hand-edited entry or a different signature encoding gets here.
        changes.push(
            "the signature differs although the steps, events, timeout and types match forge.lock"
                .to_owned(),
        );
    }
    let version = &contract.version;
    let next = match version.parse::<u64>() {
        Ok(n) => format!("`version = \"{}\"`", n.saturating_add(1)),
        Err(_) => "a new `version`".to_owned(),
    };
    Some(
        Diagnostic::error(
            "FG401",
            format!(
                "workflow `{}` version \"{version}\" changed without a version bump: {}",
                contract.name,
                changes.join("; ")
            ),
            Some(handler.span.clone()),
        )
        .with_label(format!(
            "signature {}, forge.lock has {}",
            contract.signature, locked.signature
        ))
        .with_help(format!(
            "runs in flight were started under the recorded contract: give this function {next} and keep the old function registered as version \"{version}\" until they finish"
        )),
    )
}

fn changes(contract: &WorkflowContract, locked: &LockedWorkflow) -> Vec<String> {
    let mut changes = key_changes("step", &locked.steps, &contract.steps);
    let waits: Vec<String> = contract.waits.iter().map(|w| w.key.clone()).collect();
    changes.extend(key_changes("event", &locked.waits, &waits));
    if locked.timeout_ms != contract.timeout_ms {
        changes.push(format!(
            "timeout {} → {}",
            timeout(locked.timeout_ms),
            timeout(contract.timeout_ms)
        ));
    }
    if locked.types != contract.types_digest {
        changes.push("the input, output or event types changed".to_owned());
    }
    changes
}

/// Keys added, removed, and whether the keys both versions have come in another order.
fn key_changes(what: &str, old: &[String], new: &[String]) -> Vec<String> {
    let only_in = |these: &[String], others: &[String]| -> Vec<String> {
        these
            .iter()
            .filter(|key| !others.contains(key))
            .cloned()
            .collect()
    };
    let (added, removed) = (only_in(new, old), only_in(old, new));
    let kept_old: Vec<String> = old.iter().filter(|k| new.contains(k)).cloned().collect();
    let kept_new: Vec<String> = new.iter().filter(|k| old.contains(k)).cloned().collect();
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(format!("{} added", keys(what, &added)));
    }
    if !removed.is_empty() {
        changes.push(format!("{} removed", keys(what, &removed)));
    }
    if kept_old != kept_new {
        changes.push(format!(
            "{what} order changed ({} → {})",
            quoted(&kept_old),
            quoted(&kept_new)
        ));
    }
    changes
}

fn keys(what: &str, keys: &[String]) -> String {
    let plural = if keys.len() == 1 { "" } else { "s" };
    format!("{what}{plural} {}", quoted(keys))
}

fn quoted(keys: &[String]) -> String {
    keys.iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn timeout(ms: Option<u64>) -> String {
    ms.map_or_else(|| "none".to_owned(), super::cron::duration)
}

/// FG402.
fn dynamic_key(handler: &Handler, span: &Span) -> Diagnostic {
    Diagnostic::error(
        "FG402",
        format!(
            "workflow `{}`: a step or event key is not a string literal",
            handler.name
        ),
        Some(span.clone()),
    )
    .with_label("computed at run time")
    .with_help("write the key as a string literal, e.g. `ctx.step(\"charge_card\")`: a resumed run finds its stored results by key, and forge.lock only protects keys it can read")
}

/// FG403.
fn blocking_sleep(handler: &Handler, span: &Span) -> Diagnostic {
    Diagnostic::error(
        "FG403",
        format!(
            "workflow `{}` sleeps in memory instead of with `ctx.sleep`",
            handler.name
        ),
        Some(span.clone()),
    )
    .with_label("lost on restart, and holds a worker while it waits")
    .with_help("use `ctx.sleep(duration).await?`: the run is saved as sleeping and resumes at its wake time on any node, even after a restart")
}

#[cfg(test)]
mod tests {
    use super::super::handler::testing::run;
    use super::*;
    use crate::lock::Lock;

    const CHECKOUT: &str = r#"
use forge::prelude::*;
use std::time::Duration;

#[forge::workflow(name = "checkout", version = "1", timeout = "2h")]
pub async fn checkout(ctx: &WorkflowContext, id: Uuid) -> Result<()> {
    ctx.step("reserve").run(|| async { Ok(()) }).await?;
    ctx.step("ship").run(|| async { Ok(()) }).await?;
    ctx.step("charge").run(|| async { Ok(()) }).await?;
    let _ok: bool = ctx.wait_for_event("paid", None).await?;
    Ok(())
}
"#;

    /// The lock `forge generate` would write for `source`.
    fn lock_of(source: &str) -> Lock {
        let parsed = crate::parse::parse_file("src/functions.rs", "functions", source);
        let ir = crate::resolve::build(&[parsed]).ir;
        Lock::default().updated(&ir, &[])
    }

    fn locked(lock: &mut Lock) -> &mut LockedWorkflow {
        lock.workflows
            .get_mut(&("checkout".to_owned(), "1".to_owned()))
            .expect("the workflow is locked")
    }

    #[test]
    fn fg401_accepts_the_recorded_contract_and_new_versions() {
        let lock = lock_of(CHECKOUT);
        assert_eq!(run(CHECKOUT, &lock, check), []);
        let bumped = CHECKOUT.replace("version = \"1\"", "version = \"2\"");
        let edited = bumped.replace("\"ship\"", "\"send\"");
        assert_eq!(run(&edited, &lock, check), []);
    }

    #[test]
    fn fg401_says_what_changed() {
        let mut lock = lock_of(CHECKOUT);
        let entry = locked(&mut lock);
        entry.signature = "0".repeat(32);
        entry.steps = ["reserve", "charge", "refund"].map(str::to_owned).to_vec();
        entry.waits = vec!["approved".to_owned()];
        entry.timeout_ms = Some(3_600_000);
        entry.types = "f".repeat(32);
        let found = run(CHECKOUT, &lock, check);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "workflow `checkout` version \"1\" changed without a version bump: step `ship` added; step `refund` removed; event `paid` added; event `approved` removed; timeout 1h → 2h; the input, output or event types changed"
        );
        let label = found[0].label.as_deref().unwrap_or_default();
        assert!(
            label.ends_with(&format!("forge.lock has {}", "0".repeat(32))),
            "{label}"
        );
        assert_eq!(
            found[0].help.as_deref(),
            Some("runs in flight were started under the recorded contract: give this function `version = \"2\"` and keep the old function registered as version \"1\" until they finish")
        );
    }

    #[test]
    fn fg401_reports_a_new_order_and_an_unexplained_signature() {
        let mut lock = lock_of(CHECKOUT);
        let entry = locked(&mut lock);
        entry.signature = "0".repeat(32);
        entry.steps = ["reserve", "charge", "ship"].map(str::to_owned).to_vec();
        let found = run(CHECKOUT, &lock, check);
        assert!(
            found[0].message.ends_with(
                "step order changed (`reserve`, `charge`, `ship` → `reserve`, `ship`, `charge`)"
            ),
            "{}",
            found[0].message
        );
        locked(&mut lock).steps = ["reserve", "ship", "charge"].map(str::to_owned).to_vec();
        let found = run(CHECKOUT, &lock, check);
        assert!(found[0].message.contains("the signature differs although"));
    }

    #[test]
    fn fg402_and_fg403() {
        let source = r#"
use forge::prelude::*;
use std::time::Duration;

#[forge::workflow]
pub async fn flow(ctx: &WorkflowContext, key: String) -> Result<()> {
    ctx.step(&key).run(|| async { Ok(()) }).await?;
    let _v: bool = ctx.wait_for_event(key.as_str(), None).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::thread::sleep(Duration::from_secs(1));
    ctx.sleep(Duration::from_secs(1)).await?;
    Ok(())
}

#[forge::job]
pub async fn job(ctx: &JobContext) -> Result<()> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}
"#;
        let found: Vec<(String, u32)> = run(source, &Lock::default(), check)
            .into_iter()
            .map(|d| (d.code, d.span.map_or(0, |s| s.line)))
            .collect();
        let expected = [("FG402", 7), ("FG402", 8), ("FG403", 9), ("FG403", 10)]
            .map(|(code, line)| (code.to_owned(), line));
        assert_eq!(found, expected);
    }
}
