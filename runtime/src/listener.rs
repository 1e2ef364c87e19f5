//! The node's one LISTEN connection (features `jobs` or `realtime`): job wake-ups
//! (`forge_jobs_available`) and row changes for live queries (`forge_changes`) arrive on the
//! same session instead of one connection per subsystem.
//!
//! The connection is outside the primary pool: LISTEN holds it for the node's lifetime and
//! must not take a slot from handlers and jobs. When it drops, the listener reconnects with
//! exponential backoff (0.5 s doubling to 30 s, reset once connected), LISTENs on every
//! channel again, and tells every subscriber [`Heard::Connected`]: notifications sent
//! meanwhile are lost, so each subsystem catches up in its own way (the job worker looks for
//! work, live queries replay `forge_change_log`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// What subscribers of the [`Listener`] receive.
#[derive(Debug, Clone)]
pub(crate) enum Heard {
    /// A notification on one of the channels.
    Notification {
        channel: Arc<str>,
        payload: Arc<str>,
    },
    /// The session is (re)established and listening on every channel: anything sent while
    /// it was down was missed.
    Connected,
}

/// Backoff between connection attempts.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Notifications buffered per subscriber. A subscriber that falls further behind sees
/// `RecvError::Lagged` and must treat it like [`Heard::Connected`].
const BUFFER: usize = 8192;

/// The sending half: subsystems [`Listener::subscribe`] before the connection task starts,
/// so none misses the first [`Heard::Connected`].
#[derive(Clone)]
pub(crate) struct Listener {
    sender: broadcast::Sender<Heard>,
}

impl Listener {
    pub fn new() -> Listener {
        Listener {
            sender: broadcast::channel(BUFFER).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Heard> {
        self.sender.subscribe()
    }

    /// Runs the connection until `stop`: connects, LISTENs on `channels`, forwards what it
    /// hears, and reconnects with backoff when the session is lost.
    pub async fn run(
        self,
        options: PgConnectOptions,
        channels: Vec<&'static str>,
        stop: CancellationToken,
    ) {
        if channels.is_empty() {
            return;
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        let mut retry = FIRST_RETRY;
        loop {
            let connected = tokio::select! {
                () = stop.cancelled() => return,
                connected = connect(&pool, &channels) => connected,
            };
            let mut listener = match connected {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, ?retry, "cannot LISTEN; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(LAST_RETRY);
                    continue;
                }
            };
            retry = FIRST_RETRY;
            tracing::debug!(?channels, "listening");
            let _ = self.sender.send(Heard::Connected);
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(notification)) => {
                        let _ = self.sender.send(Heard::Notification {
                            channel: notification.channel().into(),
                            payload: notification.payload().into(),
                        });
                    }
                    // `try_recv` reports a dropped session as `None` (and would reconnect
                    // by itself on the next call); reconnecting here instead puts every
                    // attempt under the backoff.
                    Ok(None) => {
                        tracing::warn!("the LISTEN connection was lost; reconnecting");
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the LISTEN connection failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

async fn connect(pool: &sqlx::PgPool, channels: &[&str]) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(listener)
}
