//! Every `fixtures/check_*_pass` crate builds against the runtime: a fixture that passes
//! `forge check` must also be code that compiles, or the rule it shows accepts code no user
//! could write. The fixtures build together, as the members of one scratch workspace, in
//! one nested cargo invocation sharing `tests/new.rs`'s target directory and profile
//! (`forge_tests::nested`), so the runtime compiles once for all of them.
//!
//! The sqlx query macros (`query_as!`) check their SQL against a database at compile time:
//! the build gets a fresh test database holding the tables the fixtures' queries read.

mod support;

use std::path::{Path, PathBuf};

use support::{copy_dir, fixture, forge, stderr, stdout};

/// The tables `check_scope_pass`'s `query_as!` calls read, shaped as its models are.
const SCHEMA: &str = "
CREATE TABLE projects (id uuid PRIMARY KEY, owner_id uuid NOT NULL, tenant_id uuid NOT NULL,
                       name text NOT NULL, showcase boolean NOT NULL DEFAULT false);
CREATE TABLE items (id uuid PRIMARY KEY, user_id uuid NOT NULL, project_id uuid REFERENCES projects,
                    title text NOT NULL, archived boolean NOT NULL DEFAULT false,
                    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE tasks (id uuid PRIMARY KEY, project_id uuid NOT NULL, title text NOT NULL,
                    done boolean NOT NULL);
CREATE TABLE members (project_id uuid NOT NULL, user_id uuid NOT NULL);
CREATE TABLE shares (item_id uuid NOT NULL, user_id uuid NOT NULL);
CREATE TABLE comments (item_id uuid NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE likes (item_id uuid NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE folders (id uuid PRIMARY KEY, parent_id uuid, owner_id uuid NOT NULL, name text NOT NULL);
";

/// The pass fixtures: every `fixtures/check_*_pass` directory.
fn pass_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("read fixtures")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("check_") && name.ends_with("_pass"))
        .collect();
    names.sort();
    names
}

/// `tests/new.rs`'s target directory: the workspace's own.
fn shared_target() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .to_path_buf()
}

#[test]
fn every_pass_fixture_builds_against_the_runtime() {
    let names = pass_fixtures();
    assert!(names.len() >= 6, "{names:?}");
    let scratch = tempfile::tempdir().expect("temp dir");
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
    let runtime = runtime.canonicalize().expect("the runtime crate");
    for name in &names {
        let dir = scratch.path().join(name);
        copy_dir(&fixture(name), &dir);
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("read Cargo.toml");
        let text = text.replace(
            "path = \"../../runtime\"",
            &format!("path = {:?}", runtime.display().to_string()),
        );
        std::fs::write(&manifest, text).expect("write Cargo.toml");
        let generated = forge(&dir, &["generate"]);
        assert!(
            generated.status.success(),
            "forge generate in {name}:\n{}{}",
            stdout(&generated),
            stderr(&generated)
        );
    }
    let members: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    std::fs::write(
        scratch.path().join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )
    .expect("write the workspace");
    // The workspace's lock: the fixtures build with the versions the runtime is tested with.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        scratch.path().join("Cargo.lock"),
    )
    .expect("copy Cargo.lock");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let database = runtime.block_on(async {
        let database = forge_db::testing::TestDatabase::new().await;
        sqlx::raw_sql(SCHEMA)
            .execute(database.pool())
            .await
            .expect("the fixtures' schema");
        database
    });
    let output = forge_tests::nested::cargo(scratch.path(), &shared_target())
        .args(["build", "--workspace", "--quiet"])
        .env("DATABASE_URL", database.url())
        .env("SQLX_OFFLINE", "false")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the pass fixtures do not build:\n{}",
        stderr(&output)
    );
}
