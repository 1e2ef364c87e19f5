//! The HTTP server loop: hyper's HTTP/1 connections under the node's limits.
//!
//! - **Connections** are counted: past `FORGE_HTTP_MAX_CONNECTIONS` a new connection is
//!   answered `429` with the envelope and closed, so the node keeps file descriptors for
//!   the clients it serves (and for its database) whatever a flood opens.
//! - **Headers and idleness.** A connection must finish each request's headers within
//!   `FORGE_HTTP_HEADER_TIMEOUT` of starting to wait for it, so a connection that sends half
//!   a request line, or nothing, or idles between keep-alive requests, is closed after it.
//! - **Bodies.** A request's body must arrive within `FORGE_HTTP_BODY_TIMEOUT`; a slower
//!   one fails the read ([`BodyError`]) and the handler answers `408` ([`body_error`]).
//! - **Shutdown.** A connection with no request in flight (idle, or still sending its
//!   headers) is closed at once; a body still arriving fails at once; requests being
//!   handled finish and their connections close after the response. Live-query streams end
//!   with the node's shutdown token.
//! - Handlers find the peer as `ConnectInfo<SocketAddr>` and a [`Connection`] that lets them
//!   close their own connection (a live session that fell behind).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;
use tower_service::Service as _;

use crate::shared::Shared;
use crate::Error;

/// How long the accept loop pauses after a failed accept (out of file descriptors), so it
/// does not spin while connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Connections being refused at once; past this they are closed without an answer.
const REFUSING: usize = 64;
/// How long a refused or timed-out connection gets to take its answer.
const RAW_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// The request's connection, in the request's extensions.
#[derive(Clone)]
pub(crate) struct Connection {
    close: CancellationToken,
}

impl Connection {
    /// Closes the connection now, whatever it is doing (a live session that fell behind).
    #[cfg_attr(not(feature = "realtime"), allow(dead_code))]
    pub fn close(&self) {
        self.close.cancel();
    }
}

/// The node's open connections, bounded by `FORGE_HTTP_MAX_CONNECTIONS`.
pub(crate) struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

/// Serves `router` on `listener` until the node shuts down, then waits for the connections
/// still answering a request.
pub(crate) async fn run(listener: TcpListener, router: Router, shared: Arc<Shared>) {
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let connections = TaskTracker::new();
    let stop = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        match shared.gateway.connections.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                connections.spawn(serve(stream, peer, router.clone(), shared.clone(), slot));
            }
            Err(_) => {
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    let max = shared.config.http_max_connections;
                    tokio::spawn(refuse(stream, max, permit));
                }
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Answers a connection over the limit with `429` and closes it.
async fn refuse(stream: TcpStream, max: usize, _permit: OwnedSemaphorePermit) {
    let error = Error::RateLimited(format!(
        "this node has {max} connections open, the most it allows \
         (FORGE_HTTP_MAX_CONNECTIONS); try again shortly"
    ));
    answer_and_close(stream, "429 Too Many Requests", &error).await;
}

/// Writes an enveloped error answer on a connection hyper no longer serves, and closes it.
async fn answer_and_close(mut stream: TcpStream, status: &str, error: &Error) {
    let body = serde_json::json!({
        "success": false,
        "error": error.to_wire(),
        "request_id": uuid::Uuid::new_v4().to_string(),
    })
    .to_string();
    let retry = if status.starts_with("429") {
        "retry-after: 1\r\n"
    } else {
        ""
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {retry}connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(RAW_ANSWER_TIMEOUT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Requests of one connection whose responses are not written yet.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let connection = Connection {
        close: CancellationToken::new(),
    };
    let in_flight = Arc::new(AtomicUsize::new(0));
    let service = {
        let connection = connection.clone();
        let in_flight = in_flight.clone();
        let shared = shared.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            // Counted until the response's body is dropped: written, or abandoned.
            let guard = InFlight::new(&in_flight);
            let deadline = Instant::now() + shared.config.http_body_timeout;
            let stop = shared.shutdown.clone();
            let mut request = request.map(|body| Body::new(TimedBody::new(body, deadline, stop)));
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(connection.clone());
            let mut router = router.clone();
            // Boxed, so the connection can be polled without shutting its socket down.
            Box::pin(async move {
                let response = match router.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &guard;
                        frame
                    }))
                }))
            })
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.http_header_timeout)
        .keep_alive(true);
    let mut served = builder.serve_connection(TokioIo::new(stream), service);
    let ended = tokio::select! {
        ended = std::future::poll_fn(|cx| served.poll_without_shutdown(cx)) => ended,
        () = connection.close.cancelled() => return,
        () = shared.shutdown.cancelled() => {
            // Idle, or still sending headers: nothing is lost by closing now.
            if in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            Pin::new(&mut served).graceful_shutdown();
            tokio::select! {
                _ = std::future::poll_fn(|cx| served.poll_without_shutdown(cx)) => {}
                () = connection.close.cancelled() => {}
            }
            return;
        }
    };
    if let Err(error) = ended {
        // The headers did not arrive in time. A client that started a request gets an
        // answer; an idle keep-alive connection is just closed, since a client could be
        // sending its next request on it right now.
        let parts = served.into_parts();
        if error.is_timeout() && !parts.read_buf.is_empty() {
            let timeout = shared.config.http_header_timeout;
            let error = Error::RequestTimeout(format!(
                "the request's headers did not arrive within {timeout:?} \
                 (FORGE_HTTP_HEADER_TIMEOUT)"
            ));
            answer_and_close(parts.io.into_inner(), "408 Request Timeout", &error).await;
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error(
        "the request body did not arrive within {0:?} (FORGE_HTTP_BODY_TIMEOUT); send it faster"
    )]
    TooSlow(Duration),
    #[error("the server is shutting down; send the request again")]
    ShuttingDown,
}

/// A request body that fails once its deadline passes or the node shuts down.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    stop: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    stop_token: CancellationToken,
}

impl TimedBody {
    fn new(inner: Incoming, deadline: Instant, stop: CancellationToken) -> TimedBody {
        TimedBody {
            inner,
            deadline,
            timeout: deadline.saturating_duration_since(Instant::now()),
            sleep: None,
            stop: None,
            stop_token: stop,
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        // Timers are made on the first wait, so a body that is already here costs none.
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyError::TooSlow(this.timeout).into())));
        }
        let token = &this.stop_token;
        let stop = this
            .stop
            .get_or_insert_with(|| Box::pin(token.clone().cancelled_owned()));
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyError::ShuttingDown.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// The error for a request body that could not be read: `408` when it came too slowly (or
/// the node is shutting down), `400` otherwise (too large, malformed).
pub(crate) fn body_error(rejection: BytesRejection) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(error) = source {
        if let Some(body) = error.downcast_ref::<BodyError>() {
            return Error::RequestTimeout(body.to_string());
        }
        source = error.source();
    }
    Error::Validation(format!("cannot read the request body: {rejection}"))
}

/// Reads a body taken as [`Body`] (by handlers that authenticate before reading), with the
/// same limit and errors as the `Bytes` extractor.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, Error> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
            while let Some(cause) = source {
                if let Some(body) = cause.downcast_ref::<BodyError>() {
                    return Err(Error::RequestTimeout(body.to_string()));
                }
                source = cause.source();
            }
            Err(Error::Validation(format!(
                "cannot read the request body: {error} (FORGE_BODY_LIMIT is {limit} bytes)"
            )))
        }
    }
}
