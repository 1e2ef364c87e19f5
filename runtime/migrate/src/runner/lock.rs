//! Serialising runners: a session-level advisory lock on the connection that applies the
//! migrations, so it is held exactly as long as that connection lives (a runner killed with
//! SIGKILL loses its session and with it the lock; nothing is left to clean up).
//!
//! A session lock needs a session. Behind PgBouncer in transaction pooling mode each
//! transaction may run on a different server session, and a session that took the lock goes
//! back to the pool still holding it, where another client (another runner) can be handed
//! it and take the lock again, re-entrantly. So after taking the lock the runner checks, in a
//! second statement, that it still talks to the session that took it and that this session
//! holds the lock, and it marks the session as a runner's (`forge.migrate_runner`, a custom
//! setting, which a server session handed to another client keeps): a runner that finds a
//! mark on the session it just locked was handed another runner's session. A lone runner
//! that the pooler happens to keep on one session cannot tell, and needs not: it is
//! serialised correctly, and a second runner, or a file's transaction landing on another
//! session ([`ensure_held`]), is caught.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::runner::{LockHolder, MigrateError, UpOptions};

/// forge's advisory lock key: "forgemig" in ASCII, so it is recognisable in `pg_locks` and
/// unlikely to collide with an application's own keys.
pub const LOCK_KEY: i64 = 0x666f_7267_656d_6967;

/// The custom setting a runner marks its session with while it holds the lock.
const MARK: &str = "forge.migrate_runner";

/// How often a waiting runner tries again. Short enough that a queue of runners drains
/// quickly, long enough not to load the server.
const POLL: Duration = Duration::from_millis(100);

/// Whether this session holds the lock, as `pg_locks` shows a bigint advisory key:
/// classid (high half), objid (low half), objsubid 1.
const HELD_BY_THIS_SESSION: &str = "EXISTS (SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
      AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)";

