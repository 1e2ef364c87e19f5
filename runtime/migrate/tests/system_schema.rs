//! forge's system schema on a real PostgreSQL: it applies, its constraints and indexes do
//! their jobs, and its triggers notify as documented in `schema/v001.sql`.

use std::time::Duration;

use forge_db::testing::TestDatabase;
use forge_migrate::schema::SYSTEM_MIGRATIONS;
use forge_migrate::split::split;
use serde_json::Value;
use sqlx::postgres::{PgListener, PgNotification};
use sqlx::PgPool;

const TABLES: &[&str] = &[
    "forge_migrations",
    "forge_jobs",
    "forge_cron_runs",
    "forge_workflow_definitions",
    "forge_workflow_runs",
    "forge_workflow_steps",
    "forge_workflow_events",
    "forge_leaders",
    "forge_nodes",
    "forge_daemons",
    "forge_change_log",
    "forge_webhook_events",
    "forge_refresh_tokens",
    "forge_rate_limits",
];

/// NOTIFY's payload limit.
const NOTIFY_LIMIT: usize = 8000;

/// A fresh database with every system migration applied, each in one transaction, as the
/// runner applies them.
async fn database() -> TestDatabase {
    let db = TestDatabase::new().await;
    for migration in SYSTEM_MIGRATIONS {
        let mut tx = db.pool().begin().await.unwrap();
        for statement in split(migration.sql).unwrap() {
            sqlx::raw_sql(statement.text)
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "{} line {}: {error}\n{}",
                        migration.name, statement.line, statement.text
                    )
                });
        }
        tx.commit().await.unwrap();
    }
    db
}

async fn listen(db: &TestDatabase, channel: &str) -> PgListener {
    let mut listener = PgListener::connect(db.url()).await.unwrap();
    listener.listen(channel).await.unwrap();
    listener
}

async fn next(listener: &mut PgListener) -> PgNotification {
    tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification within 5 s")
        .unwrap()
}

/// Fails when a notification arrives within a short wait.
async fn assert_silent(listener: &mut PgListener) {
    if let Ok(notification) =
        tokio::time::timeout(Duration::from_millis(300), listener.recv()).await
    {
        panic!("unexpected notification: {:?}", notification.unwrap());
    }
}

async fn execute(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// The SQLSTATE a statement fails with.
async fn error_code(pool: &PgPool, sql: &str) -> String {
    let error = sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .expect_err(&format!("{sql} should fail"));
    error
        .as_database_error()
        .and_then(|error| error.code())
        .map(|code| code.into_owned())
        .unwrap_or_else(|| panic!("{sql}: not a database error: {error}"))
}

/// Checks a `forge_changes` payload and returns it parsed.
fn change(notification: &PgNotification, table: &str, op: &str) -> Value {
    change_in(notification, "public", table, op)
}

fn change_in(notification: &PgNotification, schema: &str, table: &str, op: &str) -> Value {
    assert_eq!(notification.channel(), "forge_changes");
    let payload = notification.payload();
    assert!(payload.len() < NOTIFY_LIMIT, "{} bytes", payload.len());
    let value: Value = serde_json::from_str(payload).unwrap();
    let object = value.as_object().unwrap();
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "op", "s", "t"], "{payload}");
    assert_eq!(value["s"], schema, "{payload}");
    assert_eq!(value["t"], table, "{payload}");
    assert_eq!(value["op"], op, "{payload}");
    assert!(value["id"].is_i64(), "{payload}");
    value
}

