//! What the leader trims so forge's own tables do not grow without bound: rows older than
//! `config.retention` (`FORGE_RETENTION`, default 7 days; jobs and workflow runs have
//! their own overrides) that nothing needs any more.
//!
//! - `forge_webhook_events`: an idempotency key is kept for the retention period, so a
//!   sender that replays a delivery later than that runs the handler again. Senders retry
//!   for hours to days (Stripe: 3 days), hence the week.
//! - `forge_cron_runs`: finished ticks, except each cron's latest one, which catch-up reads
//!   to know where the schedule stood (`cron.rs`).
//! - `forge_jobs`: completed, dead and cancelled jobs, once finished for
//!   `FORGE_RETENTION_JOBS`. Read through `forge_jobs_status_idx` (status, created_at): a
//!   job is created before it finishes, so `created_at` bounds the index range.
//! - `forge_workflow_runs`: completed, compensated, cancelled and failed runs not updated
//!   for `FORGE_RETENTION_WORKFLOWS`, with their steps and events (`ON DELETE CASCADE`).
//!   A failed run can still be retried by an operator until then.
//!
//! Deletes go in batches, so a first sweep over a large backlog never holds many row locks
//! or one long transaction.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::config::Config;
use crate::leader::Leadership;
use crate::shared::Shared;
use crate::Result;

/// Rows one statement deletes at most.
const BATCH: i64 = 5_000;

/// One table's trim: `statement` deletes at most `$2` rows older than `$1` milliseconds
/// and is repeated until it deletes fewer.
struct Trim {
    what: &'static str,
    retention: fn(&Config) -> Duration,
    statement: &'static str,
}

const TRIMS: [Trim; 4] = [
    Trim {
        what: "webhook idempotency keys",
        retention: |config| config.retention,
        statement: "DELETE FROM forge_webhook_events WHERE ctid IN ( \
           SELECT ctid FROM forge_webhook_events \
           WHERE status <> 'processing' AND received_at < now() - $1 * interval '1 millisecond' \
           LIMIT $2)",
    },
    Trim {
        what: "cron runs",
        retention: |config| config.retention,
        statement: "DELETE FROM forge_cron_runs WHERE ctid IN ( \
           SELECT r.ctid FROM forge_cron_runs r \
           WHERE r.status <> 'running' AND r.scheduled_time < now() - $1 * interval '1 millisecond' \
             AND EXISTS (SELECT 1 FROM forge_cron_runs later \
                         WHERE later.name = r.name AND later.scheduled_time > r.scheduled_time) \
           LIMIT $2)",
    },
    Trim {
        what: "finished jobs",
        retention: |config| config.retention_jobs,
        statement: "DELETE FROM forge_jobs WHERE id IN ( \
           SELECT j.id FROM unnest(ARRAY['completed', 'dead', 'cancelled']) AS s(status) \
           CROSS JOIN LATERAL ( \
               SELECT id FROM forge_jobs \
               WHERE status = s.status AND created_at < now() - $1 * interval '1 millisecond' \
                 AND coalesce(finished_at, created_at) < now() - $1 * interval '1 millisecond' \
               LIMIT $2) j \
           LIMIT $2)",
    },
    Trim {
        what: "finished workflow runs",
        retention: |config| config.retention_workflows,
        statement: "DELETE FROM forge_workflow_runs WHERE id IN ( \
           SELECT id FROM forge_workflow_runs \
           WHERE status IN ('completed', 'compensated', 'cancelled', 'failed') \
             AND updated_at < now() - $1 * interval '1 millisecond' \
           LIMIT $2)",
    },
];

/// How often the leader sweeps: often enough that the tables stay near their retention,
/// rarely enough to cost nothing.
fn sweep_interval(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// While this node leads: a sweep when it gains leadership, then one every
/// [`sweep_interval`].
pub(crate) async fn trim_while_leading(shared: Arc<Shared>, mut leadership: Leadership) {
    let shortest = TRIMS
        .iter()
        .map(|trim| (trim.retention)(&shared.config))
        .min()
        .unwrap_or(shared.config.retention);
    while let Some(term) = leadership.acquired().await {
        loop {
            if let Err(error) = sweep(&shared.primary, &shared.config).await {
                tracing::warn!(%error, "cannot trim forge's tables");
            }
            tokio::select! {
                () = term.stop.cancelled() => break,
                () = tokio::time::sleep(sweep_interval(shortest)) => {}
            }
        }
    }
}

/// Deletes what is older than its retention from every table in [`TRIMS`].
pub(crate) async fn sweep(pool: &PgPool, config: &Config) -> Result<()> {
    for trim in &TRIMS {
        let (what, retention) = (trim.what, (trim.retention)(config));
        let mut removed = 0;
        loop {
            let batch = sqlx::query(trim.statement)
                .bind(retention.as_millis() as f64)
                .bind(BATCH)
                .execute(pool)
                .await?
                .rows_affected();
            removed += batch;
            if batch < BATCH as u64 {
                break;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "trimmed {what} older than the retention period");
        }
    }
    Ok(())
}
