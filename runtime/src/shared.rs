//! The state every subsystem of a running node shares.

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::config::Config;
use crate::registry::Registry;

pub(crate) struct Shared {
    pub config: Config,
    /// The one primary pool every subsystem shares.
    pub primary: PgPool,
    pub registry: Registry,
    /// The token verifier and the read replicas, with the gateway.
    #[cfg(feature = "gateway")]
    pub gateway: crate::gateway::Gateway,
    /// The node's one LISTEN connection (job wake-ups, row changes).
    #[cfg(any(feature = "jobs", feature = "realtime"))]
    pub listener: crate::listener::Listener,
    /// Live-query sessions and subscription groups.
    #[cfg(feature = "realtime")]
    pub realtime: crate::realtime::Hub,
    /// `#[forge::query(cache = …)]` results, invalidated by the live-query pipeline.
    #[cfg(feature = "realtime")]
    pub query_cache: crate::realtime::cache::QueryCache,
    /// This process's row in `forge_nodes`.
    pub node_id: Uuid,
    /// Cancelled when the node starts shutting down.
    pub shutdown: CancellationToken,
    /// Every context's `http()`: outbound HTTP that refuses non-public addresses.
    pub http: crate::http::Client,
    /// Handler calls in flight (RPC and webhooks, with the gateway), drained at shutdown.
    pub calls: TaskTracker,
}
