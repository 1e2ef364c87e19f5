//! Serialising runners: a session-level advisory lock on the connection that applies the
//! migrations, so it is held exactly as long as that connection lives (a runner killed with
//! SIGKILL loses its session and with it the lock; nothing is left to clean up).

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::runner::{LockHolder, MigrateError, UpOptions};

/// forge's advisory lock key: "forgemig" in ASCII, so it is recognisable in `pg_locks` and
/// unlikely to collide with an application's own keys.
pub const LOCK_KEY: i64 = 0x666f_7267_656d_6967;

/// How often a waiting runner tries again. Short enough that a queue of runners drains
/// quickly, long enough not to load the server.
const POLL: Duration = Duration::from_millis(100);

/// Takes the lock on `conn`, waiting up to `options.lock_timeout`. While waiting, reports
/// the holder to `options.on_wait` once per distinct holder (not on every poll).
pub async fn acquire(conn: &mut PgConnection, options: &UpOptions) -> Result<(), MigrateError> {
    let started = Instant::now();
    let mut reported: Option<i32> = None;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if locked {
            return Ok(());
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

/// Releases the lock and closes the connection. Closing alone would release it too; the
/// explicit unlock makes the release immediate even if the close is slow.
pub async fn release(mut conn: PgConnection) -> Result<(), MigrateError> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Fails unless this session still holds the lock. Called inside each file's transaction,
/// which pins one server session even behind a pooler: behind PgBouncer in transaction
/// pooling mode the lock was taken by whichever session served that one statement, so it
/// protects nothing, and DESIGN requires refusing to run there.
pub async fn ensure_held(conn: &mut PgConnection) -> Result<(), MigrateError> {
    let held: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks
                        WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
                          AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)",
    )
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
