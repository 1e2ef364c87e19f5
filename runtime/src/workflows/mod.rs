//! Executing workflow runs (feature `workflows`), on the job worker: the worker claims due
//! runs next to jobs ([`claim`]) and runs each on its own task ([`run`]) within the same
//! `job_concurrency`. The handler's side (steps, sleeps, waits, replay) is
//! [`crate::workflow`].
//!
//! A run is claimable when it is `pending`; `sleeping` and its wake time came; `waiting` and
//! its event arrived or its deadline passed; `sleeping`/`waiting` and its run-level timeout
//! passed or a cancel was asked; or `running`/`compensating` with an expired lease (its node
//! died). The claim is one `UPDATE … FOR UPDATE SKIP LOCKED`, which counts the claim in
//! `claims`: every later write of the executing node is fenced by (node, claims), and the
//! node renews its lease while it executes, so two nodes never execute one run at once.
//!
//! # Decisions
//!
//! `workflow.rs` is the handler's side (`WorkflowContext::step/sleep/wait_for_event/run_id`),
//! `start`/`send_event` (in the caller's transaction) and the versions recorded at start;
//! `workflows/mod.rs` claims and executes runs. Decisions:
//! - **Runs execute on the job worker.** The worker that claims jobs also claims due runs
//!   (runs first, then jobs, within the same `job_concurrency`), wakes on the same LISTEN
//!   channel (payload `forge:workflows` from `start_workflow`, `send_event` and the admin
//!   API) and polls at the same `poll_interval`; no scheduler of its own. A run is claimable
//!   when `pending`; `sleeping` past `wake_at`; `waiting` with its event present or past its
//!   deadline; `sleeping`/`waiting` past its run timeout or with a cancel asked; or
//!   `running`/`compensating` with an expired lease (a dead node: no separate sweep). The
//!   claim is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` that increments
//!   `claims` and sets `locked_by` and the lease (`job_lease`).
//! - **Fencing.** Every write of the executing node is guarded by (`locked_by`, `claims`)
//!   (the run row `FOR SHARE`, or the step-start statement's own update of it), and the node
//!   renews the lease every third of it; a renewal or write that finds the run gone (lease
//!   expired and reclaimed, or aborted) drops the handler at once and discards its outcome.
//!   So a run has one executor at a time; only a step interrupted mid-way (its node died or
//!   lost the lease) runs again — at-least-once for that step, exactly-once for completed ones.
//! - **Replay.** Each claim runs the handler from the top. Steps, sleeps (`~sleep/<n>`, the
//!   n-th sleep) and event waits (`~event/<key>/<n>`) are rows of `forge_workflow_steps`: a
//!   completed step returns its stored JSON; a failed one returns its stored error (as
//!   `Error::Internal`), so a replay takes the same path. A sleep not due, or a wait with no
//!   event, *halts*: the context records why and never resolves; the executor drops the
//!   handler's future once no step is mid-way (parallel steps finish and are stored first)
//!   and writes `sleeping` (`wake_at`) or `waiting` (`awaited_event`, `event_deadline`),
//!   releasing the lease. Sleeps no longer than `poll_interval` are slept in place (the run
//!   would otherwise wait for a poll tick anyway).
//! - **Events** are rows of `forge_workflow_events`; a wait consumes the oldest unconsumed
//!   one of its key and stores it as the wait's result in one statement, so each event is
//!   delivered to exactly one wait and may arrive before the wait. A timeout stores the wait
//!   as failed and returns `Error::Timeout`, which the workflow may match on.
//! - **Parallel steps** are plain futures: `tokio::try_join!(ctx.step("a").run(…),
//!   ctx.step("b").run(…))`; each is keyed and stored independently.
//! - **Compensation.** Completing (or replaying) a step with `.compensate(g)` registers `g`
//!   with the step's completion `sequence`. When the handler fails, the run times out, or a
//!   cancel is asked, the run goes `compensating` and the registered compensations run in
//!   descending `sequence`, each marking its step `compensated`. After a restart (a run
//!   claimed in `compensating`, or past its timeout) the handler replays in *replay-only*
//!   mode — stored results only; the first step, sleep or wait that would do something new
//!   halts it — which registers exactly the compensations of completed steps, then the rest
//!   are run. The run ends `cancelled` (cancel), `compensated` (something was undone) or
//!   `failed` (nothing to undo, or a compensation failed: retry it once fixed).
//! - **Versions.** Every registered (name, version) is upserted into
//!   `forge_workflow_definitions` at start, and the active one marked: the version with
//!   `active`, else the only one, else the greatest version string. New runs pin the
//!   starting node's active version and its signature. The executor needs the exact
//!   (name, version) and signature: otherwise the run becomes `blocked_missing_version` /
//!   `blocked_signature_mismatch` with a reason naming what to deploy, executes nothing, and
//!   `/_api/ready` is 503 until an operator retries it on a node with the right code.
//!   Nodes claim runs of the workflow *names* they register, so a node without a version
//!   blocks a run of it (in a rolling deploy, keep old versions registered next to new ones).
//! - **Admin** (`gateway/admin_workflows.rs`): `GET /_api/admin/workflows/{id}` (the run with
//!   its steps), `POST …/cancel` (sets `cancel_requested`: the executing node sees it at its
//!   next lease renewal, an idle run is claimed; blocked runs cannot be cancelled, nothing
//!   could compensate them), `…/retry` (failed or blocked → `pending`; failed and compensated
//!   steps are deleted so they run again, completed ones kept), `…/abort` (→ `cancelled` at
//!   once, no compensation; the executing node loses its fence) and `…/events/{key}` (the
//!   body is the payload). Actions answer `{id, status}`, or `VALIDATION_ERROR` naming the
//!   run's status when it does not allow them.
//! - **Shutdown** hands unfinished runs back like jobs (`pending`, or still `compensating`)
//!   within the grace period's reserve.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use serde_json::Value;
use tokio::sync::watch;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::context::{Base, WorkflowContext};
use crate::error::panic_message;
use crate::shared::Shared;
use crate::workflow::{Halt, Progress, RunState};
use crate::Result;

