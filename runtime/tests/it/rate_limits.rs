//! Rate limits over HTTP against a real PostgreSQL: per handler and caller, across two
//! nodes on one database, anonymous traffic per IP (`FORGE_RATE_LIMIT`), webhooks per source
//! IP (`FORGE_WEBHOOK_RATE_LIMIT`) and MCP tools. Limits are per hour so that no test
//! straddles a window boundary in practice.

use forge::registry::{decode_args, McpToolDef, NoArgs, QueryDef, RateLimit, WebhookDef};
use forge::testing::{config, token, TestDatabase};
use forge::{App, Config, McpToolContext, QueryContext, Registry, Running, WebhookContext};
use serde_json::{json, Value};
use uuid::Uuid;

const PER_HOUR: u64 = 3_600_000;

fn limit(count: u32) -> Option<RateLimit> {
    Some(RateLimit {
        count,
        per_ms: PER_HOUR,
    })
}

fn query(name: &'static str, public: bool, rate_limit: Option<RateLimit>) -> QueryDef {
    QueryDef {
        name,
        module: "",
        public,
        unscoped: true,
        cache_ms: None,
        timeout_ms: None,
        tables_read: &[],
        rate_limit,
    }
}

fn register(registry: &mut Registry) {
    for (name, public, rate_limit) in [
        ("six", false, limit(6)),
        ("thirty", false, limit(30)),
        ("open_two", true, limit(2)),
        ("free", true, None),
    ] {
        registry.query(
            query(name, public, rate_limit),
            |_ctx: QueryContext, args| async move {
                decode_args::<NoArgs>(args)?;
                Ok(json!("ok"))
            },
        );
    }
    registry.mcp_tool(
        McpToolDef {
            name: "once",
            module: "",
            title: None,
            description: None,
            read_only: true,
            input_schema: r#"{"type":"object"}"#,
            rate_limit: limit(1),
        },
        |_ctx: McpToolContext, _args| async move { Ok(json!("ran")) },
    );
    registry.webhook(
        WebhookDef {
            name: "hook",
            module: "",
            path: "/hooks/open",
            signature: None,
            idempotency_header: None,
        },
        |_ctx: WebhookContext, _body| async move { Ok("pong") },
    );
}

async fn node(db: &TestDatabase, adjust: impl FnOnce(&mut Config)) -> Running {
    let mut config = config(db.url());
    config.job_concurrency = 0;
    adjust(&mut config);
    App::new(config).register(register).start().await.unwrap()
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn post(node: &Running, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{path}", node.addr()))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    Answer {
        status,
        retry_after,
        body: response.json().await.unwrap(),
    }
}

async fn call(node: &Running, name: &str, token: Option<&str>) -> Answer {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    post(
        node,
        &format!("/_api/rpc/{name}"),
        json!({"args": {}}),
        &headers,
    )
    .await
}

/// A refusal: 429 `RATE_LIMITED`, `Retry-After` in whole seconds and `retry_after_ms` in
/// the details, both within the window.
fn assert_throttled(answer: &Answer) {
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "RATE_LIMITED");
    let ms = answer.body["error"]["details"]["retry_after_ms"]
        .as_u64()
        .unwrap();
    assert!(ms > 0 && ms <= PER_HOUR, "{ms}");
    assert_eq!(answer.retry_after, Some(ms.div_ceil(1000)));
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("per hour"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_limit_holds_per_user_across_two_nodes() {
    let db = TestDatabase::new().await;
    let a = node(&db, |_| {}).await;
    let b = node(&db, |_| {}).await;
    let alice = token(Uuid::new_v4(), None, &[]);
    let bob_id = Uuid::new_v4();
    let bob = token(bob_id, None, &[]);

    // A limit of 6 leases one call at a time: exact, whichever node is asked.
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            call(node, "six", Some(&alice)).await.status,
            200,
            "call {i}"
        );
    }
    assert_throttled(&call(&a, "six", Some(&alice)).await);
    assert_throttled(&call(&b, "six", Some(&alice)).await);
    // Another user, and another handler, have their own counts.
    assert_eq!(call(&b, "six", Some(&bob)).await.status, 200);
    assert_eq!(call(&b, "thirty", Some(&alice)).await.status, 200);

    // 30 leases 3 at a time: the two nodes together never pass 30, and refuse at most
    // (nodes - 1) × (lease - 1) = 2 calls early.
    let mut passed = 0;
    for i in 0..40 {
        let node = if i % 2 == 0 { &a } else { &b };
        let answer = call(node, "thirty", Some(&bob)).await;
        match answer.status {
            200 => passed += 1,
            _ => assert_throttled(&answer),
        }
    }
    assert!((28..=30).contains(&passed), "{passed} calls passed");
    let used: i32 = sqlx::query_scalar("SELECT used FROM forge_rate_limits WHERE key = $1")
        .bind(format!("rpc:thirty:user:{bob_id}"))
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(used, 30, "calls leased out never pass the limit");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_callers_are_limited_per_ip_and_cannot_forge_another() {
    let db = TestDatabase::new().await;
    let node = node(&db, |config| {
        config.rate_limit = limit(3);
    })
    .await;
    // The handler's own limit (2 per IP when anonymous) comes on top of FORGE_RATE_LIMIT.
    assert_eq!(call(&node, "open_two", None).await.status, 200);
    assert_eq!(call(&node, "open_two", None).await.status, 200);
    assert_throttled(&call(&node, "open_two", None).await);
    // That refusal counted against the address too: 3 anonymous calls in all.
    let answer = call(&node, "free", None).await;
    assert_throttled(&answer);
    assert!(answer.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("FORGE_RATE_LIMIT"));
    // X-Forwarded-For from an untrusted peer changes nothing.
    let forged = post(
        &node,
        "/_api/rpc/free",
        json!({"args": {}}),
        &[("x-forwarded-for", "198.51.100.7")],
    )
    .await;
    assert_throttled(&forged);
    // A signed-in caller is not anonymous.
    let user = token(Uuid::new_v4(), None, &[]);
    assert_eq!(call(&node, "free", Some(&user)).await.status, 200);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_limited_per_source_ip() {
    let db = TestDatabase::new().await;
    let node = node(&db, |config| {
        config.webhook_rate_limit = limit(2);
    })
    .await;
    for _ in 0..2 {
        assert_eq!(post(&node, "/hooks/open", json!({}), &[]).await.status, 200);
    }
    assert_throttled(&post(&node, "/hooks/open", json!({}), &[]).await);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_tools_are_limited_per_user() {
    let db = TestDatabase::new().await;
    let node = node(&db, |_| {}).await;
    let bearer = format!("Bearer {}", token(Uuid::new_v4(), None, &[]));
    let headers = [
        ("authorization", bearer.as_str()),
        ("accept", "application/json, text/event-stream"),
    ];
    let request =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "once"}});
    let first = post(&node, "/_api/mcp", request.clone(), &headers).await;
    assert_eq!(first.body["result"]["isError"], false, "{}", first.body);
    let second = post(&node, "/_api/mcp", request, &headers).await;
    let result = &second.body["result"];
    assert_eq!(result["isError"], true, "{}", second.body);
    let error = &result["structuredContent"]["error"];
    assert_eq!(error["code"], "RATE_LIMITED");
    assert!(error["details"]["retry_after_ms"].as_u64().unwrap() > 0);
    node.shutdown().await.unwrap();
}
