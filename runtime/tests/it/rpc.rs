//! The RPC gateway against a real PostgreSQL: envelope, auth, validation, transactions,
//! timeouts and panics.

use std::time::Duration;

use forge::registry::{decode_args, Backoff, JobDef, MutationDef, NoArgs, QueryDef, Retry};
use forge::testing::{config, token, TestDatabase};
use forge::{App, MutationContext, QueryContext, Registry, Running};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

fn query(name: &'static str, public: bool, timeout_ms: Option<u64>) -> QueryDef {
    QueryDef {
        name,
        module: "",
        public,
        unscoped: true,
        cache_ms: None,
        timeout_ms,
        tables_read: &[],
        rate_limit: None,
    }
}

fn mutation(name: &'static str, transactional: bool) -> MutationDef {
    MutationDef {
        name,
        module: "",
        transactional,
        public: false,
        timeout_ms: None,
        tables_written: &["notes"],
        rate_limit: None,
    }
}

#[derive(Deserialize)]
struct AddArgs {
    text: String,
    fail: bool,
}

fn register(registry: &mut Registry) {
    registry.query(
        query("hello", true, None),
        |ctx: QueryContext, args| async move {
            decode_args::<NoArgs>(args)?;
            Ok(json!({"user": ctx.user_id().ok()}))
        },
    );
    registry.query(
        query("whoami", false, None),
        |ctx: QueryContext, args| async move {
            decode_args::<NoArgs>(args)?;
            Ok(json!({"user": ctx.user_id()?, "tenant": ctx.tenant_id().ok()}))
        },
    );
    #[derive(Deserialize)]
    struct Limit {
        #[allow(dead_code)]
        limit: i32,
    }
    registry.query(
        query("typed", true, None),
        |_ctx: QueryContext, args| async move {
            let Limit { .. } = decode_args(args)?;
            Ok(())
        },
    );
    registry.query(
        query("slow", true, Some(100)),
        |_ctx: QueryContext, _args| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        },
    );
    registry.query(
        query("boom", true, None),
        |_ctx: QueryContext, _args| async move {
            if Uuid::new_v4().is_nil() {
                return Ok(());
            }
            panic!("kaboom")
        },
    );
    registry.query(
        query("count_notes", true, None),
        |ctx: QueryContext, _args| async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
                .fetch_one(ctx.db())
                .await?;
            let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_jobs")
                .fetch_one(ctx.db())
                .await?;
            Ok(json!({"notes": n, "jobs": jobs}))
        },
    );
    for (name, transactional) in [("add_note", true), ("add_note_loose", false)] {
        registry.mutation(
            mutation(name, transactional),
            |ctx: MutationContext, args| async move {
                let AddArgs { text, fail } = decode_args(args)?;
                sqlx::query("INSERT INTO notes (owner, text) VALUES ($1, $2)")
                    .bind(ctx.user_id()?)
                    .bind(&text)
                    .execute(ctx.tx())
                    .await?;
                let rows: Vec<(String,)> = sqlx::query_as("SELECT text FROM notes")
                    .fetch_all(ctx.tx())
                    .await?;
                ctx.dispatch_job("mail", json!({"text": text})).await?;
                if fail {
                    return Err(forge::Error::Validation("asked to fail".into()));
                }
                Ok(rows.len())
            },
        );
    }
    let retry = Retry {
        max_attempts: 1,
        backoff: Backoff::Fixed,
        base_ms: 1000,
        max_ms: 1000,
    };
    registry.job(
        JobDef {
            name: "mail",
            module: "",
            retry,
            timeout_ms: None,
            queue: "default",
            priority: 0,
        },
        |_ctx, _input| async move { Ok(()) },
    );
}

struct Fixture {
    _db: TestDatabase,
    node: Running,
    http: reqwest::Client,
}

