//! A node's life: migrations at start, read replicas, refusing bad registrations, and a
//! graceful shutdown that drains in-flight calls.

use std::time::{Duration, Instant};

use forge::registry::{decode_args, McpToolDef, MutationDef, NoArgs, QueryDef, WebhookDef};
use forge::testing::{config, TestDatabase};
use forge::{App, McpToolContext, MutationContext, QueryContext, Registry, WebhookContext};
use serde_json::{json, Value};

fn query(name: &'static str) -> QueryDef {
    QueryDef {
        name,
        module: "",
        public: true,
        unscoped: true,
        cache_ms: None,
        timeout_ms: None,
        tables_read: &[],
        rate_limit: None,
    }
}

fn register(registry: &mut Registry) {
    registry.query(query("which"), |ctx: QueryContext, args| async move {
        decode_args::<NoArgs>(args)?;
        let name: String = sqlx::query_scalar("SELECT name FROM which")
            .fetch_one(ctx.db())
            .await?;
        Ok(name)
    });
    registry.query(query("slow"), |_ctx: QueryContext, _args| async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok("done")
    });
    // Webhook deliveries and MCP calls are calls too: drained at shutdown like RPC.
    let hook = WebhookDef {
        name: "slow_hook",
        module: "",
        path: "/hooks/slow",
        signature: None,
        idempotency_header: None,
    };
    registry.webhook(hook, |_ctx: WebhookContext, _body| async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok("delivered")
    });
    let tool = McpToolDef {
        rate_limit: None,
        name: "slow_tool",
        module: "",
        title: None,
        description: None,
        read_only: true,
        input_schema: r#"{"type":"object"}"#,
    };
    registry.mcp_tool(tool, |_ctx: McpToolContext, _args| async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok("answered")
    });
    let def = MutationDef {
        name: "which_primary",
        module: "",
        transactional: true,
        public: true,
        timeout_ms: None,
        tables_written: &[],
        rate_limit: None,
    };
    registry.mutation(def, |ctx: MutationContext, _args| async move {
        let name: String = sqlx::query_scalar("SELECT name FROM which")
            .fetch_one(ctx.tx())
            .await?;
        Ok(name)
    });
}

async fn named(db: &TestDatabase, name: &str) {
    sqlx::query("CREATE TABLE which (name text NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO which VALUES ($1)")
        .bind(name)
        .execute(db.pool())
        .await
        .unwrap();
}

