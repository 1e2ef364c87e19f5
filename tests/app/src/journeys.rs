//! A durable workflow whose steps record which process ran them, for the crash tests (which
//! create the tables): `workflow_step_starts` gets a row each time a step starts,
//! `workflow_effects` one when its side effect is done, so a test sees what ran twice and
//! what happened twice.

use std::time::Duration;

use forge::prelude::*;
use serde::{Deserialize, Serialize};

/// Input of `journey`: how long its sleep and its `pay` step's work take.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journey {
    pub sleep_ms: i32,
    pub work_ms: i32,
}

/// Starts a `journey` run and returns its id.
#[forge::mutation(public)]
pub async fn start_journey(ctx: &MutationContext, sleep_ms: i32, work_ms: i32) -> Result<Uuid> {
    ctx.start_workflow("journey", Journey { sleep_ms, work_ms })
        .await
}

/// Three steps around a durable sleep; `pay` works a while before its side effect.
#[forge::workflow(version = "1")]
pub async fn journey(ctx: &WorkflowContext, input: Journey) -> Result<i32> {
    ctx.step("book").run(|| act(ctx, "book", 0)).await?;
    ctx.sleep(Duration::from_millis(input.sleep_ms.max(0) as u64))
        .await?;
    ctx.step("pay")
        .run(|| act(ctx, "pay", input.work_ms))
        .await?;
    ctx.step("confirm").run(|| act(ctx, "confirm", 0)).await?;
    Ok(3)
}

/// One step's work: record the start, work `work_ms`, then do the side effect.
async fn act(ctx: &WorkflowContext, step: &str, work_ms: i32) -> Result<()> {
    let pid = std::process::id() as i32;
    sqlx::query("INSERT INTO workflow_step_starts (run_id, step, pid) VALUES ($1, $2, $3)")
        .bind(ctx.run_id())
        .bind(step)
        .bind(pid)
        .execute(ctx.db())
        .await?;
    tokio::time::sleep(Duration::from_millis(work_ms.max(0) as u64)).await;
    sqlx::query("INSERT INTO workflow_effects (run_id, step, pid) VALUES ($1, $2, $3)")
        .bind(ctx.run_id())
        .bind(step)
        .bind(pid)
        .execute(ctx.db())
        .await?;
    Ok(())
}
