//! Webhooks: `POST <path>` for every registered `#[forge::webhook]`.
//!
//! A delivery goes through, in order: the body limit, the signature (HMAC-SHA256 of the raw
//! body, compared in constant time; a bad or missing one is 401 and nothing else happens),
//! the body as JSON, the idempotency key, and then the handler in a transaction.
//!
//! **Idempotency.** The key is claimed by inserting `(name, key)` into
//! `forge_webhook_events` *inside the handler's transaction*, before the handler runs:
//! - the handler succeeds → the row commits with everything the handler wrote, as
//!   `completed`; a later delivery with that key finds it and is acknowledged (200,
//!   `Idempotent-Replayed: true`, `data: null`) without running;
//! - the handler fails, panics, or the node dies → the row goes with the rollback, so the
//!   sender's retry runs the handler again. No row is ever left `processing`;
//! - two deliveries with one key at once: the second one's insert waits on the first one's
//!   uncommitted row, then either finds it committed (acknowledged as a replay) or rolled
//!   back (and runs). Exactly one runs to success.
//!
//! Webhooks are matched by exact path in the router's fallback rather than as axum routes,
//! so no registered path (with `{`, `*`, a clash with another route…) can make the router
//! panic at start-up.
//!
//! # Decisions
//!
//! - **Start-up.** `App::start` reads every webhook's secret from its environment variable
//!   once, before it touches the database; a missing, empty or non-UTF-8 one is a start-up
//!   error naming the webhook and the variable. Duplicate paths and paths outside `/…` or
//!   inside `/_api/` are refused there too.
//! - **Routing.** Webhooks are looked up by exact path in the router's fallback, not added as
//!   axum routes, so no registered path can make axum panic (`{…}`, `*`, a clash). Unknown
//!   paths answer 404 with the envelope; another method than POST on a webhook path, 405.
//! - **Order.** Body limit (`FORGE_BODY_LIMIT`, 400 like RPC) → signature → the body as JSON
//!   (an empty body is `null`; not JSON is 400) → idempotency key → the handler. The
//!   signature is `hmac`'s `verify_slice` (constant time) over the raw bytes; the header is
//!   hex in either case, optionally `sha256=`-prefixed. Provider schemes: `stripe` (MAC of
//!   `"<t>.<body>"`, any of several `v1`), `github` (`sha256=` required), `standard_webhooks`
//!   (MAC of `"<id>.<ts>.<body>"` keyed with the `whsec_` secret's decoded bytes, any of
//!   several space-separated `v1,`); signed timestamps further than `tolerance` from now in
//!   either direction are 401, before the MAC is computed. A `whsec_` secret that does not
//!   decode is a start-up error naming the variable. Anything wrong is 401 and nothing
//!   else happens. The decoded input's errors are the glue's `decode_input`: 400 naming the
//!   field. Webhooks have no caller (`ctx.auth()` is `UNAUTHORIZED`) and no timeout.
//! - **One transaction.** The handler runs like a transactional mutation: `ctx.tx()`,
//!   `ctx.dispatch_job`, commit on `Ok`, rollback on `Err` or panic, on its own tracked task.
//!   The response is the RPC envelope with the handler's value as `data`.
//! - **Idempotency.** The key (a declared header missing, empty or over 255 bytes is 400
//!   naming the header) is claimed with `INSERT … ON CONFLICT DO NOTHING` into
//!   `forge_webhook_events` *in the handler's transaction*, before it runs. The row commits
//!   with the handler's writes (as `completed`) or disappears with its rollback, so a failed
//!   delivery frees its key for the sender's retry and a crash cannot strand a `processing`
//!   row (`processing` and `failed` stay unused). A repeated key whose delivery committed is
//!   200 with `data: null` and the header `Idempotent-Replayed: true`. Concurrent deliveries
//!   of one key: the later insert waits on the uncommitted row, then is a replay (first
//!   committed) or runs (first rolled back) — exactly one succeeds. Each waiting duplicate
//!   holds a connection, so the wait is bounded: `lock_timeout` = 10 s for the claim only
//!   (set in the insert's CTE, put back in its `RETURNING`), then 504 `TIMEOUT` and the
//!   sender retries later. Keys are kept for `FORGE_RETENTION` (default 7 days; senders retry
//!   for up to about 3) and then trimmed by the leader (below).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::ALLOW;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::call;
use super::client::Client;
use super::{RequestId, Response};
use crate::context::{Base, WebhookContext, Writes};
use crate::registry::{Registry, WebhookSignature};
use crate::shared::Shared;
use crate::tx::{Target, Tx};
use crate::{Error, Result};

