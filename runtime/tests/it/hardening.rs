//! What a hostile client tries against a running node (issue 15), each against a node on a
//! real database over real sockets: slow and never-reading clients, session floods, bad
//! tokens, expired tokens, slowloris, oversized requests and bodies, data Postgres refuses,
//! readiness with a database that stops answering, and MCP batches.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forge::registry::{decode_args, MutationDef, NoArgs, QueryDef};
use forge::testing::{token, TestDatabase, JWT_SECRET};
use forge::{App, Config, MutationContext, QueryContext, Registry, Running};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use uuid::Uuid;

fn query(name: &'static str, public: bool) -> QueryDef {
    QueryDef {
        rate_limit: None,
        name,
        module: "",
        public,
        unscoped: true,
        cache_ms: None,
        timeout_ms: None,
        tables_read: &["blobs"],
    }
}

#[derive(Deserialize)]
struct BigArgs {
    k: i32,
    size: usize,
}

#[derive(Deserialize)]
struct TextArgs {
    text: String,
}

fn register(registry: &mut Registry) {
    // A large result that changes with every write to `blobs`.
    registry.query(query("big", true), |ctx: QueryContext, args| async move {
        let BigArgs { k, size } = decode_args(args)?;
        let v: i64 = sqlx::query_scalar("SELECT coalesce(sum(v), 0)::bigint FROM blobs")
            .fetch_one(ctx.db())
            .await?;
        Ok(json!({"k": k, "v": v, "pad": "x".repeat(size)}))
    });
    // What the caller's token says about its plan, and the current version.
    registry.query(query("plan", false), |ctx: QueryContext, args| async move {
        decode_args::<NoArgs>(args)?;
        let v: i64 = sqlx::query_scalar("SELECT coalesce(sum(v), 0)::bigint FROM blobs")
            .fetch_one(ctx.db())
            .await?;
        Ok(json!({"plan": ctx.auth()?.claims["plan"], "v": v}))
    });
    registry.mutation(
        MutationDef {
            rate_limit: None,
            name: "label",
            module: "",
            transactional: true,
            public: true,
            timeout_ms: None,
            tables_written: &["labels"],
        },
        |ctx: MutationContext, args| async move {
            let TextArgs { text } = decode_args(args)?;
            sqlx::query("INSERT INTO labels (text) VALUES ($1)")
                .bind(&text)
                .execute(ctx.tx())
                .await?;
            Ok(())
        },
    );
}

/// The configuration of [`forge::testing::config`] with `vars` as the environment.
fn settings(url: &str, vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let base = forge::testing::config(url);
    let mut config = Config::from_lookup(&std::env::temp_dir(), |key| vars.get(key).cloned())
        .expect("valid settings");
    config.addr = base.addr;
    config.database_url = base.database_url;
    config.jwt_secret = base.jwt_secret;
    config.migrations_dir = base.migrations_dir;
    config.max_connections = base.max_connections;
    config.shutdown_grace = base.shutdown_grace;
    config.job_lease = base.job_lease;
    config.poll_interval = base.poll_interval;
    config.leader_lease = base.leader_lease;
    config.heartbeat = base.heartbeat;
    config.job_concurrency = 0;
    config
}

async fn tables(db: &TestDatabase) {
    sqlx::raw_sql(
        "CREATE TABLE blobs (k int PRIMARY KEY, v bigint NOT NULL); \
         INSERT INTO blobs SELECT k, 0 FROM generate_series(0, 19) k; \
         CREATE TABLE labels (text text NOT NULL CONSTRAINT labels_text_unique UNIQUE);",
    )
    .execute(db.pool())
    .await
    .unwrap();
}

async fn start(db: &TestDatabase, vars: &[(&str, &str)]) -> Running {
    let node = App::new(settings(db.url(), vars))
        .register(register)
        .start()
        .await
        .unwrap();
    sqlx::query("SELECT forge_enable_reactivity('blobs')")
        .execute(db.pool())
        .await
        .unwrap();
    node
}

/// Sends `request` on a fresh connection and reads until `until` is in what came back, or
/// the connection closes, or `within` passes; what came back.
async fn raw(addr: SocketAddr, request: &[u8], until: &str, within: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_until(&mut stream, until, within).await
}

async fn read_until(stream: &mut TcpStream, until: &str, within: Duration) -> String {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
            if String::from_utf8_lossy(&seen).contains(until) {
                return;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&seen).into_owned()
}

