//! `POST /_api/mcp`: the Model Context Protocol over streamable HTTP (JSON-RPC 2.0).
//!
//! Methods: `initialize`, `ping`, `tools/list`, `tools/call`; notifications (and responses
//! a client sends) are accepted with 202 and no body. A batch (an array, protocol
//! 2025-03-26) is answered with an array of the responses to its requests.
//!
//! Decisions:
//! - **Stateless.** No `Mcp-Session-Id` is issued: every request carries its own bearer
//!   token, and nothing a tool does depends on earlier requests, so any node can answer
//!   any request. `GET` (a server-to-client stream) is 405, as the transport allows.
//! - **JSON only.** Every answer is `application/json`; a client must accept it (clients
//!   send `Accept: application/json, text/event-stream`), else 406.
//! - **Auth.** MCP tools have no `public` option, so every request needs a valid bearer
//!   token, as a non-public RPC does: without one, 401 with `WWW-Authenticate: Bearer`.
//! - **Versions.** `initialize` answers with the client's protocol version when it is
//!   one of [`VERSIONS`], else with the newest; a later request whose
//!   `MCP-Protocol-Version` header names an unknown version is 400.
//! - **Arguments** are decoded by the glue's argument struct (serde decides, exactly as
//!   for RPC); a failure is the JSON-RPC error -32602 with `data.field` naming the
//!   argument, and the handler does not run. The same schema that codegen derived from
//!   the IR is what `tools/list` shows.
//! - **Results**: the handler's value as JSON text in `content`, and as
//!   `structuredContent` — itself when it is an object, else `{"result": value}`, since
//!   `structuredContent` must be an object. A handler's error is a result with
//!   `isError: true` and the error's wire code and message (internal causes stay in the
//!   log, as for RPC).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use tracing::Instrument as _;

use super::auth::authenticate;
use super::call;
use super::client::Client;
use super::rate_limit::check_call;
use super::RequestId;
use crate::auth::Auth;
use crate::context::{Base, McpToolContext, Writes};
use crate::registry::ARGS_REJECTED;
use crate::shared::Shared;
use crate::Error;

/// The protocol versions this server speaks, newest first.
pub(crate) const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
/// In the range JSON-RPC leaves to servers.
const UNAUTHORIZED: i64 = -32001;

/// Every MCP request has a request id, as RPC calls do: the caller's `X-Request-Id` or a
/// fresh one, sent back in the header and on every log line of its tool calls.
pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    client: Client,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let span = tracing::info_span!("mcp", request_id = %request_id.0);
    let mut response = serve(shared, client, headers, body).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn serve(
    shared: Arc<Shared>,
    client: Client,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    if !accepts_json(&headers) {
        return http_error(
            StatusCode::NOT_ACCEPTABLE,
            INVALID_REQUEST,
            "this server answers with application/json; accept it",
        );
    }
    if let Some(version) = headers.get("mcp-protocol-version") {
        let known = version.to_str().is_ok_and(|v| VERSIONS.contains(&v));
        if !known {
            let message = format!(
                "unsupported MCP-Protocol-Version; supported: {}",
                VERSIONS.join(", ")
            );
            return http_error(StatusCode::BAD_REQUEST, INVALID_REQUEST, &message);
        }
    }
    let auth = match authenticate(&shared, &headers, false).await {
        Ok(Some(auth)) => auth,
        Ok(None) => return unauthorized("this needs a bearer token"),
        Err(error) => return unauthorized(&error.to_string()),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let error = super::server::body_error(rejection);
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return http_error(status, PARSE_ERROR, &error.to_string());
        }
    };
    let message: Value = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            let message = format!("the body is not JSON: {error}");
            return http_error(StatusCode::BAD_REQUEST, PARSE_ERROR, &message);
        }
    };
    let answer = match message {
        Value::Array(batch) if batch.is_empty() => Some(failure(
            Value::Null,
            INVALID_REQUEST,
            "an empty batch",
            None,
        )),
        Value::Array(batch) if batch.len() > shared.config.mcp_max_batch => {
            let message = format!(
                "a batch of {} messages; at most {} are taken (FORGE_MCP_MAX_BATCH)",
                batch.len(),
                shared.config.mcp_max_batch
            );
            return http_error(StatusCode::PAYLOAD_TOO_LARGE, INVALID_REQUEST, &message);
        }
        Value::Array(batch) => {
            let mut answers = Vec::new();
            for message in batch {
                answers.extend(handle(&shared, &auth, client.ip, message).await);
            }
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        message => handle(&shared, &auth, client.ip, message).await,
    };
    match answer {
        Some(answer) => json_response(StatusCode::OK, &answer),
        None => StatusCode::ACCEPTED.into_response(),
    }
}