/// The longest idempotency key accepted, in bytes.
const MAX_KEY_LEN: usize = 255;

/// How long a delivery waits for another one with the same key to finish before it
/// answers `TIMEOUT` (504), so duplicates of a stuck delivery do not pile up on the pool.
const CLAIM_WAIT: Duration = Duration::from_secs(10);

/// Claims the key in the handler's transaction. `lock_timeout` bounds the wait on a
/// concurrent delivery's uncommitted row (set before the insert by the CTE it reads) and
/// is put back to the session's value for the handler (`RETURNING`, once inserted).
const CLAIM: &str = "\
WITH wait AS (SELECT set_config('lock_timeout', $3, true)) \
INSERT INTO forge_webhook_events (name, idempotency_key, status) \
SELECT $1, $2, 'completed' FROM wait \
ON CONFLICT DO NOTHING \
RETURNING set_config('lock_timeout', \
    (SELECT reset_val FROM pg_settings WHERE name = 'lock_timeout'), true)";

/// Every webhook by path, with its secret read once at start-up.
#[derive(Default)]
pub(crate) struct Webhooks {
    by_path: HashMap<&'static str, Endpoint>,
}

struct Endpoint {
    name: &'static str,
    signature: Option<Signature>,
    idempotency: Option<HeaderName>,
}

/// A webhook's signature scheme, keyed with its secret (the MAC is cloned per delivery).
enum Signature {
    /// `hmac_sha256("Header", "ENV")`: the header is the hex MAC of the body.
    Hmac {
        header: HeaderName,
        mac: Hmac<Sha256>,
    },
    /// `stripe("ENV")`: `Stripe-Signature: t=<secs>,v1=<hex MAC of "t.body">[,v1=…]`.
    Stripe {
        mac: Hmac<Sha256>,
        tolerance: Duration,
    },
    /// `github("ENV")`: `X-Hub-Signature-256: sha256=<hex MAC of the body>`.
    Github { mac: Hmac<Sha256> },
    /// `standard_webhooks("ENV")`: `webhook-signature: v1,<base64 MAC of "id.ts.body">`
    /// (several, space-separated, during a key rotation), keyed with the `whsec_` secret's
    /// decoded bytes.
    StandardWebhooks {
        mac: Hmac<Sha256>,
        tolerance: Duration,
    },
}

impl Webhooks {
    /// Reads each webhook's secret from the process environment.
    pub fn load(registry: &Registry) -> Result<Webhooks> {
        Webhooks::load_with(registry, |name| std::env::var_os(name))
    }

