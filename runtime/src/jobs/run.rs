//! Running one claimed job: its handler within the job's timeout, with panics caught; its
//! lease renewed and its progress written while it runs; its outcome recorded.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use serde_json::Value;
use tokio::sync::watch;
use tracing::Instrument as _;
use uuid::Uuid;

use super::worker::millis;
use crate::context::{Base, JobContext};
use crate::dispatch::Outbox;
use crate::error::panic_message;
use crate::registry::Retry;
use crate::shared::Shared;

/// A job this node claimed.
pub(crate) struct Claimed {
    pub id: Uuid,
    pub name: String,
    pub input: Value,
    /// This attempt, from 1 (`forge_jobs.attempts` after the claim).
    pub attempt: i32,
    pub max_attempts: i32,
}

type Progress = Option<(i16, String)>;

/// Progress a job reports in a tight loop is written at most this often.
const PROGRESS_GAP: Duration = Duration::from_millis(100);

/// Every write about a claimed job is guarded by this: the row is still running this
/// attempt on this node. A job whose lease expired may have been claimed by another node
/// meanwhile, and a slow old worker must not overwrite what the new one does.
const MINE: &str = "id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'";

pub(crate) async fn run(shared: Arc<Shared>, job: Claimed) {
    let span = tracing::info_span!("job", name = %job.name, id = %job.id, attempt = job.attempt);
    execute(shared, job).instrument(span).await
}

async fn execute(shared: Arc<Shared>, job: Claimed) {
    let Some(handler) = shared.registry.jobs.get(job.name.as_str()) else {
        // The claim only takes registered names; this is a bug, not the job's fault.
        let error = format!("no job named `{}` is registered on this node", job.name);
        record(&shared, &job, None, None, &Outbox::default(), Err(error)).await;
        return;
    };
    let retry = handler.def.retry;
    let timeout_ms = handler.def.timeout_ms;
    let call = handler.call.clone();
    let (progress, mut latest) = watch::channel(None);
    let outbox = Arc::new(Outbox::default());
    let context = JobContext {
        base: Base::new(&shared, None),
        outbox: outbox.clone(),
        job_id: job.id,
        attempt: u32::try_from(job.attempt).unwrap_or(0),
        progress,
    };
    let input = job.input.clone();
    // Calling the handler happens inside the guarded future too: the glue could panic
    // before returning its future.
    let handler = AssertUnwindSafe(async move { call(context, input).await }).catch_unwind();
    let attempt = async move {
        let outcome = match timeout_ms {
            None => handler.await,
            Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), handler).await {
                Ok(outcome) => outcome,
                Err(_) => return Err(format!("timed out after {ms} ms")),
            },
        };
        match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("{error:#}")),
            Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
        }
    };
    tracing::debug!("job started");
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = attempt => outcome,
        never = keep(&shared, &job, latest.clone()) => match never {},
    };
    let progress = latest.borrow_and_update().clone();
    record(
        &shared,
        &job,
        Some(&retry),
        progress,
        &outbox,
        outcome.map(|()| started.elapsed()),
    )
    .await;
}

/// Runs `update` (the completion, guarded by [`MINE`]) and, when it still owned the job,
/// writes the attempt's dispatches, in one transaction; the rows the update changed.
async fn with_dispatches(
    pool: &sqlx::PgPool,
    update: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    outbox: &Outbox,
) -> crate::Result<u64> {
    let mut tx = pool.begin().await?;
    let owned = update.execute(&mut *tx).await?.rows_affected();
    if owned == 0 {
        return Ok(0);
    }
    outbox.write(&mut tx).await?;
    tx.commit().await?;
    Ok(owned)
}

enum Never {}

