//! The forge migration runner.
//!
//! Applies forge's own system schema and then the project's forward-only
//! `migrations/NNNN_name.sql` files. It is a crate of its own, beside the runtime rather than
//! inside codegen, because two callers apply migrations: the CLI (`forge migrate`) and the
//! runtime (`App` applies pending migrations when it starts). Both must agree on how a file is
//! split into statements and whether it runs in a transaction.
//!
//! - [`split`]: a migration file → the statements sent one by one.
//! - [`runner`]: [`runner::up`] applies pending migrations under an advisory lock;
//!   [`runner::status`] compares the files with what was applied.
//! - [`schema`]: forge's system schema (`schema/vNNN.sql`, embedded), versioned apart from the
//!   project's files and applied before them. `tests/system_schema.rs` applies it to a real
//!   database and checks its tables, indexes, constraints and triggers.

pub mod runner;
pub mod schema;
pub mod split;
