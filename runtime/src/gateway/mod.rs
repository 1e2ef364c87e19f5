//! HTTP: RPC, health, admin, webhooks. One axum router over the node's [`Shared`] state.

mod admin;
mod admin_jobs;
mod envelope;
mod health;
mod rpc;
mod webhook;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::shared::Shared;

pub(crate) use envelope::{RequestId, Response};
pub(crate) use webhook::Webhooks;

pub(crate) fn router(shared: Arc<Shared>, webhooks: Webhooks) -> Router {
    let webhooks = Arc::new(webhooks);
    Router::new()
        .route("/_api/rpc/{name}", post(rpc::call))
        .route("/_api/health", get(health::health))
        .route("/_api/ready", get(health::ready))
        .nest("/_api/admin", admin::router())
        .fallback(move |state, request| webhook::serve(webhooks.clone(), state, request))
        .layer(axum::extract::DefaultBodyLimit::max(
            shared.config.body_limit,
        ))
        .with_state(shared)
}
