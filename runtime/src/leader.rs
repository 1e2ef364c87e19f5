//! Leader election: one node of the cluster leads, and only the leader schedules crons,
//! runs `leader_elected` daemons and deletes nodes that stopped heartbeating. Compiled with
//! the `cron` or the `daemons` feature; a node competes only when it can do all of the
//! leader's work for its app ([`cannot_lead`]).
//!
//! Leadership is a session-level advisory lock ([`LOCK_KEY`]) held by a connection of its
//! own, outside the pool: the lock lives exactly as long as that server session, so a leader
//! that dies loses it with its socket, and nothing has to expire first. The row in
//! `forge_leaders` only makes leadership visible (who, since when, until when it was last
//! confirmed); the lock decides.
//!
//! Timing, with `L` = `config.leader_lease`:
//! - a follower tries the lock every [`retry_interval`] (`L/3`, at most 1s);
//! - the leader confirms its session every `L/3` (a query on the lock's connection that also
//!   renews `lease_expires_at` to now + `L`) and steps down — cancelling its work — as soon
//!   as a confirmation fails or takes longer than `L/3`, so at most `2L/3` after the last
//!   good one;
//! - the server drops a silent leader session (network partition, host gone) through TCP
//!   keepalives and `tcp_user_timeout` set on that session: between `L` and about `4L/3`
//!   after it last heard from the leader, which is later than the leader fences itself.
//!
//! So a new leader takes over within one retry interval when the leader process dies or
//! shuts down, and within about `4L/3` + 1s when it becomes unreachable (≈ 21s at the
//! default `L` = 15s).
//!
//! # Leadership, cron, daemons, nodes, retention
//!
//! - **One role.** A single leader (`forge_leaders.role = 'leader'`) schedules every cron and
//!   runs every `leader_elected` daemon. One lock connection per node instead of one per
//!   daemon, one place to look, and crons and singleton daemons are light enough that
//!   spreading them over nodes buys nothing yet. Roles per daemon would fit the same table
//!   (the key is `role`) if that changes.
//! - **The lock decides, the row shows.** Leadership is `pg_try_advisory_lock(0x666f7267656c6472)`
//!   ("forgeldr"; forge-migrate uses "forgemig") on a connection outside the pool; the row
//!   carries node, `acquired_at` and a `lease_expires_at` the leader pushes to now +
//!   `FORGE_LEADER_LEASE` (L) on every check. Followers retry every min(L/3, 1s). The leader
//!   checks its session every L/3 (that renewal, with an L/3 timeout) and steps down at the
//!   first failure: its term's `CancellationToken` stops the schedulers and daemons, and it
//!   competes again only once they have ended. A graceful shutdown stops that work first,
//!   then deletes the row and unlocks.
//! - **Failover bound.** Leader process dies or shuts down: the server frees the lock with
//!   the session, a follower takes it on its next try — ≤ min(L/3, 1s) (measured ≈ 0.5–0.7s
//!   with L = 2s in `runtime/tests/it/leader.rs`). Leader unreachable (partition, host gone): the lock
//!   session sets `tcp_keepalives_idle/interval` = max(1s, L/3), `count` = 3 and
//!   `tcp_user_timeout` = L, so the server drops it between L and ≈ 4L/3 after it last heard
//!   from the leader, which has fenced itself by then (≤ 2L/3); takeover ≤ ≈ 4L/3 + 1s
//!   (≈ 21s at the default L = 15s).
//! - **Cron** claims each tick with `INSERT … ON CONFLICT DO NOTHING` on
//!   `forge_cron_runs (name, scheduled_time)`; only the inserter runs it, so overlapping
//!   leaders cannot double-run a tick. `every` ticks on multiples of the interval since the
//!   epoch (time zone ignored); expressions and `daily_at` use croner with the `forge-attrs`
//!   parser in the cron's time zone (DST: a nonexistent time runs right after the gap, a
//!   repeated one once at the earlier instant). Catch-up runs the latest `catch_up` ticks
//!   after the last recorded one, late; a cron with no row starts from now. Ticks run on
//!   their own tasks: a tick that overruns overlaps the next one (bound it with `timeout`).
//!   A tick is never run twice, so one cut off by shutdown or a crash can only be recorded:
//!   `forge_cron_runs.node_id` names the claiming node, and removing a node (its own clean
//!   shutdown after the grace period, or the leader's stale-node sweep) marks the ticks it left
//!   `running` as `failed` with "cut off: …" in the same statement (`node.rs`).
//! - **Daemons** are restarted after `Err` or a panic with backoff from `restart`, doubling to
//!   5 min, reset after 60s of healthy running. Returning `Ok` before `ctx.shutdown()`
//!   resolved is treated as a failure (logged, `last_error`, restarted): a daemon is meant
//!   to run until told to stop. `forge_daemons` rows: running / restarting / stopped.
//! - **Nodes** heartbeat `last_seen_at` every `FORGE_HEARTBEAT`; the leader deletes nodes not
//!   seen for 4 heartbeats (leader and daemon rows cascade). A live node deleted anyway
//!   (a long stall) registers again on its next heartbeat. Every node heartbeats; the deletion
//!   is leader work, in `leader.rs`.
//! - **Retention** (`retention.rs`): the leader trims, on gaining leadership and then every
//!   quarter of the shortest retention (1 s to 10 min), webhook idempotency keys and finished
//!   cron runs older than `FORGE_RETENTION` (default 7d), completed/dead/cancelled jobs older
//!   than `FORGE_RETENTION_JOBS` (through `forge_jobs_status_idx`: `created_at` bounds the
//!   range) and finished workflow runs (steps and events cascade) older than
//!   `FORGE_RETENTION_WORKFLOWS`, in batches of 5,000. Each cron keeps its latest
//!   run whatever its age, because catch-up starts from it. It runs with the leader, so a
//!   cluster without `cron` and `daemons` anywhere does not trim.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::registry::{DaemonMode, Registry};
use crate::shared::Shared;
use crate::Result;

