//! HTTP (feature `gateway`): RPC, MCP, health, admin, webhooks. One axum router over the
//! node's [`Shared`] state, and what only the gateway uses: token verification, webhook
//! secrets and the read replicas queries go to.

mod admin;
mod admin_cron;
mod admin_jobs;
mod admin_workflows;
pub(crate) mod auth;
pub(crate) mod browser;
pub(crate) mod call;
pub(crate) mod client;
mod envelope;
mod health;
mod mcp;
pub(crate) mod rate_limit;
mod replicas;
mod rpc;
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
    /// `None` without `FORGE_JWT_SECRET`: then only public handlers can be called.
    pub verifier: Option<Verifier>,
    /// Every webhook by path, with its secret.
    pub webhooks: Arc<Webhooks>,
    /// `DATABASE_REPLICA_URLS`: where queries go while healthy.
    pub replicas: Replicas,
    /// This node's share of the cluster's rate limits.
    pub rate_limits: rate_limit::RateLimiter,
}

impl Gateway {
    /// Reads the webhook secrets and sets up token verification and the replicas' pools
    /// (lazily): everything the gateway can refuse to start over, before the node connects.
    pub fn new(config: &Config, registry: &Registry) -> Result<Gateway> {
        let webhooks = Arc::new(Webhooks::load(registry)?);
        let replicas = Replicas::connect(&config.replica_urls, config.max_connections)?;
        if config.jwt_secret.is_none() {
            tracing::warn!("FORGE_JWT_SECRET is not set: only public handlers can be called");
        }
        let verifier = config
            .jwt_secret
            .as_deref()
            .map(|secret| Verifier::hs256(secret.as_bytes()));
        Ok(Gateway {
            verifier,
            webhooks,
            replicas,
            rate_limits: Default::default(),
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
    tasks.spawn(rate_limit::trim_until(
        shared.primary.clone(),
        shared.shutdown.clone(),
    ));
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
    // What the generated clients call from a browser gets CORS; the rest does not.
    let browser_api = Router::new().route("/_api/rpc/{name}", post(rpc::call));
    #[cfg(feature = "realtime")]
    let browser_api = browser_api.merge(crate::realtime::router());
    let router = browser::cors(browser_api, &shared.config.cors_origins)
        .route("/_api/mcp", post(mcp::post))
        .route("/_api/health", get(health::health))
        .route("/_api/ready", get(health::ready))
        .nest("/_api/admin", admin::router());
    let router = router
        .fallback(move |state, request| webhook::serve(webhooks.clone(), state, request))
        .layer(axum::extract::DefaultBodyLimit::max(
            shared.config.body_limit,
        ));
    browser::security_headers(router).with_state(shared)
}
