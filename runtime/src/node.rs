//! This process's row in `forge_nodes`: registered at start, heartbeated, removed at a
//! clean shutdown, and deleted by the leader when it stops heartbeating.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::leader::Leadership;
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

/// Removes the node at a clean shutdown; its leader and daemon rows go with it.
pub(crate) async fn deregister(pool: &PgPool, id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM forge_nodes WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A node not seen for this many heartbeats is taken for dead and deleted by the leader
/// (its `forge_leaders` and `forge_daemons` rows go with it). Several, so one slow
/// heartbeat does not remove a live node; one that was removed anyway registers again.
pub(crate) const STALE_AFTER_HEARTBEATS: u32 = 4;

/// Starts the heartbeat on `tasks`.
pub(crate) fn spawn(shared: &Arc<Shared>, leadership: Leadership, tasks: &mut JoinSet<()>) {
    let shared = shared.clone();
    tasks.spawn(async move { heartbeat(shared, leadership).await });
}

/// Every `config.heartbeat`: refresh `last_seen_at`; on the leader, also delete stale nodes.
async fn heartbeat(shared: Arc<Shared>, leadership: Leadership) {
    let every = shared.config.heartbeat;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = beat(&shared).await {
            tracing::warn!(%error, "heartbeat failed");
        }
        if leadership.is_leading() {
            match remove_stale(&shared.primary, every * STALE_AFTER_HEARTBEATS).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed nodes that stopped heartbeating"),
                Err(error) => tracing::warn!(%error, "cannot remove stale nodes"),
            }
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

/// Deletes the nodes not seen for `after`; returns how many.
pub(crate) async fn remove_stale(pool: &PgPool, after: Duration) -> Result<u64> {
    let removed = sqlx::query(
        "DELETE FROM forge_nodes WHERE last_seen_at < now() - $1 * interval '1 millisecond'",
    )
    .bind(after.as_millis() as f64)
    .execute(pool)
    .await?;
    Ok(removed.rows_affected())
}
