//! The first parameter of every handler.
//!
//! Every context has `db()`, `auth()`, `user_id()` and `tenant_id()`; the rest depends on
//! the kind. Contexts are cheap to clone (an `Arc` and a few ids) and are passed to the glue
//! by value, which lends them to the handler.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::Auth;
use crate::dispatch::{dispatch_methods, Dispatcher, Outbox};
use crate::shared::Shared;
use crate::tx::{Target, Tx, TxCell};
use crate::{Error, Result};

/// What every context carries.
#[derive(Clone)]
pub(crate) struct Base {
    pub shared: Arc<Shared>,
    /// The pool `db()` hands out: a healthy read replica for queries when there are any,
    /// the primary otherwise.
    pub pool: PgPool,
    pub auth: Option<Auth>,
}

impl Base {
    pub fn new(shared: &Arc<Shared>, auth: Option<Auth>) -> Base {
        Base {
            shared: shared.clone(),
            pool: shared.primary.clone(),
            auth,
        }
    }

    fn auth(&self) -> Result<&Auth> {
        self.auth
            .as_ref()
            .ok_or_else(|| Error::Unauthorized("this needs an authenticated caller".into()))
    }
}

macro_rules! common_methods {
    ($($context:ident),* $(,)?) => {$(
        impl $context {
            /// The shared connection pool: `.fetch_all(ctx.db())`.
            pub fn db(&self) -> &PgPool {
                &self.base.pool
            }

            /// The caller's verified identity; `UNAUTHORIZED` when there is none.
            pub fn auth(&self) -> Result<&Auth> {
                self.base.auth()
            }

            /// The caller's user id (the token's `sub`); `UNAUTHORIZED` when there is none.
            pub fn user_id(&self) -> Result<Uuid> {
                Ok(self.base.auth()?.user_id)
            }

            /// The caller's tenant (the token's `tenant_id`); `UNAUTHORIZED` without a caller,
            /// `FORBIDDEN` when the caller's token names no tenant.
            pub fn tenant_id(&self) -> Result<Uuid> {
                self.base.auth()?.tenant_id.ok_or_else(|| {
                    Error::Forbidden("the caller's token has no tenant_id".into())
                })
            }
        }
    )*};
}

common_methods!(
    QueryContext,
    MutationContext,
    JobContext,
    CronContext,
    WorkflowContext,
    DaemonContext,
    WebhookContext,
    McpToolContext,
);

/// A `#[forge::query]`'s context.
#[derive(Clone)]
pub struct QueryContext {
    pub(crate) base: Base,
}

/// Where a handler that writes puts its writes: its transaction, or the pool when it is
/// not transactional. Only the gateway calls mutations, so only it builds these.
#[derive(Clone)]
#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
pub(crate) enum Writes {
    Transaction(TxCell),
    Pool,
}

/// A `#[forge::mutation]`'s context. Its dispatches are written in the mutation's
/// transaction: if the mutation fails, nothing was queued, and workers see the work only
/// once it commits (with `transactional = false`, each dispatch commits at once).
#[derive(Clone)]
pub struct MutationContext {
    pub(crate) base: Base,
    pub(crate) writes: Writes,
}

/// A `#[forge::job]`'s context. Its `dispatch_job`, `start_workflow` and `send_event`
/// are written in the transaction that records the attempt as completed: an attempt that
/// fails (or is timed out, or loses its lease) dispatches nothing, and its retry dispatches
/// again. The ids are returned at once.
#[derive(Clone)]
pub struct JobContext {
    pub(crate) base: Base,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) job_id: Uuid,
    pub(crate) attempt: u32,
    pub(crate) progress: watch::Sender<Option<(i16, String)>>,
}

impl JobContext {
    /// This job's id (`forge_jobs.id`).
    pub fn job_id(&self) -> Uuid {
        self.job_id
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Records progress (`pct` from 0 to 100) for the admin API; written in the background,
    /// the latest value wins.
    pub fn progress(&self, pct: u8, message: impl Into<String>) -> Result<()> {
        if pct > 100 {
            return Err(Error::Validation(format!("progress {pct}% is over 100%")));
        }
        self.progress
            .send_replace(Some((i16::from(pct), message.into())));
        Ok(())
    }
}

/// A `#[forge::cron]`'s context. Its dispatches are written in the transaction that records
/// the tick as completed: a tick that fails dispatches nothing.
#[derive(Clone)]
pub struct CronContext {
    pub(crate) base: Base,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) scheduled_time: DateTime<Utc>,
    pub(crate) late: bool,
}