/// Whether the server closed `stream` within `within` (reading and discarding what it
/// sends meanwhile).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The JSON body of a raw HTTP/1.1 answer.
fn body_of(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// One `/_api/events` session read by a client that keeps up: its id pair and its events.
struct Session {
    id: String,
    secret: String,
    events: mpsc::UnboundedReceiver<(String, Value)>,
}

async fn open(
    http: &reqwest::Client,
    base: &str,
    bearer: Option<&str>,
) -> Result<Session, (u16, Value)> {
    let mut request = http.get(format!("{base}/_api/events"));
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    let mut response = request.send().await.unwrap();
    if response.status() != 200 {
        let status = response.status().as_u16();
        return Err((status, response.json().await.unwrap_or(Value::Null)));
    }
    let (sender, mut events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        // Reads until the session is dropped, then lets the connection go.
        loop {
            let chunk = tokio::select! {
                () = sender.closed() => return,
                chunk = response.chunk() => chunk,
            };
            let Ok(Some(chunk)) = chunk else { return };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let event = block.lines().find_map(|l| l.strip_prefix("event:"));
                let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                if let (Some(event), Some(data)) = (event, data) {
                    let data = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                    let _ = sender.send((event.trim().to_owned(), data));
                }
            }
        }
    });
    let (event, data) = events.recv().await.unwrap();
    assert_eq!(event, "connected");
    Ok(Session {
        id: data["session_id"].as_str().unwrap().to_owned(),
        secret: data["session_secret"].as_str().unwrap().to_owned(),
        events,
    })
}

async fn subscribe(
    http: &reqwest::Client,
    base: &str,
    bearer: Option<&str>,
    (id, secret): (&str, &str),
    subscription: &str,
    function: &str,
    args: Value,
) -> Value {
    let mut request = http.post(format!("{base}/_api/subscribe")).json(&json!({
        "session_id": id, "session_secret": secret, "subscription_id": subscription,
        "function": function, "args": args,
    }));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn next_event(session: &mut Session, within: Duration) -> Option<(String, Value)> {
    tokio::time::timeout(within, session.events.recv())
        .await
        .ok()
        .flatten()
}

fn signed(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Item 1: a client that opens a session, subscribes to large results and never reads.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_that_stops_reading_is_bounded_and_disconnected() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let max = 256 * 1024;
    let node = start(&db, &[("FORGE_LIVE_MAX_QUEUED_BYTES", &max.to_string())]).await;
    let base = format!("http://{}", node.addr());
    let http = reqwest::Client::new();

    let mut stream = TcpStream::connect(node.addr()).await.unwrap();
    stream
        .write_all(b"GET /_api/events HTTP/1.1\r\nhost: forge\r\n\r\n")
        .await
        .unwrap();
    let head = read_until(&mut stream, "session_secret", Duration::from_secs(5)).await;
    let data = head
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .expect("the connected event");
    let connected: Value = serde_json::from_str(data.trim()).unwrap();
    let pair = (
        connected["session_id"].as_str().unwrap(),
        connected["session_secret"].as_str().unwrap(),
    );
    // From here on the client reads nothing: every write below re-runs 20 results of
    // 50 kB for it.
    let size = 50_000;
    for k in 0..20 {
        let answer = subscribe(
            &http,
            &base,
            None,
            pair,
            &format!("s{k}"),
            "big",
            json!({"k": k, "size": size}),
        )
        .await;
        if answer["success"] != true {
            // The session was already dropped for falling behind.
            assert_eq!(answer["error"]["code"], "NOT_FOUND", "{answer}");
            break;
        }
    }
    let mut peak_queued = 0;
    for _ in 0..40 {
        sqlx::query("UPDATE blobs SET v = v + 1 WHERE k = 0")
            .execute(db.pool())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        peak_queued = peak_queued.max(node.live_stats().queued_bytes);
    }
    assert!(
        closed_within(&mut stream, Duration::from_secs(5)).await,
        "the session that fell behind is still connected"
    );
    assert!(
        peak_queued <= max + size + 1024,
        "{peak_queued} bytes were queued"
    );
    let stats = node.live_stats();
    assert_eq!((stats.sessions, stats.queued_bytes), (0, 0), "{stats:?}");

    // A client that reads is served as before.
    let mut reader = open(&http, &base, None).await.unwrap();
    let answer = subscribe(
        &http,
        &base,
        None,
        (&reader.id, &reader.secret),
        "a",
        "big",
        json!({"k": 1, "size": 10}),
    )
    .await;
    assert_eq!(answer["success"], true, "{answer}");
    let (event, data) = next_event(&mut reader, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((event.as_str(), &data["data"]["k"]), ("update", &json!(1)));
    node.shutdown().await.unwrap();
}

/// Item 2: anonymous session floods, from one address and from several, and a bad token.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_limited_per_address_and_per_node_and_a_bad_token_is_401() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let node = start(
        &db,
        &[
            ("FORGE_LIVE_MAX_SESSIONS_PER_IP", "3"),
            ("FORGE_LIVE_MAX_SESSIONS", "5"),
            ("FORGE_LIVE_MAX_SESSIONS_PER_USER", "2"),
        ],
    )
    .await;
    let base = format!("http://{}", node.addr());
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let (first, second) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let mut open_sessions = Vec::new();
    for _ in 0..3 {
        open_sessions.push(open(&first, &base, None).await.unwrap());
    }
    let (status, body) = open(&first, &base, None)
        .await
        .err()
        .expect("over the limit");
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("RATE_LIMITED"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("FORGE_LIVE_MAX_SESSIONS_PER_IP"),
        "{message}"
    );
    for _ in 0..2 {
        open_sessions.push(open(&second, &base, None).await.unwrap());
    }
    let third = from([127, 0, 0, 3]);
    let (status, body) = open(&third, &base, None)
        .await
        .err()
        .expect("over the node's limit");
    assert_eq!(status, 429);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("(FORGE_LIVE_MAX_SESSIONS)"), "{message}");
    // The node still answers everything else at once.
    let started = Instant::now();
    let health = third
        .get(format!("{base}/_api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(node.live_stats().sessions, 5);
    drop(open_sessions);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.live_stats().sessions, 0);

    // A user at their cap cannot open more by sending a token that does not verify.
    let user = token(Uuid::new_v4(), None, &[]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let client = from([127, 0, 0, 4]);
        held.push(open(&client, &base, Some(&user)).await.unwrap());
    }
    let client = from([127, 0, 0, 5]);
    let (status, _) = open(&client, &base, Some(&user))
        .await
        .err()
        .expect("user cap");
    assert_eq!(status, 429);
    let (status, body) = open(&client, &base, Some("garbage"))
        .await
        .err()
        .expect("bad token");
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("UNAUTHORIZED"))
    );
    node.shutdown().await.unwrap();
}

