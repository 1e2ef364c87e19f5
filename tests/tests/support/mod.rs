//! Helpers shared by the end-to-end tests.
#![allow(dead_code, unused_imports)] // Each test binary uses its own part of these helpers.

pub mod ir;
pub use forge_tests::typescript;

use std::fs;
use std::path::{Path, PathBuf};

/// An empty directory for one test's files, under Cargo's scratch space for integration
/// tests; left in place afterwards so a failure can be inspected.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("cannot clear {}: {e}", dir.display()));
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The `forge` binary cargo built for this test run (`cargo test --workspace` builds it
/// because the CLI crate has integration tests).
pub fn forge_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let forge = dir.join(format!("forge{}", std::env::consts::EXE_SUFFIX));
    assert!(
        forge.exists(),
        "{} does not exist: run the tests with `cargo test --workspace`, which builds it",
        forge.display()
    );
    forge
}
