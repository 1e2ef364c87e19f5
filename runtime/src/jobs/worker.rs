//! The worker: one per node. It claims jobs of the queues and names this node registered,
//! runs each on its own task (at most `job_concurrency` at once), returns the jobs of dead
//! workers to the queue, and at shutdown hands back what it could not finish.
//!
//! It wakes on `NOTIFY forge_jobs_available` (the payload is the queue), when one of its
//! jobs finishes (a slot is free), and every `poll_interval` in case a notification was
//! missed: the listener was reconnecting, or a retry's `scheduled_at` came due (nothing
//! notifies for that).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use super::run::{self, Claimed};
use crate::listener::Heard;
use crate::shared::Shared;
use crate::Result;

/// The channel the `forge_jobs` triggers notify.
pub(crate) const CHANNEL: &str = "forge_jobs_available";

/// Claims a batch of up to `$3` due jobs of queue `$1` with one of the names `$2` for node
/// `$4`, leased for `$5` ms. The inner query's filter and order are those of the partial
/// index `forge_jobs_claim_idx`, so it reads the index in order and stops after `$3` rows;
/// SKIP LOCKED lets concurrent workers take different rows instead of queueing on the same
/// ones. The claimed attempt is counted here, so a worker that dies mid-job has used it.
const CLAIM: &str = "\
UPDATE forge_jobs SET status = 'running', attempts = attempts + 1, locked_by = $4, \
       started_at = now(), finished_at = NULL, progress_pct = NULL, progress_message = NULL, \
       lease_expires_at = now() + $5 * interval '1 millisecond' \
WHERE id IN ( \
    SELECT id FROM forge_jobs \
    WHERE queue = $1 AND status IN ('pending', 'failed') AND scheduled_at <= now() \
      AND name = ANY($2) \
    ORDER BY priority DESC, scheduled_at \
    LIMIT $3 \
    FOR UPDATE SKIP LOCKED) \
RETURNING id, name, input, attempts, max_attempts";

/// Returns running jobs whose lease expired (their worker died or lost the database) to
/// the queue, or marks them dead when that was their last attempt. Any node may do this
/// for any job; SKIP LOCKED keeps two sweeping nodes out of each other's way.
const SWEEP: &str = "\
UPDATE forge_jobs SET \
       status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'pending' END, \
       finished_at = CASE WHEN attempts >= max_attempts THEN now() END, \
       last_error = 'attempt ' || attempts || ' was abandoned: its worker (node ' \
                    || coalesce(locked_by::text, 'unknown') || ') stopped renewing its lease', \
       locked_by = NULL, lease_expires_at = NULL \
WHERE id IN ( \
    SELECT id FROM forge_jobs \
    WHERE status = 'running' AND lease_expires_at < now() \
    ORDER BY lease_expires_at \
    LIMIT 1000 \
    FOR UPDATE SKIP LOCKED) \
RETURNING id, name, status, attempts";

/// Hands jobs this node claimed but did not finish back to the queue at shutdown, as if
/// the attempt never started: stopping a node is not the job's failure. Guarded by node
/// and attempt, so a job that was reclaimed meanwhile is left alone.
const RELEASE: &str = "\
UPDATE forge_jobs j SET status = 'pending', attempts = j.attempts - 1, locked_by = NULL, \
       lease_expires_at = NULL, started_at = NULL \
FROM unnest($2::uuid[], $3::int[]) AS c(id, attempt) \
WHERE j.id = c.id AND j.attempts = c.attempt AND j.locked_by = $1 AND j.status = 'running'";

/// What this node can run.
struct Served {
    /// The queues of the registered jobs, sorted.
    queues: Vec<String>,
    /// The registered job names: a queue can hold jobs another version of the app added.
    names: Vec<String>,
    /// The registered workflow names, whose runs this worker executes too.
    #[cfg(feature = "workflows")]
    workflows: Vec<String>,
}

impl Served {
    fn workflows(&self) -> &[String] {
        #[cfg(feature = "workflows")]
        return &self.workflows;
        #[cfg(not(feature = "workflows"))]
        &[]
    }
}

/// What a running task holds: a job's id and attempt, or a workflow run's id and claim,
/// to hand back what shutdown interrupts.
#[derive(Clone, Copy)]
enum Claim {
    Job(Uuid, i32),
    #[cfg(feature = "workflows")]
    Run(Uuid, i32),
}

