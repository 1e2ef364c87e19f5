//! The forge attribute grammar.
//!
//! One parser for `#[forge::query(...)]`, `#[forge::job(...)]`, … shared by the
//! `forge-macros` proc-macros (which validate at compile time) and the forge CLI (which
//! reads the user's crate as source). Both therefore accept and reject exactly the same
//! attributes, with the same messages.

pub mod cron;
mod duration;
mod grammar;
mod kind;
mod options;

pub use duration::parse_duration_ms;
pub use grammar::parse_options;
pub use kind::Kind;
pub use options::{
    Backoff, CronOptions, DaemonMode, DaemonOptions, Idempotency, JobOptions, McpToolOptions,
    ModelOptions, MutationOptions, Options, QueryOptions, RateLimit, RetryOptions, Schedule,
    WebhookOptions, WebhookSignature, WorkflowOptions, DEFAULT_WEBHOOK_TOLERANCE_MS,
    DEFAULT_WORKFLOW_VERSION,
};
