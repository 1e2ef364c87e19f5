//! forge's pure core: parse a user crate's source, build the IR, check it, emit code.
//!
//! Everything here is a function over source text: no network, no database, no clock.
//! Data flows one way: [`parse`] (one file at a time, cacheable) → [`resolve`] (the whole
//! crate, into the [`ir::Ir`]) → [`emit`].
//!
//! # Decisions DESIGN.md left open
//!
//! - **Diagnostic codes.** FG002 (not in DESIGN's table) is "a `#[forge::…]` attribute is
//!   invalid or misplaced" (unknown option, wrong value, on the wrong item). FG503 is used for
//!   every type that cannot be described, including `#[serde(with/from/into)]`, which are
//!   warnings because the code is valid but the wire shape is unknowable from source.
//! - **What is a handler argument.** The first parameter is the context when its type is a
//!   reference to a type named `…Context`; every other parameter is an argument, keyed on the
//!   wire by its name without `r#`. Destructuring patterns are refused (clients send arguments
//!   by name).
//! - **Name resolution.** Types are found by path through the crate's own modules; external
//!   types are recognised by crate and name (`known.rs`: std, chrono, time, uuid, serde_json,
//!   rust_decimal, bigdecimal, sqlx, url, indexmap, forge). Bare names from a glob import of
//!   another crate (`use forge::prelude::*`) resolve only when they are in that table.
//!   `u64`, `u128`, `i128`, `usize`, `isize` are refused (FG503): JavaScript cannot read them
//!   exactly. `i64` is allowed, as DESIGN says.
//! - **Bind origins.** Each SQL bind records where its value comes from: the auth context
//!   (`ctx.user_id()`, `ctx.tenant_id()`, `ctx.auth()`, through `?`, `.clone()`, field access,
//!   casts, references and `let`), a handler argument, or something else. FG101/FG102 read this.
//! - **Usage direction.** Each type records whether clients send it (reachable from an argument
//!   or awaited event) and whether the server sends it (reachable from a result, or a model).
//!   TypeScript optionality follows serde per direction: output types mark fields the server
//!   may omit (`skip_serializing_if`) as optional; input-only types use deserialize names and
//!   mark `default` and `Option` fields optional.
//! - **Workflow signatures** hash the contract (timeout, input, output, step keys, event keys
//!   and types, and the full wire shape of every type reachable from them), not the name or
//!   version, which are the key it is stored under. The encoding is documented in
//!   `codegen/src/signature.rs`. Docs and spans are excluded: editing a comment never needs a
//!   version bump.
//! - **forge.lock** is TOML: `version = 1`, one `[[workflow]]` per shipped version (name,
//!   version, signature, and the parts FG401 compares to say what changed: steps, waits,
//!   timeout, a digest of the types) and one `[[migration]]` per file in `migrations/` (file,
//!   SHA-256 when generate first saw it, for FG602 offline). Sorted. Generate only adds
//!   entries; it never rewrites one.
//! - **`forge check` output**: `--format json` is JSON lines (one object per diagnostic:
//!   code, severity, message, file, line, column, end_line, end_column, help); FG701 carries
//!   the unified diff of each out-of-date file in the human format (not for missing files,
//!   whose message says so).
//! - **forge.toml**: `[project] name`; `[generate] targets = ["rust", "typescript"]` (add
//!   `"dioxus"` for the Dioxus client, `"jsonschema"` for the JSON Schema), `rust_out`,
//!   `typescript_out` (default `frontend/src/lib/forge`), `dioxus_out` (default
//!   `frontend/src/forge`, DESIGN's folder: it holds `mod.rs`, so the frontend crate declares
//!   `mod forge;`), `jsonschema_out` (default `schema/forge.schema.json`); `[check]
//!   owner_columns`. `forge generate --target T` (repeatable) generates only those targets
//!   (forge.lock included) and neither reads nor writes the no-change stamp.
//!   Unknown keys are errors with line and column.
//! - **Caches** live in `<project>/target/forge/`: `parse-cache.json` (per-file `ParsedFile` by
//!   blake3 of the content, invalidated when the forge binary changes) and
//!   `generate-stamp.json` (hash of all inputs and of the outputs last written: a no-change run
//!   reads and hashes the sources and stops). A run with diagnostics writes no stamp, so the
//!   next run shows them again.

pub mod check;
pub mod config;
pub mod emit;
pub mod ir;
pub mod lock;
pub mod migrations;
pub mod parse;
pub mod reactivity;
pub mod resolve;
pub mod serde_case;
pub mod signature;
pub mod sql;
