//! HTTP (feature `gateway`): RPC, MCP, health, admin, webhooks. One axum router over the
//! node's [`Shared`] state, and what only the gateway uses: token verification, webhook
//! secrets and the read replicas queries go to.
//!
//! # Decisions
//!
//! - **Identity.** `sub` must be a UUID (it is what `ctx.user_id()` returns and what owner
//!   columns hold); `tenant_id` too. Tokens must carry `exp`; `nbf` is honoured, both with
//!   `FORGE_JWT_LEEWAY`. Without `FORGE_JWT_SECRET` and `FORGE_JWKS_URL` every non-public
//!   handler answers 401 and the node says so at start. `gateway/auth/`: the header's `alg`
//!   picks the key source (HS256 → the secret; RS256/ES256/EdDSA → the JWKS key named by `kid`,
//!   which fixes its one algorithm), so a token cannot choose how it is checked; `jwks.rs`
//!   keeps the provider's keys (one fetch in flight, a 30 s negative cache per unknown `kid`,
//!   refetches at least 1 s apart); `cache.rs` keeps verified tokens by SHA-256 until `exp`.
//!   Callers see only "invalid token"; the reason is logged.
//! - **Issued sessions** (`runtime/src/auth/`, with the gateway): `issue.rs` signs HS256 access
//!   tokens (and holds the context methods, in their own impl blocks); `refresh.rs` stores
//!   refresh tokens as SHA-256 in `forge_refresh_tokens` (system schema v2), rotates them in
//!   one transaction that locks the presented row (`FOR UPDATE`), so of two concurrent uses one
//!   rotates and the other is a detected reuse, which revokes the family. The access-token
//!   grant (tenant, roles, claims, ttl) is stored with the refresh token, so every token of a
//!   session says the same. `gateway/sessions.rs` serves `/_api/auth/{refresh,logout}`.
//! - **Bound live sessions.** The session secret is not stored: it is the HMAC (node-local key)
//!   of session id, client IP and User-Agent hash (`gateway/client.rs`), recomputed for the
//!   requesting client on every subscribe/unsubscribe; a pair that verifies only for the
//!   opening client is 403, any other 404.
//! - **Transaction poolers** are refused at node start (`pooling.rs`) in builds with a leader or
//!   a listener: two probe connections interleave a session setting; a pooler shows one of
//!   them the other's server session.
//! - **Public handlers and bad tokens.** A public handler runs anonymously when the token is
//!   missing *or invalid*, so a client that always sends its (perhaps expired) token can still
//!   reach public handlers; non-public handlers answer 401.
//! - **Errors on the wire.** Handler-written variants (`Validation`, `InvalidField`,
//!   `NotFound`, …) send their message; errors that arrive through `?` (sqlx, serde, anyhow)
//!   are `INTERNAL_ERROR` with the message `internal error` and are logged with the request
//!   id. `sqlx::Error::RowNotFound` is `NOT_FOUND` (a `fetch_one` that finds nothing).
//!   `InvalidField` puts the field in `details.field`.
//! - **Request envelope.** A body without `args` calls with `{}`; `args` that is not an object
//!   is `VALIDATION_ERROR` on `args`. A body over `FORGE_BODY_LIMIT` is `VALIDATION_ERROR` (400,
//!   not 413, so every failure has the envelope). A caller's `X-Request-Id` (printable ASCII,
//!   ≤ 128 bytes) is kept as the request id; otherwise a UUID is made.
//! - **Non-transactional mutations.** `ctx.tx()` is the pool; `dispatch_job` inserts at once
//!   (FG201 reports the pattern statically).
//! - **MCP tools write like mutations**: each call runs in a transaction (`ctx.tx()`),
//!   committed on `Ok`, and its dispatches commit with it.
//! - **Query cache** (`realtime/cache.rs`, feature `realtime`): per node, keyed by (query,
//!   canonical arguments, the caller's claims as JSON); every `forge_changes` notification
//!   drops the entries of queries reading that table at once (not after the live queries'
//!   debounce), a reconnect or lag drops all, and a run that overlapped an invalidation
//!   (a generation counter) is not stored. FIFO eviction past the entry and byte bounds.
//!   `x-forge-cache: hit|miss` on RPC responses.
//! - **MCP** (`POST /_api/mcp`): stateless (no `Mcp-Session-Id`; `GET` is 405), answers
//!   `application/json` only (406 when the `Accept` header excludes it), protocol versions
//!   2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05 (the client's when known, else the
//!   newest; an unknown `MCP-Protocol-Version` header is 400). MCP tools have no `public`
//!   option, so every request needs a valid bearer token (401 with `WWW-Authenticate:
//!   Bearer`). Arguments are decoded by the glue's struct, as for RPC — serde is the
//!   validator; a failure is JSON-RPC -32602 with `data.field` (a task-local flag set by
//!   `decode_args` tells it from a handler's own `InvalidField`), and nothing runs. Results
//!   are text content plus `structuredContent` (an object as is, anything else as
//!   `{"result": …}`); a handler error is `isError: true` with `CODE: message`. Batches
//!   and notifications per JSON-RPC (202 without a body when nothing answers).
//! - **Readiness** is 503 with the reasons while the database does not answer, a migration (of
//!   forge or of the project) is pending, or a workflow run is blocked. It is checked in the
//!   background (`FORGE_READY_INTERVAL`, each check cut off after 1 s) and answered from
//!   memory: the endpoint is unauthenticated, so per-call database work would be an amplifier.
//! - **The HTTP server** (`gateway/server.rs`) is hyper's HTTP/1 connection loop, not
//!   `axum::serve`, because the node needs what that does not offer: a connection limit (past
//!   it, 429 written on the raw socket), a header timeout that also closes idle keep-alive
//!   connections (408 when part of a request arrived), a body deadline per request (a body
//!   wrapper whose error handlers map to 408), a handle a handler can close its own connection
//!   with (a live session that fell behind), and a shutdown that closes idle and half-sent
//!   connections at once while requests being handled finish.
//! - **Every answer has the envelope.** A middleware gives it to error responses forge's
//!   handlers did not write (axum's rejections: a path that is not UTF-8, a method not
//!   allowed). Admin endpoints take the body as a stream and read it after the token check.
//! - **Data the database refuses** (SQLSTATE class 22, data exceptions such as a NUL byte in
//!   text; class 23, constraint violations) is `VALIDATION_ERROR` 400 with the database's
//!   message and `details.constraint`, not an internal error: the client can fix it.
//! - **Replicas.** Queries use a healthy replica round-robin, else the primary; mutations, jobs
//!   and everything else use the primary. Replica pools are lazy, so a replica that is down at
//!   start does not stop the node; probes every 2 s flip health both ways.
//!
//! # Browsers, rate limits, outbound HTTP (`browser.rs`, `rate_limit.rs`, `crate::http`)
//!
//! - **CORS** (`FORGE_CORS_ORIGINS`) is a tower-http `CorsLayer` on the routes the generated
//!   clients call (RPC, events, subscribe, unsubscribe) only; origins are normalised at start
//!   as browsers send them and compared exactly. A response without
//!   `Access-Control-Allow-Origin` has every other CORS header stripped, so other origins
//!   learn nothing. `nosniff` and `no-referrer` are set on every response, fallback included.
//! - **Rate limits** are fixed windows on the database's clock in `forge_rate_limits`
//!   (system schema v003). A node takes a *lease* of `count / 10` calls (1 to 1,000) in one
//!   upsert that never lets `used` pass the limit and spends it locally; an exhausted key is
//!   remembered until its window ends. Nodes together never over-admit; a caller spread over
//!   `n` nodes may be refused up to `(n - 1) × (lease - 1)` calls early. Order on RPC:
//!   authenticate, `FORGE_RATE_LIMIT` (anonymous callers, per IP), the handler's limit (per
//!   user, else per IP), then the arguments. Webhooks (`FORGE_WEBHOOK_RATE_LIMIT`, per source
//!   IP) are checked before the body is read. Every node trims ended windows once a minute.
//! - **Outbound HTTP** (`forge::http`, every build): reqwest with rustls, no proxy, its own
//!   DNS resolver that refuses a name when any of its addresses is not public and hands
//!   reqwest exactly the checked addresses (no rebinding); literal IPs are checked before
//!   sending and every redirect target in the redirect policy. `FORGE_HTTP_ALLOW` hosts skip
//!   the check for that name; its networks allow their addresses. Refusals surface as
//!   `http::Error::Blocked`, found in reqwest's error chain. `ctx.http()` is one client per
//!   node (`Shared::http`), defined for every context in `http.rs`.