/// The advisory lock key: "forgeldr" in ASCII, recognisable in `pg_locks` and distinct from
/// forge-migrate's "forgemig".
pub(crate) const LOCK_KEY: i64 = 0x666f_7267_656c_6472;

/// The one role in `forge_leaders`: cron scheduling and every leader-elected daemon follow
/// the same leader (see the module docs, "Leadership, cron, daemons, nodes, retention").
pub(crate) const ROLE: &str = "leader";

/// How often a follower tries to take the lock.
pub(crate) fn retry_interval(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// How often the leader confirms its session, and how long one confirmation may take.
fn check_interval(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(50))
}

/// One period of leadership, as the leader's work sees it.
#[derive(Clone)]
pub(crate) struct Term {
    /// Cancelled when this node stops leading (lost session, shutdown).
    pub stop: CancellationToken,
    /// Work of this term registers here; leadership is released at shutdown only once
    /// the work has stopped, so a leader-elected daemon never runs on two nodes because
    /// one was still winding down.
    work: TaskTracker,
}

impl Term {
    /// Keeps the term's release waiting until the returned token is dropped.
    pub fn hold(&self) -> TaskTrackerToken {
        self.work.token()
    }
}

/// This node's view of its leadership.
#[derive(Clone)]
pub(crate) struct Leadership {
    terms: watch::Receiver<Option<Term>>,
    shutdown: CancellationToken,
}

impl Leadership {
    /// Waits until this node leads and returns the term; `None` once the node stops.
    pub async fn acquired(&mut self) -> Option<Term> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            if let Some(term) = self.terms.borrow_and_update().clone() {
                if !term.stop.is_cancelled() {
                    return Some(term);
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                // The sender lives as long as the election task: gone means it ended.
                changed = self.terms.changed() => changed.ok()?,
            }
        }
    }

    pub fn is_leading(&self) -> bool {
        self.terms
            .borrow()
            .as_ref()
            .is_some_and(|term| !term.stop.is_cancelled())
    }
}

/// A node not seen for this many heartbeats is taken for dead and deleted by the leader
/// (its `forge_leaders` and `forge_daemons` rows go with it). Several, so one slow
/// heartbeat does not remove a live node; one that was removed anyway registers again.
pub(crate) const STALE_AFTER_HEARTBEATS: u32 = 4;

/// Starts the election, and the leader's removal of stale nodes and trimming of old rows
/// (`retention.rs`), on `tasks`. A node that
/// cannot lead gets a [`Leadership`] that never yields a term.
pub(crate) fn spawn(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) -> Leadership {
    let (sender, receiver) = watch::channel(None);
    let leadership = Leadership {
        terms: receiver,
        shutdown: shared.shutdown.clone(),
    };
    let features = (cfg!(feature = "cron"), cfg!(feature = "daemons"));
    if let Some(reason) = cannot_lead(&shared.registry, features) {
        tracing::warn!("this node does not compete for leadership: {reason}");
        return leadership;
    }
    tasks.spawn(elect(shared.clone(), sender));
    tasks.spawn(remove_stale_nodes(shared.clone(), leadership.clone()));
    tasks.spawn(crate::retention::trim_while_leading(
        shared.clone(),
        leadership.clone(),
    ));
    leadership
}