    /// Checks every webhook (path, header names, secret present and non-empty) and builds
    /// the table; the first problem is a start-up error naming the webhook.
    pub fn load_with(
        registry: &Registry,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Webhooks> {
        let mut webhooks = Webhooks::default();
        for (name, handler) in &registry.webhooks {
            let def = &handler.def;
            let problem = |message: String| Error::Internal(format!("webhook `{name}`: {message}"));
            if !def.path.starts_with('/') || def.path.starts_with("/_api/") || def.path == "/_api" {
                return Err(problem(format!(
                    "the path {:?} must start with `/` and be outside `/_api/`",
                    def.path
                )));
            }
            let header = |header: &str, what: &str| {
                HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    problem(format!("the {what} header {header:?} is not a header name"))
                })
            };
            let secret = |secret_env: &str| -> Result<String> {
                let secret = env(secret_env).ok_or_else(|| {
                    problem(format!(
                        "its signature secret comes from the environment variable \
                         {secret_env}, which is not set"
                    ))
                })?;
                let secret = secret.into_string().map_err(|_| {
                    problem(format!(
                        "the environment variable {secret_env} is not UTF-8"
                    ))
                })?;
                if secret.is_empty() {
                    return Err(problem(format!(
                        "the environment variable {secret_env} (its signature secret) is empty"
                    )));
                }
                Ok(secret)
            };
            let keyed = |key: &[u8]| {
                Hmac::<Sha256>::new_from_slice(key)
                    .map_err(|e| problem(format!("cannot key HMAC-SHA256: {e}")))
            };
            let signature = match def.signature {
                None => None,
                Some(WebhookSignature::HmacSha256 {
                    header: name,
                    secret_env,
                }) => Some(Signature::Hmac {
                    header: header(name, "signature")?,
                    mac: keyed(secret(secret_env)?.as_bytes())?,
                }),
                Some(WebhookSignature::Stripe {
                    secret_env,
                    tolerance_ms,
                }) => Some(Signature::Stripe {
                    mac: keyed(secret(secret_env)?.as_bytes())?,
                    tolerance: Duration::from_millis(tolerance_ms),
                }),
                Some(WebhookSignature::Github { secret_env }) => Some(Signature::Github {
                    mac: keyed(secret(secret_env)?.as_bytes())?,
                }),
                Some(WebhookSignature::StandardWebhooks {
                    secret_env,
                    tolerance_ms,
                }) => {
                    let text = secret(secret_env)?;
                    let key = text
                        .strip_prefix("whsec_")
                        .and_then(|encoded| BASE64.decode(encoded).ok())
                        .filter(|key| !key.is_empty())
                        .ok_or_else(|| {
                            problem(format!(
                                "the environment variable {secret_env} is not a Standard \
                                 Webhooks secret: `whsec_` followed by the base64 key"
                            ))
                        })?;
                    Some(Signature::StandardWebhooks {
                        mac: keyed(&key)?,
                        tolerance: Duration::from_millis(tolerance_ms),
                    })
                }
            };
            let idempotency = def
                .idempotency_header
                .map(|h| header(h, "idempotency"))
                .transpose()?;
            let endpoint = Endpoint {
                name,
                signature,
                idempotency,
            };
            if let Some(other) = webhooks.by_path.insert(def.path, endpoint) {
                return Err(problem(format!(
                    "the path {:?} is also webhook `{}`'s",
                    def.path, other.name
                )));
            }
        }
        Ok(webhooks)
    }
}

/// The router's fallback: a webhook delivery, or 404.
pub(crate) async fn serve(
    webhooks: Arc<Webhooks>,
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let request_id = RequestId::from_headers(&parts.headers);
    let Some(endpoint) = webhooks.by_path.get(parts.uri.path()) else {
        let result = Err(Error::NotFound(format!(
            "nothing is served at {} {}",
            parts.method,
            parts.uri.path()
        )));
        return Response { request_id, result }.into_response();
    };
    if parts.method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(ALLOW, "POST")]).into_response();
    }
    // Limited per source IP before the body is even read.
    if let Some(limit) = shared.config.webhook_rate_limit {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let client = Client::from_parts(peer, &parts.headers, &shared.config.trusted_proxies);
        let limiters = &shared.gateway.rate_limits;
        if let Err(error) = limiters.webhook(&shared.primary, client.ip, limit).await {
            return Response {
                request_id,
                result: Err(error),
            }
            .into_response();
        }
    }
    let replayed = Arc::new(AtomicBool::new(false));
    let result = match super::server::read_body(body, shared.config.body_limit).await {
        Ok(body) => deliver(&shared, endpoint, parts.headers, &body, replayed.clone()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::debug!(request_id = %request_id.0, webhook = endpoint.name, code = error.code(), "delivery failed");
    }
    let mut response = Response { request_id, result }.into_response();
    if replayed.load(Ordering::Relaxed) {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

async fn deliver(
    shared: &Arc<Shared>,
    endpoint: &Endpoint,
    headers: HeaderMap,
    body: &[u8],
    replayed: Arc<AtomicBool>,
) -> Result<Value> {
    if let Some(signature) = &endpoint.signature {
        verify(signature, &headers, body)?;
    }
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Error::Validation(format!("the request body is not JSON: {e}")))?
    };
    let key = endpoint
        .idempotency
        .as_ref()
        .map(|header| idempotency_key(header, &headers))
        .transpose()?;
    let name = endpoint.name;
    let handler = shared
        .registry
        .webhooks
        .get(name)
        .map(|h| h.call.clone())
        .ok_or_else(|| Error::Internal(format!("webhook `{name}` is not registered")))?;
    let owned = shared.clone();
    let run = async move {
        let cell = call::begin(&owned).await?;
        if let Some(key) = key {
            let claimed = sqlx::query(CLAIM)
                .bind(name)
                .bind(&key)
                .bind(format!("{}ms", CLAIM_WAIT.as_millis()))
                .execute(Tx(Target::Transaction(&cell)))
                .await
                .map_err(|error| match &error {
                    sqlx::Error::Database(e) if e.code().as_deref() == Some("55P03") => {
                        Error::Timeout(format!(
                            "another delivery with this idempotency key has been running \
                             for over {} s; retry later",
                            CLAIM_WAIT.as_secs()
                        ))
                    }
                    _ => Error::from(error),
                })?
                .rows_affected()
                == 1;
            if !claimed {
                if let Some(tx) = cell.lock().await.take() {
                    tx.rollback().await?;
                }
                replayed.store(true, Ordering::Relaxed);
                return Ok(Value::Null);
            }
        }
        let context = WebhookContext {
            base: Base::new(&owned, None),
            writes: Writes::Transaction(cell.clone()),
            headers: Arc::new(headers),
        };
        call::in_transaction(cell, handler(context, input)).await
    };
    call::run(shared, name, None, run).await
}