/// The answer to one message: `None` for notifications and responses.
async fn handle(shared: &Arc<Shared>, auth: &Auth, ip: IpAddr, message: Value) -> Option<Value> {
    let Value::Object(mut message) = message else {
        return Some(failure(
            Value::Null,
            INVALID_REQUEST,
            "a message must be a JSON object",
            None,
        ));
    };
    let id = message.remove("id");
    let id_value = id.clone().unwrap_or(Value::Null);
    if message.get("jsonrpc") != Some(&json!("2.0")) {
        return Some(failure(
            id_value,
            INVALID_REQUEST,
            "`jsonrpc` must be \"2.0\"",
            None,
        ));
    }
    let method = match message.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => {
            return Some(failure(
                id_value,
                INVALID_REQUEST,
                "`method` must be a string",
                None,
            ))
        }
        // A response to a request of ours; this server sends none, so there is nothing
        // to match it with.
        None if message.contains_key("result") || message.contains_key("error") => return None,
        None => {
            return Some(failure(
                id_value,
                INVALID_REQUEST,
                "a message needs a `method`",
                None,
            ))
        }
    };
    let Some(id) = id else {
        // A notification (`notifications/initialized`, `notifications/cancelled`, …):
        // nothing here keeps state that it would change.
        return None;
    };
    if !(id.is_string() || id.is_number()) {
        return Some(failure(
            Value::Null,
            INVALID_REQUEST,
            "`id` must be a string or a number",
            None,
        ));
    }
    let params = match message.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => {
            return Some(failure(
                id,
                INVALID_PARAMS,
                "`params` must be an object",
                None,
            ))
        }
    };
    let result = match method.as_str() {
        "initialize" => Ok(initialize(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools_list(shared)),
        "tools/call" => tools_call(shared, auth, ip, params).await,
        _ => Err((METHOD_NOT_FOUND, format!("no method `{method}`"), None)),
    };
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message, data)) => failure(id, code, &message, data),
    })
}

fn initialize(params: &Map<String, Value>) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .and_then(|asked| VERSIONS.iter().find(|v| **v == asked))
        .unwrap_or(&VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "forge", "version": env!("CARGO_PKG_VERSION")},
    })
}

fn tools_list(shared: &Shared) -> Value {
    let tools: Vec<Value> = shared
        .registry
        .mcp_tools
        .values()
        .map(|tool| {
            let def = &tool.def;
            let schema = serde_json::from_str::<Value>(def.input_schema)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| {
                    tracing::warn!(
                        tool = def.name,
                        "the tool's input schema is not a JSON object; regenerate the glue"
                    );
                    json!({"type": "object"})
                });
            let mut entry = Map::new();
            entry.insert("name".into(), json!(def.name));
            if let Some(title) = def.title {
                entry.insert("title".into(), json!(title));
            }
            if let Some(description) = def.description {
                entry.insert("description".into(), json!(description));
            }
            entry.insert("inputSchema".into(), schema);
            let mut annotations = Map::new();
            if let Some(title) = def.title {
                annotations.insert("title".into(), json!(title));
            }
            annotations.insert("readOnlyHint".into(), json!(def.read_only));
            entry.insert("annotations".into(), Value::Object(annotations));
            Value::Object(entry)
        })
        .collect();
    json!({ "tools": tools })
}

type RpcError = (i64, String, Option<Value>);

