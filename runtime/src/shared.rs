//! The state every subsystem of a running node shares.

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::auth::Verifier;
use crate::config::Config;
use crate::registry::Registry;
use crate::replicas::Replicas;

pub(crate) struct Shared {
    pub config: Config,
    /// The one primary pool every subsystem shares.
    pub primary: PgPool,
    pub replicas: Replicas,
    pub registry: Registry,
    /// `None` without `FORGE_JWT_SECRET`: then only public handlers can be called.
    pub verifier: Option<Verifier>,
    /// This process's row in `forge_nodes`.
    pub node_id: Uuid,
    /// Cancelled when the node starts shutting down.
    pub shutdown: CancellationToken,
    /// Handler calls in flight (RPC and webhooks), drained at shutdown.
    pub calls: TaskTracker,
}