impl CronContext {
    /// The tick this run is for (not when it started).
    pub fn scheduled_time(&self) -> DateTime<Utc> {
        self.scheduled_time
    }

    /// Whether this run catches up a tick missed while no node was leading.
    pub fn is_late(&self) -> bool {
        self.late
    }
}

/// A `#[forge::daemon]`'s context. A daemon has no outcome to commit with, so each of its
/// dispatches commits at once, on its own.
#[derive(Clone)]
pub struct DaemonContext {
    pub(crate) base: Base,
    pub(crate) stop: CancellationToken,
}

impl DaemonContext {
    /// Resolves when the daemon must stop: the node shuts down, or (for a leader-elected
    /// daemon) this node stopped leading.
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + '_ {
        self.stop.cancelled()
    }

    /// Whether [`DaemonContext::shutdown`] has resolved.
    pub fn is_shutting_down(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// A `#[forge::workflow]`'s context.
#[derive(Clone)]
pub struct WorkflowContext {
    pub(crate) base: Base,
    pub(crate) run: Arc<crate::workflow::RunState>,
}

/// A `#[forge::webhook]`'s context. The handler runs in a transaction, committed when it
/// returns `Ok` and rolled back when it fails; the delivery's idempotency key, when the
/// webhook has one, and its dispatches are written in that same transaction (a delivery
/// that fails queues nothing, so the sender's retry does not queue it twice).
#[derive(Clone)]
pub struct WebhookContext {
    pub(crate) base: Base,
    pub(crate) writes: Writes,
    pub(crate) headers: Arc<HeaderMap>,
}

impl WebhookContext {
    /// The delivery's request headers (names are case-insensitive: `ctx.headers().get("x-event")`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A `#[forge::mcp_tool]`'s context. A tool that changes state is a mutation in all but
/// name: it runs in a transaction (`ctx.tx()`), committed when it returns `Ok` and rolled
/// back when it fails, and its dispatches commit with it.
#[derive(Clone)]
pub struct McpToolContext {
    pub(crate) base: Base,
    pub(crate) writes: Writes,
}

/// The methods of the contexts that write in a transaction of their own, written once.
macro_rules! transaction_methods {
    ($($context:ident),* $(,)?) => {$(
        impl $context {
            /// A sqlx executor bound to the handler's transaction: `.execute(ctx.tx())`.
            /// For a mutation with `transactional = false` it is the pool.
            pub fn tx(&self) -> Tx<'_> {
                match &self.writes {
                    Writes::Transaction(cell) => Tx(Target::Transaction(cell)),
                    Writes::Pool => Tx(Target::Pool(&self.base.pool)),
                }
            }

            /// Dispatches go on the handler's transaction: they commit with its writes.
            pub(crate) fn dispatcher(&self) -> Dispatcher<'_> {
                Dispatcher::Now(self.tx())
            }
        }
    )*};
}

transaction_methods!(MutationContext, WebhookContext, McpToolContext);

impl JobContext {
    /// A job's dispatches are written with its completion: none when the attempt fails.
    pub(crate) fn dispatcher(&self) -> Dispatcher<'_> {
        Dispatcher::Deferred(&self.outbox)
    }
}

impl CronContext {
    /// A tick's dispatches are written with its completion: none when it fails.
    pub(crate) fn dispatcher(&self) -> Dispatcher<'_> {
        Dispatcher::Deferred(&self.outbox)
    }
}

impl DaemonContext {
    /// A daemon has no outcome to commit with: each dispatch commits at once.
    pub(crate) fn dispatcher(&self) -> Dispatcher<'_> {
        Dispatcher::Now(Tx(Target::Pool(&self.base.pool)))
    }
}

dispatch_methods!(
    MutationContext,
    WebhookContext,
    McpToolContext,
    JobContext,
    CronContext,
    DaemonContext,
);
