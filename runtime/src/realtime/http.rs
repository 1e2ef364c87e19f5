//! The live-query endpoints: `GET /_api/events`, `POST /_api/subscribe`,
//! `POST /_api/unsubscribe` (DESIGN, "Runtime wire protocol").

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{Extensions, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Push, SessionLimits, Subscribe};
use crate::gateway::auth::authenticate;
use crate::gateway::client::Client;
use crate::gateway::server::{body_error, Connection};
use crate::gateway::{RequestId, Response};
use crate::shared::Shared;
use crate::{Error, Result};

/// Comments that keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_api/events", get(events))
        .route("/_api/subscribe", post(subscribe))
        .route("/_api/unsubscribe", post(unsubscribe))
}

/// Ends the session when the stream is dropped: the client went away or the node stops.
struct Open {
    shared: Arc<Shared>,
    session_id: Uuid,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared.realtime.close(self.session_id);
    }
}

/// Opens a session. A bearer token is optional; with one, it must be valid (an invalid
/// token is 401, not an anonymous session) and the session counts against its user's
/// limit. Every session counts against its client address's and the node's.
async fn events(
    State(shared): State<Arc<Shared>>,
    client: Client,
    extensions: Extensions,
    headers: HeaderMap,
) -> axum::response::Response {
    let anonymous = !headers.contains_key(AUTHORIZATION);
    let user = match authenticate(&shared, &headers, anonymous).await {
        Ok(auth) => auth.map(|auth| auth.user_id),
        Err(error) => return error_response(&headers, error),
    };
    let config = &shared.config;
    let limits = SessionLimits {
        per_user: config.live_max_sessions_per_user,
        per_ip: config.live_max_sessions_per_ip,
        total: config.live_max_sessions,
        queued_bytes: config.live_max_queued_bytes,
    };
    let (session_id, secret, outbox) = match shared.realtime.open(user, &client, &limits) {
        Ok(opened) => opened,
        Err(error) => return error_response(&headers, error),
    };
    let open = Open {
        shared: shared.clone(),
        session_id,
    };
    let connection = extensions.get::<Connection>().cloned();
    let max_bytes = limits.queued_bytes;
    let stop = shared.shutdown.clone();
    let stream = async_stream::stream! {
        let _open = open;
        let connected = json!({ "session_id": session_id, "session_secret": secret });
        yield Ok::<Event, Infallible>(Event::default().event("connected").data(connected.to_string()));
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                next = outbox.next() => next,
            };
            let Some((subscription_id, push)) = next else {
                tracing::info!(
                    %session_id,
                    max_bytes,
                    "a live session fell too far behind (FORGE_LIVE_MAX_QUEUED_BYTES); disconnecting it"
                );
                // Whatever is still buffered for a client that does not read goes too.
                if let Some(connection) = &connection {
                    connection.close();
                }
                break;
            };
            let subscription_id = serde_json::to_string(&*subscription_id).unwrap_or_default();
            let event = match push {
                Push::Update(data) => Event::default().event("update").data(format!(
                    "{{\"subscription_id\":{subscription_id},\"data\":{data}}}"
                )),
                Push::Error(error) => Event::default().event("error").data(format!(
                    "{{\"subscription_id\":{subscription_id},\"error\":{error}}}"
                )),
            };
            yield Ok(event);
        }
    };
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn error_response(headers: &HeaderMap, error: Error) -> axum::response::Response {
    Response {
        request_id: RequestId::from_headers(headers),
        result: Err(error),
    }
    .into_response()
}

#[derive(Deserialize)]
struct SubscribeBody {
    session_id: Uuid,
    session_secret: String,
    subscription_id: String,
    function: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Deserialize)]
struct UnsubscribeBody {
    session_id: Uuid,
    session_secret: String,
    subscription_id: String,
}

fn body<T: serde::de::DeserializeOwned>(
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<T> {
    let body = body.map_err(body_error)?;
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)).map_err(
        |error| {
            let path = error.path().to_string();
            Error::InvalidField {
                field: if path == "." { "body".into() } else { path },
                message: error.into_inner().to_string(),
            }
        },
    )
}

async fn subscribe(
    State(shared): State<Arc<Shared>>,
    client: Client,
    headers: HeaderMap,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let result = async {
        let request: SubscribeBody = body(raw)?;
        let query = shared
            .registry
            .queries
            .get(request.function.as_str())
            .ok_or_else(|| Error::NotFound(format!("no query is named `{}`", request.function)))?;
        let auth = authenticate(&shared, &headers, query.def.public).await?;
        let args = match request.args {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(args @ Value::Object(_)) => args,
            Some(_) => {
                return Err(Error::InvalidField {
                    field: "args".into(),
                    message: "must be an object mapping each argument's name to its value".into(),
                })
            }
        };
        super::subscribe(
            &shared,
            Subscribe {
                session_id: request.session_id,
                session_secret: request.session_secret,
                subscription_id: request.subscription_id,
                function: request.function,
                args,
                auth,
                client,
            },
        )
        .await?;
        Ok(Value::Null)
    }
    .await;
    Response { request_id, result }
}

async fn unsubscribe(
    State(shared): State<Arc<Shared>>,
    client: Client,
    headers: HeaderMap,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = RequestId::from_headers(&headers);
    let result = body(raw).and_then(|request: UnsubscribeBody| {
        super::unsubscribe(
            &shared,
            request.session_id,
            &request.session_secret,
            &client,
            &request.subscription_id,
        )
        .map(Value::Bool)
    });
    Response { request_id, result }
}
