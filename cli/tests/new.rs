//! `forge new` as a subprocess: projects that build, check clean and pass their own tests;
//! refusals that leave nothing behind; handler scaffolds; the interactive prompts through a
//! pseudo-terminal.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{forge, stderr};

/// Where the generated projects build: the workspace's own target directory (cargo
/// releases its lock before running tests), shared with `tests/dev.rs`'s app. With one
/// profile for all of them (`forge_tests::nested`) and one mode (a build, never a bare
/// check), the runtime and its dependencies compile once for every generated project.
fn shared_target() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .to_path_buf()
}

fn cargo(dir: &Path, args: &[&str]) -> Output {
    forge_tests::nested::cargo(dir, &shared_target())
        .args(args)
        .output()
        .expect("cargo runs")
}

fn assert_ok(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn new_project(parent: &Path, name: &str, frontend: &str) -> PathBuf {
    let output = forge(parent, &["new", name, "--frontend", frontend, "--yes"]);
    assert_ok("forge new", &output);
    parent.join(name)
}

fn files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = walk(dir)
        .into_iter()
        .filter_map(|p| Some(p.strip_prefix(dir).ok()?.to_string_lossy().into_owned()))
        .filter(|p| !p.starts_with(".git/"))
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_typescript_project_builds_checks_clean_and_passes_its_tests() {
    let parent = tempfile::tempdir().expect("temp dir");
    let app = new_project(parent.path(), "todo-app", "ts");
    assert_eq!(
        files(&app),
        [
            ".gitignore",
            "Cargo.toml",
            "README.md",
            "forge.lock",
            "forge.toml",
            "frontend/package.json",
            "frontend/src/lib/forge/api.ts",
            "frontend/src/lib/forge/client.ts",
            "frontend/src/lib/forge/index.ts",
            "frontend/src/lib/forge/types.ts",
            "frontend/src/main.ts",
            "frontend/tsconfig.json",
            "migrations/0001_init.sql",
            "src/forge_generated.rs",
            "src/functions/mod.rs",
            "src/functions/todos.rs",
            "src/lib.rs",
            "src/main.rs",
            "tests/api.rs",
        ]
    );
    assert!(app.join(".git").is_dir(), "a new repository");
    assert_ok("forge check", &forge(&app, &["check"]));
    assert_ok(
        "forge generate --check",
        &forge(&app, &["generate", "--check"]),
    );
    assert_ok("cargo test", &cargo(&app, &["test", "--quiet"]));

    // The frontend type-checks against the generated client with the pinned compiler.
    let frontend = app.join("frontend");
    let tsc = forge_tests::typescript::ensure_tsc();
    let output = Command::new(tsc)
        .args(["--noEmit", "-p"])
        .arg(&frontend)
        .output()
        .expect("tsc runs");
    assert_ok("tsc -p frontend", &output);
}

#[test]
fn a_backend_only_project_gets_every_handler_scaffold_and_still_checks_clean() {
    let parent = tempfile::tempdir().expect("temp dir");
    let app = new_project(parent.path(), "scaffolds", "none");
    assert!(!app.join("frontend").exists());
    let forge_toml = std::fs::read_to_string(app.join("forge.toml")).expect("forge.toml");
    assert!(forge_toml.contains(r#"targets = ["rust"]"#), "{forge_toml}");

    for (kind, name) in [
        ("query", "list_posts"),
        ("mutation", "create_post"),
        ("job", "send_digest"),
        ("cron", "hourly_report"),
        ("workflow", "onboarding"),
        ("daemon", "indexer"),
        ("webhook", "stripe"),
        ("mcp_tool", "search_posts"),
        ("model", "BlogPost"),
    ] {
        let output = forge(&app, &["new", kind, name]);
        assert_ok(&format!("forge new {kind} {name}"), &output);
    }
    let functions = std::fs::read_to_string(app.join("src/functions/mod.rs")).expect("mod.rs");
    assert_eq!(
        functions,
        "pub mod todos;\npub mod list_posts;\npub mod create_post;\npub mod send_digest;\npub mod hourly_report;\npub mod onboarding;\npub mod indexer;\npub mod stripe;\npub mod search_posts;\n"
    );
    assert!(app.join("src/models/blog_post.rs").is_file());
    let lib = std::fs::read_to_string(app.join("src/lib.rs")).expect("lib.rs");
    assert!(
        lib.contains("pub mod functions;\npub mod models;\n"),
        "{lib}"
    );

    let output = forge(&app, &["check"]);
    assert_ok("forge check after every scaffold", &output);
    assert_ok(
        "forge generate --check",
        &forge(&app, &["generate", "--check"]),
    );
    // Built, not only checked (which also type-checks every target): the dependencies are
    // then the very builds the TypeScript project's `cargo test` uses.
    assert_ok(
        "cargo test --no-run",
        &cargo(&app, &["test", "--quiet", "--no-run"]),
    );

    // Never overwrites, and says why.
    let before = std::fs::read_to_string(app.join("src/functions/list_posts.rs")).expect("file");
    let output = forge(&app, &["new", "query", "list_posts"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(app.join("src/functions/list_posts.rs")).expect("file"),
        before
    );

    let output = forge(&app, &["new", "querry", "x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not a handler kind"),
        "{}",
        stderr(&output)
    );
    let output = forge(&app, &["new", "query", "ListPosts"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("snake_case"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn refused_names_and_directories_leave_nothing_behind() {
    let parent = tempfile::tempdir().expect("temp dir");
    for (name, why) in [
        ("fn", "keyword"),
        ("forge", "depends on"),
        ("9lives", "start with a letter"),
        ("a/b", "contains"),
    ] {
        let output = forge(parent.path(), &["new", name, "--yes"]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        assert!(stderr(&output).contains(why), "{name}: {}", stderr(&output));
    }
    let occupied = parent.path().join("occupied");
    std::fs::create_dir(&occupied).expect("mkdir");
    std::fs::write(occupied.join("notes.txt"), "mine").expect("write");
    let output = forge(parent.path(), &["new", "occupied", "--yes"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not empty"),
        "{}",
        stderr(&output)
    );
    assert_eq!(files(&occupied), ["notes.txt"]);
    let output = forge(
        parent.path(),
        &["new", "app", "--yes", "--forge-path", "/nonexistent"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        files(parent.path()),
        ["occupied/notes.txt"],
        "nothing else was written"
    );

    // Without a terminal forge never waits for an answer.
    let output = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("new")
        .current_dir(parent.path())
        .stdin(Stdio::null())
        .output()
        .expect("forge runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("needs the project's name"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_empty_directory_is_filled_and_output_names_it() {
    let parent = tempfile::tempdir().expect("temp dir");
    let target = parent.path().join("nested/place");
    std::fs::create_dir_all(&target).expect("mkdir");
    let output = forge(
        parent.path(),
        &[
            "new",
            "placed",
            "--frontend",
            "none",
            "--yes",
            "--output",
            "nested/place",
        ],
    );
    assert_ok("forge new --output", &output);
    assert!(target.join("Cargo.toml").is_file());
    let manifest = std::fs::read_to_string(target.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"placed\""), "{manifest}");
    let leftovers: Vec<_> = std::fs::read_dir(parent.path().join("nested"))
        .expect("read")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, ["place"], "no staging directory left");
}

#[test]
fn prompts_ask_for_what_was_not_given() {
    use expectrl::Eof;
    let parent = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_forge"));
    command
        .args(["new", "--output", "asked"])
        .current_dir(parent.path())
        .env("NO_COLOR", "1");
    let mut session = expectrl::Session::spawn(command).expect("spawn forge in a pty");
    session.set_expect_timeout(Some(std::time::Duration::from_secs(20)));
    session.expect("Project name").expect("asks for the name");
    session.send_line("fn").expect("type a keyword");
    session
        .expect("keyword")
        .expect("refuses it and asks again");
    session.send_line("asked_app").expect("type a good name");
    session.expect("Frontend").expect("asks for the frontend");
    // Down twice to "none", then Enter.
    session.send("\x1b[B\x1b[B\r").expect("choose none");
    session
        .expect("Created asked_app")
        .expect("creates the project");
    session.expect(Eof).expect("exits");
    let forge_toml =
        std::fs::read_to_string(parent.path().join("asked/forge.toml")).expect("forge.toml");
    assert!(forge_toml.contains(r#"targets = ["rust"]"#), "{forge_toml}");
}

#[test]
fn a_dioxus_project_checks_clean_and_its_frontend_compiles_against_dioxus() {
    let parent = tempfile::tempdir().expect("temp dir");
    let app = new_project(parent.path(), "dx_app", "dioxus");
    assert!(
        app.join("frontend/src/forge/mod.rs").is_file(),
        "the generated Dioxus client"
    );
    assert!(
        !app.join("frontend/src/lib").exists(),
        "no TypeScript client"
    );
    assert_ok("forge check", &forge(&app, &["check"]));
    assert_ok(
        "forge generate --check",
        &forge(&app, &["generate", "--check"]),
    );
    assert_ok(
        "cargo test --no-run (backend)",
        &cargo(&app, &["test", "--quiet", "--no-run"]),
    );
    // The frontend is a crate of its own. Its dependencies are the test app frontend's
    // (`tests/app/frontend/dioxus`), whose Cargo.lock pins them for the Dioxus client tests;
    // with that lock and the same build (not a check) in the same <target>/dioxus-check, it
    // shares their Dioxus builds and compiles only itself.
    let frontend = app.join("frontend");
    std::fs::copy(
        test_app_frontend().join("Cargo.lock"),
        frontend.join("Cargo.lock"),
    )
    .expect("copy Cargo.lock");
    let output = forge_tests::nested::cargo(&frontend, &shared_target().join("dioxus-check"))
        .args(["build", "--quiet"])
        .output()
        .expect("cargo runs");
    assert_ok("cargo build (frontend)", &output);
}

fn test_app_frontend() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/app/frontend/dioxus")
}
