//! The Dioxus client through the real compiler and the real `dioxus` crate: the test app's
//! frontend crate (`tests/app/frontend/dioxus`, whose `src/forge/` `forge generate` keeps
//! current) type-checks, and the clients of `fixtures/kitchen_sink` and of an IR with every
//! serde shape compile in a copy of it, where `dioxus/wire.rs` checks each type's wire form.
//!
//! Both build in `<target>/dioxus-check`, outside the workspace's own builds, as builds (the
//! wire tests must run, so a bare check would compile every dependency a second time) with
//! the nested builds' profile (`forge_tests::nested`); `cli/tests/new.rs` builds a generated
//! frontend there the same way. So the Dioxus dependencies compile once and each further
//! build compiles only its small crate. `--locked`: the frontend's Cargo.lock pins dioxus
//! and its dependencies.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use forge_codegen::emit::dioxus;
use support::ir::all_shapes;

fn tests_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn frontend_dir() -> PathBuf {
    tests_dir().join("app/frontend/dioxus")
}

/// `cargo <args>` in `dir`, with the shared target directory; fails with cargo's output.
fn cargo(dir: &Path, args: &[&str]) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .join("dioxus-check");
    let started = Instant::now();
    let output = forge_tests::nested::cargo(dir, &target)
        .args(args)
        .arg("--locked")
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo in {}: {e}", dir.display()));
    // The figure the test suite's budget depends on; `--nocapture` shows it.
    eprintln!(
        "cargo {} in {}: {:.1} s",
        args.join(" "),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "cargo {} failed in {}:\n{}{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("warning"),
        "the generated client must compile without warnings:\n{stderr}"
    );
}

#[test]
fn the_app_frontend_type_checks_against_dioxus() {
    // Built, which type-checks it and shares the dependencies' builds with the test below.
    cargo(&frontend_dir(), &["build", "--quiet"]);
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}

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
            copy(&entry.path(), &target);
        }
    }
}

/// The kitchen sink's Dioxus client, written by the real `forge generate`.
fn kitchen_sink_client() -> String {
    let project = support::scratch_dir("dioxus_kitchen_sink");
    copy_dir(&tests_dir().join("../fixtures/kitchen_sink"), &project);
    fs::write(
        project.join("forge.toml"),
        "[project]\nname = \"kitchen_sink\"\n\n[generate]\ntargets = [\"dioxus\"]\n",
    )
    .expect("write forge.toml");
    let output = Command::new(support::forge_bin())
        .arg("generate")
        .current_dir(&project)
        .output()
        .expect("forge runs");
    assert!(
        output.status.success(),
        "forge generate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let module = project.join("frontend/src/forge").join(dioxus::MODULE_FILE);
    fs::read_to_string(&module).unwrap_or_else(|e| panic!("cannot read {}: {e}", module.display()))
}

#[test]
fn every_serde_shape_compiles_and_keeps_its_wire_form() {
    let dir = support::scratch_dir("dioxus_shapes");
    // The same package as the app's frontend, so its Cargo.lock holds unchanged.
    copy(&frontend_dir().join("Cargo.toml"), &dir.join("Cargo.toml"));
    copy(&frontend_dir().join("Cargo.lock"), &dir.join("Cargo.lock"));
    let src = dir.join("src");
    fs::create_dir_all(&src).expect("create src");
    let shapes = dioxus::emit(&all_shapes());
    fs::write(src.join("shapes.rs"), &shapes[0].contents).expect("write shapes.rs");
    fs::write(src.join("kitchen_sink.rs"), kitchen_sink_client()).expect("write kitchen_sink.rs");
    copy(&tests_dir().join("dioxus/wire.rs"), &src.join("wire.rs"));
    fs::write(
        src.join("main.rs"),
        "mod kitchen_sink;\nmod shapes;\n#[cfg(test)]\nmod wire;\n\nfn main() {}\n",
    )
    .expect("write main.rs");
    cargo(&dir, &["test", "--quiet"]);
}