/// Renews the job's lease every third of it and writes its progress when it changes, for
/// as long as the job runs (the caller drops this future when the job ends).
async fn keep(shared: &Shared, job: &Claimed, mut progress: watch::Receiver<Progress>) -> Never {
    let lease = shared.config.job_lease;
    let every = (lease / 3).max(Duration::from_millis(10));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut reporting = true;
    let mut lost = false;
    loop {
        let report = tokio::select! {
            changed = progress.changed(), if reporting => match changed {
                Ok(()) => progress.borrow_and_update().clone(),
                // The job dropped its context; only the lease is left to renew.
                Err(_) => {
                    reporting = false;
                    continue;
                }
            },
            _ = renew.tick() => None,
        };
        let (pct, message) = report.clone().unzip();
        let written = sqlx::query(&format!(
            "UPDATE forge_jobs SET lease_expires_at = now() + $4 * interval '1 millisecond', \
                    progress_pct = coalesce($5, progress_pct), \
                    progress_message = CASE WHEN $5 IS NULL THEN progress_message ELSE $6 END \
             WHERE {MINE}"
        ))
        .bind(job.id)
        .bind(shared.node_id)
        .bind(job.attempt)
        .bind(millis(lease))
        .bind(pct)
        .bind(message)
        .execute(&shared.primary)
        .await;
        match written {
            Ok(done) if done.rows_affected() == 0 && !lost => {
                lost = true;
                tracing::warn!(
                    "this job's lease expired and it was taken back; its outcome will be discarded"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "renewing the job's lease failed"),
        }
        if report.is_some() {
            tokio::time::sleep(PROGRESS_GAP).await;
        }
    }
}

/// Writes the attempt's outcome: `completed`; or `failed` with the retry's time; or `dead`
/// after the last attempt (or without a retry policy, for a job this node cannot run).
/// A completed attempt's dispatches (`outbox`) are written in the same transaction.
async fn record(
    shared: &Shared,
    job: &Claimed,
    retry: Option<&Retry>,
    progress: Progress,
    outbox: &Outbox,
    outcome: Result<Duration, String>,
) {
    let (pct, message) = progress.unzip();
    let (status, delay_ms, error) = match &outcome {
        Ok(_) => ("completed", 0, None),
        Err(error) => match retry {
            Some(retry) if job.attempt < job.max_attempts => {
                let attempt = u32::try_from(job.attempt).unwrap_or(1);
                let delay = i64::try_from(retry.delay_ms(attempt)).unwrap_or(i64::MAX);
                ("failed", delay, Some(error.as_str()))
            }
            _ => ("dead", 0, Some(error.as_str())),
        },
    };
    let sql = format!(
        "UPDATE forge_jobs SET status = $4, \
                finished_at = CASE WHEN $4 = 'failed' THEN NULL ELSE now() END, \
                scheduled_at = CASE WHEN $4 = 'failed' \
                                    THEN now() + $5 * interval '1 millisecond' \
                                    ELSE scheduled_at END, \
                last_error = coalesce($6, last_error), \
                progress_pct = coalesce($7, progress_pct), \
                progress_message = CASE WHEN $7 IS NULL THEN progress_message ELSE $8 END, \
                locked_by = NULL, lease_expires_at = NULL \
         WHERE {MINE}"
    );
    // A few tries: the database may blink, and a job whose outcome is not written runs
    // again once its lease expires.
    let mut tries = 0;
    let written = loop {
        tries += 1;
        let update = sqlx::query(&sql)
            .bind(job.id)
            .bind(shared.node_id)
            .bind(job.attempt)
            .bind(status)
            .bind(delay_ms)
            .bind(error)
            .bind(pct)
            .bind(message.as_deref());
        let written = if status == "completed" && outbox.len() > 0 {
            with_dispatches(&shared.primary, update, outbox).await
        } else {
            update
                .execute(&shared.primary)
                .await
                .map(|done| done.rows_affected())
                .map_err(crate::Error::from)
        };
        match written {
            Err(error) if tries < 3 => {
                tracing::warn!(%error, "recording the job's outcome failed; trying again");
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            written => break written,
        }
    };
    match written {
        Ok(0) => {
            tracing::warn!(
                status,
                "the job was taken back while it ran (its lease expired); this outcome is discarded"
            );
            return;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(%error, status, "recording the job's outcome failed; it runs again when its lease expires");
            return;
        }
    }
    match (status, &outcome) {
        ("completed", Ok(elapsed)) => {
            tracing::info!(elapsed_ms = elapsed.as_millis() as u64, "job completed");
        }
        ("failed", Err(error)) => {
            tracing::warn!(%error, retry_in_ms = delay_ms, max_attempts = job.max_attempts, "job failed; it will be retried");
        }
        (_, Err(error)) => {
            tracing::error!(%error, max_attempts = job.max_attempts, "job failed on its last attempt; it is dead");
        }
        _ => {}
    }
}
