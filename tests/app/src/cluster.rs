//! Handlers whose side effects say which process ran them, for the multi-process tests.

use std::time::Duration;

use forge::prelude::*;
use serde::{Deserialize, Serialize};

fn pid() -> i32 {
    std::process::id() as i32
}

/// Records which process ran every second's tick.
#[forge::cron("* * * * * *")]
pub async fn tick(ctx: &CronContext) -> Result<()> {
    sqlx::query("INSERT INTO tick_runs (scheduled_time, pid) VALUES ($1, $2)")
        .bind(ctx.scheduled_time())
        .bind(pid())
        .execute(ctx.db())
        .await?;
    Ok(())
}

/// Input of `slow_job`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Slow {
    pub marker: String,
}

/// Queues `slow_job`.
#[forge::mutation(public)]
pub async fn start_slow(ctx: &MutationContext, marker: String) -> Result<Uuid> {
    ctx.dispatch_job("slow_job", Slow { marker }).await
}

/// Takes a while, recording its start and its end, so a test can kill it half-way.
#[forge::job(retry(max_attempts = 3, backoff = "fixed", base = "1s"))]
pub async fn slow_job(ctx: &JobContext, input: Slow) -> Result<()> {
    sqlx::query("INSERT INTO job_attempts (marker, pid) VALUES ($1, $2)")
        .bind(&input.marker)
        .bind(pid())
        .execute(ctx.db())
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sqlx::query("UPDATE job_attempts SET finished = true WHERE marker = $1 AND pid = $2")
        .bind(&input.marker)
        .bind(pid())
        .execute(ctx.db())
        .await?;
    Ok(())
}

/// Runs on the leader only, recording when it starts and stops.
#[forge::daemon(leader_elected)]
pub async fn singleton(ctx: &DaemonContext) -> Result<()> {
    sqlx::query("INSERT INTO singleton_runs (pid) VALUES ($1)")
        .bind(pid())
        .execute(ctx.db())
        .await?;
    ctx.shutdown().await;
    sqlx::query(
        "UPDATE singleton_runs SET stopped_at = now() WHERE pid = $1 AND stopped_at IS NULL",
    )
    .bind(pid())
    .execute(ctx.db())
    .await?;
    Ok(())
}
