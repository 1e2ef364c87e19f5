//! `/_api/admin/*`: operators' views of jobs, workflow runs, cron and nodes (a token with the `admin` role).
//! They read the system tables, so every node with the gateway serves them, whichever
//! subsystems it runs itself.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use super::auth::authenticate;
use super::{RequestId, Response};
use crate::shared::Shared;
use crate::{Error, Result};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/nodes", get(nodes))
        .route("/cron", get(super::admin_cron::list))
        .route("/jobs", get(super::admin_jobs::list))
        .route("/jobs/{id}", get(super::admin_jobs::get))
        .route("/jobs/{id}/retry", post(super::admin_jobs::retry))
        .route("/jobs/{id}/cancel", post(super::admin_jobs::cancel))
        .route("/workflows/{id}", get(super::admin_workflows::get))
        .route(
            "/workflows/{id}/cancel",
            post(super::admin_workflows::cancel),
        )
        .route("/workflows/{id}/retry", post(super::admin_workflows::retry))
        .route("/workflows/{id}/abort", post(super::admin_workflows::abort))
        .route(
            "/workflows/{id}/events/{key}",
            post(super::admin_workflows::event),
        )
}

/// Answers `view` for callers with the `admin` role.
pub(super) async fn admin<F>(shared: &Shared, headers: &HeaderMap, view: F) -> Response
where
    F: std::future::Future<Output = Result<Value>>,
{
    let request_id = RequestId::from_headers(headers);
    let result = match authenticate(shared, headers, false).await {
        Ok(Some(auth)) if auth.has_role("admin") => view.await,
        Ok(_) => Err(Error::Forbidden(
            "the admin API needs a token with the `admin` role".into(),
        )),
        Err(error) => Err(error),
    };
    Response { request_id, result }
}

async fn nodes(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let view = async {
        let nodes: Value = sqlx::query_scalar(
            "SELECT coalesce(jsonb_agg(n ORDER BY n.started_at DESC), '[]') FROM ( \
               SELECT n.id, n.hostname, n.pid, n.version, n.started_at, n.last_seen_at, \
                      coalesce(array_agg(l.role ORDER BY l.role) FILTER (WHERE l.role IS NOT NULL), '{}') AS leads \
               FROM forge_nodes n LEFT JOIN forge_leaders l ON l.node_id = n.id \
               GROUP BY n.id) n",
        )
        .fetch_one(&shared.primary)
        .await?;
        Ok(nodes)
    };
    admin(&shared, &headers, view).await
}