async fn tools_call(
    shared: &Arc<Shared>,
    auth: &Auth,
    ip: IpAddr,
    mut params: Map<String, Value>,
) -> std::result::Result<Value, RpcError> {
    let name = match params.remove("name") {
        Some(Value::String(name)) => name,
        _ => {
            return Err((
                INVALID_PARAMS,
                "`params.name` must name a tool".into(),
                None,
            ))
        }
    };
    let Some(tool) = shared.registry.mcp_tools.get(name.as_str()) else {
        return Err((INVALID_PARAMS, format!("no tool is named `{name}`"), None));
    };
    let args = match params.remove("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(args @ Value::Object(_)) => args,
        Some(_) => {
            return Err((
                INVALID_PARAMS,
                "`arguments` must be an object mapping each argument's name to its value".into(),
                Some(json!({"field": "arguments"})),
            ))
        }
    };
    let rejected = Arc::new(AtomicBool::new(false));
    let limit = tool.def.rate_limit;
    let (owned, caller, handler) = (shared.clone(), auth.clone(), tool.call.clone());
    // A tool that changes state is a mutation in all but name: it runs in a transaction,
    // committed on `Ok`, with its dispatches.
    let run = async move {
        let cell = call::begin(&owned).await?;
        let context = McpToolContext {
            base: Base::new(&owned, Some(caller)),
            writes: Writes::Transaction(cell.clone()),
        };
        call::in_transaction(cell, handler(context, args)).await
    };
    // Over the limit is a tool error like a handler's (`RATE_LIMITED`, with
    // `details.retry_after_ms`): nothing runs.
    let result = match check_call(shared, "mcp", &name, limit, Some(auth), ip).await {
        Ok(()) => {
            let future = ARGS_REJECTED.scope(rejected.clone(), run);
            call::run(shared, &name, None, future).await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(value) => {
            let text = serde_json::to_string(&value).unwrap_or_default();
            let structured = match value {
                Value::Object(_) => value,
                other => json!({ "result": other }),
            };
            Ok(json!({
                "content": [{"type": "text", "text": text}],
                "structuredContent": structured,
                "isError": false,
            }))
        }
        Err(error) if rejected.load(Ordering::Relaxed) => {
            let data = match &error {
                Error::InvalidField { field, message } => {
                    json!({"field": field, "message": message})
                }
                other => json!({"message": other.to_string()}),
            };
            Err((
                INVALID_PARAMS,
                format!("invalid arguments for tool `{name}`: {error}"),
                Some(data),
            ))
        }
        Err(error) => {
            if error.is_internal() {
                tracing::error!(tool = %name, error = %error, "MCP tool failed");
            }
            let wire = error.to_wire();
            let text = format!(
                "{}: {}",
                wire["code"].as_str().unwrap_or("INTERNAL_ERROR"),
                wire["message"].as_str().unwrap_or("internal error")
            );
            Ok(json!({
                "content": [{"type": "text", "text": text}],
                "structuredContent": {"error": wire},
                "isError": true,
            }))
        }
    }
}

fn failure(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error answered at the HTTP level, with a JSON-RPC error body.
fn http_error(status: StatusCode, code: i64, message: &str) -> Response {
    json_response(status, &failure(Value::Null, code, message, None))
}

fn unauthorized(message: &str) -> Response {
    let mut response = http_error(StatusCode::UNAUTHORIZED, UNAUTHORIZED, message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Whether the `Accept` header (if any) admits `application/json`.
fn accepts_json(headers: &HeaderMap) -> bool {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    values.is_empty()
        || values
            .iter()
            .flat_map(|value| value.split(','))
            .map(|range| {
                range
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .any(|range| matches!(range.as_str(), "application/json" | "application/*" | "*/*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_headers() {
        assert!(accepts_json(&HeaderMap::new()));
        assert!(accepts_json(&accept("application/json, text/event-stream")));
        assert!(accepts_json(&accept(
            "text/event-stream;q=1, Application/JSON;q=0.5"
        )));
        assert!(accepts_json(&accept("*/*")));
        assert!(!accepts_json(&accept("text/event-stream")));
    }

    #[test]
    fn initialize_negotiates_the_version() {
        let params = |v: &str| {
            json!({"protocolVersion": v})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            initialize(&params("2025-03-26"))["protocolVersion"],
            "2025-03-26"
        );
        assert_eq!(
            initialize(&params("1999-01-01"))["protocolVersion"],
            VERSIONS[0]
        );
        assert_eq!(initialize(&Map::new())["protocolVersion"], VERSIONS[0]);
    }
}
