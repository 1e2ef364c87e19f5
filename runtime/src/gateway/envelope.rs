//! The response envelope: `{"success", "data" | "error", "request_id"}`.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::Error;

/// Identifies one request in responses and logs: the caller's `X-Request-Id` when it sent
/// a sensible one, a fresh UUID otherwise.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

impl RequestId {
    pub fn from_headers(headers: &HeaderMap) -> RequestId {
        let given = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
        RequestId(given.map_or_else(|| Uuid::new_v4().to_string(), str::to_owned))
    }
}

pub(crate) struct Response {
    pub request_id: RequestId,
    pub result: Result<Value, Error>,
}

/// The envelope's fields in the order serde_json's maps keep them (sorted), written
/// straight from the borrowed result: no intermediate `Value` holding a copy of `data`.
#[derive(Serialize)]
struct Success<'a> {
    data: &'a Value,
    request_id: &'a str,
    success: bool,
}

#[derive(Serialize)]
struct Failure<'a> {
    error: Value,
    request_id: &'a str,
    success: bool,
}

impl IntoResponse for Response {
    fn into_response(self) -> axum::response::Response {
        let id = self.request_id.0;
        let mut response = match &self.result {
            Ok(data) => axum::Json(Success {
                data,
                request_id: &id,
                success: true,
            })
            .into_response(),
            Err(error) => {
                if error.is_internal() {
                    tracing::error!(request_id = %id, error = %error, "request failed");
                }
                let status = StatusCode::from_u16(error.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = Failure {
                    error: error.to_wire(),
                    request_id: &id,
                    success: false,
                };
                let mut response = (status, axum::Json(body)).into_response();
                if let Some(secs) = error.retry_after_secs() {
                    response
                        .headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
        };
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
}

/// Gives the envelope to the error responses forge's handlers did not write: axum's
/// rejections (a path segment that is not UTF-8, a method the route does not take, …).
/// Handlers' own answers are JSON already and pass untouched.
pub(crate) async fn ensure(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let request_id = RequestId::from_headers(request.headers());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Rejection texts are short; a longer body is cut, not buffered.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        text => text.to_owned(),
    };
    let code = match status.as_u16() {
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        408 => "TIMEOUT",
        429 => "RATE_LIMITED",
        500.. => "INTERNAL_ERROR",
        _ => "VALIDATION_ERROR",
    };
    let body = serde_json::json!({
        "success": false,
        "error": { "code": code, "message": message, "details": null },
        "request_id": request_id.0,
    });
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        parts.headers.insert("x-request-id", value);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}
