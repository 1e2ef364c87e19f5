//! This process's row in `forge_nodes`: registered at start, heartbeated, removed at a
//! clean shutdown, and deleted by the leader when it stops heartbeating (`leader.rs`).
//! Either way the cron ticks it left running are recorded as failed.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::shared::Shared;
use crate::Result;

pub(crate) async fn register(pool: &PgPool, id: Uuid, version: &str) -> Result<()> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    sqlx::query("INSERT INTO forge_nodes (id, hostname, pid, version) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(hostname)
        .bind(std::process::id() as i32)
        .bind(version)
        .execute(pool)
        .await?;
    Ok(())
}

/// `DELETE FROM forge_nodes WHERE <condition>` that also records the cron ticks those nodes
/// left `running` as `failed` (a tick is never run again, so nothing else would), in one
/// statement; the leader and daemon rows go with the nodes by foreign key. Yields how many
/// nodes it removed.
macro_rules! remove_nodes_where {
    ($condition:literal) => {
        concat!(
            "WITH gone AS (DELETE FROM forge_nodes WHERE ",
            $condition,
            " RETURNING id), \
             cut_off AS (UPDATE forge_cron_runs SET status = 'failed', finished_at = now(), \
                                error = 'cut off: its node stopped before the tick finished' \
                         WHERE status = 'running' AND node_id IN (SELECT id FROM gone)) \
             SELECT count(*) FROM gone"
        )
    };
}

/// Removes the node at a clean shutdown.
pub(crate) async fn deregister(pool: &PgPool, id: Uuid) -> Result<()> {
    sqlx::query(remove_nodes_where!("id = $1"))
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes the nodes not seen for `after`; returns how many.
#[cfg(any(feature = "cron", feature = "daemons"))]
pub(crate) async fn remove_stale(pool: &PgPool, after: std::time::Duration) -> Result<i64> {
    let removed = sqlx::query_scalar(remove_nodes_where!(
        "last_seen_at < now() - $1 * interval '1 millisecond'"
    ))
    .bind(after.as_millis() as f64)
    .fetch_one(pool)
    .await?;
    Ok(removed)
}

/// Starts the heartbeat on `tasks`.
pub(crate) fn spawn(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let shared = shared.clone();
    tasks.spawn(async move { heartbeat(shared).await });
}

/// Refreshes `last_seen_at` every `config.heartbeat`.
async fn heartbeat(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(shared.config.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = beat(&shared).await {
            tracing::warn!(%error, "heartbeat failed");
        }
    }
}

async fn beat(shared: &Shared) -> Result<()> {
    let updated = sqlx::query("UPDATE forge_nodes SET last_seen_at = now() WHERE id = $1")
        .bind(shared.node_id)
        .execute(&shared.primary)
        .await?;
    if updated.rows_affected() == 0 {
        tracing::warn!("this node was removed as stale; registering it again");
        register(&shared.primary, shared.node_id, &shared.config.app_version).await?;
    }
    Ok(())
}
