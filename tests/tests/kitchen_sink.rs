//! The real `forge` binary on fixtures/kitchen_sink, and its TypeScript through real `tsc`
//! with a hand-written file of correct and incorrect wire values.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::typescript::{check, check_with};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    for entry in
        fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

#[test]
fn kitchen_sink_typescript_passes_tsc_strict() {
    let project = support::scratch_dir("kitchen_sink");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kitchen_sink"),
        &project,
    );
    let output = Command::new(support::forge_bin())
        .args(["generate"])
        .current_dir(&project)
        .output()
        .expect("forge runs");
    assert!(
        output.status.success(),
        "forge generate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let client_dir = project.join("frontend/src/lib/forge");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("typescript/kitchen_sink.ts"),
        client_dir.join("kitchen_sink.ts"),
    )
    .expect("copy the type test");
    let files: Vec<PathBuf> = [
        "types.ts",
        "api.ts",
        "client.ts",
        "index.ts",
        "kitchen_sink.ts",
    ]
    .map(PathBuf::from)
    .to_vec();
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    check(&client_dir, &files);
    check_with(&client_dir, &files, &["--exactOptionalPropertyTypes"]);
}