/// Item 3: a subscription ends with its token; results are not shared across claims.
#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_ends_with_its_token_and_claims_split_groups() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let node = start(&db, &[]).await;
    let base = format!("http://{}", node.addr());
    let http = reqwest::Client::new();
    let user = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let short = signed(json!({"sub": user, "exp": now + 2, "plan": "free"}));
    let pro = signed(json!({"sub": user, "exp": now + 3600, "plan": "pro"}));

    let mut free_session = open(&http, &base, None).await.unwrap();
    let mut pro_session = open(&http, &base, None).await.unwrap();
    let pair = |s: &Session| (s.id.clone(), s.secret.clone());
    let (id, secret) = pair(&free_session);
    let answer = subscribe(
        &http,
        &base,
        Some(&short),
        (&id, &secret),
        "p",
        "plan",
        json!({}),
    )
    .await;
    assert_eq!(answer["success"], true, "{answer}");
    let (id, secret) = pair(&pro_session);
    let answer = subscribe(
        &http,
        &base,
        Some(&pro),
        (&id, &secret),
        "p",
        "plan",
        json!({}),
    )
    .await;
    assert_eq!(answer["success"], true, "{answer}");
    let (_, free) = next_event(&mut free_session, Duration::from_secs(5))
        .await
        .unwrap();
    let (_, paid) = next_event(&mut pro_session, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(free["data"]["plan"], "free");
    assert_eq!(
        paid["data"]["plan"], "pro",
        "one caller's claims reached another"
    );

    // The short token expires: its subscription ends with an error naming why, and the
    // tenant's data stops arriving.
    let (event, data) = next_event(&mut free_session, Duration::from_secs(5))
        .await
        .expect("an event when the token expires");
    assert_eq!(event, "error", "{data}");
    assert_eq!(data["error"]["code"], "UNAUTHORIZED", "{data}");
    assert!(data["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    sqlx::query("UPDATE blobs SET v = v + 1")
        .execute(db.pool())
        .await
        .unwrap();
    let (_, paid) = next_event(&mut pro_session, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(paid["data"]["v"], 20);
    assert!(
        next_event(&mut free_session, Duration::from_millis(500))
            .await
            .is_none(),
        "an expired subscription still receives updates"
    );
    // Subscribing again with a fresh token renews it.
    let (id, secret) = pair(&free_session);
    let fresh = signed(json!({"sub": user, "exp": now + 3600, "plan": "free"}));
    let answer = subscribe(
        &http,
        &base,
        Some(&fresh),
        (&id, &secret),
        "p",
        "plan",
        json!({}),
    )
    .await;
    assert_eq!(answer["success"], true, "{answer}");
    let (_, free) = next_event(&mut free_session, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        (&free["data"]["plan"], &free["data"]["v"]),
        (&json!("free"), &json!(20))
    );
    node.shutdown().await.unwrap();
}

/// Item 4: slowloris: half a request line, nothing at all, a body at a trickle; and a
/// shutdown with such connections open.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_silent_connections_time_out_and_do_not_hold_shutdown() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let mut config_vars = vec![
        ("FORGE_HTTP_HEADER_TIMEOUT", "500ms"),
        ("FORGE_HTTP_BODY_TIMEOUT", "500ms"),
    ];
    let node = start(&db, &config_vars).await;
    let addr = node.addr();

    let mut half_line = TcpStream::connect(addr).await.unwrap();
    half_line.write_all(b"GET /_api/hea").await.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let answer = read_until(&mut half_line, "}}", Duration::from_secs(3)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "half a request line: {answer:?}"
    );
    assert_eq!(body_of(&answer)["error"]["code"], "TIMEOUT", "{answer}");
    assert!(
        closed_within(&mut half_line, Duration::from_secs(1)).await,
        "half a request line is kept open"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "a silent connection is kept open"
    );

    let started = Instant::now();
    let answer = raw(
        addr,
        b"POST /_api/rpc/label HTTP/1.1\r\nhost: forge\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"args\":",
        "\r\n\r\n{",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(body_of(&answer)["error"]["code"], "TIMEOUT", "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Shutdown with an idle, a half-read and a half-sent connection open: at once, not
    // after the grace period.
    node.shutdown().await.unwrap();
    config_vars[0] = ("FORGE_HTTP_HEADER_TIMEOUT", "60s");
    config_vars[1] = ("FORGE_HTTP_BODY_TIMEOUT", "60s");
    config_vars.push(("FORGE_SHUTDOWN_GRACE", "20s"));
    let node = App::new(settings(db.url(), &config_vars))
        .register(register)
        .start()
        .await
        .unwrap();
    let addr = node.addr();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /_api/health HTTP/1.1\r\nhost: forge\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut idle, "\"ok\"", Duration::from_secs(3)).await;
    let mut half_head = TcpStream::connect(addr).await.unwrap();
    half_head
        .write_all(b"GET /_api/health HTTP/1.1\r\nhost: fo")
        .await
        .unwrap();
    let mut half_body = TcpStream::connect(addr).await.unwrap();
    half_body
        .write_all(b"POST /_api/rpc/label HTTP/1.1\r\nhost: forge\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    node.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    node_connections_closed(&mut [idle, half_head, half_body]).await;
}

async fn node_connections_closed(streams: &mut [TcpStream]) {
    for stream in streams {
        assert!(closed_within(stream, Duration::from_secs(1)).await);
    }
}

/// Item 4: past the connection limit a client gets 429 at once, and the node serves again
/// when connections close.
#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_limit_are_refused_with_429() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let node = start(&db, &[("FORGE_HTTP_MAX_CONNECTIONS", "20")]).await;
    let addr = node.addr();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node.open_connections(), 20);
    let answer = raw(
        addr,
        b"GET /_api/health HTTP/1.1\r\nhost: forge\r\n\r\n",
        "}",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    let body = body_of(&answer);
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("FORGE_HTTP_MAX_CONNECTIONS"));
    assert_eq!(node.open_connections(), 20);
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = raw(
        addr,
        b"GET /_api/health HTTP/1.1\r\nhost: forge\r\n\r\n",
        "}",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    node.shutdown().await.unwrap();
}

/// Item 5: every answer of the API has the envelope; admin endpoints authenticate before
/// they read a body.
#[tokio::test(flavor = "multi_thread")]
async fn errors_have_the_envelope_and_admin_bodies_are_read_after_auth() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let node = start(&db, &[]).await;
    let addr = node.addr();
    let answer = raw(
        addr,
        b"POST /_api/rpc/%FF HTTP/1.1\r\nhost: forge\r\ncontent-length: 2\r\n\r\n{}",
        "}",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    assert_eq!(
        body_of(&answer)["error"]["code"],
        "VALIDATION_ERROR",
        "{answer}"
    );

    // A 50 MB body announced to an admin endpoint without a token: 401 before any of it
    // is read (only its first bytes are ever sent).
    let path = format!("/_api/admin/workflows/{}/events/go", Uuid::new_v4());
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: forge\r\ncontent-length: {}\r\n\r\n{{\"a\":",
        50 * 1024 * 1024
    );
    let answer = raw(addr, request.as_bytes(), "}}", Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(
        body_of(&answer)["error"]["code"],
        "UNAUTHORIZED",
        "{answer}"
    );

    // A method a route does not take.
    let answer = raw(
        addr,
        b"DELETE /_api/health HTTP/1.1\r\nhost: forge\r\n\r\n",
        "}",
        Duration::from_secs(3),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert_eq!(body_of(&answer)["success"], false, "{answer}");
    node.shutdown().await.unwrap();
}

/// Item 6: data Postgres refuses is the client's error, with the constraint named.
#[tokio::test(flavor = "multi_thread")]
async fn data_the_database_refuses_is_a_validation_error() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let node = start(&db, &[]).await;
    let client = forge::testing::TestClient::new(&node);
    let error = client
        .call("label", json!({"text": "a\u{0}b"}))
        .await
        .unwrap_err();
    assert_eq!(
        (error.status, error.code.as_str()),
        (400, "VALIDATION_ERROR"),
        "{error}"
    );
    client.call("label", json!({"text": "once"})).await.unwrap();
    let error = client
        .call("label", json!({"text": "once"}))
        .await
        .unwrap_err();
    assert_eq!(
        (error.status, error.code.as_str()),
        (400, "VALIDATION_ERROR"),
        "{error}"
    );
    assert_eq!(error.details["constraint"], "labels_text_unique", "{error}");
    node.shutdown().await.unwrap();
}

/// A TCP proxy to the database that can stop passing bytes, as a database host that
/// stops answering does.
struct Proxy {
    addr: SocketAddr,
    stalled: Arc<AtomicBool>,
}

async fn proxy(to: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(to).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pass(client_read, server_write, flag.clone()));
                tokio::spawn(pass(server_read, client_write, flag));
            });
        }
    });
    Proxy { addr, stalled }
}

