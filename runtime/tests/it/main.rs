//! The runtime's integration tests against a real PostgreSQL, one module per subsystem, in
//! one test binary: each binary links the whole runtime, so one binary instead of one per
//! file saves most of their build time (ARCHITECTURE.md, "Test build times"). Run one
//! subsystem's tests with `cargo test -p forge --test it <module>::`, e.g. `jobs::`.

mod common;

mod cache;
mod cron;
mod daemons;
mod jobs;
mod leader;
mod lifecycle;
mod mcp;
mod rpc;
mod webhooks;
mod workflows;
