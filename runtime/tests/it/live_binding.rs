//! Live-query sessions are bound to the client that opened them (DESIGN.md, "Identity,
//! limits and outbound calls"): the session pair presented from another IP address or
//! User-Agent is 403, directly and behind a trusted proxy.

use std::net::IpAddr;
use std::time::Duration;

use forge::registry::{decode_args, NoArgs, QueryDef};
use forge::testing::{config, TestDatabase};
use forge::{App, QueryContext, Registry};
use serde_json::{json, Value};

fn register(registry: &mut Registry) {
    registry.query(
        QueryDef {
            rate_limit: None,
            name: "hello",
            module: "",
            public: true,
            unscoped: true,
            cache_ms: None,
            timeout_ms: None,
            tables_read: &[],
        },
        |_ctx: QueryContext, args| async move {
            decode_args::<NoArgs>(args)?;
            Ok("hi")
        },
    );
}

/// An HTTP client with this User-Agent, connecting from `from`.
fn client(user_agent: &str, from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(user_agent)
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Opens `/_api/events` and reads the `connected` event's data; the stream stays open.
async fn open(
    http: &reqwest::Client,
    base: &str,
    forwarded: Option<&str>,
) -> (reqwest::Response, Value) {
    let mut request = http.get(format!("{base}/_api/events"));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let mut response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer = String::new();
    loop {
        if let Some(line) = buffer.lines().find_map(|l| l.strip_prefix("data:")) {
            let session = serde_json::from_str(line.trim()).unwrap();
            return (response, session);
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("connected within 10 s")
            .unwrap()
            .expect("the stream is open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    forwarded: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = http.post(format!("{base}/_api/{path}")).json(&body);
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn subscription(session: &Value, id: &str) -> Value {
    json!({
        "session_id": session["session_id"], "session_secret": session["session_secret"],
        "subscription_id": id, "function": "hello", "args": {},
    })
}

#[tokio::test]
async fn a_session_pair_from_another_ip_or_user_agent_is_forbidden() {
    let db = TestDatabase::new().await;
    let node = App::new(config(db.url()))
        .register(register)
        .start()
        .await
        .unwrap();
    let base = format!("http://{}", node.addr());
    let browser = client("Mozilla/5.0 (forge test)", "127.0.0.1");
    let (_stream, session) = open(&browser, &base, None).await;
    let secret = session["session_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 64, "an HMAC-SHA256 in hex");

    let other_agent = client("curl/8.0", "127.0.0.1");
    let other_ip = client("Mozilla/5.0 (forge test)", "127.0.0.2");
    for (thief, what) in [(&other_agent, "User-Agent"), (&other_ip, "IP")] {
        let (status, body) =
            post(thief, &base, "subscribe", None, subscription(&session, "1")).await;
        assert_eq!(status, 403, "another {what}: {body}");
        assert_eq!(body["error"]["code"], "FORBIDDEN");
        let (status, _) = post(
            thief,
            &base,
            "unsubscribe",
            None,
            subscription(&session, "1"),
        )
        .await;
        assert_eq!(status, 403, "another {what} unsubscribing");
    }
    // A wrong secret is still "no such session", from anywhere.
    let mut wrong = subscription(&session, "1");
    wrong["session_secret"] = json!("0".repeat(64));
    let (status, _) = post(&browser, &base, "subscribe", None, wrong).await;
    assert_eq!(status, 404);
    // The client that opened it subscribes.
    let (status, body) = post(
        &browser,
        &base,
        "subscribe",
        None,
        subscription(&session, "1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_bound() {
    let db = TestDatabase::new().await;
    let mut config = config(db.url());
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let node = App::new(config).register(register).start().await.unwrap();
    let base = format!("http://{}", node.addr());
    let proxy = client("Mozilla/5.0 (forge test)", "127.0.0.1");
    let (_stream, session) = open(&proxy, &base, Some("198.51.100.7")).await;
    let (status, body) = post(
        &proxy,
        &base,
        "subscribe",
        Some("203.0.113.9"),
        subscription(&session, "1"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(
        &proxy,
        &base,
        "subscribe",
        Some("198.51.100.7"),
        subscription(&session, "1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    node.shutdown().await.unwrap();
}
