//! `/_api/health` (the process answers) and `/_api/ready` (it can do its job).
//!
//! Readiness is checked in the background every `FORGE_READY_INTERVAL` and answered from
//! memory: the endpoint is unauthenticated, so doing database work per call would let any
//! client turn polling into load, and a database that does not answer would hold every
//! probe for the pool's acquire timeout. Each check gets [`CHECK_TIMEOUT`]; a check that
//! takes longer counts as the database not answering.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use forge_migrate::runner::State as MigrationState;

use crate::shared::Shared;

/// How long one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The problems found by the last check; empty when ready.
pub(crate) struct Readiness {
    problems: Mutex<Vec<String>>,
}

impl Default for Readiness {
    fn default() -> Readiness {
        Readiness {
            problems: Mutex::new(vec!["not checked yet".to_owned()]),
        }
    }
}

impl Readiness {
    fn set(&self, problems: Vec<String>) {
        *self.problems.lock().unwrap_or_else(|e| e.into_inner()) = problems;
    }

    fn get(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers, no migration is pending and no workflow run is blocked;
/// 503 with the reasons otherwise, so a load balancer takes the node out of rotation.
pub(crate) async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, Json<Value>) {
    let problems = shared.gateway.readiness.get();
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "problems": problems})),
        )
    }
}

/// Checks readiness once and keeps the answer.
pub(crate) async fn check(shared: &Shared) {
    let problems = match tokio::time::timeout(CHECK_TIMEOUT, problems(shared)).await {
        Ok(problems) => problems,
        Err(_) => vec![format!("database: no answer within {CHECK_TIMEOUT:?}")],
    };
    shared.gateway.readiness.set(problems);
}

/// Re-checks readiness every `FORGE_READY_INTERVAL` until the node shuts down.
pub(crate) async fn check_until_shutdown(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.config.ready_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        check(&shared).await;
    }
}

async fn problems(shared: &Shared) -> Vec<String> {
    let mut problems = Vec::new();
    match forge_migrate::runner::status(&shared.primary, &shared.config.migrations_dir).await {
        Ok(status) => {
            let pending = status.system_pending.len()
                + status
                    .files
                    .iter()
                    .filter(|f| f.state == MigrationState::Pending)
                    .count();
            if pending > 0 {
                problems.push(format!("{pending} migration(s) not applied"));
            }
        }
        Err(error) => problems.push(format!("database: {error}")),
    }
    let blocked: Result<i64, sqlx::Error> = sqlx::query_scalar(
        "SELECT count(*) FROM forge_workflow_runs \
         WHERE status IN ('blocked_signature_mismatch', 'blocked_missing_version')",
    )
    .fetch_one(&shared.primary)
    .await;
    match blocked {
        Ok(0) => {}
        Ok(n) => problems.push(format!("{n} workflow run(s) blocked")),
        Err(error) => problems.push(format!("database: {error}")),
    }
    problems
}
