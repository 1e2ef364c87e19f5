//! `forge migrate` as a subprocess against a real PostgreSQL: a fresh test database passed
//! through DATABASE_URL, so no development cluster is started.

use std::path::Path;
use std::process::{Command, Output};

use forge_db::testing::TestDatabase;
use serde_json::{json, Value};

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("forge.toml"), "[project]\nname = \"x\"\n").expect("write");
    std::fs::create_dir(dir.path().join("migrations")).expect("mkdir");
    write(
        dir.path(),
        "0001_users.sql",
        "CREATE TABLE users (id bigint);\n",
    );
    write(
        dir.path(),
        "0002_posts.sql",
        "CREATE TABLE posts (id bigint);\n",
    );
    dir
}

fn write(project: &Path, name: &str, sql: &str) {
    std::fs::write(project.join("migrations").join(name), sql).expect("write migration");
}

fn migrate(dir: &Path, url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("migrate")
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .output()
        .expect("forge runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The checksum the runner records: SHA-256, lowercase hex (the CLI's sha2 computes it
/// independently of the runner).
fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn up_applies_then_is_a_no_op_and_status_reports_each_file() {
    let db = TestDatabase::new().await;
    let dir = project();
    let root = dir.path();

    let (code, stdout, stderr) = migrate(root, db.url(), &["up", "--dry-run"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("would apply 0001_users"), "{stdout}");

    let (code, stdout, stderr) = migrate(root, db.url(), &["up"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("applied forge system schema v001"),
        "{stdout}"
    );
    assert!(stdout.contains("applied 0001_users"), "{stdout}");
    assert!(stdout.contains("applied 0002_posts"), "{stdout}");
    assert!(stderr.contains("forge migrate: applied "), "{stderr}");

    let (code, stdout, stderr) = migrate(root, db.url(), &["up"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("up to date"), "{stderr}");

    // One applied and edited, one applied and deleted, one new.
    let edited = "CREATE TABLE users (id bigint, name text);\n";
    write(root, "0001_users.sql", edited);
    std::fs::remove_file(root.join("migrations/0002_posts.sql")).expect("rm");
    write(root, "0003_tags.sql", "CREATE TABLE tags (id bigint);\n");
    let (code, stdout, stderr) = migrate(root, db.url(), &["status", "--format", "json"]);
    assert_eq!(
        code,
        Some(1),
        "edited and missing files fail status: {stderr}"
    );
    let status: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        status,
        json!({
            "system_pending": [],
            "migrations": [
                {"version": 1, "name": "users", "file": "0001_users.sql", "state": "edited",
                 "checksum": sha256(edited),
                 "applied_checksum": sha256("CREATE TABLE users (id bigint);\n")},
                {"version": 2, "name": "posts", "file": null, "state": "missing",
                 "checksum": null,
                 "applied_checksum": sha256("CREATE TABLE posts (id bigint);\n")},
                {"version": 3, "name": "tags", "file": "0003_tags.sql", "state": "pending",
                 "checksum": sha256("CREATE TABLE tags (id bigint);\n"),
                 "applied_checksum": null},
            ]
        })
    );

    let (code, _, stderr) = migrate(root, db.url(), &["up"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("0001_users.sql was edited"), "{stderr}");
    assert!(stderr.contains(&sha256(edited)), "{stderr}");
}

#[tokio::test]
async fn a_failing_migration_exits_1_with_its_file_position() {
    let db = TestDatabase::new().await;
    let dir = project();
    write(
        dir.path(),
        "0003_bad.sql",
        "CREATE TABLE ok (id int);\nSELECT * FROM\n  missing_table;\n",
    );
    let (code, stdout, stderr) = migrate(dir.path(), db.url(), &["up"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stdout.contains("applied 0002_posts"),
        "what was applied before the failure is shown: {stdout}"
    );
    assert!(
        stderr.contains("0003_bad.sql: statement 2 at line 3, column 3 failed"),
        "{stderr}"
    );
    assert!(stderr.contains("missing_table"), "{stderr}");
    let (code, stdout, _) = migrate(dir.path(), db.url(), &["status"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("applied  0002_posts.sql"), "{stdout}");
    assert!(stdout.contains("pending  0003_bad.sql"), "{stdout}");
}

#[test]
fn an_unreachable_database_exits_2() {
    let dir = project();
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let (code, _, stderr) = migrate(
        dir.path(),
        "postgres://nobody@127.0.0.1:1/none?connect_timeout=2",
        &["status"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_runner_killed_mid_migration_leaves_a_state_the_next_run_completes() {
    let db = TestDatabase::new().await;
    let dir = project();
    write(
        dir.path(),
        "0003_slow.sql",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(1.5);\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(["migrate", "up"])
        .current_dir(dir.path())
        .env("DATABASE_URL", db.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("forge runs");
    // Kill it once it is inside the slow file's transaction.
    let mut sleeping = false;
    for _ in 0..200 {
        sleeping = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                            WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%')",
        )
        .fetch_one(db.pool())
        .await
        .expect("pg_stat_activity");
        if sleeping {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(sleeping, "the runner never reached the slow file");
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    // The killed session's backend still holds the lock until its sleep ends; the next
    // runner waits for it, then applies the file the killed one rolled back.
    let (code, stdout, stderr) = migrate(dir.path(), db.url(), &["up"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("applied 0003_slow"), "{stdout}");
    let versions: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM forge_migrations WHERE kind = 'user' ORDER BY version",
    )
    .fetch_all(db.pool())
    .await
    .expect("forge_migrations");
    assert_eq!(versions, [1, 2, 3]);
}
