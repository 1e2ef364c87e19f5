//! The runtime's integration tests against a real PostgreSQL, one module per subsystem, in
//! one test binary: each binary links the whole runtime, so one binary instead of one per
//! file saves most of their build time (tests/src/nested.rs, "How the test build is laid out"). Run one
//! subsystem's tests with `cargo test -p forge --test it <module>::`, e.g. `jobs::`.

mod common;

mod browser;
mod cache;
mod cron;
mod daemons;
mod hardening;
mod http;
mod jobs;
mod jwks;
mod leader;
mod lifecycle;
mod live_binding;
mod mcp;
mod rate_limits;
mod rpc;
mod sessions;
mod webhook_providers;
mod webhooks;
mod workflows;
