//! What browsers see, over HTTP: CORS for the configured origins on RPC and the live-query
//! endpoints, none for other origins, and the security headers on every response.

use forge::registry::{decode_args, NoArgs, QueryDef};
use forge::testing::{config, TestDatabase};
use forge::{App, QueryContext, Registry, Running};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::json;

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.net";

fn register(registry: &mut Registry) {
    registry.query(
        QueryDef {
            name: "hello",
            module: "",
            public: true,
            unscoped: true,
            cache_ms: None,
            timeout_ms: None,
            tables_read: &[],
            rate_limit: None,
        },
        |_ctx: QueryContext, args| async move {
            decode_args::<NoArgs>(args)?;
            Ok(json!("hi"))
        },
    );
}

async fn node(db: &TestDatabase, origins: &str) -> Running {
    let mut config = config(db.url());
    config.job_concurrency = 0;
    config.cors_origins = origins
        .split(',')
        .filter(|o| !o.is_empty())
        .map(|o| o.parse().unwrap())
        .collect();
    App::new(config).register(register).start().await.unwrap()
}

async fn send(
    node: &Running,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap) {
    let mut request =
        reqwest::Client::new().request(method.clone(), format!("http://{}{path}", node.addr()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if method == Method::POST {
        request = request.json(&json!({"args": {}}));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn preflight(origin: &'static str, method: &'static str) -> [(&'static str, &'static str); 3] {
    [
        ("origin", origin),
        ("access-control-request-method", method),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_origins_get_cors_on_rpc_and_live_endpoints_others_none() {
    let db = TestDatabase::new().await;
    let node = node(&db, &format!("{APP},http://localhost:5173")).await;

    for (path, method) in [
        ("/_api/rpc/hello", "POST"),
        ("/_api/subscribe", "POST"),
        ("/_api/unsubscribe", "POST"),
        ("/_api/events", "GET"),
    ] {
        let (status, headers) = send(&node, Method::OPTIONS, path, &preflight(APP, method)).await;
        assert_eq!(status, 200, "preflight of {path}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
        let allowed = header(&headers, "access-control-allow-headers")
            .unwrap()
            .to_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert!(header(&headers, "access-control-allow-methods")
            .unwrap()
            .contains(method));
        assert_eq!(header(&headers, "access-control-max-age"), Some("600"));

        let (_, headers) = send(&node, Method::OPTIONS, path, &preflight(EVIL, method)).await;
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            None,
            "{path}"
        );
        assert_eq!(
            header(&headers, "access-control-allow-headers"),
            None,
            "{path}"
        );
    }

    // The actual request: the origin is echoed (and `Vary: Origin` set) for the allowed one.
    let (status, headers) = send(&node, Method::POST, "/_api/rpc/hello", &[("origin", APP)]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));
    assert!(header(&headers, "access-control-expose-headers")
        .unwrap()
        .contains("retry-after"));
    assert!(header(&headers, "vary")
        .unwrap()
        .to_lowercase()
        .contains("origin"));
    let (_, headers) = send(
        &node,
        Method::POST,
        "/_api/rpc/hello",
        &[("origin", "http://localhost:5173")],
    )
    .await;
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let (status, headers) = send(&node, Method::POST, "/_api/rpc/hello", &[("origin", EVIL)]).await;
    assert_eq!(
        status, 200,
        "CORS is the browser's business; the server just says nothing"
    );
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    // Endpoints browsers of other origins have no business calling get no CORS.
    for path in ["/_api/health", "/_api/ready"] {
        let (_, headers) = send(&node, Method::GET, path, &[("origin", APP)]).await;
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            None,
            "{path}"
        );
    }
    let (_, headers) = send(&node, Method::OPTIONS, "/_api/mcp", &preflight(APP, "POST")).await;
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_origins_there_is_no_cors_and_every_response_has_the_security_headers() {
    let db = TestDatabase::new().await;
    let node = node(&db, "").await;
    let (status, headers) = send(
        &node,
        Method::OPTIONS,
        "/_api/rpc/hello",
        &preflight(APP, "POST"),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    for (method, path, expected) in [
        (Method::POST, "/_api/rpc/hello", 200),
        (Method::POST, "/_api/rpc/missing", 404),
        (Method::GET, "/_api/health", 200),
        (Method::POST, "/_api/mcp", 401),
        (Method::GET, "/_api/admin/nodes", 401),
        (Method::POST, "/no/such/webhook", 404),
        (Method::OPTIONS, "/_api/rpc/hello", 405),
    ] {
        let (status, headers) = send(&node, method.clone(), path, &[("origin", APP)]).await;
        assert_eq!(status, expected, "{method} {path}");
        assert_eq!(
            header(&headers, "x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
        assert_eq!(
            header(&headers, "referrer-policy"),
            Some("no-referrer"),
            "{method} {path}"
        );
    }
    node.shutdown().await.unwrap();
}
