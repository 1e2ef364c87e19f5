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
//!
//! # Slim builds
//!
//! - **Features.** `gateway` (HTTP: RPC, health, admin, webhooks; axum, jsonwebtoken, hmac,
//!   sha2, hex), `jobs` (the worker), `cron` (the scheduler; croner, chrono-tz) and `daemons`
//!   (the supervisor), `workflows` (executing runs; implies `jobs`, whose worker runs them),
//!   `realtime` (live queries; implies `gateway`); the default is all six. Leader election
//!   (`leader.rs`) and retention (`retention.rs`) are compiled with `cron` or `daemons`; the
//!   shared listener (`listener.rs`) with `jobs` or `realtime`. `test-support` implies
//!   `gateway` (its `TestClient` calls it).
//! - **What the features gate: running, not registering.** The `Registry`, every `*Def`,
//!   every context and `Error` are in every build, because the generated glue registers every
//!   kind whatever the node runs; a feature gates the subsystem that serves or runs a kind and
//!   its dependencies. Gating whole modules in `lib.rs` and the spawn lines in `app.rs` keeps
//!   `cfg` out of everything else; code only one subsystem uses lives in its module.
//! - **Queueing jobs is core.** `dispatch_job` needs only the job definitions and an insert,
//!   so it is in every build (`dispatch.rs`): an API node built with `gateway` alone queues
//!   jobs that worker nodes built with `jobs` run. Only nodes with `jobs` claim and run them.
//! - **Starting workflows is core** like queueing jobs: `start_workflow`, `send_event`, the
//!   `WorkflowContext` API and recording the registered versions are in every build
//!   (`workflow.rs`); only nodes with `workflows` claim and execute runs (`workflows/`).
//! - **Saying what will not run.** At start a node logs, per kind, how many registered
//!   handlers its features leave unrun ("3 crons registered but the `cron` feature is off:
//!   this node does not run them").
//! - **Who leads.** The leader is the only node that schedules crons and runs leader-elected
//!   daemons, so a node competes for leadership only when it can do all of that for its app:
//!   with crons registered it needs `cron`, with leader-elected daemons `daemons`. A node
//!   missing one stays a follower and says why; build the nodes meant to lead with both.
//! - **Admin views** read the system tables, so every gateway node serves all of them; on a
//!   node without `cron`, `/_api/admin/cron` lists crons and runs with
//!   `next_scheduled_time: null` (no schedule maths without croner and chrono-tz).
//! - **Checked in CI.** `.ci/run` runs clippy (`-D warnings`) on the `forge` library with no
//!   feature, each feature alone, `test-support` alone and all features, so dead code or an
//!   unconditional reach into another subsystem fails the build. With no subsystem at all the
//!   calling machinery is unused by design; that one build allows `dead_code`.

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
pub mod auth;
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
// feature builds alone (`.ci/run` checks each); see the crate docs, "Slim builds".
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
// Leadership and LISTEN hold server sessions; a transaction pooler is refused at start.
#[cfg(any(
    feature = "jobs",
    feature = "realtime",
    feature = "cron",
    feature = "daemons"
))]
mod pooling;
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
#[cfg(feature = "realtime")]
pub use realtime::LiveStats;
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
