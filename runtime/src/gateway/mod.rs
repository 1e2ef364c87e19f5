//! HTTP: RPC, MCP, health, admin. One axum router over the node's [`Shared`] state.

mod admin;
mod admin_jobs;
mod envelope;
mod health;
mod mcp;
mod rpc;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::shared::Shared;

pub(crate) use envelope::{RequestId, Response};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_api/rpc/{name}", post(rpc::call))
        .route("/_api/mcp", post(mcp::post))
        .route("/_api/health", get(health::health))
        .route("/_api/ready", get(health::ready))
        .nest("/_api/admin", admin::router())
        .layer(axum::extract::DefaultBodyLimit::max(
            shared.config.body_limit,
        ))
        .with_state(shared)
}
