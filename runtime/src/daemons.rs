//! Daemons: long-running handlers, supervised.
//!
//! - `replicated`: one instance on every node, from start to shutdown.
//! - `leader_elected`: one instance in the cluster, on the leader. It starts when this node
//!   gains leadership; when the node stops leading or stops, its context's `shutdown()`
//!   resolves and it has `config.shutdown_grace` to return before it is aborted. This node
//!   competes for leadership again only after its instances have ended.
//! - A daemon that fails (`Err`, or a panic) is restarted after a backoff that starts at its
//!   `restart` option, doubles after each further failure up to [`MAX_BACKOFF`], and starts
//!   over once an instance has run for [`HEALTHY_AFTER`].
//! - A daemon is meant to run until `ctx.shutdown()` resolves. Returning `Ok` before that is
//!   treated like a failure — logged, recorded as the last error, restarted with the same
//!   backoff — because a daemon that silently stays down is worse than one that restarts.
//!   A daemon with finite work to do belongs in a job or a cron.
//! - `forge_daemons` has one row per daemon and node: `running`, `restarting` (waiting for
//!   the backoff, `last_error` says why) or `stopped`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::{Base, DaemonContext};
use crate::error::panic_message;
use crate::leader::Leadership;
use crate::registry::DaemonMode;
use crate::shared::Shared;

/// The longest wait between restarts (unless `restart` itself is longer).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// An instance that ran this long was healthy: the next failure waits `restart` again.
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// A floor for `restart = "0s"`, so a daemon that fails at once cannot spin a core.
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// Restart delays of one daemon instance.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(restart: Duration) -> Backoff {
        let base = restart.max(MIN_BACKOFF);
        Backoff { base, next: base }
    }

    /// The delay before the next start, after an instance that ran for `ran_for` failed.
    pub fn after_failure(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= HEALTHY_AFTER {
            self.next = self.base;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF.max(self.base));
        delay
    }
}

/// Starts the daemons on `tasks`.
pub(crate) fn spawn(shared: &Arc<Shared>, leadership: Leadership, tasks: &mut JoinSet<()>) {
    if shared.registry.daemons.is_empty() {
        return;
    }
    let shared = shared.clone();
    tasks.spawn(async move { run(shared, leadership).await });
}

async fn run(shared: Arc<Shared>, mut leadership: Leadership) {
    let names = |mode| -> Vec<&'static str> {
        shared
            .registry
            .daemons
            .values()
            .filter(|d| d.def.mode == mode)
            .map(|d| d.def.name)
            .collect()
    };
    let (replicated, elected) = (
        names(DaemonMode::Replicated),
        names(DaemonMode::LeaderElected),
    );

    let mut everywhere = JoinSet::new();
    for &name in &replicated {
        everywhere.spawn(supervise(shared.clone(), name, shared.shutdown.clone()));
    }
    if !elected.is_empty() {
        let mut on_leader = JoinSet::new();
        while let Some(term) = leadership.acquired().await {
            let hold = term.hold();
            for &name in &elected {
                on_leader.spawn(supervise(shared.clone(), name, term.stop.clone()));
            }
            term.stop.cancelled().await;
            let grace = shared.config.shutdown_grace;
            let ended = tokio::time::timeout(grace, async {
                while on_leader.join_next().await.is_some() {}
            })
            .await;
            if ended.is_err() {
                tracing::warn!(
                    ?grace,
                    "leader-elected daemons ignored shutdown() for the grace period; aborting them"
                );
                on_leader.abort_all();
                while on_leader.join_next().await.is_some() {}
                for &name in &elected {
                    record(&shared, name, "stopped", None).await;
                }
            }
            drop(hold);
        }
    }
    // Replicated daemons end with the node; Running::shutdown bounds the wait.
    while everywhere.join_next().await.is_some() {}
}

/// Runs one daemon until `stop`, restarting it after failures.
async fn supervise(shared: Arc<Shared>, name: &'static str, stop: CancellationToken) {
    let Some(daemon) = shared.registry.daemons.get(name) else {
        return;
    };
    let mut backoff = Backoff::new(Duration::from_millis(daemon.def.restart_ms));
    record(&shared, name, "running", Some(None)).await;
    loop {
        let started = Instant::now();
        let ctx = DaemonContext {
            base: Base::new(&shared, None),
            stop: stop.clone(),
        };
        let outcome = AssertUnwindSafe((daemon.call)(ctx)).catch_unwind().await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(panic) => Some(format!("panicked: {}", panic_message(&*panic))),
        };
        if stop.is_cancelled() {
            if let Some(error) = &error {
                tracing::warn!(daemon = name, %error, "daemon failed while stopping");
            }
            break;
        }
        let error = error.unwrap_or_else(|| "returned before shutdown() resolved".to_owned());
        let delay = backoff.after_failure(started.elapsed());
        tracing::warn!(daemon = name, %error, restart_in = ?delay, "daemon stopped; restarting");
        record(&shared, name, "restarting", Some(Some(&error))).await;
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
        record(&shared, name, "running", None).await;
    }
    record(&shared, name, "stopped", None).await;
}

/// Writes the daemon's row for this node. `error`: `None` keeps `last_error`, `Some(x)`
/// sets it to `x`. A failed write is logged and otherwise ignored: bookkeeping never stops
/// a daemon. An upsert, so a row deleted with a node taken for dead comes back.
async fn record(shared: &Shared, name: &str, status: &str, error: Option<Option<&str>>) {
    let written = sqlx::query(
        "INSERT INTO forge_daemons (name, node_id, status, last_error) VALUES ($1, $2, $3, $5) \
         ON CONFLICT (name, node_id) DO UPDATE SET status = EXCLUDED.status, \
           started_at = CASE WHEN EXCLUDED.status = 'running' THEN now() \
                             ELSE forge_daemons.started_at END, \
           last_error = CASE WHEN $4 THEN EXCLUDED.last_error ELSE forge_daemons.last_error END",
    )
    .bind(name)
    .bind(shared.node_id)
    .bind(status)
    .bind(error.is_some())
    .bind(error.flatten())
    .execute(&shared.primary)
    .await;
    if let Err(error) = written {
        tracing::warn!(daemon = name, status, %error, "cannot record the daemon's status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_starts_over_after_a_healthy_run() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let quick = Duration::from_millis(1);
        let delays: Vec<u64> = (0..9).map(|_| b.after_failure(quick).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(b.after_failure(HEALTHY_AFTER).as_secs(), 5);
        assert_eq!(b.after_failure(quick).as_secs(), 10);
    }

    #[test]
    fn restart_longer_than_the_cap_is_kept_and_zero_is_floored() {
        let mut b = Backoff::new(Duration::from_secs(600));
        assert_eq!(b.after_failure(Duration::ZERO).as_secs(), 600);
        assert_eq!(b.after_failure(Duration::ZERO).as_secs(), 600);
        let mut b = Backoff::new(Duration::ZERO);
        assert_eq!(b.after_failure(Duration::ZERO), MIN_BACKOFF);
    }
}