async fn start() -> Fixture {
    let db = TestDatabase::new().await;
    sqlx::query(
        "CREATE TABLE notes (id serial PRIMARY KEY, owner uuid NOT NULL, text text NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let mut config = config(db.url());
    config.body_limit = 1024;
    config.job_concurrency = 0;
    let node = App::new(config).register(register).start().await.unwrap();
    Fixture {
        _db: db,
        node,
        http: reqwest::Client::new(),
    }
}

impl Fixture {
    async fn call(&self, name: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("http://{}/_api/rpc/{name}", self.node.addr()))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header = response.headers().get("x-request-id").cloned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            header.unwrap().to_str().unwrap(),
            body["request_id"].as_str().unwrap()
        );
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn envelope_auth_and_errors() {
    let f = start().await;
    let user = Uuid::new_v4();
    let tenant = Uuid::new_v4();
    let good = token(user, Some(tenant), &[]);

    let (status, body) = f.call("hello", json!({"args": {}}), None).await;
    assert_eq!(
        (status, &body["success"], &body["data"]),
        (200, &json!(true), &json!({"user": null}))
    );
    // A public handler still sees a valid caller, and ignores an invalid token.
    let (_, body) = f.call("hello", json!({"args": {}}), Some(&good)).await;
    assert_eq!(body["data"]["user"], json!(user));
    let (status, _) = f.call("hello", json!({}), Some("not-a-jwt")).await;
    assert_eq!(status, 200);

    let (status, body) = f.call("whoami", json!({"args": {}}), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("UNAUTHORIZED"))
    );
    let (status, _) = f
        .call("whoami", json!({"args": {}}), Some("not-a-jwt"))
        .await;
    assert_eq!(status, 401);
    let (status, body) = f.call("whoami", json!({"args": {}}), Some(&good)).await;
    assert_eq!(
        (status, &body["data"]),
        (200, &json!({"user": user, "tenant": tenant}))
    );

    let (status, body) = f
        .call("typed", json!({"args": {"limit": "ten"}}), None)
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("VALIDATION_ERROR"))
    );
    assert_eq!(body["error"]["details"]["field"], "limit");
    let (status, body) = f
        .call("hello", json!({"args": {"surprise": 1}}), None)
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("VALIDATION_ERROR")),
        "{body}"
    );

    let (status, body) = f.call("nope", json!({"args": {}}), None).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("NOT_FOUND")));

    let (status, body) = f.call("slow", json!({"args": {}}), None).await;
    assert_eq!((status, &body["error"]["code"]), (504, &json!("TIMEOUT")));

    let (status, body) = f.call("boom", json!({"args": {}}), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (500, &json!("INTERNAL_ERROR"))
    );
    assert_eq!(body["error"]["message"], "internal error");
    // The server survived the panic.
    let (status, _) = f.call("hello", json!({"args": {}}), None).await;
    assert_eq!(status, 200);

    let (status, body) = f
        .call("hello", json!({"args": {"pad": "x".repeat(2000)}}), None)
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("VALIDATION_ERROR")),
        "{body}"
    );
    f.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn mutations_commit_on_ok_and_roll_back_on_err_with_their_jobs() {
    let f = start().await;
    let good = token(Uuid::new_v4(), None, &[]);
    let counts = || f.call("count_notes", json!({"args": {}}), None);

    let (status, body) = f
        .call(
            "add_note",
            json!({"args": {"text": "a", "fail": false}}),
            Some(&good),
        )
        .await;
    // The mutation reads its own uncommitted write through ctx.tx().
    assert_eq!((status, &body["data"]), (200, &json!(1)), "{body}");
    assert_eq!(counts().await.1["data"], json!({"notes": 1, "jobs": 1}));

    let (status, _) = f
        .call(
            "add_note",
            json!({"args": {"text": "b", "fail": true}}),
            Some(&good),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        counts().await.1["data"],
        json!({"notes": 1, "jobs": 1}),
        "rolled back, job included"
    );

    // Not transactional: the insert stays even though the mutation fails.
    let (status, _) = f
        .call(
            "add_note_loose",
            json!({"args": {"text": "c", "fail": true}}),
            Some(&good),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(counts().await.1["data"], json!({"notes": 2, "jobs": 2}));
    f.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness() {
    let f = start().await;
    let get = |path: &str| f.http.get(format!("http://{}{path}", f.node.addr())).send();
    assert_eq!(get("/_api/health").await.unwrap().status(), 200);
    assert_eq!(get("/_api/ready").await.unwrap().status(), 200);
    f.node.shutdown().await.unwrap();
}

/// Reads the next server-sent event of `stream`: its name and its data.
async fn next_event(stream: &mut reqwest::Response, buffer: &mut String) -> (String, Value) {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            // Keep-alive comments have no data.
            if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                return (event, serde_json::from_str(&data).unwrap());
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream is open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_sessions_and_subscriptions_are_checked_and_limited_per_user() {
    let db = TestDatabase::new().await;
    let mut config = config(db.url());
    config.job_concurrency = 0;
    config.live_max_sessions_per_user = 1;
    config.live_max_subscriptions_per_user = 1;
    let node = App::new(config).register(register).start().await.unwrap();
    let base = format!("http://{}", node.addr());
    let http = reqwest::Client::new();
    let user = Uuid::new_v4();
    let bearer = format!("Bearer {}", token(user, None, &[]));

    let mut events = http
        .get(format!("{base}/_api/events"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut buffer = String::new();
    let (event, session) = next_event(&mut events, &mut buffer).await;
    assert_eq!(event, "connected");
    let second = http
        .get(format!("{base}/_api/events"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);
    let refused: Value = second.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "RATE_LIMITED");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("FORGE_LIVE_MAX_SESSIONS_PER_USER"),
        "{message}"
    );

    let subscribe = |id: &str, function: &str, secret: &Value, auth: Option<&str>| {
        let mut request = http.post(format!("{base}/_api/subscribe")).json(&json!({
            "session_id": session["session_id"], "session_secret": secret,
            "subscription_id": id, "function": function, "args": {},
        }));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let secret = &session["session_secret"];
    // A private query runs as the subscriber; its first result arrives on the stream.
    let (status, _) = subscribe("1", "whoami", secret, Some(&bearer)).await;
    assert_eq!(status, 200);
    let (event, update) = next_event(&mut events, &mut buffer).await;
    assert_eq!(event, "update");
    assert_eq!(update["subscription_id"], "1");
    assert_eq!(update["data"]["user"], json!(user));

    let (status, refused) = subscribe("2", "hello", secret, Some(&bearer)).await;
    assert_eq!(status, 429, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("FORGE_LIVE_MAX_SUBSCRIPTIONS_PER_USER"),
        "{message}"
    );
    let (status, _) = subscribe("2", "hello", &json!("wrong"), Some(&bearer)).await;
    assert_eq!(status, 404, "a wrong session secret");
    let (status, _) = subscribe("2", "whoami", secret, None).await;
    assert_eq!(status, 401, "a private query needs a token");
    let (status, _) = subscribe("2", "no_such_query", secret, Some(&bearer)).await;
    assert_eq!(status, 404);

    let unsubscribed: Value = http
        .post(format!("{base}/_api/unsubscribe"))
        .json(&json!({
            "session_id": session["session_id"], "session_secret": secret,
            "subscription_id": "1",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unsubscribed["data"], true);
    let (status, _) = subscribe("2", "hello", secret, Some(&bearer)).await;
    assert_eq!(status, 200, "room again after unsubscribing");
    let (event, update) = next_event(&mut events, &mut buffer).await;
    assert_eq!(
        (event.as_str(), &update["subscription_id"]),
        ("update", &json!("2"))
    );
    node.shutdown().await.unwrap();
}
