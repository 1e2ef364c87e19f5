//! The `#[forge::…]` attributes under the runtime's crate name (forge-macros' ui tests
//! depend on this as `forge`), re-exported exactly as the runtime re-exports them.
//!
//! The ui tests need nothing else from the runtime, and the runtime as a dev-dependency of a
//! proc-macro crate is compiled for the host: a second build of the runtime and all its
//! dependencies in every `cargo test --workspace`, plus a third inside trybuild's own
//! target directory (tests/src/nested.rs, "How the test build is laid out").

pub use forge_macros::{cron, daemon, job, mcp_tool, model, mutation, query, webhook, workflow};
