//! The forge runtime: what user applications link.
//!
//! An application is `forge::App::from_env()?.register(forge_generated::register).run()`:
//! the generated glue fills a [`Registry`] with every handler, and [`App`] serves them —
//! RPC over HTTP, jobs, cron on the elected leader, daemons — on one PostgreSQL database.
//! `ARCHITECTURE.md` at the repository root has the map.

mod app;
mod auth;
mod call;
mod config;
mod context;
mod cron;
mod daemons;
mod error;
mod gateway;
mod jobs;
mod leader;
mod node;
pub mod registry;
mod replicas;
mod shared;
#[cfg(feature = "test-support")]
pub mod testing;
mod tx;

pub use app::{App, Running};
pub use auth::Auth;
pub use config::Config;
pub use context::{
    CronContext, DaemonContext, JobContext, McpToolContext, MutationContext, QueryContext,
    WebhookContext, WorkflowContext,
};
pub use error::{Error, Result};
pub use forge_macros::{cron, daemon, job, mcp_tool, model, mutation, query, webhook, workflow};
pub use http::HeaderMap;
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
