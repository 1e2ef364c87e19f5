//! HTTP (feature `gateway`): RPC, MCP, health, admin, webhooks. One axum router over the
//! node's [`Shared`] state, and what only the gateway uses: token verification, webhook
//! secrets and the read replicas queries go to.

mod admin;
mod admin_cron;
mod admin_jobs;
mod admin_workflows;
pub(crate) mod auth;
pub(crate) mod call;
#[cfg_attr(not(feature = "realtime"), allow(dead_code))]
pub(crate) mod client;
mod envelope;
mod health;
mod mcp;
mod replicas;
mod rpc;
mod sessions;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::registry::Registry;
use crate::shared::Shared;
use crate::{Error, Result};

use auth::Verifier;
pub(crate) use envelope::{RequestId, Response};
use replicas::Replicas;
use webhook::Webhooks;

/// The gateway's part of the node's [`Shared`] state.
pub(crate) struct Gateway {
    /// `None` without `FORGE_JWT_SECRET` and `FORGE_JWKS_URL`: then only public handlers
    /// can be called.
    pub verifier: Option<Verifier>,
    /// Every webhook by path, with its secret.
    pub webhooks: Arc<Webhooks>,
    /// `DATABASE_REPLICA_URLS`: where queries go while healthy.
    pub replicas: Replicas,
}

impl Gateway {
    /// Reads the webhook secrets and sets up token verification and the replicas' pools
    /// (lazily): everything the gateway can refuse to start over, before the node connects.
    pub fn new(config: &Config, registry: &Registry) -> Result<Gateway> {
        let webhooks = Arc::new(Webhooks::load(registry)?);
        let replicas = Replicas::connect(&config.replica_urls, config.max_connections)?;
        let verifier = Verifier::from_config(config)?;
        if verifier.is_none() {
            tracing::warn!(
                "neither FORGE_JWT_SECRET nor FORGE_JWKS_URL is set: only public handlers can \
                 be called"
            );
        }
        Ok(Gateway {
            verifier,
            webhooks,
            replicas,
        })
    }
}

/// Probes the replicas once (so the node starts with their real state), binds
/// `config.addr` and serves on `tasks` until the node shuts down, probing the replicas
/// meanwhile; returns the bound address (useful with port 0).
pub(crate) async fn serve(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) -> Result<SocketAddr> {
    let config = &shared.config;
    let replicas = shared.gateway.replicas.clone();
    replicas.probe_once().await;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::Internal(format!("cannot listen on {}: {e}", config.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("cannot read the listening address: {e}")))?;
    let stop = shared.shutdown.clone();
    tasks.spawn(async move { replicas.probe_until(stop).await });
    let router = router(shared.clone());
    let stop = shared.shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(error) = served {
            tracing::error!(%error, "the HTTP server stopped");
        }
    });
    Ok(addr)
}

fn router(shared: Arc<Shared>) -> Router {
    let webhooks = shared.gateway.webhooks.clone();
    let router = Router::new()
        .route("/_api/rpc/{name}", post(rpc::call))
        .route("/_api/mcp", post(mcp::post))
        .route("/_api/health", get(health::health))
        .route("/_api/ready", get(health::ready))
        .nest("/_api/admin", admin::router())
        .nest("/_api/auth", sessions::router());
    #[cfg(feature = "realtime")]
    let router = router.merge(crate::realtime::router());
    router
        .fallback(move |state, request| webhook::serve(webhooks.clone(), state, request))
        .layer(axum::extract::DefaultBodyLimit::max(
            shared.config.body_limit,
        ))
        .with_state(shared)
}
