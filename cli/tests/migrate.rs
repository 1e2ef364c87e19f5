//! `forge migrate` as a subprocess against a real PostgreSQL: a fresh test database passed
//! through DATABASE_URL, so no development cluster is started.

mod support;

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
                            WHERE datname = current_database() AND pid <> pg_backend_pid()
                              AND state = 'active' AND query LIKE '%SELECT pg_sleep(1.5)%')",
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

/// `forge migrate` with no database at all: `new` and `verify` must not need one, so any
/// attempt to connect would fail loudly.
fn offline(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    migrate(
        dir,
        "postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
        args,
    )
}

#[test]
fn new_numbers_files_at_the_existing_width_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::write(root.join("forge.toml"), "[project]\nname = \"x\"\n").expect("write");

    let (code, stdout, stderr) = offline(root, &["new", "create_users"]);
    assert_eq!(code, Some(0), "{stderr}");
    let created = Path::new(stdout.trim());
    assert_eq!(created, root.join("migrations/0001_create_users.sql"));
    let template = std::fs::read_to_string(created).expect("created");
    assert!(
        template.starts_with("-- 0001_create_users.sql\n"),
        "{template}"
    );
    assert!(
        !forge_migrate::split::no_transaction(&template),
        "the template mentions the directive without enabling it"
    );

    let (code, stdout, _) = offline(root, &["new", "add_posts"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.trim().ends_with("migrations/0002_add_posts.sql"),
        "{stdout}"
    );

    // A project numbering with five digits keeps five.
    let wide = tempfile::tempdir().expect("temp dir");
    std::fs::write(wide.path().join("forge.toml"), "[project]\nname = \"x\"\n").expect("write");
    std::fs::create_dir(wide.path().join("migrations")).expect("mkdir");
    write(wide.path(), "00001_a.sql", "SELECT 1;\n");
    write(wide.path(), "00041_b.sql", "SELECT 1;\n");
    write(wide.path(), "README.md", "notes\n");
    let (code, stdout, _) = offline(wide.path(), &["new", "c"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.trim().ends_with("migrations/00042_c.sql"),
        "{stdout}"
    );

    // Something already at the next name (here a dangling symlink, which is not a
    // migration file to count) is never written through or replaced.
    let next = root.join("migrations/0003_tags.sql");
    std::os::unix::fs::symlink(root.join("elsewhere.sql"), &next).expect("symlink");
    let (code, stdout, stderr) = offline(root, &["new", "tags"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("0003_tags.sql already exists"), "{stderr}");
    assert!(!root.join("elsewhere.sql").exists());
}

#[test]
fn new_refuses_a_bad_name_and_names_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("forge.toml"), "[project]\nname = \"x\"\n").expect("write");
    for (name, fix) in [
        ("AddUsers", "such as `add_users`"),
        ("add-users", "such as `add_users`"),
    ] {
        let (code, stdout, stderr) = offline(dir.path(), &["new", name]);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(stdout, "");
        assert!(
            stderr.contains(&format!(
                "`{name}` is not a migration name: use lower-case words"
            )),
            "{stderr}"
        );
        assert!(stderr.contains(fix), "{stderr}");
    }
    assert!(!dir.path().join("migrations").exists());
}

fn lock_recording(files: &[(&str, &str)]) -> String {
    let mut lock = "version = 1\n".to_owned();
    for (file, sql) in files {
        lock += &format!(
            "\n[[migration]]\nfile = \"{file}\"\nsha256 = \"{}\"\n",
            sha256(sql)
        );
    }
    lock
}

