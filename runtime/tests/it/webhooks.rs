//! Webhooks over real HTTP against a real PostgreSQL: signatures, idempotency, the
//! transaction around the handler, body decoding and start-up checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use forge::registry::{decode_input, Backoff, JobDef, Retry, WebhookDef, WebhookSignature};
use forge::testing::{config, TestDatabase};
use forge::{App, Registry, Running, WebhookContext};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

/// The secret's variable, set once for the whole test binary before any node starts
/// (the environment is process-global; nothing else in these tests writes it).
const SECRET_ENV: &str = "FORGE_TEST_WEBHOOKS_SECRET_7f3a";
const SECRET: &str = "whsec_test_secret";

fn set_secret() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var(SECRET_ENV, SECRET));
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(default)]
    sleep_ms: u64,
}

/// How the test steers the handler: how many of the next runs fail, and how many ran.
#[derive(Default)]
struct Knobs {
    fail_next: AtomicUsize,
    runs: AtomicUsize,
}

fn register(knobs: Arc<Knobs>) -> impl FnOnce(&mut Registry) {
    move |registry| {
        let signed = WebhookDef {
            name: "signed",
            module: "hooks",
            path: "/hooks/signed",
            signature: Some(WebhookSignature::HmacSha256 {
                header: "X-Signature",
                secret_env: SECRET_ENV,
            }),
            idempotency_header: Some("Idempotency-Key"),
        };
        registry.webhook(signed, move |ctx: WebhookContext, body| {
            let knobs = knobs.clone();
            async move {
                let event: Event = decode_input(body)?;
                knobs.runs.fetch_add(1, Ordering::SeqCst);
                sqlx::query("INSERT INTO effects (event_id) VALUES ($1)")
                    .bind(&event.id)
                    .execute(ctx.tx())
                    .await?;
                ctx.dispatch_job("mail", json!({"event": event.id})).await?;
                tokio::time::sleep(Duration::from_millis(event.sleep_ms)).await;
                let fail = knobs
                    .fail_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if fail {
                    return Err(anyhow::anyhow!("the handler failed on purpose").into());
                }
                let source = ctx.headers().get("x-source").map(|v| v.to_str().unwrap());
                // The claim's bounded wait does not leak into the handler's statements.
                let lock_timeout: String =
                    sqlx::query_scalar("SELECT current_setting('lock_timeout')")
                        .fetch_one(ctx.tx())
                        .await?;
                Ok(json!({
                    "event": event.id,
                    "source": source,
                    "caller": ctx.user_id().is_ok(),
                    "lock_timeout": lock_timeout,
                }))
            }
        });
        let open = WebhookDef {
            name: "open",
            module: "hooks",
            path: "/hooks/open",
            signature: None,
            idempotency_header: None,
        };
        registry.webhook(
            open,
            |_ctx: WebhookContext, _body| async move { Ok("pong") },
        );
        registry.job(
            JobDef {
                name: "mail",
                module: "",
                retry: Retry {
                    max_attempts: 1,
                    backoff: Backoff::Fixed,
                    base_ms: 1000,
                    max_ms: 1000,
                },
                timeout_ms: None,
                queue: "default",
                priority: 0,
            },
            |_ctx, _input| async move { Ok(()) },
        );
    }
}

struct Fixture {
    db: TestDatabase,
    node: Running,
    knobs: Arc<Knobs>,
    http: reqwest::Client,
}

struct Reply {
    status: u16,
    replayed: bool,
    body: Value,
}

