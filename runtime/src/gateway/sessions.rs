//! `POST /_api/auth/refresh` and `POST /_api/auth/logout`: the HTTP side of issued sessions
//! (`crate::auth::refresh`). Both take `{"refresh_token": "…"}`, at most
//! [`BODY_LIMIT`] bytes, and answer with the envelope.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use super::{RequestId, Response};
use crate::auth::refresh;
use crate::shared::Shared;
use crate::{Error, Result};

/// A refresh token is 64 characters; anything much larger is not a refresh request.
pub(crate) const BODY_LIMIT: usize = 4 * 1024;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/refresh", post(refresh_session))
        .route("/logout", post(logout))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

fn body(raw: std::result::Result<Bytes, BytesRejection>) -> Result<RefreshBody> {
    let raw = raw.map_err(|rejection| {
        Error::Validation(format!(
            "cannot read the request body (at most {BODY_LIMIT} bytes): {rejection}"
        ))
    })?;
    serde_json::from_slice(&raw).map_err(|e| {
        Error::Validation(format!(
            "the request body must be {{\"refresh_token\": \"…\"}}: {e}"
        ))
    })
}

async fn refresh_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let result = async {
        let request = body(raw)?;
        let session = refresh::rotate(&shared, &request.refresh_token).await?;
        Ok(serde_json::to_value(session)?)
    }
    .await;
    Response { request_id, result }
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let result = async {
        let request = body(raw)?;
        refresh::revoke(&shared.primary, &request.refresh_token).await?;
        Ok(Value::Null)
    }
    .await;
    Response { request_id, result }
}