/// Claims up to `$2` due runs of the workflow names `$1` for node `$3`, leased for `$4` ms.
/// A run with a cancel asked is claimed to be compensated.
const CLAIM: &str = "\
UPDATE forge_workflow_runs SET \
       status = CASE WHEN status = 'compensating' OR cancel_requested THEN 'compensating' \
                     ELSE 'running' END, \
       claims = claims + 1, locked_by = $3, \
       lease_expires_at = now() + $4 * interval '1 millisecond', \
       wake_at = NULL, awaited_event = NULL, event_deadline = NULL, updated_at = now() \
WHERE id IN ( \
    SELECT r.id FROM forge_workflow_runs r \
    WHERE r.name = ANY($1) AND ( \
        r.status = 'pending' \
        OR (r.status IN ('running', 'compensating') \
            AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now())) \
        OR (r.status = 'sleeping' AND r.wake_at <= now()) \
        OR (r.status = 'waiting' AND (r.event_deadline <= now() OR EXISTS ( \
            SELECT 1 FROM forge_workflow_events e \
            WHERE e.run_id = r.id AND e.key = r.awaited_event AND e.consumed_at IS NULL))) \
        OR (r.status IN ('sleeping', 'waiting') AND (r.timeout_at <= now() OR r.cancel_requested))) \
    ORDER BY r.updated_at \
    LIMIT $2 \
    FOR UPDATE SKIP LOCKED) \
RETURNING id, name, version, signature, input, status, claims, timeout_at, cancel_requested";

/// Hands runs this node claimed but did not finish back at shutdown: they replay from
/// their stored steps on the next claim.
const RELEASE: &str = "\
UPDATE forge_workflow_runs r SET \
       status = CASE WHEN r.status = 'compensating' THEN 'compensating' ELSE 'pending' END, \
       locked_by = NULL, lease_expires_at = NULL, updated_at = now() \
FROM unnest($2::uuid[], $3::int[]) AS c(id, claims) \
WHERE r.id = c.id AND r.claims = c.claims AND r.locked_by = $1";

/// Every write about a claimed run: still this node's, this claim.
const MINE: &str = "id = $1 AND locked_by = $2 AND claims = $3";

/// A run this node claimed.
pub(crate) struct Claimed {
    pub id: Uuid,
    name: String,
    version: String,
    signature: String,
    input: Value,
    status: String,
    pub claims: i32,
    timeout_at: Option<DateTime<Utc>>,
    cancel_requested: bool,
}

type ClaimRow = (
    Uuid,
    String,
    String,
    String,
    Value,
    String,
    i32,
    Option<DateTime<Utc>>,
    bool,
);