async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buffer = [0u8; 16384];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Item 7: `/_api/ready` answers from memory, at once, also while the database hangs.
#[tokio::test(flavor = "multi_thread")]
async fn ready_answers_within_a_second_while_the_database_hangs() {
    let db = TestDatabase::new().await;
    let url: url::Url = db.url().parse().unwrap();
    let to: SocketAddr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
        .parse()
        .unwrap();
    let proxy = proxy(to).await;
    let mut through = url.clone();
    through.set_port(Some(proxy.addr.port())).unwrap();
    let node = App::new(settings(
        through.as_str(),
        &[("FORGE_READY_INTERVAL", "100ms")],
    ))
    .register(register)
    .start()
    .await
    .unwrap();
    let ready_url = format!("http://{}/_api/ready", node.addr());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    assert_eq!(http.get(&ready_url).send().await.unwrap().status(), 200);

    proxy.stalled.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let mut answered_503 = false;
    while started.elapsed() < Duration::from_secs(4) {
        let asked = Instant::now();
        let response = http.get(&ready_url).send().await;
        let took = asked.elapsed();
        let response = response.unwrap_or_else(|e| panic!("no answer within {took:?}: {e}"));
        assert!(took < Duration::from_secs(1), "/_api/ready took {took:?}");
        if response.status() == 503 {
            let body: Value = response.json().await.unwrap();
            assert!(
                body["problems"][0].as_str().unwrap().contains("database"),
                "{body}"
            );
            answered_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered_503, "still ready with the database hanging");
    proxy.stalled.store(false, Ordering::SeqCst);
    node.shutdown().await.unwrap();
}

/// Item 8: an MCP batch is bounded.
#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_batch_past_the_limit_is_refused() {
    let db = TestDatabase::new().await;
    tables(&db).await;
    let node = start(&db, &[("FORGE_MCP_MAX_BATCH", "4")]).await;
    let http = reqwest::Client::new();
    let batch = |n: usize| -> Value {
        (0..n)
            .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .collect()
    };
    let post = |body: Value| {
        http.post(format!("http://{}/_api/mcp", node.addr()))
            .bearer_auth(token(Uuid::new_v4(), None, &[]))
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
    };
    let response = post(batch(4)).await.unwrap();
    assert_eq!(response.status(), 200);
    let response = post(batch(5)).await.unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("FORGE_MCP_MAX_BATCH"), "{message}");
    node.shutdown().await.unwrap();
}
