//! The runner against a real PostgreSQL: idempotence, refusals, failures that leave the
//! database as it was, no-transaction files and concurrent runners.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forge_db::testing::TestDatabase;
use forge_migrate::runner::{self, Kind, MigrateError, State, UpOptions, LOCK_KEY};
use forge_migrate::schema::SYSTEM_MIGRATIONS;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::write(dir.join(name), sql).expect("write migration");
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "0001_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    write(
        dir.path(),
        "0002_posts.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\n\
         INSERT INTO users VALUES (1);\n",
    );
    dir
}

async fn up(pool: &PgPool, dir: &Path) -> Result<runner::Applied, MigrateError> {
    runner::up(pool, dir, &UpOptions::default()).await
}

async fn recorded(pool: &PgPool) -> Vec<(String, i64, String)> {
    sqlx::query_as("SELECT kind, version, name FROM forge_migrations ORDER BY kind, version")
        .fetch_all(pool)
        .await
        .expect("read forge_migrations")
}

async fn table_exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("to_regclass")
}

#[tokio::test]
async fn applies_system_then_user_files_and_rerunning_is_a_no_op() {
    let db = TestDatabase::new().await;
    let dir = project();
    let applied = up(db.pool(), dir.path()).await.expect("first run");
    let order: Vec<(Kind, i64)> = applied
        .migrations
        .iter()
        .map(|m| (m.kind, m.version))
        .collect();
    let mut expected: Vec<(Kind, i64)> = SYSTEM_MIGRATIONS
        .iter()
        .map(|m| (Kind::System, i64::from(m.version)))
        .collect();
    expected.extend([(Kind::User, 1), (Kind::User, 2)]);
    assert_eq!(order, expected);

    let rows = recorded(db.pool()).await;
    assert!(
        rows.contains(&("user".into(), 1, "users".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("user".into(), 2, "posts".into())),
        "{rows:?}"
    );
    let checksum: String = sqlx::query_scalar(
        "SELECT checksum FROM forge_migrations WHERE kind = 'user' AND version = 1",
    )
    .fetch_one(db.pool())
    .await
    .expect("checksum");
    assert_eq!(
        checksum,
        runner::sha256_hex(b"CREATE TABLE users (id bigint PRIMARY KEY);\n")
    );

    let again = up(db.pool(), dir.path()).await.expect("second run");
    assert!(again.migrations.is_empty(), "{again:?}");
    assert_eq!(recorded(db.pool()).await, rows);

    let status = runner::status(db.pool(), dir.path()).await.expect("status");
    assert!(status.system_pending.is_empty());
    assert!(status.files.iter().all(|f| f.state == State::Applied));
}

#[tokio::test]
async fn progress_is_reported_per_migration() {
    let db = TestDatabase::new().await;
    let dir = project();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = UpOptions {
        on_applied: Some(Arc::new(move |m, done, total| {
            sink.lock().unwrap().push((m.version, m.kind, done, total))
        })),
        ..UpOptions::default()
    };
    runner::up(db.pool(), dir.path(), &options)
        .await
        .expect("applies");
    let total = SYSTEM_MIGRATIONS.len() + 2;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.len(), total);
    assert_eq!(seen[total - 1], (2, Kind::User, total, total));
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let db = TestDatabase::new().await;
    let dir = project();
    let options = UpOptions {
        dry_run: true,
        ..UpOptions::default()
    };
    let planned = runner::up(db.pool(), dir.path(), &options)
        .await
        .expect("dry run");
    assert_eq!(planned.migrations.len(), SYSTEM_MIGRATIONS.len() + 2);
    assert!(!table_exists(db.pool(), "forge_migrations").await);
}