/// The workflow names this node registered (any version: a run of a version it lacks is
/// claimed and blocked, with the reason).
pub(crate) fn served(shared: &Shared) -> Vec<String> {
    let mut names: Vec<String> = shared
        .registry
        .workflows
        .iter()
        .map(|w| w.def.name.to_owned())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

pub(crate) async fn claim(shared: &Shared, names: &[String], room: usize) -> Result<Vec<Claimed>> {
    let rows: Vec<ClaimRow> = sqlx::query_as(CLAIM)
        .bind(names)
        .bind(room as i64)
        .bind(shared.node_id)
        .bind(millis(shared.config.job_lease))
        .fetch_all(&shared.primary)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, version, signature, input, status, claims, timeout_at, cancel)| Claimed {
                id,
                name,
                version,
                signature,
                input,
                status,
                claims,
                timeout_at,
                cancel_requested: cancel,
            },
        )
        .collect())
}

pub(crate) async fn release(shared: &Shared, runs: Vec<(Uuid, i32)>) {
    if runs.is_empty() {
        return;
    }
    let (ids, claims): (Vec<Uuid>, Vec<i32>) = runs.into_iter().unzip();
    let released = sqlx::query(RELEASE)
        .bind(shared.node_id)
        .bind(&ids)
        .bind(&claims)
        .execute(&shared.primary)
        .await;
    match released {
        Ok(done) => tracing::warn!(
            runs = done.rows_affected(),
            "workflow runs unfinished at shutdown were handed back"
        ),
        Err(error) => tracing::error!(
            %error,
            "handing unfinished workflow runs back failed; they return when their leases expire"
        ),
    }
}

pub(crate) async fn run(shared: Arc<Shared>, run: Claimed) {
    let span =
        tracing::info_span!("workflow", name = %run.name, version = %run.version, id = %run.id);
    execute(shared, run).instrument(span).await
}

/// How one execution of the handler ended.
enum Outcome {
    Done(std::result::Result<Value, String>),
    Halted(Halt),
    Signal(Signal),
    TimedOut,
}

enum Signal {
    Lost,
    Cancel,
}