/// Checks the signature header: the hex HMAC-SHA256 of `body`, optionally `sha256=`-prefixed.
/// Checks a delivery's signature; anything wrong is 401 and nothing runs. Every MAC is
/// compared with `verify_slice` (constant time, and a wrong length is refused).
fn verify(signature: &Signature, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    match signature {
        Signature::Hmac { header, mac } => {
            let value = required(headers, header.as_str())?;
            let hex = match value.get(..7) {
                Some(prefix) if prefix.eq_ignore_ascii_case("sha256=") => &value[7..],
                _ => value,
            };
            check(
                mac,
                &[body],
                &[hex::decode(hex).unwrap_or_default()],
                header.as_str(),
            )
        }
        Signature::Github { mac } => {
            const HEADER: &str = "x-hub-signature-256";
            let value = required(headers, HEADER)?;
            let hex = value.strip_prefix("sha256=").ok_or_else(|| {
                Error::Unauthorized(format!("the {HEADER} header must be `sha256=<hex>`"))
            })?;
            check(
                mac,
                &[body],
                &[hex::decode(hex).unwrap_or_default()],
                HEADER,
            )
        }
        Signature::Stripe { mac, tolerance } => {
            const HEADER: &str = "stripe-signature";
            let value = required(headers, HEADER)?;
            let mut timestamp = None;
            let mut given = Vec::new();
            for part in value.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", t)) => timestamp = Some(t),
                    Some(("v1", hex)) => given.push(hex::decode(hex).unwrap_or_default()),
                    _ => {}
                }
            }
            let timestamp = timestamp.ok_or_else(|| {
                Error::Unauthorized(format!("the {HEADER} header has no timestamp (t=…)"))
            })?;
            within_tolerance(timestamp, *tolerance, HEADER)?;
            check(mac, &[timestamp.as_bytes(), b".", body], &given, HEADER)
        }
        Signature::StandardWebhooks { mac, tolerance } => {
            let id = required(headers, "webhook-id")?;
            let timestamp = required(headers, "webhook-timestamp")?;
            within_tolerance(timestamp, *tolerance, "webhook-timestamp")?;
            let given: Vec<Vec<u8>> = required(headers, "webhook-signature")?
                .split(' ')
                .filter_map(|entry| entry.strip_prefix("v1,"))
                .map(|encoded| BASE64.decode(encoded).unwrap_or_default())
                .collect();
            let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
            check(mac, &signed, &given, "webhook-signature")
        }
    }
}

fn required<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str> {
    let value = headers
        .get(name)
        .ok_or_else(|| Error::Unauthorized(format!("the {name} header (signature) is missing")))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| Error::Unauthorized(format!("the {name} header is not valid text")))
}

