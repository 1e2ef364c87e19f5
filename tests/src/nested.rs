//! Cargo builds of crates outside the workspace that the tests run: the projects `forge new`
//! writes (`cli/tests/new.rs`), the app `forge dev` builds (`cli/tests/dev.rs`) and the Dioxus
//! frontends (`tests/tests/dioxus.rs`, `cli/tests/new.rs`). They all build with one profile,
//! `tests/nested-profile.toml`, so that a dependency two of them share with the same
//! features is compiled once for all of them (ARCHITECTURE.md, "Test build times").

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