/// Runs the node's worker until `shared.shutdown` is cancelled, then drains it.
pub(crate) async fn work(shared: Arc<Shared>) {
    let concurrency = shared.config.job_concurrency;
    let served = Served {
        queues: shared
            .registry
            .jobs
            .values()
            .map(|job| job.def.queue.to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        names: shared.registry.jobs.keys().map(|n| n.to_string()).collect(),
        #[cfg(feature = "workflows")]
        workflows: crate::workflows::served(&shared),
    };
    if concurrency == 0 || (served.names.is_empty() && served.workflows().is_empty()) {
        tracing::debug!(concurrency, "this node runs no jobs");
        return;
    }
    tracing::info!(concurrency, queues = ?served.queues, workflows = ?served.workflows(), "job worker started");
    let wake = Arc::new(Notify::new());
    // The listener lives in this set so that the worker's end, even an abort, ends it.
    let mut helpers = JoinSet::new();
    let mut channels = served.queues.clone();
    if !served.workflows().is_empty() {
        channels.push(crate::workflow::WAKE.to_owned());
    }
    helpers.spawn(listen(shared.clone(), channels, wake.clone()));

    let mut running = JoinSet::new();
    let mut claims: HashMap<Id, Claim> = HashMap::new();
    let mut poll = tokio::time::interval(shared.config.poll_interval);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Which queue claims first, rotated so one busy queue cannot starve the others.
    let mut first_queue = 0;
    loop {
        // Workflow runs first: most executions are short (a replay up to the next sleep or
        // wait), and a run holds no slot while it sleeps or waits.
        #[cfg(feature = "workflows")]
        {
            let room = concurrency.saturating_sub(running.len());
            if room > 0 && !served.workflows.is_empty() {
                match crate::workflows::claim(&shared, &served.workflows, room).await {
                    Ok(runs) => {
                        for claimed in runs {
                            let claim = Claim::Run(claimed.id, claimed.claims);
                            let handle =
                                running.spawn(crate::workflows::run(shared.clone(), claimed));
                            claims.insert(handle.id(), claim);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "claiming workflow runs failed; retrying at the next poll")
                    }
                }
            }
        }
        let room = concurrency.saturating_sub(running.len());
        if room > 0 && !served.queues.is_empty() {
            match claim(&shared, &served, first_queue, room).await {
                Ok(jobs) => {
                    for job in jobs {
                        let claim = Claim::Job(job.id, job.attempt);
                        let handle = running.spawn(run::run(shared.clone(), job));
                        claims.insert(handle.id(), claim);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "claiming jobs failed; retrying at the next poll")
                }
            }
            first_queue = (first_queue + 1) % served.queues.len();
        }
        tokio::select! {
            () = shared.shutdown.cancelled() => break,
            Some(done) = running.join_next_with_id() => {
                forget(&mut claims, done);
                // Reap every job that finished meanwhile, so that a busy worker claims
                // several at once instead of one database round trip per finished job.
                while let Some(done) = running.try_join_next_with_id() {
                    forget(&mut claims, done);
                }
            }
            () = wake.notified() => {}
            _ = poll.tick() => sweep(&shared).await,
        }
    }
    helpers.abort_all();
    drain(&shared, running, claims).await;
}

async fn claim(
    shared: &Shared,
    served: &Served,
    first_queue: usize,
    room: usize,
) -> Result<Vec<Claimed>> {
    let lease_ms = millis(shared.config.job_lease);
    let mut claimed = Vec::new();
    let queues = served.queues.iter().cycle().skip(first_queue);
    for queue in queues.take(served.queues.len()) {
        let left = room - claimed.len();
        if left == 0 {
            break;
        }
        let rows: Vec<(Uuid, String, serde_json::Value, i32, i32)> = sqlx::query_as(CLAIM)
            .bind(queue)
            .bind(&served.names)
            .bind(left as i64)
            .bind(shared.node_id)
            .bind(lease_ms)
            .fetch_all(&shared.primary)
            .await?;
        claimed.extend(
            rows.into_iter()
                .map(|(id, name, input, attempt, max_attempts)| Claimed {
                    id,
                    name,
                    input,
                    attempt,
                    max_attempts,
                }),
        );
    }
    Ok(claimed)
}

async fn sweep(shared: &Shared) {
    let rows: std::result::Result<Vec<(Uuid, String, String, i32)>, _> =
        sqlx::query_as(SWEEP).fetch_all(&shared.primary).await;
    match rows {
        Ok(rows) => {
            for (id, name, status, attempt) in rows {
                tracing::warn!(job = %name, %id, attempt, %status, "the job's worker stopped renewing its lease; the job is back in the queue unless it was its last attempt");
            }
        }
        Err(error) => tracing::warn!(%error, "sweeping expired job leases failed"),
    }
}

/// Forgets a finished job task. A task that was cancelled keeps its claim: that job is
/// unfinished and is handed back at the end of [`drain`].
fn forget(claims: &mut HashMap<Id, Claim>, done: std::result::Result<(Id, ()), JoinError>) {
    match done {
        Ok((id, ())) => {
            claims.remove(&id);
        }
        Err(error) if error.is_cancelled() => {}
        Err(error) => {
            // Only the worker's own bookkeeping can get here (a job's panic is caught in
            // `run`); the row keeps its lease, and the sweep returns it to the queue.
            match claims.remove(&error.id()) {
                Some(Claim::Job(job, _)) => {
                    tracing::error!(%job, %error, "the task running a job failed")
                }
                #[cfg(feature = "workflows")]
                Some(Claim::Run(run, _)) => {
                    tracing::error!(%run, %error, "the task running a workflow run failed")
                }
                None => {}
            }
        }
    }
}

/// At shutdown: running jobs may finish within the grace period; the rest are stopped and
/// handed back to the queue without using their attempt.
async fn drain(shared: &Shared, mut running: JoinSet<()>, mut claims: HashMap<Id, Claim>) {
    if running.is_empty() {
        return;
    }
    let grace = shared.config.shutdown_grace;
    // `Running::shutdown` aborts every subsystem once the grace period is over; part of it is
    // kept for the hand-back so that it happens before that. Were it cut short anyway, the
    // jobs would come back when their leases expire, with the attempt used.
    let reserve = (grace / 5).min(Duration::from_secs(2));
    tracing::info!(jobs = running.len(), "waiting for running jobs to finish");
    let finished = tokio::time::timeout(grace.saturating_sub(reserve), async {
        while let Some(done) = running.join_next_with_id().await {
            forget(&mut claims, done);
        }
    })
    .await;
    if finished.is_ok() {
        return;
    }
    running.abort_all();
    while let Some(done) = running.join_next_with_id().await {
        forget(&mut claims, done);
    }
    let mut jobs = Vec::new();
    #[cfg(feature = "workflows")]
    let mut runs = Vec::new();
    for claim in claims.into_values() {
        match claim {
            Claim::Job(id, attempt) => jobs.push((id, attempt)),
            #[cfg(feature = "workflows")]
            Claim::Run(id, claims) => runs.push((id, claims)),
        }
    }
    #[cfg(feature = "workflows")]
    crate::workflows::release(shared, runs).await;
    if jobs.is_empty() {
        return;
    }
    let (ids, attempts): (Vec<Uuid>, Vec<i32>) = jobs.into_iter().unzip();
    let released = sqlx::query(RELEASE)
        .bind(shared.node_id)
        .bind(&ids)
        .bind(&attempts)
        .execute(&shared.primary)
        .await;
    match released {
        Ok(done) => tracing::warn!(
            jobs = done.rows_affected(),
            ?grace,
            "jobs unfinished at shutdown were handed back to the queue"
        ),
        Err(error) => tracing::error!(
            %error,
            "handing unfinished jobs back failed; they return when their leases expire"
        ),
    }
}

/// Wakes the worker on `forge_jobs_available` for the queues it serves (and
/// [`crate::workflow::WAKE`] when it executes workflow runs), heard on the node's shared
/// listener; and whenever the listener (re)connects or this falls behind, in case a
/// notification was missed. Meanwhile the worker keeps polling.
async fn listen(shared: Arc<Shared>, queues: Vec<String>, wake: Arc<Notify>) {
    let mut heard = shared.listener.subscribe();
    loop {
        match heard.recv().await {
            Ok(Heard::Notification { channel, payload }) => {
                if &*channel == CHANNEL && queues.iter().any(|q| **q == *payload) {
                    wake.notify_one();
                }
            }
            Ok(Heard::Connected) | Err(RecvError::Lagged(_)) => wake.notify_one(),
            Err(RecvError::Closed) => return,
        }
    }
}

pub(super) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
