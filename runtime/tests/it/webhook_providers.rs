//! The provider signature schemes over real HTTP: Stripe, GitHub and Standard Webhooks.
//! Each delivery is signed here the way the provider documents it, independently of the
//! runtime's code:
//! - Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//!   the key being the endpoint secret's text as is.
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
//! - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<ts>.<body>")>`
//!   where the key is the base64 after `whsec_` in the secret.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use forge::registry::{WebhookDef, WebhookSignature};
use forge::testing::{config, TestDatabase};
use forge::{App, Running, WebhookContext};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const STRIPE_ENV: &str = "FORGE_TEST_PROVIDERS_STRIPE_91c2";
const STRIPE_SECRET: &str = "whsec_stripe_endpoint_secret_0123";
const GITHUB_ENV: &str = "FORGE_TEST_PROVIDERS_GITHUB_91c2";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const STANDARD_ENV: &str = "FORGE_TEST_PROVIDERS_STANDARD_91c2";
const STANDARD_KEY: &[u8] = b"a standard webhooks key of 32 by";

fn set_secrets() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var(STRIPE_ENV, STRIPE_SECRET);
        std::env::set_var(GITHUB_ENV, GITHUB_SECRET);
        std::env::set_var(
            STANDARD_ENV,
            format!("whsec_{}", BASE64.encode(STANDARD_KEY)),
        );
    });
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn stripe_header(t: i64, body: &str) -> String {
    let signed = format!("{t}.{body}");
    format!(
        "t={t},v1={}",
        hex::encode(hmac(STRIPE_SECRET.as_bytes(), signed.as_bytes()))
    )
}

fn github_header(secret: &str, body: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac(secret.as_bytes(), body.as_bytes()))
    )
}

fn standard_signature(id: &str, ts: i64, body: &str) -> String {
    let signed = format!("{id}.{ts}.{body}");
    format!(
        "v1,{}",
        BASE64.encode(hmac(STANDARD_KEY, signed.as_bytes()))
    )
}

async fn start(runs: Arc<AtomicUsize>) -> (TestDatabase, Running) {
    set_secrets();
    let db = TestDatabase::new().await;
    let mut config = config(db.url());
    config.job_concurrency = 0;
    let node = App::new(config)
        .register(move |registry| {
            for (name, path, signature) in [
                (
                    "stripe",
                    "/hooks/stripe",
                    WebhookSignature::Stripe {
                        secret_env: STRIPE_ENV,
                        tolerance_ms: 300_000,
                    },
                ),
                (
                    "github",
                    "/hooks/github",
                    WebhookSignature::Github {
                        secret_env: GITHUB_ENV,
                    },
                ),
                (
                    "standard",
                    "/hooks/standard",
                    WebhookSignature::StandardWebhooks {
                        secret_env: STANDARD_ENV,
                        tolerance_ms: 60_000,
                    },
                ),
            ] {
                let runs = runs.clone();
                let def = WebhookDef {
                    name,
                    module: "hooks",
                    path,
                    signature: Some(signature),
                    idempotency_header: None,
                };
                registry.webhook(def, move |_ctx: WebhookContext, _body| {
                    let runs = runs.clone();
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok("ok")
                    }
                });
            }
        })
        .start()
        .await
        .unwrap();
    (db, node)
}

