//! The TypeScript client through the real compiler and the real runtime: `wire.ts` asserts,
//! at the type level, that every generated type admits exactly its serde wire values, and
//! `client.test.mjs` drives the compiled client against an HTTP server in Node.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_codegen::emit::typescript;
use forge_codegen::ir::Ir;
use support::ir::*;
use support::typescript::{check, check_with, compile};

/// Hand-written TypeScript that runs against the generated files.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("typescript")
        .join(name)
}

/// Writes the client generated from `ir` into `dir`, with the fixtures named, and returns
/// the paths tsc should be given.
fn generate(dir: &Path, ir: &Ir, fixtures: &[&str]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for file in typescript::emit(ir) {
        fs::write(dir.join(&file.path), &file.contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.path));
        paths.push(PathBuf::from(file.path));
    }
    for name in fixtures {
        fs::copy(fixture(name), dir.join(name))
            .unwrap_or_else(|e| panic!("cannot copy {name}: {e}"));
        paths.push(PathBuf::from(name));
    }
    paths
}

#[test]
fn generated_types_admit_exactly_the_wire_values() {
    let dir = support::scratch_dir("typescript_wire");
    let paths = generate(&dir, &all_shapes(), &["wire.ts"]);
    let files: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    check(&dir, &files);
    check_with(&dir, &files, &["--exactOptionalPropertyTypes"]);
}

#[test]
fn client_speaks_the_rpc_protocol() {
    let dir = support::scratch_dir("typescript_client");
    let paths = generate(&dir, &all_shapes(), &[]);
    let files: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let out = dir.join("out");
    compile(&dir, &files, &out);
    // The compiled files are ES modules; Node needs to be told.
    fs::write(out.join("package.json"), r#"{ "type": "module" }"#)
        .unwrap_or_else(|e| panic!("cannot write package.json: {e}"));
    fs::copy(fixture("client.test.mjs"), out.join("client.test.mjs"))
        .unwrap_or_else(|e| panic!("cannot copy client.test.mjs: {e}"));
    let output = Command::new("node")
        .arg("client.test.mjs")
        .current_dir(&out)
        .output()
        .unwrap_or_else(|e| panic!("could not run `node client.test.mjs`: {e}"));
    assert!(
        output.status.success(),
        "node client.test.mjs failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---- the real `forge` binary on fixtures/kitchen_sink, with a hand-written file of correct
// and incorrect wire values for its types ----

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