#[tokio::test]
async fn an_edited_file_is_refused_with_both_checksums() {
    let db = TestDatabase::new().await;
    let dir = project();
    up(db.pool(), dir.path()).await.expect("first run");
    let before = runner::sha256_hex(&std::fs::read(dir.path().join("0001_users.sql")).unwrap());
    let edited = "CREATE TABLE users (id bigint PRIMARY KEY, name text);\n";
    write(dir.path(), "0001_users.sql", edited);
    write(dir.path(), "0003_more.sql", "CREATE TABLE more (id int);\n");
    let error = up(db.pool(), dir.path()).await.expect_err("refused");
    let message = error.to_string();
    assert!(matches!(error, MigrateError::Edited { .. }), "{message}");
    assert!(message.contains("0001_users.sql"), "{message}");
    assert!(message.contains(&before), "{message}");
    assert!(
        message.contains(&runner::sha256_hex(edited.as_bytes())),
        "{message}"
    );
    assert!(
        !table_exists(db.pool(), "more").await,
        "nothing runs after a refusal"
    );

    let status = runner::status(db.pool(), dir.path()).await.expect("status");
    let states: Vec<&State> = status.files.iter().map(|f| &f.state).collect();
    assert_eq!(
        states,
        [
            &State::Edited { recorded: before },
            &State::Applied,
            &State::Pending
        ]
    );
}

#[tokio::test]
async fn a_deleted_file_is_refused() {
    let db = TestDatabase::new().await;
    let dir = project();
    up(db.pool(), dir.path()).await.expect("first run");
    std::fs::remove_file(dir.path().join("0002_posts.sql")).unwrap();
    let error = up(db.pool(), dir.path()).await.expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(error, MigrateError::Missing { version: 2, .. }),
        "{message}"
    );
    assert!(message.contains("posts"), "{message}");
    let status = runner::status(db.pool(), dir.path()).await.expect("status");
    assert_eq!(status.files[1].state, State::Missing);
}

#[tokio::test]
async fn a_failing_file_is_reported_at_its_file_position_and_rolled_back() {
    let db = TestDatabase::new().await;
    let dir = project();
    up(db.pool(), dir.path()).await.expect("first run");
    // Statement 2 starts on line 4 and spans a comment line; Postgres points at the typo
    // `VALUS`, which is on line 6, column 5 of the file.
    write(
        dir.path(),
        "0003_broken.sql",
        "-- two statements, the second broken\n\
         CREATE TABLE broken_one (id int);\n\
         \n\
         INSERT INTO broken_one\n\
         \x20 -- values follow\n\
         \x20   VALUS (1);\n",
    );
    let error = up(db.pool(), dir.path()).await.expect_err("fails");
    let message = error.to_string();
    let MigrateError::Failed(failure) = &error else {
        panic!("expected Failed, got {error:?}");
    };
    assert!(failure.file.ends_with("0003_broken.sql"), "{message}");
    assert_eq!(
        (failure.statement, failure.line, failure.column),
        (2, 6, 5),
        "{message}"
    );
    assert!(failure.message.contains("syntax error"), "{message}");
    assert_eq!(failure.code, "42601");
    assert!(failure.in_transaction);
    assert!(!table_exists(db.pool(), "broken_one").await, "rolled back");
    assert!(
        !recorded(db.pool())
            .await
            .iter()
            .any(|r| r.0 == "user" && r.1 == 3),
        "not recorded"
    );
}

#[tokio::test]
async fn failures_carry_postgres_detail_and_hint() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "0001_dup.sql",
        "CREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1), (1);\n",
    );
    let message = up(db.pool(), dir.path())
        .await
        .expect_err("fails")
        .to_string();
    assert!(
        message.contains("statement 2 at line 2, column 1"),
        "{message}"
    );
    assert!(
        message.contains("detail: Key (id)=(1) already exists."),
        "{message}"
    );
    write(dir.path(), "0001_dup.sql", "SELECT * FROM nope_table;\n");
    let message = up(db.pool(), dir.path())
        .await
        .expect_err("fails")
        .to_string();
    assert!(message.contains("line 1, column 15"), "{message}");
}

#[tokio::test]
async fn a_no_transaction_file_can_create_an_index_concurrently() {
    let db = TestDatabase::new().await;
    let dir = project();
    write(
        dir.path(),
        "0003_index.sql",
        "-- forge:no-transaction  (CONCURRENTLY cannot run in a transaction)\n\
         CREATE INDEX CONCURRENTLY posts_user_id ON posts (user_id);\n",
    );
    up(db.pool(), dir.path()).await.expect("applies");
    assert!(table_exists(db.pool(), "posts_user_id").await);
    assert!(recorded(db.pool()).await.iter().any(|r| r.1 == 3));
}

async fn second_pool(db: &TestDatabase) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(db.url())
        .await
        .expect("second pool")
}