/// Why this node must not lead, if it must not: the leader is the only node that runs the
/// crons and the leader-elected daemons, so a leader built without the feature for either
/// (`cron`, `daemons` = `features`) while the app has some would leave them unrun for as
/// long as it leads. It stays a follower, and a node that has both features leads.
fn cannot_lead(registry: &Registry, (cron, daemons): (bool, bool)) -> Option<String> {
    let crons = registry.crons.len();
    let elected = registry
        .daemons
        .values()
        .filter(|d| d.def.mode == DaemonMode::LeaderElected)
        .count();
    let mut missing = Vec::new();
    if crons > 0 && !cron {
        missing.push(format!("{crons} cron(s) without the `cron` feature"));
    }
    if elected > 0 && !daemons {
        missing.push(format!(
            "{elected} leader-elected daemon(s) without the `daemons` feature"
        ));
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the app has {}; a node built with both `cron` and `daemons` leads instead",
            missing.join(" and ")
        )
    })
}

/// Every `config.heartbeat`, while this node leads: deletes the nodes not seen for
/// [`STALE_AFTER_HEARTBEATS`] heartbeats.
async fn remove_stale_nodes(shared: Arc<Shared>, leadership: Leadership) {
    let every = shared.config.heartbeat;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if !leadership.is_leading() {
            continue;
        }
        match crate::node::remove_stale(&shared.primary, every * STALE_AFTER_HEARTBEATS).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed nodes that stopped heartbeating"),
            Err(error) => tracing::warn!(%error, "cannot remove stale nodes"),
        }
    }
}

async fn elect(shared: Arc<Shared>, sender: watch::Sender<Option<Term>>) {
    let lease = shared.config.leader_lease;
    let stop = shared.shutdown.clone();
    let mut conn: Option<PgConnection> = None;
    while !stop.is_cancelled() {
        let attempt = async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(connect(&shared).await?),
            };
            try_lead(c, &shared).await
        };
        let acquired = match tokio::time::timeout(lease, attempt).await {
            Ok(Ok(acquired)) => acquired,
            Ok(Err(error)) => {
                tracing::warn!(%error, "leader election: cannot reach the database");
                conn = None;
                false
            }
            Err(_) => {
                tracing::warn!("leader election: the database did not answer in time");
                conn = None;
                false
            }
        };
        if acquired {
            if let Some(c) = conn.take() {
                conn = lead(c, &shared, &sender).await;
            }
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(retry_interval(lease)) => {}
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

/// The dedicated connection. The server-side keepalives bound how long a leader that became
/// unreachable keeps the lock (see the module documentation).
async fn connect(shared: &Shared) -> Result<PgConnection> {
    let lease = shared.config.leader_lease;
    let keepalive_s = (lease.as_secs() / 3).max(1);
    let user_timeout_ms = lease.as_millis().max(1000);
    let options: PgConnectOptions = (*shared.primary.connect_options()).clone();
    let conn = options
        .application_name(&format!(
            "forge leader {}",
            &shared.node_id.to_string()[..8]
        ))
        .options([
            ("tcp_keepalives_idle", keepalive_s.to_string()),
            ("tcp_keepalives_interval", keepalive_s.to_string()),
            ("tcp_keepalives_count", "3".to_owned()),
            ("tcp_user_timeout", user_timeout_ms.to_string()),
        ])
        .connect()
        .await?;
    Ok(conn)
}

/// Takes the lock and claims the row, or returns false when another session holds the lock.
async fn try_lead(conn: &mut PgConnection, shared: &Shared) -> Result<bool> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(false);
    }
    // Holding the lock makes this node the leader, so it overwrites whatever row a dead
    // leader left behind.
    let claimed = sqlx::query(
        "INSERT INTO forge_leaders (role, node_id, lease_expires_at) \
         VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
         ON CONFLICT (role) DO UPDATE \
         SET node_id = EXCLUDED.node_id, acquired_at = now(), \
             lease_expires_at = EXCLUDED.lease_expires_at",
    )
    .bind(ROLE)
    .bind(shared.node_id)
    .bind(shared.config.leader_lease.as_millis() as f64)
    .execute(&mut *conn)
    .await;
    if let Err(error) = claimed {
        // Typically our forge_nodes row is gone (this node was taken for dead); the
        // heartbeat registers it again and a later attempt succeeds.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await;
        return Err(error.into());
    }
    Ok(true)
}

