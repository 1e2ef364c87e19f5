//! Starting and stopping a node: database, migrations, the HTTP server and the background
//! subsystems, and a graceful shutdown.
//!
//! # The embedded database
//!
//! **The embedded database.** Without `DATABASE_URL` the node starts (or reuses) the
//! project's development cluster and leaves it running at exit: several `cargo run`s and
//! `forge dev` share it, and `forge db stop` stops it.

#[cfg(feature = "gateway")]
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::config::Config;
use crate::registry::Registry;
use crate::shared::Shared;
use crate::{node, Error, Result};

/// A forge application: its configuration and its handlers.
pub struct App {
    config: Config,
    registry: Registry,
}

impl App {
    /// Configuration from the environment and forge.toml ([`Config::from_env`]).
    pub fn from_env() -> Result<App> {
        Ok(App::new(Config::from_env()?))
    }

    pub fn new(config: Config) -> App {
        App {
            config,
            registry: Registry::new(),
        }
    }

    /// Adds handlers: `.register(forge_generated::register)`.
    pub fn register(mut self, register: impl FnOnce(&mut Registry)) -> App {
        register(&mut self.registry);
        self
    }

    /// Starts the node and serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run(self) -> Result<()> {
        // Colour only for a person at a terminal, never with NO_COLOR set.
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(colour)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
        let running = self.start().await.inspect_err(|error| {
            tracing::error!("forge could not start: {error}");
        })?;
        #[cfg(feature = "gateway")]
        tracing::info!(addr = %running.addr(), node = %running.node_id(), "forge is serving");
        #[cfg(not(feature = "gateway"))]
        tracing::info!(node = %running.node_id(), "forge is running (no HTTP: the `gateway` feature is off)");
        let stopped = running.shared.shutdown.clone();
        tokio::select! {
            () = termination() => tracing::info!("shutting down"),
            () = stopped.cancelled() => {}
        }
        running.shutdown().await
    }

    /// Starts the node and returns once it serves: the database is migrated, the node is
    /// registered and the listener is bound.
    pub async fn start(self) -> Result<Running> {
        let App { config, registry } = self;
        if !registry.duplicates.is_empty() {
            return Err(Error::Internal(format!(
                "registered twice: {} (forge check reports this as FG502)",
                registry.duplicates.join(", ")
            )));
        }
        // Webhook secrets are read once, before anything else starts.
        #[cfg(feature = "gateway")]
        let gateway = crate::gateway::Gateway::new(&config, &registry)?;
        let http = crate::http::Client::new(config.http_allow.clone())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let url = match &config.database_url {
            Some(url) => url.clone(),
            None => {
                forge_db::resolve(&config.project_root)
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?
                    .url
            }
        };
        let node_id = Uuid::new_v4();
        let options: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|e| Error::Internal(format!("DATABASE_URL is not a PostgreSQL URL: {e}")))?
            .application_name(&format!("forge node {}", &node_id.to_string()[..8]))
            .log_statements(tracing::log::LevelFilter::Trace);
        let primary = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        #[cfg(any(
            feature = "jobs",
            feature = "realtime",
            feature = "cron",
            feature = "daemons"
        ))]
        crate::pooling::ensure_sessions(&primary).await?;
        if config.migrate {
            let applied =
                forge_migrate::runner::up(&primary, &config.migrations_dir, &Default::default())
                    .await
                    .map_err(|e| Error::Internal(format!("migrations failed: {e}")))?;
            for migration in &applied.migrations {
                tracing::info!(kind = migration.kind.as_str(), version = migration.version, name = %migration.name, "applied migration");
            }
        } else {
            let status = forge_migrate::runner::status(&primary, &config.migrations_dir)
                .await
                .map_err(|e| Error::Internal(format!("cannot read the migration status: {e}")))?;
            if !status.system_pending.is_empty() {
                return Err(Error::Internal(
                    "forge's system tables are not installed and FORGE_MIGRATE=false: \
                     run `forge migrate up`, or start without FORGE_MIGRATE=false"
                        .into(),
                ));
            }
        }
        node::register(&primary, node_id, &config.app_version).await?;
        crate::workflow::register_definitions(&primary, &registry).await?;
        log_unserved(&registry);
        #[cfg(feature = "realtime")]
        let query_cache = crate::realtime::cache::QueryCache::new(
            config.query_cache_entries,
            config.query_cache_bytes,
        );
        let shared = Arc::new(Shared {
            #[cfg(feature = "gateway")]
            gateway,
            config,
            primary,
            registry,
            node_id,
            shutdown: CancellationToken::new(),
            http,
            calls: TaskTracker::new(),
            #[cfg(any(feature = "jobs", feature = "realtime"))]
            listener: crate::listener::Listener::new(),
            #[cfg(feature = "realtime")]
            realtime: crate::realtime::Hub::new()?,
            #[cfg(feature = "realtime")]
            query_cache,
        });

        let mut subsystems = JoinSet::new();
        #[cfg(feature = "gateway")]
        let addr = crate::gateway::serve(&shared, &mut subsystems).await?;
        node::spawn(&shared, &mut subsystems);
        #[cfg(any(feature = "cron", feature = "daemons"))]
        {
            let leadership = crate::leader::spawn(&shared, &mut subsystems);
            #[cfg(feature = "cron")]
            crate::cron::spawn(&shared, leadership.clone(), &mut subsystems);
            #[cfg(feature = "daemons")]
            crate::daemons::spawn(&shared, leadership, &mut subsystems);
        }
        #[cfg(feature = "jobs")]
        subsystems.spawn(crate::jobs::work(shared.clone()));
        #[cfg(feature = "realtime")]
        crate::realtime::spawn(&shared, &mut subsystems);
        #[cfg(any(feature = "jobs", feature = "realtime"))]
        subsystems.spawn(listen(&shared));
        Ok(Running {
            shared,
            #[cfg(feature = "gateway")]
            addr,
            subsystems,
        })
    }
}