mod admin;
mod admin_cron;
mod admin_jobs;
mod admin_workflows;
pub(crate) mod auth;
pub(crate) mod browser;
pub(crate) mod call;
// Live sessions key their limits on the client; a gateway without `realtime` does not yet.
#[cfg_attr(not(feature = "realtime"), allow(dead_code))]
pub(crate) mod client;
mod envelope;
mod health;
mod mcp;
pub(crate) mod rate_limit;
mod replicas;
mod rpc;
pub(crate) mod server;
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
    /// The open HTTP connections, bounded by `FORGE_HTTP_MAX_CONNECTIONS`.
    pub connections: server::Connections,
    /// What `/_api/ready` answers, kept current in the background.
    pub readiness: health::Readiness,
    /// This node's share of the cluster's rate limits.
    pub rate_limits: rate_limit::RateLimiter,
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
            connections: server::Connections::new(config.http_max_connections),
            readiness: health::Readiness::default(),
            rate_limits: Default::default(),
        })
    }
}

/// Probes the replicas and checks readiness once (so the node starts with their real
/// state), binds `config.addr` and serves on `tasks` until the node shuts down, probing
/// the replicas and re-checking readiness meanwhile; returns the bound address (useful
/// with port 0).
pub(crate) async fn serve(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) -> Result<SocketAddr> {
    let config = &shared.config;
    let replicas = shared.gateway.replicas.clone();
    replicas.probe_once().await;
    health::check(shared).await;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::Internal(format!("cannot listen on {}: {e}", config.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("cannot read the listening address: {e}")))?;
    let stop = shared.shutdown.clone();
    tasks.spawn(async move { replicas.probe_until(stop).await });
    tasks.spawn(health::check_until_shutdown(shared.clone()));
    tasks.spawn(rate_limit::trim_until(
        shared.primary.clone(),
        shared.shutdown.clone(),
    ));
    tasks.spawn(server::run(
        listener,
        router(shared.clone()),
        shared.clone(),
    ));
    Ok(addr)
}

fn router(shared: Arc<Shared>) -> Router {
    let webhooks = shared.gateway.webhooks.clone();
    // What the generated clients call from a browser gets CORS; the rest does not.
    let browser_api = Router::new()
        .route("/_api/rpc/{name}", post(rpc::call))
        .nest("/_api/auth", sessions::router());
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
        ))
        .layer(axum::middleware::from_fn(envelope::ensure));
    browser::security_headers(router).with_state(shared)
}
