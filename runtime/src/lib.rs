//! The forge runtime: what user applications link.
//!
//! An application is `forge::App::from_env()?.register(forge_generated::register).run()`:
//! the generated glue fills a [`Registry`] with every handler, and [`App`] serves them —
//! RPC over HTTP, jobs, cron on the elected leader, daemons — on one PostgreSQL database.
//!
//! Features: `gateway` (HTTP: RPC, health, admin), `jobs` (the job worker), `workflows`
//! (executing workflow runs on the job worker), `cron` and `daemons` (with leader
//! election), `realtime` (live queries over server-sent events), all on by default;
//! `test-support` adds
//! `forge::testing` (and the gateway, which its client calls). Handlers of every kind
//! register whatever the features; a node runs those its features serve and says at start
//! which it will not run.
//! `ARCHITECTURE.md` at the repository root has the map.

// With no subsystem at all a node migrates, registers and heartbeats but runs no handler, so
// the machinery for calling handlers is unused by design in that one build.
#![cfg_attr(
    not(any(
        feature = "gateway",
        feature = "jobs",
        feature = "cron",
        feature = "daemons",
        feature = "workflows"
    )),
    allow(dead_code)
)]

// The core, in every build: the registry and every definition, context and error, queueing
// jobs, configuration, the database, migrations and this node's row.
mod app;
mod auth;
mod config;
mod context;
mod dispatch;
mod error;
pub mod http;
mod node;
pub mod registry;
mod shared;
mod tx;
pub mod workflow;

// The subsystems that serve or run handlers, one cargo feature each (default: all). Every
// feature builds alone (`.ci/run` checks each); see ARCHITECTURE.md, "Slim builds".
#[cfg(feature = "cron")]
mod cron;
#[cfg(feature = "daemons")]
mod daemons;
#[cfg(feature = "gateway")]
mod gateway;
#[cfg(feature = "jobs")]
mod jobs;
#[cfg(any(feature = "cron", feature = "daemons"))]
mod leader;
// The one LISTEN connection, shared by the job worker and live queries.
#[cfg(any(feature = "jobs", feature = "realtime"))]
mod listener;
#[cfg(feature = "realtime")]
mod realtime;
// Trimming runs on the leader, so a cluster trims when some node has `cron` or `daemons`.
#[cfg(any(feature = "cron", feature = "daemons"))]
mod retention;
#[cfg(feature = "test-support")]
pub mod testing;
#[cfg(feature = "workflows")]
mod workflows;

pub use ::http::HeaderMap;
pub use app::{App, Running};
pub use auth::Auth;
pub use config::Config;
pub use context::{
    CronContext, DaemonContext, JobContext, McpToolContext, MutationContext, QueryContext,
    WebhookContext, WorkflowContext,
};
pub use error::{Error, Result};
pub use forge_macros::{cron, daemon, job, mcp_tool, model, mutation, query, webhook, workflow};
pub use registry::Registry;
pub use tx::Tx;

/// serde, for the generated glue's argument structs (`#[serde(crate = "forge::serde")]`),
/// so applications need no serde dependency of their own for it.
pub use serde;
/// sqlx, so handlers use the exact version the runtime executes with.
pub use sqlx;

/// What handlers use: `use forge::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CronContext, DaemonContext, Error, JobContext, McpToolContext, MutationContext,
        QueryContext, Result, WebhookContext, WorkflowContext,
    };
    pub use chrono::{DateTime, NaiveDate, Utc};
    pub use serde_json::json;
    pub use uuid::Uuid;
}
