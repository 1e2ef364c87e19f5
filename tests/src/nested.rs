//! Cargo builds of crates outside the workspace that the tests run: the projects `forge new`
//! writes (`cli/tests/new.rs`), the app `forge dev` builds (`cli/tests/dev.rs`) and the Dioxus
//! frontends (`tests/tests/dioxus.rs`, `cli/tests/new.rs`). They all build with one profile,
//! `tests/nested-profile.toml`, so that a dependency two of them share with the same
//! features is compiled once for all of them (below).
//!
//! # How the test build is laid out
//!
//! CI (`.ci/run`: fmt, clippy, the slim builds, `cargo test --workspace`) runs cold on 2 cores
//! and must stay well under 30 minutes; most of its time is compiling, so the test setup is
//! laid out to compile each thing once. `.ci/run` prints when each step starts. Figures: bench/README.md.
//! - **Profile** (`Cargo.toml`): in debug builds our crates keep line tables (file and line
//!   in backtraces and panics) and dependencies carry no debug info. Full debug info made
//!   compiling, and above all linking, every test binary several times slower. For a
//!   debugger session, `CARGO_PROFILE_DEV_DEBUG=true` (our crates) is enough in practice.
//! - **One runtime test binary.** Every integration test binary links the whole runtime, so
//!   `runtime/tests/it/main.rs` has a module per subsystem (`cargo test -p forge --test it
//!   jobs::`) instead of a binary each. Other crates' test files link much less and stay
//!   separate.
//! - **The ui tests don't build the runtime.** `forge-macros` is a proc-macro crate, so its
//!   tests and their dev-dependencies are built for the host: with the runtime as a
//!   dev-dependency, `cargo test --workspace` built the runtime and all of its dependencies a
//!   second time, and trybuild a third time in its own target directory. The ui tests need
//!   only the attributes, so they reach them through `runtime/macros/shim` (crate
//!   `forge-macros-shim`, named `forge` there), which re-exports them exactly as the runtime
//!   does; the runtime's own re-export is what every runtime and app test uses.
//! - **Builds outside the workspace** (`tests/src/nested.rs`): the projects of
//!   `cli/tests/new.rs`, the app of `cli/tests/dev.rs` and the Dioxus frontends all build with
//!   one profile, `tests/nested-profile.toml`, given as `cargo --config <file>` (to `forge dev`
//!   as a cargo run argument): line tables only, and unoptimised dependencies where a
//!   generated project asks for `opt-level = 1` (a user's `forge dev` starts faster with it;
//!   the tests build cold once, run for seconds, and pay for optimising sqlparser and
//!   forge-codegen, which the attributes compile in). Each group builds in one target
//!   directory with one feature set and one mode, so its dependencies compile once:
//!   - the generated backends in `<target>`: the TypeScript project's `cargo test`, the
//!     backend-only and Dioxus projects' `cargo test --no-run` (a build, where a bare
//!     `cargo check` would compile every dependency again in check mode), and `forge dev --
//!     --features forge/test-support` (cargo run arguments), which turns on the feature the
//!     projects' tests build the runtime with; without it the app's `cargo run` built the
//!     runtime and its dependencies once more. Its rebuilds after a save compile the app's
//!     crate alone.
//!   - the Dioxus frontends in `<target>/dioxus-check`: `tests/tests/dioxus.rs` builds the
//!     test app's frontend and runs the wire tests; `cli/tests/new.rs` builds a generated
//!     frontend with the test app frontend's Cargo.lock (the template's dependencies are the
//!     same), all as builds.
//! - **Feature unification on the host.** A proc-macro's dependencies are built for the
//!   host with the features the host side of the build asks for. `forge-macros` asks for a
//!   few it does not use (see its Cargo.toml): libc's `extra_traits`, which nix asks for on
//!   the target, makes sqlparser, forge-codegen and what lies between them one build for host
//!   and target in `cargo test`; the rest are what the workspace's other host dependencies
//!   ask for, so that `cargo clippy -p forge` (below) gets the same proc-macro chain as the
//!   workspace's clippy and reuses it. If a dependency update breaks the match, nothing
//!   fails: a build is merely compiled twice (`cargo … --unit-graph -Z unstable-options`
//!   with `RUSTC_BOOTSTRAP=1` shows the units).
//! - **Slim builds.** Each `cargo clippy -p forge` checks the runtime alone, so its target
//!   features are unified over the runtime's graph, not the workspace's: the first one
//!   re-checks sqlx, tokio and the others whose features differ; the other feature sets cost
//!   seconds each (`gateway` and `test-support` re-check the few crates whose features they
//!   change). Every feature set is still checked:
//!   none is covered by another, because checking a set with more features can hide both a
//!   compile error (code of one subsystem reaching into another's `cfg`-gated module) and a
//!   dead-code warning of the smaller set. Checking them with the workspace's unification
//!   (one `cargo clippy` over several packages) would be cheaper but could hide a dependency
//!   feature the runtime uses without declaring it, which is what a user's build would hit.

use std::path::Path;
use std::process::{Command, Stdio};

/// cargo's arguments for the nested builds' profile: `--config <file>`. Also for `forge dev
/// -- <cargo run arguments>`.
pub fn profile_args() -> [&'static str; 2] {
    [
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/nested-profile.toml"),
    ]
}

/// Takes the outer `cargo test`'s compiler flags, which are for the workspace, off `command`
/// (a cargo, or a `forge dev` that runs cargo).
pub fn clean_env(command: &mut Command) -> &mut Command {
    command
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
}

/// `cargo` (the one running the tests) in `dir` with the nested builds' profile, building
/// into `target`, stdin closed; the subcommand and its arguments follow.
pub fn cargo(dir: &Path, target: &Path) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(profile_args())
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null());
    clean_env(&mut command);
    command
}
