//! Cargo builds of crates outside the workspace that the tests run: the projects `forge new`
//! writes (`cli/tests/new.rs`), the app `forge dev` builds (`cli/tests/dev.rs`) and the Dioxus
//! frontends (`tests/tests/dioxus.rs`, `cli/tests/new.rs`). They all build with one profile,
//! set here, so that a dependency two of them share with the same features is compiled once
//! for all of them (ARCHITECTURE.md, "Test build times").

use std::path::Path;
use std::process::{Command, Stdio};

/// The profile of every nested build, as environment so that it also reaches the `cargo run`
/// that `forge dev` starts: line tables only (backtraces keep file and line), which costs a
/// fraction of full debug info to compile and link.
const PROFILE: [(&str, &str); 1] = [("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")];

/// Gives `command` (a cargo, or a `forge dev` that runs cargo) the nested builds' profile,
/// without the outer `cargo test`'s compiler flags, which are for the workspace.
pub fn configure(command: &mut Command) -> &mut Command {
    command
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for (name, value) in PROFILE {
        command.env(name, value);
    }
    command
}

/// `cargo` (the one running the tests) in `dir`, building into `target`, stdin closed.
pub fn cargo(dir: &Path, target: &Path) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null());
    configure(&mut command);
    command
}
