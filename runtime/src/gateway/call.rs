//! Running one handler call: on its own task (a panic becomes `INTERNAL_ERROR` and the
//! caller going away does not cancel a mutation half-way), within its timeout, tracked so
//! shutdown can drain it; and, for handlers that write, inside a transaction.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::panic_message;
use crate::shared::Shared;
use crate::tx::TxCell;
use crate::{Error, Result};

/// Runs `call` on a tracked task of its own within `timeout_ms`: for handlers that write,
/// which must not be cancelled half-way when the caller disconnects.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    name: &str,
    timeout_ms: Option<u64>,
    call: impl Future<Output = Result<Value>> + Send + 'static,
) -> Result<Value> {
    let owned_name = name.to_owned();
    let task = shared
        .calls
        .spawn(async move { within(&owned_name, timeout_ms, call).await });
    match task.await {
        Ok(result) => result,
        Err(error) if error.is_panic() => Err(panicked(name, error.into_panic())),
        Err(_) => Err(Error::Internal(format!("`{name}` was cancelled"))),
    }
}

/// Runs `call` within `timeout_ms` on the request's own task, tracked like [`run`] and with
/// its panics caught the same way: for queries, which only read, so a caller that
/// disconnects may cancel them. Saves a task spawn (and often a cross-thread wake-up) per
/// call.
pub(crate) async fn run_inline(
    shared: &Shared,
    name: &str,
    timeout_ms: Option<u64>,
    call: impl Future<Output = Result<Value>>,
) -> Result<Value> {
    let guarded = AssertUnwindSafe(within(name, timeout_ms, call)).catch_unwind();
    match shared.calls.track_future(guarded).await {
        Ok(result) => result,
        Err(panic) => Err(panicked(name, panic)),
    }
}

async fn within(
    name: &str,
    timeout_ms: Option<u64>,
    call: impl Future<Output = Result<Value>>,
) -> Result<Value> {
    match timeout_ms {
        None => call.await,
        Some(ms) => tokio::time::timeout(Duration::from_millis(ms), call)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout(format!(
                    "`{name}` did not finish within {ms} ms"
                )))
            }),
    }
}

fn panicked(name: &str, panic: Box<dyn Any + Send>) -> Error {
    Error::Internal(format!("`{name}` panicked: {}", panic_message(&*panic)))
}

/// Opens a transaction for a handler that writes.
pub(crate) async fn begin(shared: &Shared) -> Result<TxCell> {
    Ok(Arc::new(Mutex::new(Some(shared.primary.begin().await?))))
}

/// Awaits `handler`, then commits `cell` when it succeeded and rolls it back when it failed.
pub(crate) async fn in_transaction(
    cell: TxCell,
    handler: impl Future<Output = Result<Value>>,
) -> Result<Value> {
    let result = handler.await;
    let Some(tx) = cell.lock().await.take() else {
        return result;
    };
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback failed; the connection is discarded");
            }
            Err(error)
        }
    }
}