#[test]
fn verify_passes_a_clean_directory_offline() {
    let dir = project();
    let root = dir.path();
    // Recorded, unrecorded (new), a note, and a gap in the numbers: all fine.
    let lock = lock_recording(&[
        ("0001_users.sql", "CREATE TABLE users (id bigint);\n"),
        ("0002_posts.sql", "CREATE TABLE posts (id bigint);\n"),
    ]);
    std::fs::write(root.join("forge.lock"), lock).expect("write lock");
    write(root, "0007_tags.sql", "CREATE TABLE tags (id bigint);\n");
    write(root, "README.md", "why 3 to 6 are missing\n");
    let (code, stdout, stderr) = offline(root, &["verify"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("no problems"), "{stderr}");
}

#[test]
fn verify_reports_edited_deleted_and_misnamed_files() {
    let dir = project();
    let root = dir.path();
    let original = "CREATE TABLE users (id bigint);\n";
    let lock = lock_recording(&[
        ("0001_users.sql", original),
        ("0002_posts.sql", "CREATE TABLE posts (id bigint);\n"),
    ]);
    std::fs::write(root.join("forge.lock"), lock).expect("write lock");
    let edited = "CREATE TABLE users (id bigint, name text);\n";
    write(root, "0001_users.sql", edited);
    std::fs::remove_file(root.join("migrations/0002_posts.sql")).expect("rm");
    write(root, "0003_AddTags.sql", "SELECT 1;\n");
    write(root, "0004_a.sql", "SELECT 1;\n");
    write(root, "0004_b.sql", "SELECT 1;\n");

    let (code, stdout, stderr) = offline(root, &["verify"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    // Rendered as `forge check` renders: code, file and line, help.
    assert!(
        stdout.contains(&format!(
            "error[FG602]: migration `0001_users.sql` was edited after forge.lock recorded it: \
             sha256 was {}, is now {}",
            sha256(original),
            sha256(edited)
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("--> migrations/0001_users.sql:1:1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("= help: migrations are forward-only"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error[FG602]: migration `0002_posts.sql` was deleted"),
        "{stdout}"
    );
    assert!(stdout.contains("--> forge.lock:1:1"), "{stdout}");
    assert!(
        stdout.contains("its name `AddTags` is not lower-case words"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "`0004_b.sql` is not `NNNN_name.sql`: its number is also used by `0004_a.sql`"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("4 error(s)"), "{stderr}");

    let (code, stdout, _) = offline(root, &["verify", "--format", "json"]);
    assert_eq!(code, Some(1));
    let codes: Vec<String> = stdout
        .lines()
        .map(|line| {
            let d: Value = serde_json::from_str(line).expect("JSON line");
            d["code"].as_str().expect("code").to_owned()
        })
        .collect();
    // By file: forge.lock (the deleted one), then migrations/.
    assert_eq!(codes, ["FG602", "FG602", "FG601", "FG601"]);
}

#[test]
fn verify_cannot_run_on_a_broken_lock() {
    let dir = project();
    std::fs::write(dir.path().join("forge.lock"), "version = [").expect("write lock");
    let (code, _, stderr) = offline(dir.path(), &["verify"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("error: forge.lock"), "{stderr}");
}

#[tokio::test]
async fn output_off_a_terminal_is_plain_lines() {
    let db = TestDatabase::new().await;
    let dir = project();
    // Past the number at which a terminal would get a progress bar.
    for n in 3..=30 {
        write(
            dir.path(),
            &format!("{n:04}_t{n}.sql"),
            &format!("CREATE TABLE t{n} (id int);\n"),
        );
    }
    let (code, stdout, stderr) = migrate(dir.path(), db.url(), &["up"]);
    assert_eq!(code, Some(0), "{stderr}");
    let applied: Vec<&str> = stdout.lines().collect();
    let files = applied
        .iter()
        .filter(|line| !line.starts_with("applied forge system schema"))
        .count();
    assert_eq!(files, 30, "the system schema and 30 files: {stdout}");
    assert!(
        applied.iter().all(|line| line.starts_with("applied ")),
        "{stdout}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    }
}

/// `forge` in `dir` on the development cluster (no DATABASE_URL).
fn forge_dev(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("FORGE_PG_BIN_DIRS")
        .output()
        .expect("forge runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Stops the project's development server however the test ends.
struct StopOnDrop<'a>(&'a Path);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = forge_dev(self.0, &["db", "stop"]);
    }
}

fn server_state(dir: &Path) -> String {
    let (code, stdout, stderr) = forge_dev(dir, &["db", "status"]);
    assert_eq!(code, Some(0), "{stderr}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("status:"))
        .map(|state| state.trim().to_owned())
        .unwrap_or_else(|| panic!("no status in {stdout}"))
}

#[test]
fn one_off_commands_stop_the_development_server_only_if_they_started_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project();
    let root = dir.path();
    // Searchable by the postgres user, so that as root the cluster lives in the project.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _stop = StopOnDrop(root);

    let (code, stdout, stderr) = forge_dev(root, &["migrate", "up"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("applied 0002_posts"), "{stdout}");
    assert!(
        stderr.contains("stopped the development server it started"),
        "{stderr}"
    );
    assert_eq!(server_state(root), "stopped");

    // A failing run stops it too.
    write(root, "0003_bad.sql", "SELECT * FROM nowhere;\n");
    let (code, _, stderr) = forge_dev(root, &["migrate", "up"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(server_state(root), "stopped");

    // A server the developer started stays up.
    let (code, _, stderr) = forge_dev(root, &["db", "start"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = forge_dev(root, &["migrate", "status"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("applied  0002_posts.sql"), "{stdout}");
    assert!(!stderr.contains("stopped"), "{stderr}");
    assert!(server_state(root).starts_with("running"));
}

/// The tables with forge's change triggers, as `regclass` prints them.
async fn reactive_tables(db: &TestDatabase) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT tgrelid::regclass::text FROM pg_trigger
         WHERE tgname = 'forge_reactivity' ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .expect("pg_trigger")
}

#[tokio::test]
async fn generated_reactivity_migrations_apply() {
    let db = TestDatabase::new().await;
    let project = support::copy_fixture("reactivity");
    let root = project.path();
    let generate = support::forge(root, &["generate"]);
    assert!(generate.status.success(), "{}", support::stderr(&generate));
    let (code, stdout, stderr) = migrate(root, db.url(), &["up"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("applied 0002_forge_reactivity"), "{stdout}");
    assert_eq!(
        reactive_tables(&db).await,
        ["\"Events\"", "audit.entries", "items", "tags"]
    );
    // The triggers report writes: a row in the change log per insert.
    sqlx::query("INSERT INTO items (id, name) VALUES (1, 'a')")
        .execute(db.pool())
        .await
        .expect("insert");
    let logged: Vec<String> = sqlx::query_scalar("SELECT table_name FROM forge_change_log")
        .fetch_all(db.pool())
        .await
        .expect("forge_change_log");
    assert_eq!(logged, ["items"]);

    // No query reads `"Events"` or `audit.entries` any more: the next migration disables
    // them.
    let lib = root.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace(
            "SELECT count(*) FROM \\\"Events\\\" WHERE id IN (SELECT id FROM audit.entries)",
            "SELECT count(*) FROM items",
        ),
    )
    .unwrap();
    let generate = support::forge(root, &["generate"]);
    assert!(generate.status.success(), "{}", support::stderr(&generate));
    let (code, stdout, stderr) = migrate(root, db.url(), &["up"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("applied 0003_forge_reactivity"), "{stdout}");
    assert_eq!(reactive_tables(&db).await, ["items", "tags"]);
}
