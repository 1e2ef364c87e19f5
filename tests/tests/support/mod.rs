//! Helpers shared by the end-to-end tests.

pub mod ir;
pub mod typescript;

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
