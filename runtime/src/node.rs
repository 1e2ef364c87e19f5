//! This process's row in `forge_nodes`.

use sqlx::PgPool;
use uuid::Uuid;

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