/// Refuses a signed timestamp (Unix seconds) further than `tolerance` from now, either way:
/// a captured delivery cannot be replayed later, whatever its idempotency key.
fn within_tolerance(timestamp: &str, tolerance: Duration, header: &str) -> Result<()> {
    let signed: i64 = timestamp.parse().map_err(|_| {
        Error::Unauthorized(format!("the {header} timestamp is not a number of seconds"))
    })?;
    let now = chrono::Utc::now().timestamp();
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(signed) > tolerance.unsigned_abs() {
        return Err(Error::Unauthorized(format!(
            "the {header} timestamp is {} s from now, outside the webhook's tolerance of {tolerance} s: a replay, or a clock that is off",
            now.saturating_sub(signed)
        )));
    }
    Ok(())
}

/// Whether one of `given` is the MAC of the concatenated `signed` parts.
fn check(mac: &Hmac<Sha256>, signed: &[&[u8]], given: &[Vec<u8>], header: &str) -> Result<()> {
    let mut mac = mac.clone();
    for part in signed {
        mac.update(part);
    }
    let matches = given
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(Error::Unauthorized(format!(
            "the {header} header does not sign this body"
        )))
    }
}

fn idempotency_key(header: &HeaderName, headers: &HeaderMap) -> Result<String> {
    let invalid = |message: &str| Error::InvalidField {
        field: header.to_string(),
        message: message.to_owned(),
    };
    let value = headers
        .get(header)
        .ok_or_else(|| invalid("this webhook needs an idempotency key in this header"))?;
    let key = value
        .to_str()
        .map_err(|_| invalid("the idempotency key must be printable ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(invalid(&format!(
            "the idempotency key must have 1 to {MAX_KEY_LEN} characters"
        )));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::WebhookDef;

    fn signature(secret: &str) -> Signature {
        Signature::Hmac {
            header: HeaderName::from_static("x-sig"),
            mac: Hmac::new_from_slice(secret.as_bytes()).unwrap(),
        }
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-sig", value.parse().unwrap());
        headers
    }

    #[test]
    fn signatures_are_hex_hmac_sha256_with_an_optional_prefix() {
        let s = signature("shh");
        let good = sign("shh", b"{}");
        assert!(verify(&s, &headers(&good), b"{}").is_ok());
        assert!(verify(&s, &headers(&format!("sha256={good}")), b"{}").is_ok());
        assert!(verify(
            &s,
            &headers(&format!("SHA256={}", good.to_uppercase())),
            b"{}"
        )
        .is_ok());
        assert!(verify(&s, &headers(&good), b"{ }").is_err());
        assert!(verify(&s, &headers(&sign("other", b"{}")), b"{}").is_err());
        assert!(verify(&s, &headers(&good[..62]), b"{}").is_err());
        assert!(verify(&s, &headers("sha256="), b"{}").is_err());
        assert!(verify(&s, &headers("zz"), b"{}").is_err());
        let missing = verify(&s, &HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!(missing.status(), 401);
    }

    #[test]
    fn start_up_names_the_webhook_and_the_missing_variable() {
        let mut registry = Registry::new();
        let def = WebhookDef {
            name: "stripe",
            module: "",
            path: "/hooks/stripe",
            signature: Some(WebhookSignature::HmacSha256 {
                header: "Stripe-Signature",
                secret_env: "STRIPE_SECRET",
            }),
            idempotency_header: None,
        };
        registry.webhook(def, |_ctx, _body| async move { Ok(()) });
        let error = Webhooks::load_with(&registry, |_| None).err().unwrap();
        let message = error.to_string();
        assert!(
            message.contains("`stripe`") && message.contains("STRIPE_SECRET"),
            "{message}"
        );
        let empty = Webhooks::load_with(&registry, |_| Some("".into()))
            .err()
            .unwrap();
        assert!(empty.to_string().contains("empty"), "{empty}");
        assert!(Webhooks::load_with(&registry, |_| Some("s".into())).is_ok());

        registry.webhook(
            WebhookDef {
                name: "again",
                signature: None,
                ..def
            },
            |_ctx, _body| async move { Ok(()) },
        );
        let clash = Webhooks::load_with(&registry, |_| Some("s".into()))
            .err()
            .unwrap();
        assert!(clash.to_string().contains("/hooks/stripe"), "{clash}");
    }
}