async fn execute(shared: Arc<Shared>, run: Claimed) {
    let handler = shared
        .registry
        .workflows
        .iter()
        .find(|w| w.def.name == run.name && w.def.version == run.version);
    let Some(handler) = handler else {
        let mut versions: Vec<&str> = shared
            .registry
            .workflows
            .iter()
            .filter(|w| w.def.name == run.name)
            .map(|w| w.def.version)
            .collect();
        versions.sort_unstable();
        let reason = format!(
            "version \"{}\" of workflow `{}` is not registered on node {} (it registers {}): \
             deploy that version again, next to the new one, and retry the run",
            run.version,
            run.name,
            shared.node_id,
            versions
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        block(&shared, &run, "blocked_missing_version", &reason).await;
        return;
    };
    if handler.def.signature != run.signature {
        let reason = format!(
            "the run started under contract signature {} but version \"{}\" of workflow `{}` \
             now has signature {}: its steps, events, timeout or types changed without a \
             version bump (forge check reports FG401). Deploy the old code as version \"{}\" \
             again (the new code under a new version) and retry the run",
            run.signature, run.version, run.name, handler.def.signature, run.version
        );
        block(&shared, &run, "blocked_signature_mismatch", &reason).await;
        return;
    }
    let timed_out = run.timeout_at.is_some_and(|t| t <= Utc::now());
    let compensating = run.status == "compensating" || timed_out;
    let (state, progress) = RunState::new(
        run.id,
        shared.node_id,
        run.claims,
        compensating,
        shared.config.poll_interval,
    );
    let context = WorkflowContext {
        base: Base::new(&shared, None),
        run: state.clone(),
    };
    let call = handler.call.clone();
    let input = run.input.clone();
    let handler = AssertUnwindSafe(async move { call(context, input).await }).catch_unwind();
    let deadline = async {
        match run.timeout_at {
            Some(at) if !compensating => {
                tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await
            }
            _ => std::future::pending().await,
        }
    };
    tracing::debug!(claims = run.claims, compensating, "workflow run resumed");
    let outcome = tokio::select! {
        outcome = handler => Outcome::Done(match outcome {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err(format!("{error:#}")),
            Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
        }),
        halt = halted(progress) => Outcome::Halted(halt),
        signal = keep(&shared, &run, true) => Outcome::Signal(signal),
        () = deadline => Outcome::TimedOut,
    };
    if state.lost.load(Ordering::Relaxed) {
        tracing::warn!(
            "the run was taken from this node while it executed; its outcome is discarded"
        );
        return;
    }
    let timeout_error = || match run.timeout_at {
        Some(at) => format!("the run timed out (its timeout was at {at})"),
        None => "the run timed out".to_owned(),
    };
    match outcome {
        Outcome::Done(Ok(output)) if !compensating => complete(&shared, &run, output).await,
        Outcome::Halted(Halt::Sleep(wake_at)) if !compensating => {
            suspend(&shared, &run, "sleeping", Some(wake_at), None, None).await
        }
        Outcome::Halted(Halt::Wait { key, deadline }) if !compensating => {
            suspend(&shared, &run, "waiting", None, Some(&key), deadline).await
        }
        Outcome::Signal(Signal::Lost) => {
            tracing::warn!("the run's lease was lost while it executed; its outcome is discarded")
        }
        Outcome::Signal(Signal::Cancel) => compensate(&shared, &run, &state, None, true).await,
        Outcome::TimedOut => compensate(&shared, &run, &state, Some(timeout_error()), false).await,
        Outcome::Done(Err(error)) => {
            compensate(&shared, &run, &state, Some(error), run.cancel_requested).await
        }
        // Compensating: the handler replayed what is stored (registering compensations).
        Outcome::Done(Ok(_)) | Outcome::Halted(_) => {
            let error = timed_out.then(timeout_error);
            compensate(&shared, &run, &state, error, run.cancel_requested).await
        }
    }
}

/// Resolves once the handler asked to halt and none of its steps is mid-way.
async fn halted(mut progress: watch::Receiver<Progress>) -> Halt {
    let halt = match progress
        .wait_for(|p| p.halt.is_some() && p.in_flight == 0)
        .await
    {
        Ok(p) => p.halt.clone(),
        Err(_) => None,
    };
    match halt {
        Some(halt) => halt,
        // The state lives as long as the executor: this cannot end first.
        None => std::future::pending().await,
    }
}

/// Renews the run's lease every third of it; resolves when the run was taken from this
/// node (lease expired and reclaimed, or aborted), or, with `cancel`, when a cancel was
/// asked.
async fn keep(shared: &Shared, run: &Claimed, cancel: bool) -> Signal {
    let lease = shared.config.job_lease;
    let every = (lease / 3).max(Duration::from_millis(10));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        renew.tick().await;
        let renewed: std::result::Result<Option<bool>, _> = sqlx::query_scalar(&format!(
            "UPDATE forge_workflow_runs SET lease_expires_at = now() + $4 * interval '1 millisecond' \
             WHERE {MINE} RETURNING cancel_requested"
        ))
        .bind(run.id)
        .bind(shared.node_id)
        .bind(run.claims)
        .bind(millis(lease))
        .fetch_optional(&shared.primary)
        .await;
        match renewed {
            Ok(None) => return Signal::Lost,
            Ok(Some(true)) if cancel => return Signal::Cancel,
            Ok(Some(_)) => {}
            Err(error) => tracing::warn!(%error, "renewing the workflow run's lease failed"),
        }
    }
}

/// One fenced update of the run row; false (with a warning) when the run is not this
/// node's any more.
async fn update(shared: &Shared, run: &Claimed, set: &str, bind: Vec<Bind<'_>>) -> bool {
    let sql = format!(
        "UPDATE forge_workflow_runs SET {set}, locked_by = NULL, lease_expires_at = NULL, \
                updated_at = now() WHERE {MINE}"
    );
    let mut query = sqlx::query(&sql)
        .bind(run.id)
        .bind(shared.node_id)
        .bind(run.claims);
    for value in bind {
        query = match value {
            Bind::Text(text) => query.bind(text),
            Bind::Time(time) => query.bind(time),
            Bind::Json(json) => query.bind(json),
        };
    }
    match query.execute(&shared.primary).await {
        Ok(done) if done.rows_affected() == 1 => true,
        Ok(_) => {
            tracing::warn!("the run was taken from this node meanwhile; this outcome is discarded");
            false
        }
        Err(error) => {
            tracing::error!(%error, "recording the workflow run's state failed; it is resumed when its lease expires");
            false
        }
    }
}

enum Bind<'a> {
    Text(Option<&'a str>),
    Time(Option<DateTime<Utc>>),
    Json(Value),
}

async fn block(shared: &Shared, run: &Claimed, status: &str, reason: &str) {
    tracing::error!(status, reason, "workflow run blocked");
    update(
        shared,
        run,
        "status = $4, blocking_reason = $5",
        vec![Bind::Text(Some(status)), Bind::Text(Some(reason))],
    )
    .await;
}