async fn deliver(
    node: &Running,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{path}", node.addr()))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

const BODY: &str = r#"{"id":"evt_1","type":"invoice.paid"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn stripe_signatures_and_their_timestamps() {
    let runs = Arc::new(AtomicUsize::new(0));
    let (_db, node) = start(runs.clone()).await;
    let send = |header: String, body: &'static str| {
        let node = &node;
        async move { deliver(node, "/hooks/stripe", body, &[("Stripe-Signature", header)]).await }
    };
    assert_eq!(send(stripe_header(now(), BODY), BODY).await.0, 200);
    // Within the 5-minute tolerance, either way.
    assert_eq!(send(stripe_header(now() - 240, BODY), BODY).await.0, 200);
    assert_eq!(send(stripe_header(now() + 60, BODY), BODY).await.0, 200);
    // Stripe sends one v1 per active secret during a rotation: one matching is enough.
    let rotated = format!(
        "{},v1={},v0=ignored",
        stripe_header(now(), BODY),
        "ab".repeat(32)
    );
    assert_eq!(send(rotated, BODY).await.0, 200);
    assert_eq!(runs.load(Ordering::SeqCst), 4);

    // A captured delivery replayed after the tolerance, correctly signed, is refused.
    let (status, body) = send(stripe_header(now() - 600, BODY), BODY).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("tolerance"), "{body}");
    // The timestamp is signed: moving it forward breaks the signature.
    let old = stripe_header(now() - 600, BODY);
    let moved = old.replacen(&format!("t={}", now() - 600), &format!("t={}", now()), 1);
    assert_eq!(send(moved, BODY).await.0, 401);
    let tampered = r#"{"id":"evt_1","type":"invoice.void"}"#;
    assert_eq!(send(stripe_header(now(), BODY), tampered).await.0, 401);
    assert_eq!(send(format!("v1={}", "00".repeat(32)), BODY).await.0, 401);
    assert_eq!(deliver(&node, "/hooks/stripe", BODY, &[]).await.0, 401);
    assert_eq!(runs.load(Ordering::SeqCst), 4, "nothing refused ran");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn github_signatures() {
    let runs = Arc::new(AtomicUsize::new(0));
    let (_db, node) = start(runs.clone()).await;
    let send = |header: String, body: &'static str| {
        let node = &node;
        async move {
            deliver(
                node,
                "/hooks/github",
                body,
                &[("X-Hub-Signature-256", header)],
            )
            .await
            .0
        }
    };
    assert_eq!(send(github_header(GITHUB_SECRET, BODY), BODY).await, 200);
    assert_eq!(send(github_header("another secret", BODY), BODY).await, 401);
    assert_eq!(send(github_header(GITHUB_SECRET, BODY), "{}").await, 401);
    let bare_hex = github_header(GITHUB_SECRET, BODY).replace("sha256=", "");
    assert_eq!(send(bare_hex, BODY).await, 401);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_webhooks_signatures_and_their_timestamps() {
    let runs = Arc::new(AtomicUsize::new(0));
    let (_db, node) = start(runs.clone()).await;
    let send = |id: &'static str, ts: i64, signature: String, body: &'static str| {
        let node = &node;
        async move {
            let headers = [
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", ts.to_string()),
                ("webhook-signature", signature),
            ];
            deliver(node, "/hooks/standard", body, &headers).await
        }
    };
    let ts = now();
    assert_eq!(
        send("msg_1", ts, standard_signature("msg_1", ts, BODY), BODY)
            .await
            .0,
        200
    );
    // Several signatures, space-separated (key rotation): one valid v1 is enough.
    let several = format!(
        "v1,{} {}",
        BASE64.encode([0u8; 32]),
        standard_signature("msg_2", ts, BODY)
    );
    assert_eq!(send("msg_2", ts, several, BODY).await.0, 200);
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // This webhook's tolerance is 1 minute: two minutes old is a replay.
    let old = ts - 120;
    let (status, body) = send("msg_3", old, standard_signature("msg_3", old, BODY), BODY).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("tolerance"), "{body}");
    // The id and the timestamp are signed.
    assert_eq!(
        send("msg_4", ts, standard_signature("msg_1", ts, BODY), BODY)
            .await
            .0,
        401
    );
    assert_eq!(
        send("msg_1", ts + 1, standard_signature("msg_1", ts, BODY), BODY)
            .await
            .0,
        401
    );
    assert_eq!(
        send("msg_1", ts, standard_signature("msg_1", ts, BODY), "{}")
            .await
            .0,
        401
    );
    let v2 = standard_signature("msg_1", ts, BODY).replace("v1,", "v2,");
    assert_eq!(send("msg_1", ts, v2, BODY).await.0, 401);
    assert_eq!(runs.load(Ordering::SeqCst), 2, "nothing refused ran");
    node.shutdown().await.unwrap();
}
