//! What the leader trims so forge's own tables do not grow without bound: rows older than
//! `config.retention` (`FORGE_RETENTION`, default 7 days) that nothing needs any more.
//!
//! - `forge_webhook_events`: an idempotency key is kept for the retention period, so a
//!   sender that replays a delivery later than that runs the handler again. Senders retry
//!   for hours to days (Stripe: 3 days), hence the week.
//! - `forge_cron_runs`: finished ticks, except each cron's latest one, which catch-up reads
//!   to know where the schedule stood (`cron.rs`).
//!
//! Deletes go in batches, so a first sweep over a large backlog never holds many row locks
//! or one long transaction.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::leader::Leadership;
use crate::shared::Shared;
use crate::Result;

/// Rows one statement deletes at most.
const BATCH: i64 = 5_000;

/// `(what, statement)`: each deletes at most `$2` rows older than `$1` milliseconds and is
/// repeated until it deletes fewer.
const TRIMS: [(&str, &str); 2] = [
    (
        "webhook idempotency keys",
        "DELETE FROM forge_webhook_events WHERE ctid IN ( \
           SELECT ctid FROM forge_webhook_events \
           WHERE status <> 'processing' AND received_at < now() - $1 * interval '1 millisecond' \
           LIMIT $2)",
    ),
    (
        "cron runs",
        "DELETE FROM forge_cron_runs WHERE ctid IN ( \
           SELECT r.ctid FROM forge_cron_runs r \
           WHERE r.status <> 'running' AND r.scheduled_time < now() - $1 * interval '1 millisecond' \
             AND EXISTS (SELECT 1 FROM forge_cron_runs later \
                         WHERE later.name = r.name AND later.scheduled_time > r.scheduled_time) \
           LIMIT $2)",
    ),
];

/// How often the leader sweeps: often enough that the tables stay near their retention,
/// rarely enough to cost nothing.
fn sweep_interval(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// While this node leads: a sweep when it gains leadership, then one every
/// [`sweep_interval`].
pub(crate) async fn trim_while_leading(shared: Arc<Shared>, mut leadership: Leadership) {
    let retention = shared.config.retention;
    while let Some(term) = leadership.acquired().await {
        loop {
            if let Err(error) = sweep(&shared.primary, retention).await {
                tracing::warn!(%error, "cannot trim forge's tables");
            }
            tokio::select! {
                () = term.stop.cancelled() => break,
                () = tokio::time::sleep(sweep_interval(retention)) => {}
            }
        }
    }
}

/// Deletes what is older than `retention` from every table in [`TRIMS`].
pub(crate) async fn sweep(pool: &PgPool, retention: Duration) -> Result<()> {
    for (what, statement) in TRIMS {
        let mut removed = 0;
        loop {
            let batch = sqlx::query(statement)
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
