//! `#[forge::query(cache = …)]` against a real PostgreSQL, two nodes on one database: a hit
//! runs no SQL and says so (`x-forge-cache`), a write on another node invalidates within
//! the live-query debounce, and one caller's result never reaches another.

use std::time::{Duration, Instant};

use forge::registry::{decode_args, NoArgs, QueryDef};
use forge::testing::{config, token, TestDatabase};
use forge::{App, QueryContext, Registry, Running};
use serde_json::{json, Value};
use uuid::Uuid;

fn cached(name: &'static str, public: bool) -> QueryDef {
    QueryDef {
        rate_limit: None,
        name,
        module: "",
        public,
        unscoped: true,
        cache_ms: Some(60_000),
        timeout_ms: None,
        tables_read: &["notes"],
    }
}

/// Every query takes a number from `calls`, so a result shows which run made it.
fn register(registry: &mut Registry) {
    registry.query(
        cached("count_notes", true),
        |ctx: QueryContext, args| async move {
            decode_args::<NoArgs>(args)?;
            let (notes, run): (i64, i64) =
                sqlx::query_as("SELECT (SELECT count(*) FROM notes), nextval('calls')")
                    .fetch_one(ctx.db())
                    .await?;
            Ok(json!({"notes": notes, "run": run}))
        },
    );
    registry.query(
        cached("mine", false),
        |ctx: QueryContext, args| async move {
            decode_args::<NoArgs>(args)?;
            let run: i64 = sqlx::query_scalar("SELECT nextval('calls')")
                .fetch_one(ctx.db())
                .await?;
            Ok(json!({"user": ctx.user_id()?, "run": run}))
        },
    );
}

async fn node(url: &str) -> Running {
    let mut config = config(url);
    config.job_concurrency = 0;
    App::new(config).register(register).start().await.unwrap()
}

/// Calls `name` on `node`: the data and the `x-forge-cache` header.
async fn call(node: &Running, name: &str, token: Option<&str>) -> (Value, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/_api/rpc/{name}", node.addr()))
        .json(&json!({"args": {}}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let cache = response
        .headers()
        .get("x-forge-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true, "{body}");
    (body["data"].clone(), cache)
}

/// Calls `name` until the answer comes from the cache: the node drops its cache once its
/// listener first connects (changes may have been missed before), which may happen after
/// the first call. Returns the cached data.
async fn cached_answer(node: &Running, name: &str, token: Option<&str>) -> Value {
    let start = Instant::now();
    loop {
        let (data, cache) = call(node, name, token).await;
        if cache == "hit" {
            return data;
        }
        assert_eq!(cache, "miss");
        assert!(start.elapsed() < Duration::from_secs(5), "never cached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn database() -> TestDatabase {
    let db = TestDatabase::new().await;
    // A first node lays down the system schema (forge_enable_reactivity).
    node(db.url()).await.shutdown().await.unwrap();
    sqlx::raw_sql(
        "CREATE SEQUENCE calls; \
         CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, text text); \
         SELECT forge_enable_reactivity('notes');",
    )
    .execute(db.pool())
    .await
    .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hit_runs_no_sql_and_a_write_on_another_node_invalidates_it() {
    let db = database().await;
    let (a, b) = (node(db.url()).await, node(db.url()).await);
    let first = cached_answer(&a, "count_notes", None).await;
    assert_eq!(first["notes"], 0);
    let (again, cache) = call(&a, "count_notes", None).await;
    assert_eq!(
        (&again, cache.as_str()),
        (&first, "hit"),
        "the same run's result"
    );
    let runs: i64 = sqlx::query_scalar("SELECT last_value FROM calls")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(runs, first["run"].as_i64().unwrap(), "the hit ran no SQL");
    // Node b caches on its own.
    assert_eq!(call(&b, "count_notes", None).await.1, "miss");

    // A write anywhere (here straight to the database) reaches node a's cache.
    sqlx::query("INSERT INTO notes (text) VALUES ('x')")
        .execute(db.pool())
        .await
        .unwrap();
    let written = Instant::now();
    loop {
        let (now, _) = call(&a, "count_notes", None).await;
        if now["notes"] == 1 {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_millis(500),
            "still cached {:?} after the write",
            written.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(call(&a, "count_notes", None).await.1, "hit", "cached again");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_callers_cached_result_never_reaches_another() {
    let db = database().await;
    let a = node(db.url()).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let alice_token = token(alice, None, &[]);
    let mine = cached_answer(&a, "mine", Some(&alice_token)).await;
    assert_eq!(mine["user"], json!(alice));
    let (theirs, cache) = call(&a, "mine", Some(&token(bob, None, &[]))).await;
    assert_eq!(
        (theirs["user"].clone(), cache.as_str()),
        (json!(bob), "miss")
    );
    // The same user in another tenant or with other roles is another identity too.
    let tenant = token(alice, Some(Uuid::new_v4()), &[]);
    assert_eq!(call(&a, "mine", Some(&tenant)).await.1, "miss");
    let admin = token(alice, None, &["admin"]);
    assert_eq!(call(&a, "mine", Some(&admin)).await.1, "miss");
    let (again, cache) = call(&a, "mine", Some(&alice_token)).await;
    assert_eq!((&again, cache.as_str()), (&mine, "hit"));
    a.shutdown().await.unwrap();
}
