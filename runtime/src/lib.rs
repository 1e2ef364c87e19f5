//! The forge runtime.
//!
//! So far this crate provides the `#[forge::…]` attributes; the server, jobs, cron and
//! workflows arrive with the runtime issue.

pub use forge_macros::{cron, daemon, job, mcp_tool, model, mutation, query, webhook, workflow};