async fn start() -> Fixture {
    set_secret();
    let db = TestDatabase::new().await;
    sqlx::query("CREATE TABLE effects (id serial PRIMARY KEY, event_id text NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let mut config = config(db.url());
    config.body_limit = 1024;
    config.job_concurrency = 0;
    let knobs = Arc::new(Knobs::default());
    let node = App::new(config)
        .register(register(knobs.clone()))
        .start()
        .await
        .unwrap();
    Fixture {
        db,
        node,
        knobs,
        http: reqwest::Client::new(),
    }
}

impl Fixture {
    async fn post(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(format!("http://{}{path}", self.node.addr()))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            replayed,
            body,
        }
    }

    /// `body`, correctly signed, to the signed webhook, with idempotency key `key` if any.
    async fn post_signed(&self, body: &[u8], key: Option<&str>) -> Reply {
        let signature = sign(body);
        let mut headers = vec![("X-Signature", &*signature)];
        headers.extend(key.map(|key| ("Idempotency-Key", key)));
        self.post("/hooks/signed", body, &headers).await
    }

    /// A correctly signed delivery of `body` with idempotency key `key`.
    async fn deliver(&self, body: &Value, key: &str) -> Reply {
        self.post_signed(&serde_json::to_vec(body).unwrap(), Some(key))
            .await
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    async fn effects(&self) -> i64 {
        self.count("SELECT count(*) FROM effects").await
    }

    async fn jobs(&self) -> i64 {
        self.count("SELECT count(*) FROM forge_jobs").await
    }

    fn runs(&self) -> usize {
        self.knobs.runs.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_correctly_signed_deliveries_run() {
    let f = start().await;
    let body = br#"{"id": "evt_1"}"#;
    let good = sign(body);

    let reply = f
        .post(
            "/hooks/signed",
            body,
            &[
                ("X-Signature", &good),
                ("Idempotency-Key", "k1"),
                ("X-Source", "test"),
                ("X-Request-Id", "req-1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"success": true, "data": {"event": "evt_1", "source": "test", "caller": false, "lock_timeout": "0"}, "request_id": "req-1"})
    );
    assert!(!reply.replayed);

    // GitHub's form: `sha256=` before the hex.
    let prefixed = format!("sha256={good}");
    let reply = f
        .post(
            "/hooks/signed",
            body,
            &[("X-Signature", &prefixed), ("Idempotency-Key", "k2")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!((f.effects().await, f.runs()), (2, 2));

    // Forged: signed with another secret, a signature of another body, garbage, none.
    let mut other = Hmac::<Sha256>::new_from_slice(b"not the secret").unwrap();
    other.update(body);
    let forged = hex::encode(other.finalize().into_bytes());
    let tampered = br#"{"id": "evt_2"}"#;
    for (body, signature) in [
        (&body[..], Some(forged.as_str())),
        (&tampered[..], Some(good.as_str())),
        (&body[..], Some("sha256=nothex")),
        (&body[..], Some("")),
        (&body[..], None),
    ] {
        let mut headers = vec![("Idempotency-Key", "k3")];
        headers.extend(signature.map(|s| ("X-Signature", s)));
        let reply = f.post("/hooks/signed", body, &headers).await;
        assert_eq!(reply.status, 401, "{signature:?}: {}", reply.body);
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["error"]["code"], "UNAUTHORIZED");
    }
    // Nothing ran and the key was not taken: a good delivery with it still runs.
    assert_eq!((f.effects().await, f.runs()), (2, 2));
    assert_eq!(
        f.count("SELECT count(*) FROM forge_webhook_events WHERE idempotency_key = 'k3'")
            .await,
        0
    );
    let reply = f.deliver(&json!({"id": "evt_3"}), "k3").await;
    assert_eq!((reply.status, reply.replayed), (200, false));

    // A webhook without a signature option takes anything; other paths and methods do not.
    let reply = f.post("/hooks/open", b"", &[]).await;
    assert_eq!((reply.status, &reply.body["data"]), (200, &json!("pong")));
    let reply = f.post("/hooks/nope", b"{}", &[]).await;
    assert_eq!(
        (reply.status, &reply.body["error"]["code"]),
        (404, &json!("NOT_FOUND"))
    );
    let response = f
        .http
        .get(format!("http://{}/hooks/open", f.node.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    f.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_key_is_acknowledged_without_running() {
    let f = start().await;
    let event = json!({"id": "evt_1"});
    let first = f.deliver(&event, "key-1").await;
    assert_eq!(
        (first.status, first.replayed),
        (200, false),
        "{}",
        first.body
    );
    for _ in 0..3 {
        let again = f.deliver(&event, "key-1").await;
        assert_eq!(
            (again.status, again.replayed),
            (200, true),
            "{}",
            again.body
        );
        assert_eq!(again.body["success"], true);
        assert_eq!(again.body["data"], Value::Null);
    }
    assert_eq!((f.effects().await, f.jobs().await, f.runs()), (1, 1, 1));
    let status: String = sqlx::query_scalar(
        "SELECT status FROM forge_webhook_events WHERE name = 'signed' AND idempotency_key = 'key-1'",
    )
    .fetch_one(f.db.pool())
    .await
    .unwrap();
    assert_eq!(status, "completed");
    // Another key is another delivery.
    let other = f.deliver(&event, "key-2").await;
    assert_eq!((other.status, other.replayed), (200, false));
    assert_eq!(f.effects().await, 2);
    f.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_releases_its_key_and_leaves_nothing() {
    let f = start().await;
    f.knobs.fail_next.store(1, Ordering::SeqCst);
    let event = json!({"id": "evt_1"});
    let failed = f.deliver(&event, "retry-me").await;
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert_eq!(failed.body["error"]["code"], "INTERNAL_ERROR");
    // The handler ran, wrote and dispatched a job, and all of it was rolled back.
    assert_eq!(f.runs(), 1);
    assert_eq!((f.effects().await, f.jobs().await), (0, 0));
    assert_eq!(
        f.count("SELECT count(*) FROM forge_webhook_events").await,
        0
    );

    // The sender retries with the same key: it runs, once.
    let retried = f.deliver(&event, "retry-me").await;
    assert_eq!(
        (retried.status, retried.replayed),
        (200, false),
        "{}",
        retried.body
    );
    let replayed = f.deliver(&event, "retry-me").await;
    assert_eq!((replayed.status, replayed.replayed), (200, true));
    assert_eq!((f.effects().await, f.jobs().await, f.runs()), (1, 1, 2));
    f.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_of_one_key_run_once() {
    let f = Arc::new(start().await);
    // While the first holds the key (uncommitted), the others wait for its outcome.
    let event = json!({"id": "evt_1", "sleep_ms": 300});
    let deliveries = (0..4).map(|_| {
        let f = f.clone();
        let event = event.clone();
        tokio::spawn(async move { f.deliver(&event, "same").await })
    });
    let mut replies = Vec::new();
    for delivery in deliveries {
        replies.push(delivery.await.unwrap());
    }
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(replies.iter().filter(|r| !r.replayed).count(), 1);
    assert_eq!((f.effects().await, f.runs()), (1, 1));

    // The first one to run fails: one of the waiting ones takes the key over and succeeds.
    f.knobs.fail_next.store(1, Ordering::SeqCst);
    let deliveries = (0..3).map(|_| {
        let f = f.clone();
        let event = event.clone();
        tokio::spawn(async move { f.deliver(&event, "other").await })
    });
    let mut statuses = Vec::new();
    for delivery in deliveries {
        let reply = delivery.await.unwrap();
        statuses.push((reply.status, reply.replayed));
    }
    statuses.sort();
    assert_eq!(statuses, [(200, false), (200, true), (500, false)]);
    assert_eq!((f.effects().await, f.jobs().await, f.runs()), (2, 2, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_waits_for_a_running_delivery_only_so_long() {
    let f = Arc::new(start().await);
    let slow = json!({"id": "evt_1", "sleep_ms": 11_000});
    let first = tokio::spawn({
        let f = f.clone();
        async move { f.deliver(&slow, "slow").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let second = f.deliver(&json!({"id": "evt_1"}), "slow").await;
    assert_eq!(second.status, 504, "{}", second.body);
    assert_eq!(second.body["error"]["code"], "TIMEOUT");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let first = first.await.unwrap();
    assert_eq!(
        (first.status, first.replayed),
        (200, false),
        "{}",
        first.body
    );
    assert_eq!((f.effects().await, f.runs()), (1, 1));
    let again = f.deliver(&json!({"id": "evt_1"}), "slow").await;
    assert_eq!((again.status, again.replayed), (200, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bodies_and_keys_are_400_naming_what_is_wrong() {
    let f = start().await;

    let reply = f.post_signed(br#"{"id": 5}"#, Some("a")).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(reply.body["error"]["details"]["field"], "id");

    let reply = f.post_signed(b"{\"id\": ", Some("a")).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not JSON"));

    // Over the 1024-byte limit.
    let body = serde_json::to_vec(&json!({"id": "x".repeat(2000)})).unwrap();
    let reply = f.post_signed(&body, Some("a")).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "VALIDATION_ERROR");

    // No idempotency key where the webhook declares one.
    let reply = f.post_signed(br#"{"id": "evt"}"#, None).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"]["details"]["field"], "idempotency-key");

    // None of these ran, and the failed decode left the key free.
    assert_eq!((f.effects().await, f.runs()), (0, 0));
    let reply = f.deliver(&json!({"id": "evt"}), "a").await;
    assert_eq!((reply.status, reply.replayed), (200, false));
    f.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_stops_start_up_naming_it() {
    set_secret();
    let db = TestDatabase::new().await;
    let unset: &'static str = "FORGE_TEST_WEBHOOKS_NEVER_SET_91c2";
    let error = App::new(config(db.url()))
        .register(|registry: &mut Registry| {
            let def = WebhookDef {
                name: "stripe",
                module: "hooks",
                path: "/hooks/stripe",
                signature: Some(WebhookSignature::HmacSha256 {
                    header: "Stripe-Signature",
                    secret_env: unset,
                }),
                idempotency_header: None,
            };
            registry.webhook(def, |_ctx, _body| async move { Ok(()) });
        })
        .start()
        .await
        .err()
        .expect("start-up fails");
    let message = error.to_string();
    assert!(
        message.contains("webhook `stripe`") && message.contains(unset),
        "{message}"
    );
    // Nothing started: the node did not register itself.
    let nodes: Option<i64> = sqlx::query_scalar("SELECT count(*) FROM forge_nodes")
        .fetch_one(db.pool())
        .await
        .ok();
    assert!(matches!(nodes, None | Some(0)), "{nodes:?}");
}
