//! `/_api/admin/workflows/{id}`: a run with its steps, and what operators do to runs —
//! `cancel` (compensate, then `cancelled`), `retry` (blocked or failed runs, completed
//! steps kept), `events/{key}` (deliver an event) and `abort` (stop without compensating).
//! Every node with the gateway serves them; the nodes executing runs act on what they write.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::Value;
use uuid::Uuid;

use super::admin::admin;
use super::Response;
use crate::shared::Shared;
use crate::workflow::WAKE;
use crate::{Error, Result};

/// Statuses a run ends in.
const FINISHED: &str = "('completed', 'failed', 'compensated', 'cancelled')";
/// Statuses of a run a person has to unblock.
const BLOCKED: &str = "('blocked_signature_mismatch', 'blocked_missing_version')";

fn run_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::InvalidField {
        field: "id".into(),
        message: format!("{id:?} is not a UUID"),
    })
}

/// The run's row (status, current step, blocking reason, …) with its steps in the order
/// they started; sleeps and event waits are the steps named `~sleep/n` and `~event/key/n`.
pub(super) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = run_id(&id)?;
        let run: Option<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(r) - 'claims' || jsonb_build_object('steps', ( \
                 SELECT coalesce(jsonb_agg(to_jsonb(s) - 'run_id' ORDER BY s.started_at, s.key), '[]') \
                 FROM forge_workflow_steps s WHERE s.run_id = r.id)) \
             FROM forge_workflow_runs r WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(&shared.primary)
        .await?;
        run.ok_or_else(|| Error::NotFound(format!("no workflow run has the id {id}")))
    };
    admin(&shared, &headers, view).await
}

/// Runs one statement that changes the run and answers with its status; when no row
/// changed, says why from the run's current status.
async fn act(shared: &Shared, id: Uuid, sql: &str, refused: &str) -> Result<Value> {
    let mut tx = shared.primary.begin().await?;
    let status: Option<String> = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(status) = status else {
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM forge_workflow_runs WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        return Err(match current {
            None => Error::NotFound(format!("no workflow run has the id {id}")),
            Some(current) => Error::Validation(format!("the run is {current}: {refused}")),
        });
    };
    sqlx::query("SELECT pg_notify('forge_jobs_available', $1)")
        .bind(WAKE)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(serde_json::json!({ "id": id, "status": status }))
}

/// Asks for the run to stop and compensate. A run executing now stops at its node's next
/// lease renewal; an idle one is claimed and compensated. The run ends `cancelled`.
pub(super) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = run_id(&id)?;
        let sql = format!(
            "UPDATE forge_workflow_runs SET cancel_requested = true, updated_at = now() \
             WHERE id = $1 AND status NOT IN {FINISHED} AND status NOT IN {BLOCKED} \
             RETURNING status"
        );
        act(
            &shared,
            id,
            &sql,
            "only unfinished runs that are not blocked can be cancelled (a blocked run's code \
             is missing, so nothing could compensate it: retry it once fixed, or abort it)",
        )
        .await
    };
    admin(&shared, &headers, view).await
}

/// Resumes a blocked or failed run from its stored steps: failed steps run again, and steps
/// a failed compensation already undid run again too.
pub(super) async fn retry(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = run_id(&id)?;
        let sql = format!(
            "WITH run AS (UPDATE forge_workflow_runs SET status = 'pending', error = NULL, \
                              blocking_reason = NULL, cancel_requested = false, \
                              locked_by = NULL, lease_expires_at = NULL, updated_at = now() \
                          WHERE id = $1 AND (status = 'failed' OR status IN {BLOCKED}) \
                          RETURNING id, status), \
                  reset AS (DELETE FROM forge_workflow_steps s USING run \
                            WHERE s.run_id = run.id AND s.status IN ('failed', 'compensated')) \
             SELECT status FROM run"
        );
        act(
            &shared,
            id,
            &sql,
            "only failed and blocked runs can be retried",
        )
        .await
    };
    admin(&shared, &headers, view).await
}

/// Stops the run where it is, without compensating: it ends `cancelled`. The node
/// executing it (if any) finds out at its next write or lease renewal and drops it.
pub(super) async fn abort(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = async {
        let id = run_id(&id)?;
        let sql = format!(
            "UPDATE forge_workflow_runs SET status = 'cancelled', \
                    error = 'aborted by an administrator; no compensation ran', \
                    locked_by = NULL, lease_expires_at = NULL, updated_at = now() \
             WHERE id = $1 AND status NOT IN {FINISHED} RETURNING status"
        );
        act(&shared, id, &sql, "it has finished already").await
    };
    admin(&shared, &headers, view).await
}

/// Delivers the event `key` to the run; the request body (JSON) is the payload, `null`
/// when empty. The body is read after the caller is known to be an admin.
pub(super) async fn event(
    State(shared): State<Arc<Shared>>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let view = async {
        let id = run_id(&id)?;
        let body = super::server::read_body(body, shared.config.body_limit).await?;
        let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|error| Error::InvalidField {
                field: "payload".into(),
                message: format!("the body is not JSON: {error}"),
            })?
        };
        crate::dispatch::insert_event(&shared.primary, id, &key, payload).await?;
        Ok(serde_json::json!({ "id": id, "event": key }))
    };
    admin(&shared, &headers, view).await
}