/// Takes the lock on `conn`, waiting up to `options.lock_timeout`. While waiting, reports
/// the holder to `options.on_wait` once per distinct holder (not on every poll). Refuses a
/// connection pooled in transaction mode ([`check_session`]).
pub async fn acquire(conn: &mut PgConnection, options: &UpOptions) -> Result<(), MigrateError> {
    let started = Instant::now();
    let mut reported: Option<i32> = None;
    loop {
        let (locked, pid, mark): (bool, i32, Option<String>) = sqlx::query_as(&format!(
            "SELECT pg_try_advisory_lock($1), pg_backend_pid(), current_setting('{MARK}', true)"
        ))
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
        if locked {
            return verify_session(conn, pid, mark).await;
        }
        let holder = holder(conn).await?;
        // Reported before the timeout check so that even a zero timeout says who was in
        // the way.
        if let Some(holder) = &holder {
            if reported != Some(holder.pid) {
                reported = Some(holder.pid);
                if let Some(on_wait) = &options.on_wait {
                    on_wait(holder);
                }
            }
        }
        if started.elapsed() >= options.lock_timeout {
            return Err(MigrateError::LockTimeout {
                waited: options.lock_timeout,
                holder,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks, one statement after the lock was granted on session `granted_pid` (which bore
/// `mark`), that the connection is a session of its own, and marks it as a runner's.
async fn verify_session(
    conn: &mut PgConnection,
    granted_pid: i32,
    mark: Option<String>,
) -> Result<(), MigrateError> {
    let (later_pid, later_holds_lock, _): (i32, bool, String) = sqlx::query_as(&format!(
        "SELECT pg_backend_pid(), {HELD_BY_THIS_SESSION},
                set_config('{MARK}', 'forge process ' || $3::text, false)"
    ))
    .bind(LOCK_KEY >> 32)
    .bind(LOCK_KEY & 0xffff_ffff)
    .bind(i64::from(std::process::id()))
    .fetch_one(&mut *conn)
    .await?;
    let observed = Session {
        granted_pid,
        mark,
        later_pid,
        later_holds_lock,
    };
    if let Err(error) = check_session(&observed) {
        // Not to leave our (possibly re-entrant) hold on a session that goes back to the
        // pool. Best effort: the refusal is what matters.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await;
        return Err(error);
    }
    Ok(())
}

/// What the lock connection showed: the server session the lock was granted on and the
/// runner mark it already bore, then, one statement later, the session answering and
/// whether that one holds the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub granted_pid: i32,
    pub mark: Option<String>,
    pub later_pid: i32,
    pub later_holds_lock: bool,
}

/// Whether `observed` is a session of our own; the error says why not.
pub(crate) fn check_session(observed: &Session) -> Result<(), MigrateError> {
    let reason = if observed.later_pid != observed.granted_pid {
        format!(
            "the lock was taken by server process {} but the next statement ran on {}",
            observed.granted_pid, observed.later_pid
        )
    } else if !observed.later_holds_lock {
        format!(
            "server process {} took the lock but pg_locks does not show it holding it",
            observed.granted_pid
        )
    } else if let Some(mark) = observed.mark.as_deref().filter(|m| !m.is_empty()) {
        format!(
            "server process {} was already a migration runner's session ({mark}) when this \
             runner was given it",
            observed.granted_pid
        )
    } else {
        return Ok(());
    };
    Err(MigrateError::PooledConnection { reason })
}

/// Releases the lock and closes the connection. Closing alone would release it too; the
/// explicit unlock makes the release immediate even if the close is slow.
pub async fn release(mut conn: PgConnection) -> Result<(), MigrateError> {
    // The mark goes too: a pooler in session mode may hand this server session on (after
    // `DISCARD ALL`, which clears both anyway; without it, the mark would accuse the next
    // client of sharing a runner's session).
    sqlx::query(&format!(
        "SELECT pg_advisory_unlock($1), set_config('{MARK}', '', false)"
    ))
    .bind(LOCK_KEY)
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// A query returning one row when this session holds the lock and none otherwise, with the
/// key written out, for a batch that cannot bind parameters.
pub fn held_check_sql() -> String {
    format!(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND pid = pg_backend_pid() AND classid::bigint = {} AND objid::bigint = {} \
         AND objsubid = 1",
        LOCK_KEY >> 32,
        LOCK_KEY & 0xffff_ffff
    )
}

/// Fails unless this session still holds the lock. Called inside each file's transaction,
/// which pins one server session even behind a pooler: behind PgBouncer in transaction
/// pooling mode the lock was taken by whichever session served that one statement, so it
/// protects nothing, and DESIGN requires refusing to run there.
pub async fn ensure_held(conn: &mut PgConnection) -> Result<(), MigrateError> {
    let held: bool = sqlx::query_scalar(&format!("SELECT {HELD_BY_THIS_SESSION}"))
        .bind(LOCK_KEY >> 32)
        .bind(LOCK_KEY & 0xffff_ffff)
        .fetch_one(&mut *conn)
        .await?;
    if held {
        Ok(())
    } else {
        Err(MigrateError::LockLost)
    }
}

/// pid, application_name, backend_start, xact_start, query.
type HolderRow = (i32, String, Option<String>, Option<String>, Option<String>);

/// The session holding the lock, if any still does (it may have let go since we tried).
async fn holder(conn: &mut PgConnection) -> Result<Option<LockHolder>, MigrateError> {
    // A bigint advisory key shows in pg_locks as classid (high half), objid (low half) and
    // objsubid 1. Advisory locks belong to a database: runners on other databases of the
    // same server hold the same key without being in our way.
    let row: Option<HolderRow> = sqlx::query_as(
        "SELECT a.pid, a.application_name, a.backend_start::text, a.xact_start::text, a.query
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1
             LIMIT 1",
    )
    .bind(LOCK_KEY >> 32)
    .bind(LOCK_KEY & 0xffff_ffff)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(
        |(pid, application_name, backend_start, xact_start, query)| LockHolder {
            pid,
            application_name,
            backend_start,
            xact_start,
            query,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_db::testing::TestDatabase;

    fn session(later_pid: i32, later_holds_lock: bool, mark: Option<&str>) -> Session {
        Session {
            granted_pid: 10,
            mark: mark.map(str::to_owned),
            later_pid,
            later_holds_lock,
        }
    }

    fn refusal(observed: &Session) -> String {
        match check_session(observed) {
            Err(MigrateError::PooledConnection { reason }) => reason,
            other => panic!("expected a refusal for {observed:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_session_of_its_own_passes() {
        assert!(check_session(&session(10, true, None)).is_ok());
        // Cleared by the runner that had it (release) or never set.
        assert!(check_session(&session(10, true, Some(""))).is_ok());
    }

    #[test]
    fn a_pooled_connection_is_refused_with_the_reason() {
        assert_eq!(
            refusal(&session(11, true, None)),
            "the lock was taken by server process 10 but the next statement ran on 11"
        );
        assert_eq!(
            refusal(&session(10, false, None)),
            "server process 10 took the lock but pg_locks does not show it holding it"
        );
        assert_eq!(
            refusal(&session(10, true, Some("forge process 7"))),
            "server process 10 was already a migration runner's session (forge process 7) \
             when this runner was given it"
        );
        let message = check_session(&session(11, true, None))
            .map_err(|e| e.to_string())
            .expect_err("refused");
        assert!(
            message.starts_with(
                "the database connection is pooled in transaction mode (PgBouncer?): \
                 migrations need a session; connect directly or use session pooling ("
            ),
            "{message}"
        );
    }

    /// A transaction-mode pooler hands one server session to two clients in turn; here one
    /// connection plays both, which is exactly what the second client sees: the lock is
    /// granted again (advisory locks are re-entrant) on a session the first marked.
    #[tokio::test]
    async fn a_runner_handed_another_runners_session_refuses() {
        let db = TestDatabase::new().await;
        let mut conn = db.pool().acquire().await.expect("connection").detach();
        let options = UpOptions::default();
        acquire(&mut conn, &options).await.expect("first runner");
        ensure_held(&mut conn).await.expect("held");
        let error = acquire(&mut conn, &options)
            .await
            .expect_err("the second runner on the same session");
        assert!(
            matches!(&error, MigrateError::PooledConnection { reason }
                if reason.contains("already a migration runner's session (forge process ")),
            "{error}"
        );
        // The refusal gave back its re-entrant hold: one unlock by the first runner frees
        // the lock, and clearing the mark leaves the session clean for whoever gets it next.
        ensure_held(&mut conn)
            .await
            .expect("still held by the first");
        let (unlocked, mark): (bool, String) = sqlx::query_as(
            "SELECT pg_advisory_unlock($1), set_config('forge.migrate_runner', '', false)",
        )
        .bind(LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .expect("unlock");
        assert!(unlocked && mark.is_empty());
        assert!(matches!(
            ensure_held(&mut conn).await,
            Err(MigrateError::LockLost)
        ));
        acquire(&mut conn, &options)
            .await
            .expect("a cleared session is a session of its own");
        release(conn).await.expect("release");
    }
}
