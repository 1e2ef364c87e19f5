//! `/_api/health` (the process answers) and `/_api/ready` (it can do its job).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use forge_migrate::runner::State as MigrationState;

use crate::shared::Shared;

pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when the database answers, no migration is pending and no workflow run is blocked;
/// 503 with the reasons otherwise, so a load balancer takes the node out of rotation.
pub(crate) async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, Json<Value>) {
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
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "problems": problems})),
        )
    }
}