async fn complete(shared: &Shared, run: &Claimed, output: Value) {
    if update(
        shared,
        run,
        "status = 'completed', output = $4, current_step = NULL, error = NULL",
        vec![Bind::Json(output)],
    )
    .await
    {
        tracing::info!("workflow run completed");
    }
}

async fn suspend(
    shared: &Shared,
    run: &Claimed,
    status: &str,
    wake_at: Option<DateTime<Utc>>,
    event: Option<&str>,
    deadline: Option<DateTime<Utc>>,
) {
    if update(
        shared,
        run,
        "status = $4, wake_at = $5, awaited_event = $6, event_deadline = $7",
        vec![
            Bind::Text(Some(status)),
            Bind::Time(wake_at),
            Bind::Text(event),
            Bind::Time(deadline),
        ],
    )
    .await
    {
        tracing::debug!(status, ?wake_at, ?event, "workflow run suspended");
    }
}

/// Runs the registered compensations in reverse order of completion, each marking its
/// step `compensated`, then ends the run: `cancelled` when cancelled, `compensated` when
/// some step was undone, `failed` when there was nothing to undo or a compensation failed.
async fn compensate(
    shared: &Shared,
    run: &Claimed,
    state: &RunState,
    error: Option<String>,
    cancelled: bool,
) {
    let entered = sqlx::query(&format!(
        "UPDATE forge_workflow_runs SET status = 'compensating', error = coalesce($4, error), \
                updated_at = now() WHERE {MINE}"
    ))
    .bind(run.id)
    .bind(shared.node_id)
    .bind(run.claims)
    .bind(error.as_deref())
    .execute(&shared.primary)
    .await;
    if !matches!(entered, Ok(done) if done.rows_affected() == 1) {
        tracing::warn!("the run was taken from this node before compensating; leaving it");
        return;
    }
    if let Some(error) = &error {
        tracing::warn!(%error, "workflow run failed; compensating");
    }
    let mut compensations = match state.compensations.lock() {
        Ok(mut all) => std::mem::take(&mut *all),
        Err(_) => Vec::new(),
    };
    compensations.sort_by_key(|c| std::cmp::Reverse(c.sequence));
    let undo = async {
        for compensation in compensations {
            let key = compensation.key;
            let outcome = AssertUnwindSafe((compensation.run)()).catch_unwind().await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(format!("{error:#}")),
                Err(panic) => Some(format!("panicked: {}", panic_message(&*panic))),
            };
            if let Some(failure) = failure {
                return Err(format!("compensating step `{key}` failed: {failure}"));
            }
            let marked = sqlx::query(&format!(
                "UPDATE forge_workflow_steps SET status = 'compensated' WHERE run_id = $1 AND key = $4 \
                 AND EXISTS (SELECT 1 FROM forge_workflow_runs WHERE {MINE})"
            ))
            .bind(run.id)
            .bind(shared.node_id)
            .bind(run.claims)
            .bind(&key)
            .execute(&shared.primary)
            .await;
            match marked {
                Ok(done) if done.rows_affected() == 1 => {
                    tracing::info!(step = %key, "step compensated")
                }
                _ => return Err(String::new()),
            }
        }
        Ok(())
    };
    let undone = tokio::select! {
        undone = undo => undone,
        _ = keep(shared, run, false) => Err(String::new()),
    };
    match undone {
        Err(lost) if lost.is_empty() => {
            tracing::warn!("the run was taken from this node while compensating; leaving it")
        }
        Err(failure) => {
            tracing::error!(%failure, "workflow compensation failed; the run is failed (retry it once fixed)");
            update(
                shared,
                run,
                "status = 'failed', error = $4",
                vec![Bind::Text(Some(&failure))],
            )
            .await;
        }
        Ok(()) => {
            let status = if cancelled {
                "cancelled"
            } else {
                "compensated"
            };
            // Nothing was ever undone: the run simply failed.
            let set = "status = CASE WHEN $4 = 'cancelled' THEN 'cancelled' \
                       WHEN EXISTS (SELECT 1 FROM forge_workflow_steps \
                                    WHERE run_id = $1 AND status = 'compensated') \
                       THEN 'compensated' ELSE 'failed' END, current_step = NULL";
            if update(shared, run, set, vec![Bind::Text(Some(status))]).await {
                tracing::info!(status, "workflow run ended");
            }
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
