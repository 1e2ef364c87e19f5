//! The job queue: `dispatch_job` inserts into `forge_jobs`; each node's worker
//! ([`worker::work`]) claims with `FOR UPDATE SKIP LOCKED` and runs them ([`run`]).
//!
//! The life of a row: `pending` → `running` (claimed: `attempts` + 1, `locked_by` = the node,
//! a lease) → `completed`, or `failed` (retried at `scheduled_at`) → … → `dead` after the
//! last attempt. A `running` row whose lease expired belongs to a node that died; the sweep
//! puts it back to `pending` (or `dead` when that was its last attempt), so every job runs
//! at least once. A node that shuts down gracefully hands its unfinished jobs back itself,
//! without charging the attempt.

mod run;
mod worker;

pub(crate) use worker::work;

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