#[tokio::test]
async fn concurrent_runners_apply_each_file_once() {
    let db = TestDatabase::new().await;
    let dir = project();
    // A slow file keeps the first runner inside the lock while the second waits.
    write(dir.path(), "0003_slow.sql", "SELECT pg_sleep(0.5);\n");
    let other = second_pool(&db).await;
    let (a, b) = tokio::join!(up(db.pool(), dir.path()), up(&other, dir.path()));
    let (a, b) = (a.expect("runner a"), b.expect("runner b"));
    let total = a.migrations.len() + b.migrations.len();
    assert_eq!(total, SYSTEM_MIGRATIONS.len() + 3, "{a:?} {b:?}");
    assert!(
        a.migrations.is_empty() || b.migrations.is_empty(),
        "{a:?} {b:?}"
    );
    assert_eq!(recorded(db.pool()).await.len(), SYSTEM_MIGRATIONS.len() + 3);
}

#[tokio::test]
async fn a_waiting_runner_names_the_holder_and_gives_up_after_the_timeout() {
    let db = TestDatabase::new().await;
    let dir = project();
    let holder = second_pool(&db).await;
    let mut held = holder.acquire().await.unwrap();
    sqlx::query("SET application_name = 'lock-hog'")
        .execute(&mut *held)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *held)
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = UpOptions {
        lock_timeout: Duration::from_millis(400),
        on_wait: Some(Arc::new(move |h| sink.lock().unwrap().push(h.clone()))),
        ..UpOptions::default()
    };
    let error = runner::up(db.pool(), dir.path(), &options)
        .await
        .expect_err("times out");
    let message = error.to_string();
    assert!(
        matches!(error, MigrateError::LockTimeout { .. }),
        "{message}"
    );
    assert!(message.contains("lock-hog"), "{message}");
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].application_name, "lock-hog");
    assert!(seen[0].backend_start.is_some());
    assert!(!table_exists(db.pool(), "forge_migrations").await);
}

#[tokio::test]
async fn a_runner_that_lost_its_lock_stops_before_the_next_file() {
    // What PgBouncer's transaction pooling does to a session lock, done by hand: file 1
    // releases the lock, so file 2 must not run.
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "0001_unlock.sql",
        &format!("SELECT pg_advisory_unlock({LOCK_KEY});\n"),
    );
    write(
        dir.path(),
        "0002_after.sql",
        "CREATE TABLE after (id int);\n",
    );
    let error = up(db.pool(), dir.path()).await.expect_err("refused");
    assert!(matches!(error, MigrateError::LockLost), "{error}");
    assert!(error.to_string().contains("PgBouncer"), "{error}");
    assert!(!table_exists(db.pool(), "after").await);
}

#[tokio::test]
async fn batched_files_keep_their_quirks() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Rows returned by the file's own statements, and a last statement that ends in a
    // `--` comment with no line break after it.
    write(
        dir.path(),
        "0001_rows.sql",
        "CREATE TABLE rows (id int);\nSELECT generate_series(1, 3);\nINSERT INTO rows VALUES (1) -- the end",
    );
    // A name the record must quote.
    write(dir.path(), "0002_o'brien\\x.sql", "SELECT 1;\n");
    // No statement at all.
    write(dir.path(), "0003_empty.sql", "-- nothing yet\n");
    up(db.pool(), dir.path()).await.expect("applies");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rows")
        .fetch_one(db.pool())
        .await
        .expect("rows");
    assert_eq!(rows, 1);
    let names: Vec<(String, i64, String)> = recorded(db.pool())
        .await
        .into_iter()
        .filter(|r| r.0 == "user")
        .collect();
    assert_eq!(
        names,
        [
            ("user".into(), 1, "rows".into()),
            ("user".into(), 2, "o'brien\\x".into()),
            ("user".into(), 3, "empty".into()),
        ]
    );
}

#[tokio::test]
async fn errors_outside_the_files_text_are_placed_by_running_it_again() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Postgres points past the file's last character, where the batch has its own text:
    // the statement-by-statement run places it.
    write(
        dir.path(),
        "0001_open.sql",
        "CREATE TABLE open_one (id int);\nSELECT (",
    );
    let error = up(db.pool(), dir.path()).await.expect_err("fails");
    let MigrateError::Failed(failure) = &error else {
        panic!("expected Failed, got {error:?}");
    };
    assert_eq!((failure.statement, failure.line), (2, 2), "{error}");
    assert!(failure.message.contains("syntax error"), "{error}");
    assert!(!table_exists(db.pool(), "open_one").await, "rolled back");
}