/// Leads until the session fails or the node shuts down. Returns the connection to keep
/// using for election when it is still good.
async fn lead(
    mut conn: PgConnection,
    shared: &Shared,
    sender: &watch::Sender<Option<Term>>,
) -> Option<PgConnection> {
    let lease = shared.config.leader_lease;
    let every = check_interval(lease);
    let term = Term {
        stop: shared.shutdown.child_token(),
        work: TaskTracker::new(),
    };
    tracing::info!(node = %shared.node_id, "this node is now the leader");
    sender.send_replace(Some(term.clone()));

    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let lost = loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => break None,
            _ = ticks.tick() => {}
        }
        match tokio::time::timeout(every, renew(&mut conn, shared)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => break Some(error.to_string()),
            Err(_) => break Some(format!("the database did not confirm within {every:?}")),
        }
    };

    sender.send_replace(None);
    term.stop.cancel();
    term.work.close();
    let grace = shared.config.shutdown_grace;
    let stopped = async {
        if tokio::time::timeout(grace, term.work.wait()).await.is_err() {
            tracing::warn!(?grace, "leader work did not stop within the grace period");
        }
    };
    match lost {
        Some(reason) => {
            // The session may be dead already, or merely unconfirmed: either way it is let
            // go at once so the bound on failover holds; the work winds down meanwhile, and
            // this node only competes again once it has.
            tracing::warn!(%reason, "stepped down: lost the leader session");
            drop(conn);
            stopped.await;
            None
        }
        None => {
            // At shutdown the work ends before the lock is released, so another node never
            // starts a leader-elected daemon while this one still runs it.
            stopped.await;
            release(&mut conn, shared).await;
            Some(conn)
        }
    }
}

/// Confirms the session and extends the visible lease. Zero rows means the row was taken
/// away (this node was deleted as stale); that counts as a failure.
async fn renew(conn: &mut PgConnection, shared: &Shared) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE forge_leaders SET lease_expires_at = now() + $3 * interval '1 millisecond' \
         WHERE role = $1 AND node_id = $2",
    )
    .bind(ROLE)
    .bind(shared.node_id)
    .bind(shared.config.leader_lease.as_millis() as f64)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 1 {
        Ok(())
    } else {
        Err(crate::Error::Internal(
            "this node's forge_leaders row is gone".into(),
        ))
    }
}

/// Gives leadership up at shutdown so a follower takes over on its next try instead of
/// waiting for anything to expire.
async fn release(conn: &mut PgConnection, shared: &Shared) {
    let released = async {
        sqlx::query("DELETE FROM forge_leaders WHERE role = $1 AND node_id = $2")
            .bind(ROLE)
            .bind(shared.node_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await?;
        Ok::<_, sqlx::Error>(())
    };
    match tokio::time::timeout(check_interval(shared.config.leader_lease), released).await {
        Ok(Ok(())) => tracing::info!("released leadership"),
        // Closing the connection releases the lock anyway; the row goes with the node.
        Ok(Err(error)) => tracing::warn!(%error, "could not release leadership cleanly"),
        Err(_) => tracing::warn!("releasing leadership timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{CronDef, DaemonDef, Schedule};

    fn registry(crons: usize, modes: &[DaemonMode]) -> Registry {
        const NAMES: [&str; 3] = ["a", "b", "c"];
        let mut registry = Registry::new();
        for name in &NAMES[..crons] {
            let def = CronDef {
                name,
                module: "",
                schedule: Schedule::EveryMs(1000),
                timezone: None,
                catch_up: 0,
                timeout_ms: None,
            };
            registry.cron(def, |_| async { Ok(()) });
        }
        for (name, &mode) in NAMES.iter().zip(modes) {
            let def = DaemonDef {
                name,
                module: "",
                mode,
                restart_ms: 1000,
            };
            registry.daemon(def, |_| async { Ok(()) });
        }
        registry
    }

    #[test]
    fn a_node_leads_only_when_it_runs_all_the_leaders_work() {
        let all = (true, true);
        assert_eq!(
            cannot_lead(&registry(2, &[DaemonMode::LeaderElected]), all),
            None
        );
        assert_eq!(cannot_lead(&registry(0, &[]), (false, false)), None);
        // Replicated daemons run everywhere; only leader-elected ones need the leader.
        assert_eq!(
            cannot_lead(&registry(1, &[DaemonMode::Replicated]), (true, false)),
            None
        );
        let reason = cannot_lead(&registry(2, &[]), (false, true)).unwrap();
        assert!(
            reason.contains("2 cron(s) without the `cron` feature"),
            "{reason}"
        );
        let reason = cannot_lead(&registry(1, &[DaemonMode::LeaderElected]), (false, false));
        let reason = reason.unwrap();
        assert!(
            reason.contains("cron") && reason.contains("leader-elected"),
            "{reason}"
        );
    }
}
