//! Queueing jobs: `ctx.dispatch_job` inserts a `pending` row into `forge_jobs`.
//!
//! Always compiled, whatever the features: it needs only the registry's job definitions,
//! so a node built without the `jobs` worker (an API node) queues jobs that worker nodes
//! run. The worker itself is [`crate::jobs`].

use std::sync::Arc;

use serde::Serialize;
use sqlx::Executor;
use uuid::Uuid;

use crate::shared::Shared;
use crate::{Error, Result};

/// Inserts a pending job on `executor` (the caller's transaction, so the job exists only
/// if the caller commits). The insert NOTIFYs `forge_jobs_available` at commit.
pub(crate) async fn dispatch<'e>(
    shared: &Arc<Shared>,
    executor: impl Executor<'e, Database = sqlx::Postgres>,
    name: &str,
    input: &impl Serialize,
) -> Result<Uuid> {
    let job = shared.registry.jobs.get(name).ok_or_else(|| {
        Error::Internal(format!(
            "dispatch_job(\"{name}\"): no job of that name is registered"
        ))
    })?;
    let input = serde_json::to_value(input)?;
    let id = sqlx::query_scalar(
        "INSERT INTO forge_jobs (name, queue, priority, input, max_attempts) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(job.def.name)
    .bind(job.def.queue)
    .bind(job.def.priority)
    .bind(input)
    .bind(job.def.retry.max_attempts.max(1) as i32)
    .fetch_one(executor)
    .await?;
    Ok(id)
}