/// A started node.
pub struct Running {
    pub(crate) shared: Arc<Shared>,
    #[cfg(feature = "gateway")]
    addr: SocketAddr,
    subsystems: JoinSet<()>,
}

impl Running {
    /// Where the node listens (useful with port 0).
    #[cfg(feature = "gateway")]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// HTTP connections open on this node now.
    #[cfg(feature = "gateway")]
    pub fn open_connections(&self) -> usize {
        self.shared.gateway.connections.open()
    }

    /// Live-query sessions, subscriptions and the bytes of events waiting for clients.
    #[cfg(feature = "realtime")]
    pub fn live_stats(&self) -> crate::LiveStats {
        self.shared.realtime.stats()
    }

    /// This node's id in `forge_nodes`.
    pub fn node_id(&self) -> Uuid {
        self.shared.node_id
    }

    /// Stops accepting work, lets in-flight requests, jobs and daemons finish within the
    /// grace period, gives up leadership and removes the node's row.
    pub async fn shutdown(mut self) -> Result<()> {
        let shared = self.shared.clone();
        shared.shutdown.cancel();
        shared.calls.close();
        let grace = shared.config.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            while self.subsystems.join_next().await.is_some() {}
            shared.calls.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                ?grace,
                "shutdown grace period over; abandoning unfinished work"
            );
            self.subsystems.abort_all();
        }
        node::deregister(&shared.primary, shared.node_id).await?;
        shared.primary.close().await;
        Ok(())
    }
}

#[cfg(feature = "test-support")]
impl Running {
    /// Stops the node as if its process had died: every task is dropped mid-flight, so its
    /// connections close without a goodbye (the leader lock goes with its session), and
    /// nothing is cleaned up: the node's rows stay until the leader removes them as stale.
    pub async fn kill(mut self) {
        self.subsystems.abort_all();
        while self.subsystems.join_next().await.is_some() {}
    }
}

/// The node's shared LISTEN connection, on the channels of the subsystems it runs; started
/// after they subscribed to it.
#[cfg(any(feature = "jobs", feature = "realtime"))]
fn listen(shared: &Arc<Shared>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let channels = [
        #[cfg(feature = "jobs")]
        crate::jobs::CHANNEL,
        #[cfg(feature = "realtime")]
        crate::realtime::CHANNEL,
    ]
    .to_vec();
    let options = (*shared.primary.connect_options())
        .clone()
        .application_name(&format!(
            "forge listener {}",
            &shared.node_id.to_string()[..8]
        ));
    shared
        .listener
        .clone()
        .run(options, channels, shared.shutdown.clone())
}

/// Says which registered handlers this node will not run because their subsystem's feature
/// is off (a slim build: see the crate docs, "Slim builds"); nodes built with it run them.
fn log_unserved(registry: &Registry) {
    let kinds = [
        (
            cfg!(feature = "gateway"),
            registry.queries.len()
                + registry.mutations.len()
                + registry.webhooks.len()
                + registry.mcp_tools.len(),
            "queries, mutations, webhooks and MCP tools",
            "gateway",
        ),
        (cfg!(feature = "jobs"), registry.jobs.len(), "jobs", "jobs"),
        (
            cfg!(feature = "cron"),
            registry.crons.len(),
            "crons",
            "cron",
        ),
        (
            cfg!(feature = "daemons"),
            registry.daemons.len(),
            "daemons",
            "daemons",
        ),
        (
            cfg!(feature = "workflows"),
            registry.workflows.len(),
            "workflows",
            "workflows",
        ),
    ];
    for (on, count, kind, feature) in kinds {
        if !on && count > 0 {
            let note = match kind {
                "jobs" => " (it still queues them with `dispatch_job`)",
                "workflows" => " (it still starts runs and sends events)",
                _ => "",
            };
            tracing::info!(
                "{count} {kind} registered but the `{feature}` feature is off: \
                 this node does not run them{note}"
            );
        }
    }
    // The cache is invalidated by the live-query pipeline (realtime/cache.rs).
    let cached = registry
        .queries
        .values()
        .filter(|q| q.def.cache_ms.is_some())
        .count();
    if cfg!(all(feature = "gateway", not(feature = "realtime"))) && cached > 0 {
        tracing::warn!(
            "{cached} queries declare `cache` but the `realtime` feature is off: their results \
             are not cached (the cache needs realtime's change notifications to stay correct)"
        );
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn termination() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