/// `(table_name, op, row_id)` of the change-log row a notification names.
async fn logged(pool: &PgPool, notification: &Value) -> (String, String, Option<String>) {
    sqlx::query_as("SELECT table_name, op::text, row_id FROM forge_change_log WHERE id = $1")
        .bind(notification["id"].as_i64().unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn creates_exactly_the_documented_tables() {
    let db = database().await;
    for table in TABLES {
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(found.as_deref(), Some(*table));
    }
    let mut all: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE tablename LIKE 'forge\\_%' ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut expected: Vec<_> = TABLES.iter().map(|table| table.to_string()).collect();
    expected.sort();
    all.sort();
    assert_eq!(all, expected);
}

/// A regression guard for later schema versions too: every foreign key of a forge_ table
/// has a (non-partial) index whose leading columns are the key's columns.
#[tokio::test]
async fn every_foreign_key_is_indexed() {
    let db = database().await;
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint
         WHERE contype = 'f' AND conrelid::regclass::text LIKE 'forge\\_%'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(keys >= 4, "the guard found only {keys} foreign keys");
    let unindexed: Vec<String> = sqlx::query_scalar(
        "SELECT c.conrelid::regclass::text || '.' || c.conname
         FROM pg_constraint c
         WHERE c.contype = 'f' AND c.conrelid::regclass::text LIKE 'forge\\_%'
           AND NOT EXISTS (
               SELECT 1 FROM pg_index i
               WHERE i.indrelid = c.conrelid
                 AND i.indpred IS NULL
                 AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                 AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
         ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(
        unindexed.is_empty(),
        "foreign keys without an index: {unindexed:?}"
    );
}

#[tokio::test]
async fn statuses_are_exactly_the_documented_ones() {
    let db = database().await;
    let pool = db.pool();
    for status in [
        "pending",
        "running",
        "completed",
        "failed",
        "dead",
        "cancelled",
    ] {
        execute(
            pool,
            &format!(
                "INSERT INTO forge_jobs (name, input, max_attempts, status)
                 VALUES ('send', '{{}}', 3, '{status}')"
            ),
        )
        .await;
    }
    let job = "INSERT INTO forge_jobs (name, input, max_attempts, status)
               VALUES ('send', '{}', 3, 'sleeping')";
    assert_eq!(error_code(pool, job).await, "23514");

    let signature = "0123456789abcdef0123456789abcdef";
    for status in [
        "pending",
        "running",
        "sleeping",
        "waiting",
        "completed",
        "failed",
        "compensating",
        "compensated",
        "cancelled",
        "blocked_signature_mismatch",
        "blocked_missing_version",
    ] {
        execute(
            pool,
            &format!(
                "INSERT INTO forge_workflow_runs (name, version, signature, input, status)
                 VALUES ('order', '1', '{signature}', '{{}}', '{status}')"
            ),
        )
        .await;
    }
    let run = format!(
        "INSERT INTO forge_workflow_runs (name, version, signature, input, status)
         VALUES ('order', '1', '{signature}', '{{}}', 'dead')"
    );
    assert_eq!(error_code(pool, &run).await, "23514");

    let cron = "INSERT INTO forge_cron_runs (name, scheduled_time, status)
                VALUES ('tick', now(), 'later')";
    assert_eq!(error_code(pool, cron).await, "23514");
}

#[tokio::test]
async fn job_queries_can_use_their_indexes() {
    let db = database().await;
    // A handful of rows: with seq scans allowed the planner rightly prefers them, so this
    // checks the indexes are usable by the queries (predicates implied), not chosen.
    let mut tx = db.pool().begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    for (query, index) in [
        (
            "SELECT id FROM forge_jobs
             WHERE queue = 'default' AND status IN ('pending', 'failed') AND scheduled_at <= now()
             ORDER BY priority DESC, scheduled_at LIMIT 10 FOR UPDATE SKIP LOCKED",
            "forge_jobs_claim_idx",
        ),
        (
            "SELECT id FROM forge_jobs WHERE status = 'running' AND lease_expires_at < now()",
            "forge_jobs_lease_idx",
        ),
        (
            "SELECT id FROM forge_jobs WHERE status = 'dead' ORDER BY created_at DESC LIMIT 50",
            "forge_jobs_status_idx",
        ),
        (
            "SELECT id FROM forge_workflow_runs WHERE status = 'sleeping' AND wake_at <= now()",
            "forge_workflow_runs_wake_idx",
        ),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {query}"))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{query}\n{plan}");
    }
}

#[tokio::test]
async fn reactivity_logs_and_notifies_every_change() {
    let db = database().await;
    let pool = db.pool();
    execute(pool, "CREATE TABLE items (id int PRIMARY KEY, label text)").await;
    execute(pool, "SELECT forge_enable_reactivity('items')").await;
    let mut listener = listen(&db, "forge_changes").await;

    execute(pool, "INSERT INTO items VALUES (1, 'one')").await;
    let inserted = change(&next(&mut listener).await, "items", "I");
    execute(pool, "UPDATE items SET label = 'uno' WHERE id = 1").await;
    let updated = change(&next(&mut listener).await, "items", "U");
    execute(pool, "DELETE FROM items WHERE id = 1").await;
    let deleted = change(&next(&mut listener).await, "items", "D");
    execute(pool, "TRUNCATE items").await;
    let truncated = change(&next(&mut listener).await, "items", "T");

    let row =
        |op: &str, id: Option<&str>| ("items".to_owned(), op.to_owned(), id.map(str::to_owned));
    assert_eq!(logged(pool, &inserted).await, row("I", Some("1")));
    assert_eq!(logged(pool, &updated).await, row("U", Some("1")));
    assert_eq!(logged(pool, &deleted).await, row("D", Some("1")));
    assert_eq!(logged(pool, &truncated).await, row("T", None));
    assert!(inserted["id"].as_i64() < updated["id"].as_i64());
}

#[tokio::test]
async fn reactivity_keys_composite_and_missing_primary_keys() {
    let db = database().await;
    let pool = db.pool();
    execute(
        pool,
        "CREATE TABLE pairs (b text, a int, PRIMARY KEY (a, b))",
    )
    .await;
    execute(pool, "CREATE TABLE loose (v int)").await;
    execute(pool, "SELECT forge_enable_reactivity('pairs')").await;
    execute(pool, "SELECT forge_enable_reactivity('loose')").await;
    let mut listener = listen(&db, "forge_changes").await;

    execute(pool, "INSERT INTO pairs VALUES ('x', 7)").await;
    let pair = change(&next(&mut listener).await, "pairs", "I");
    assert_eq!(logged(pool, &pair).await.2.as_deref(), Some(r#"[7, "x"]"#));
    execute(pool, "INSERT INTO loose VALUES (1)").await;
    let loose = change(&next(&mut listener).await, "loose", "I");
    assert_eq!(logged(pool, &loose).await.2, None);
}

#[tokio::test]
async fn reactivity_names_the_schema_whatever_the_writer_search_path() {
    let db = database().await;
    let pool = db.pool();
    execute(
        pool,
        "CREATE SCHEMA app; CREATE TABLE app.items (id int PRIMARY KEY)",
    )
    .await;
    execute(pool, "SELECT forge_enable_reactivity('app.items')").await;
    let mut listener = listen(&db, "forge_changes").await;
    // The writer cannot see forge_change_log by name; the trigger still can.
    execute(
        pool,
        "BEGIN; SET LOCAL search_path = app; INSERT INTO items VALUES (1); COMMIT;",
    )
    .await;
    change_in(&next(&mut listener).await, "app", "items", "I");
}

#[tokio::test]
async fn reactivity_payload_stays_small_for_the_longest_table_name() {
    let db = database().await;
    let pool = db.pool();
    // 63 bytes, the longest identifier, with a quote that JSON must escape.
    let table = format!("t\"{}", "x".repeat(61));
    assert_eq!(table.len(), 63);
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    execute(
        pool,
        &format!("CREATE TABLE {quoted} (id bigint PRIMARY KEY)"),
    )
    .await;
    sqlx::query("SELECT forge_enable_reactivity($1::regclass)")
        .bind(&quoted)
        .execute(pool)
        .await
        .unwrap();
    let mut listener = listen(&db, "forge_changes").await;
    execute(pool, &format!("INSERT INTO {quoted} VALUES (1)")).await;
    let notification = next(&mut listener).await;
    change(&notification, &table, "I");
    assert!(
        notification.payload().len() < 200,
        "{}",
        notification.payload()
    );
}

#[tokio::test]
async fn reactivity_is_idempotent_and_can_be_disabled() {
    let db = database().await;
    let pool = db.pool();
    let triggers = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal",
        )
        .fetch_one(pool)
    };
    execute(pool, "CREATE TABLE items (id int PRIMARY KEY)").await;
    execute(pool, "SELECT forge_enable_reactivity('items')").await;
    execute(pool, "SELECT forge_enable_reactivity('items')").await;
    assert_eq!(triggers().await.unwrap(), 2);

    let mut listener = listen(&db, "forge_changes").await;
    execute(pool, "INSERT INTO items VALUES (1)").await;
    change(&next(&mut listener).await, "items", "I");
    assert_silent(&mut listener).await;

    execute(pool, "SELECT forge_disable_reactivity('items')").await;
    execute(pool, "SELECT forge_disable_reactivity('items')").await;
    assert_eq!(triggers().await.unwrap(), 0);
    execute(pool, "INSERT INTO items VALUES (2)").await;
    assert_silent(&mut listener).await;
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_change_log")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(logged, 1);
}

#[tokio::test]
async fn reactivity_refuses_the_change_log_and_views() {
    let db = database().await;
    let pool = db.pool();
    execute(pool, "CREATE VIEW numbers AS SELECT 1 AS n").await;
    for table in ["forge_change_log", "numbers"] {
        let sql = format!("SELECT forge_enable_reactivity('{table}')");
        assert_eq!(error_code(pool, &sql).await, "P0001", "{table}");
    }
}

#[tokio::test]
async fn a_job_becoming_pending_notifies_its_queue() {
    let db = database().await;
    let pool = db.pool();
    let mut listener = listen(&db, "forge_jobs_available").await;

    execute(
        pool,
        "INSERT INTO forge_jobs (id, name, queue, input, max_attempts)
         VALUES ('00000000-0000-0000-0000-000000000001', 'send', 'emails', '{}', 3)",
    )
    .await;
    let notification = next(&mut listener).await;
    assert_eq!(notification.payload(), "emails");

    let set = |status: &str| {
        format!(
            "UPDATE forge_jobs SET status = '{status}'
             WHERE id = '00000000-0000-0000-0000-000000000001'"
        )
    };
    execute(pool, &set("running")).await;
    assert_silent(&mut listener).await;
    execute(pool, &set("pending")).await;
    assert_eq!(next(&mut listener).await.payload(), "emails");
    execute(pool, "UPDATE forge_jobs SET priority = 5").await;
    assert_silent(&mut listener).await;

    execute(
        pool,
        "INSERT INTO forge_jobs (name, input, max_attempts, status)
         VALUES ('send', '{}', 3, 'running')",
    )
    .await;
    assert_silent(&mut listener).await;
}

#[tokio::test]
async fn at_most_one_active_definition_per_workflow() {
    let db = database().await;
    let pool = db.pool();
    let define = |version: &str, active: bool| {
        format!(
            "INSERT INTO forge_workflow_definitions (name, version, signature, active)
             VALUES ('order', '{version}', '0123456789abcdef0123456789abcdef', {active})"
        )
    };
    execute(pool, &define("1", true)).await;
    assert_eq!(error_code(pool, &define("2", true)).await, "23505");
    execute(pool, &define("2", false)).await;
    execute(pool, &define("3", false)).await;
    // Another workflow has its own active version.
    execute(
        pool,
        "INSERT INTO forge_workflow_definitions (name, version, signature, active)
         VALUES ('refund', '1', '0123456789abcdef0123456789abcdef', true)",
    )
    .await;
    // Switching the active version in one transaction.
    execute(
        pool,
        "BEGIN;
         UPDATE forge_workflow_definitions SET active = false WHERE name = 'order';
         UPDATE forge_workflow_definitions SET active = true WHERE name = 'order' AND version = '2';
         COMMIT;",
    )
    .await;
    let bad_signature = "INSERT INTO forge_workflow_definitions (name, version, signature)
                         VALUES ('order', '9', 'not-hex')";
    assert_eq!(error_code(pool, bad_signature).await, "23514");
}
