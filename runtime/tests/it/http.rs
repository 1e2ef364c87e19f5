//! `ctx.http()` and `forge::http::Client` against a real server on 127.0.0.1: loopback
//! refused as a literal, as a name that resolves to it and as a redirect target;
//! `FORGE_HTTP_ALLOW` lets the listed host or network through. Nothing refused reaches the
//! server.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use forge::http::{Allow, Client, Error};
use forge::registry::{decode_args, QueryDef};
use forge::testing::{config, TestDatabase};
use forge::{App, QueryContext};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A minimal HTTP/1.1 server: `/hello` answers `hi`, `/to?<url>` redirects to `<url>`.
/// Counts the requests it got.
async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let hits = counted.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let Ok(n) = socket.read(&mut buffer).await else {
                    return;
                };
                hits.fetch_add(1, Ordering::SeqCst);
                let request = String::from_utf8_lossy(&buffer[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match path.split_once("/to?") {
                    Some((_, target)) => format!(
                        "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    None => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
                        .to_owned(),
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, hits)
}

fn blocked(result: Result<forge::http::Response, Error>) -> (String, IpAddr) {
    match result {
        Err(Error::Blocked { host, addr }) => (host, addr),
        Err(other) => panic!("expected Blocked, got {other:?}"),
        Ok(response) => panic!("expected Blocked, got {}", response.status()),
    }
}

#[tokio::test]
async fn loopback_is_refused_as_a_literal_and_as_a_name() {
    let (addr, hits) = server().await;
    let client = Client::builder(Allow::default())
        .resolve("loopback.test", addr)
        .build()
        .unwrap();
    let port = addr.port();
    let (host, ip) = blocked(
        client
            .get(format!("http://127.0.0.1:{port}/hello"))
            .send()
            .await,
    );
    assert_eq!((host.as_str(), ip), ("127.0.0.1", addr.ip()));
    let (host, ip) = blocked(
        client
            .get(format!("http://loopback.test:{port}/hello"))
            .send()
            .await,
    );
    assert_eq!((host.as_str(), ip), ("loopback.test", addr.ip()));
    // IPv6 spellings of loopback, and the unspecified address (which connects locally).
    for url in [
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://100.64.0.1/".to_owned(),
    ] {
        blocked(client.get(&url).send().await);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing refused was sent");
    // A refusal is a forge::Error a handler can `?`; it says how to allow the address.
    let error: forge::Error = Error::Blocked { host, addr: ip }.into();
    assert_eq!(error.code(), "INTERNAL_ERROR");
    assert!(error.to_string().contains("FORGE_HTTP_ALLOW"), "{error}");
}

#[tokio::test]
async fn allowed_hosts_pass_and_their_redirects_are_checked_again() {
    let (addr, hits) = server().await;
    let port = addr.port();
    let client = Client::builder(Allow::parse("allowed.test").unwrap())
        .resolve("allowed.test", addr)
        .resolve("internal.test", addr)
        .build()
        .unwrap();
    let base = format!("http://allowed.test:{port}");
    let response = client.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hi");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Following a redirect to the allowed host itself is fine…
    let response = client
        .get(format!("{base}/to?{base}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hi");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // …but not to a private address, literal or by name.
    let (host, _) = blocked(
        client
            .get(format!("{base}/to?http://127.0.0.1:{port}/hello"))
            .send()
            .await,
    );
    assert_eq!(host, "127.0.0.1");
    let (host, _) = blocked(
        client
            .get(format!("{base}/to?http://internal.test:{port}/hello"))
            .send()
            .await,
    );
    assert_eq!(host, "internal.test");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        5,
        "only the redirecting requests arrived"
    );

    // A network in the list lets its addresses through whatever the name.
    let by_net = Client::new(Allow::parse("127.0.0.0/8").unwrap()).unwrap();
    let response = by_net
        .get(format!("http://127.0.0.1:{port}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[derive(Deserialize)]
struct FetchArgs {
    url: String,
}

/// Every context has `http()`; a handler matches the refusal.
#[tokio::test(flavor = "multi_thread")]
async fn handlers_reach_the_client_through_their_context() {
    let (addr, _hits) = server().await;
    let db = TestDatabase::new().await;
    let mut config = config(db.url());
    config.job_concurrency = 0;
    config.http_allow = Allow::parse("127.0.0.1").unwrap();
    let node = App::new(config)
        .register(|registry| {
            registry.query(
                QueryDef {
                    name: "fetch",
                    module: "",
                    public: true,
                    unscoped: true,
                    cache_ms: None,
                    timeout_ms: None,
                    tables_read: &[],
                    rate_limit: None,
                },
                |ctx: QueryContext, args| async move {
                    let FetchArgs { url } = decode_args(args)?;
                    match ctx.http().get(&url).send().await {
                        Err(Error::Blocked { host, .. }) => Ok(json!({ "blocked": host })),
                        Err(other) => Err(other.into()),
                        Ok(response) => Ok(json!({ "body": response.text().await? })),
                    }
                },
            );
        })
        .start()
        .await
        .unwrap();
    let call = |url: String| {
        let node_addr = node.addr();
        async move {
            let response = reqwest::Client::new()
                .post(format!("http://{node_addr}/_api/rpc/fetch"))
                .json(&json!({"args": {"url": url}}))
                .send()
                .await
                .unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let port = addr.port();
    // The node's FORGE_HTTP_ALLOW reaches ctx.http(): 127.0.0.1 is listed, ::1 is not.
    let body = call(format!("http://127.0.0.1:{port}/hello")).await;
    assert_eq!(body["data"], json!({"body": "hi"}), "{body}");
    let body = call(format!("http://[::1]:{port}/hello")).await;
    assert_eq!(body["data"], json!({"blocked": "[::1]"}), "{body}");
    node.shutdown().await.unwrap();
}
