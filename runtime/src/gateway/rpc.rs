//! `POST /_api/rpc/{name}` with `{"args": {...}}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse as _;
use serde_json::Value;

use super::auth::authenticate;
use super::client::Client;
use super::rate_limit::check_call;
use super::{call, RequestId, Response};
use crate::context::{Base, MutationContext, QueryContext, Writes};
use crate::shared::Shared;
use crate::{Error, Result};

pub(crate) async fn call(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    client: Client,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> axum::response::Response {
    let request_id = RequestId::from_headers(&headers);
    let mut cache = None;
    let result = match body {
        Ok(body) => dispatch(&shared, &name, client, &headers, &body, &mut cache).await,
        Err(rejection) => Err(super::server::body_error(rejection)),
    };
    if let Err(error) = &result {
        tracing::debug!(request_id = %request_id.0, function = %name, code = error.code(), "call failed");
    }
    let mut response = Response { request_id, result }.into_response();
    if let Some(cache) = cache {
        response
            .headers_mut()
            .insert("x-forge-cache", HeaderValue::from_static(cache.header()));
    }
    response
}

/// Whether a call to a query with `cache` was answered from the cache (the cache needs the
/// `realtime` feature's change notifications; without it nothing is cached).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "realtime"), allow(dead_code))]
enum Cache {
    Hit,
    Miss,
}

impl Cache {
    fn header(self) -> &'static str {
        match self {
            Cache::Hit => "hit",
            Cache::Miss => "miss",
        }
    }
}

/// The `args` of the envelope; a body without `args` calls with `{}`.
fn args(body: &[u8]) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Validation(format!("the request body is not JSON: {e}")))?;
    let Value::Object(mut envelope) = envelope else {
        return Err(Error::Validation(
            "the request body must be an object: {\"args\": {...}}".into(),
        ));
    };
    match envelope.remove("args") {
        None => Ok(Value::Object(Default::default())),
        Some(args @ Value::Object(_)) => Ok(args),
        Some(_) => Err(Error::InvalidField {
            field: "args".into(),
            message: "must be an object mapping each argument's name to its value".into(),
        }),
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    name: &str,
    client: Client,
    headers: &HeaderMap,
    body: &[u8],
    cache: &mut Option<Cache>,
) -> Result<Value> {
    if let Some(query) = shared.registry.queries.get(name) {
        let auth = authenticate(shared, headers, query.def.public).await?;
        let limit = query.def.rate_limit;
        check_call(shared, "rpc", name, limit, auth.as_ref(), client.ip).await?;
        let args = args(body)?;
        #[cfg(feature = "realtime")]
        let cached = query.def.cache_ms.map(|ms| {
            let key = crate::realtime::cache::Key::new(query.def.name, &args, auth.as_ref());
            (key, std::time::Duration::from_millis(ms))
        });
        #[cfg(feature = "realtime")]
        if let Some((key, _)) = &cached {
            if let Some(hit) = shared.query_cache.get(key) {
                *cache = Some(Cache::Hit);
                return Ok(Value::clone(&hit));
            }
            *cache = Some(Cache::Miss);
        }
        #[cfg(feature = "realtime")]
        let generation = shared.query_cache.generation();
        #[cfg(not(feature = "realtime"))]
        let _ = cache;
        let mut base = Base::new(shared, auth);
        if let Some(replica) = shared.gateway.replicas.pick() {
            base.pool = replica;
        }
        let future = (query.call)(QueryContext { base }, args);
        let result = call::run_inline(shared, name, query.def.timeout_ms, future).await;
        #[cfg(feature = "realtime")]
        if let (Some((key, ttl)), Ok(value)) = (cached, &result) {
            shared
                .query_cache
                .put(key, value, ttl, query.def.tables_read, generation);
        }
        return result;
    }
    if let Some(mutation) = shared.registry.mutations.get(name) {
        let auth = authenticate(shared, headers, mutation.def.public).await?;
        let limit = mutation.def.rate_limit;
        check_call(shared, "rpc", name, limit, auth.as_ref(), client.ip).await?;
        let args = args(body)?;
        let base = Base::new(shared, auth);
        if !mutation.def.transactional {
            let future = (mutation.call)(
                MutationContext {
                    base,
                    writes: Writes::Pool,
                },
                args,
            );
            return call::run(shared, name, mutation.def.timeout_ms, future).await;
        }
        let cell = call::begin(shared).await?;
        let context = MutationContext {
            base,
            writes: Writes::Transaction(cell.clone()),
        };
        let future = call::in_transaction(cell, (mutation.call)(context, args));
        return call::run(shared, name, mutation.def.timeout_ms, future).await;
    }
    Err(Error::NotFound(format!(
        "no query or mutation is named `{name}`"
    )))
}