/// A database a forge release with only system schema v1 migrated (data in a user table
/// and in forge's own) upgrades in place: the later system versions apply, nothing is lost,
/// and the user's files stay applied.
#[tokio::test]
async fn a_database_at_system_schema_v1_upgrades_in_place() {
    let db = TestDatabase::new().await;
    let dir = project();
    let mut tx = db.pool().begin().await.expect("begin");
    sqlx::raw_sql(SYSTEM_MIGRATIONS[0].sql)
        .execute(&mut *tx)
        .await
        .expect("system schema v1");
    sqlx::raw_sql(
        "INSERT INTO forge_migrations (kind, version, name, checksum, duration_ms) \
         VALUES ('system', 1, 'system_schema', repeat('0', 64), 1);\n\
         INSERT INTO forge_jobs (name, queue, input, max_attempts) VALUES ('mail', 'default', '{}', 3);",
    )
    .execute(&mut *tx)
    .await
    .expect("a v1 database's rows");
    // The project's files, applied and recorded as that release's runner did.
    for (version, name) in [(1, "users"), (2, "posts")] {
        let text = std::fs::read_to_string(dir.path().join(format!("000{version}_{name}.sql")))
            .expect("read file");
        sqlx::raw_sql(&text).execute(&mut *tx).await.expect("file");
        sqlx::query(
            "INSERT INTO forge_migrations (kind, version, name, checksum, duration_ms) \
             VALUES ('user', $1, $2, $3, 1)",
        )
        .bind(i64::from(version))
        .bind(name)
        .bind(runner::sha256_hex(text.as_bytes()))
        .execute(&mut *tx)
        .await
        .expect("record");
    }
    tx.commit().await.expect("commit");
    assert!(!table_exists(db.pool(), "forge_refresh_tokens").await);

    let status = runner::status(db.pool(), dir.path()).await.expect("status");
    let later: Vec<u32> = SYSTEM_MIGRATIONS[1..].iter().map(|m| m.version).collect();
    assert!(!later.is_empty());
    assert_eq!(status.system_pending, later);

    let applied = up(db.pool(), dir.path()).await.expect("upgrade");
    let kinds: Vec<(Kind, i64)> = applied
        .migrations
        .iter()
        .map(|m| (m.kind, m.version))
        .collect();
    let expected: Vec<(Kind, i64)> = later
        .iter()
        .map(|v| (Kind::System, i64::from(*v)))
        .collect();
    assert_eq!(kinds, expected);
    assert!(table_exists(db.pool(), "forge_refresh_tokens").await);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_jobs")
        .fetch_one(db.pool())
        .await
        .expect("jobs");
    assert_eq!(jobs, 1);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db.pool())
        .await
        .expect("users");
    assert_eq!(users, 1);
    let status = runner::status(db.pool(), dir.path()).await.expect("status");
    assert!(status.system_pending.is_empty());
}

/// A database a release before `forge_rate_limits` migrated (system schema without v003,
/// with data in it) is upgraded in place: only v003 runs, nothing else is touched.
#[tokio::test]
async fn an_existing_database_gets_the_rate_limit_schema_in_place() {
    let db = TestDatabase::new().await;
    let dir = project();
    up(db.pool(), dir.path()).await.expect("first run");
    // Back to the state before v003: its table gone and its record with it.
    sqlx::raw_sql(
        "DROP TABLE forge_rate_limits;
         DELETE FROM forge_migrations WHERE kind = 'system' AND version = 3;
         INSERT INTO users VALUES (42);",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let status = runner::status(db.pool(), dir.path()).await.expect("status");
    assert_eq!(status.system_pending, [3]);

    let applied = up(db.pool(), dir.path()).await.expect("upgrade");
    let ran: Vec<(Kind, i64, &str)> = applied
        .migrations
        .iter()
        .map(|m| (m.kind, m.version, m.name.as_str()))
        .collect();
    assert_eq!(ran, [(Kind::System, 3, "rate_limits")]);
    assert!(table_exists(db.pool(), "forge_rate_limits").await);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE id = 42")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(kept, 1);
    assert!(up(db.pool(), dir.path())
        .await
        .unwrap()
        .migrations
        .is_empty());
}