async fn call(addr: std::net::SocketAddr, name: &str) -> Value {
    reqwest::Client::new()
        .post(format!("http://{addr}/_api/rpc/{name}"))
        .json(&json!({"args": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_use_healthy_replicas_in_turn_and_everything_else_the_primary() {
    let (primary, one, two) = (
        TestDatabase::new().await,
        TestDatabase::new().await,
        TestDatabase::new().await,
    );
    for (db, name) in [(&primary, "primary"), (&one, "one"), (&two, "two")] {
        named(db, name).await;
    }
    let mut config = config(primary.url());
    // The third replica listens nowhere: it is skipped, and queries still succeed.
    config.replica_urls = vec![
        one.url().to_owned(),
        two.url().to_owned(),
        "postgres://forge@127.0.0.1:1/none".into(),
    ];
    let node = App::new(config).register(register).start().await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(
            call(node.addr(), "which").await["data"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(seen.iter().all(|s| s == "one" || s == "two"), "{seen:?}");
    assert!(
        seen.contains(&"one".to_owned()) && seen.contains(&"two".to_owned()),
        "round-robin: {seen:?}"
    );
    assert_eq!(call(node.addr(), "which_primary").await["data"], "primary");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_healthy_replica_queries_use_the_primary_until_one_recovers() {
    let primary = TestDatabase::new().await;
    named(&primary, "primary").await;
    let replica = TestDatabase::new().await;
    named(&replica, "replica").await;
    // A database that does not exist yet: unhealthy until it is created.
    let missing = format!("{}_later", replica.name());
    let late_url = replica.url().replace(replica.name(), &missing);
    let mut config = config(primary.url());
    config.replica_urls = vec![late_url.clone()];
    let node = App::new(config).register(register).start().await.unwrap();
    assert_eq!(call(node.addr(), "which").await["data"], "primary");

    sqlx::query(&format!("CREATE DATABASE \"{missing}\""))
        .execute(replica.pool())
        .await
        .unwrap();
    let late = sqlx::PgPool::connect(&late_url).await.unwrap();
    sqlx::query("CREATE TABLE which AS SELECT 'late' AS name")
        .execute(&late)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(node.addr(), "which").await["data"] != "late" {
        assert!(
            Instant::now() < deadline,
            "the recovered replica was not used within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.shutdown().await.unwrap();
    late.close().await;
    sqlx::query(&format!("DROP DATABASE \"{missing}\" WITH (FORCE)"))
        .execute(replica.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_calls_in_flight_and_removes_the_node() {
    let db = TestDatabase::new().await;
    named(&db, "primary").await;
    let node = App::new(config(db.url()))
        .register(register)
        .start()
        .await
        .unwrap();
    let addr = node.addr();
    let in_flight = tokio::spawn(call(addr, "slow"));
    let delivery = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://{addr}/hooks/slow"))
            .json(&json!({}))
            .send(),
    );
    let token = forge::testing::token(uuid::Uuid::new_v4(), None, &[]);
    let tool_call = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://{addr}/_api/mcp"))
            .header("accept", "application/json")
            .bearer_auth(token)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": "slow_tool", "arguments": {}}}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.shutdown().await.unwrap();
    assert_eq!(in_flight.await.unwrap()["data"], "done");
    let delivered: Value = delivery.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(delivered["data"], "delivered", "{delivered}");
    let answered: Value = tool_call.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(
        answered["result"]["structuredContent"]["result"], "answered",
        "{answered}"
    );
    let nodes: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_nodes")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(nodes, 0);
    assert!(
        reqwest::get(format!("http://{addr}/_api/health"))
            .await
            .is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_migrations_at_start_unless_told_not_to() {
    let dir = std::env::temp_dir().join(format!("forge-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_which.sql"),
        "CREATE TABLE which (name text);\nINSERT INTO which VALUES ('migrated');\n",
    )
    .unwrap();

    let db = TestDatabase::new().await;
    let mut held_back = config(db.url());
    held_back.migrations_dir = dir.clone();
    held_back.migrate = false;
    // FORGE_MIGRATE=false on a fresh database: forge's own tables are missing too, so the
    // node cannot register and says why.
    let error = App::new(held_back.clone())
        .register(register)
        .start()
        .await
        .err()
        .expect("no system schema");
    assert!(
        error.to_string().contains("run `forge migrate up`"),
        "{error}"
    );

    let mut migrating = held_back.clone();
    migrating.migrate = true;
    let node = App::new(migrating)
        .register(register)
        .start()
        .await
        .unwrap();
    assert_eq!(call(node.addr(), "which").await["data"], "migrated");
    let ready = reqwest::get(format!("http://{}/_api/ready", node.addr()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // A new file while the node runs: not ready (from the next background check) until it
    // is applied.
    std::fs::write(dir.join("0002_more.sql"), "SELECT 1;\n").unwrap();
    let started = Instant::now();
    let ready = loop {
        let ready = reqwest::get(format!("http://{}/_api/ready", node.addr()))
            .await
            .unwrap();
        if ready.status() == 503 || started.elapsed() > Duration::from_secs(5) {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["problems"], json!(["1 migration(s) not applied"]));
    node.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_registered_twice_stops_the_start() {
    let db = TestDatabase::new().await;
    let error = App::new(config(db.url()))
        .register(register)
        .register(|registry| {
            registry.query(
                query("which"),
                |_ctx: QueryContext, _args| async move { Ok(()) },
            );
        })
        .start()
        .await
        .err()
        .expect("a duplicate is refused");
    assert!(error.to_string().contains("`which`"), "{error}");
}
