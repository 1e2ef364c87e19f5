//! Refusing a transaction-mode pooler at node start (features that hold a server session).
//!
//! Leadership is a session-level advisory lock and the listener a LISTEN: both need a
//! server session of their own for as long as the node runs. Behind PgBouncer in
//! transaction pooling mode a "connection" is only lent a server session per transaction,
//! so the lock would be held by whatever client gets that session next and notifications
//! would reach nobody. The migration runner refuses such a connection for its lock
//! (`forge_migrate::runner::lock`); this probe makes a node refuse it too, also with
//! `FORGE_MIGRATE=false`.
//!
//! The probe opens two connections the way the leader and the listener do and interleaves
//! them: each marks its session with a setting of its own (`forge.session_probe`), then each
//! reads its mark and server process id back. On real sessions (a direct connection, or
//! session pooling) each sees its own mark on its own process. A transaction pooler, which
//! hands the idle server session to whoever asks next (PgBouncer reuses the most recent
//! one), shows the second client the first one's session: the same process, or the other's
//! mark.

use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::{Error, Result};

/// What one probe connection saw: the server process of its first statement (which set
/// `mark`), then the process and the mark of its second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub first_pid: i32,
    pub mark: String,
    pub second_pid: i32,
    pub second_mark: Option<String>,
}

/// Why `a` and `b` show a transaction pooler, or `None` for sessions of their own.
pub(crate) fn pooled(a: &Seen, b: &Seen) -> Option<String> {
    if a.first_pid == b.first_pid {
        return Some(format!(
            "two connections were served by one server process ({}) at once",
            a.first_pid
        ));
    }
    for seen in [a, b] {
        if seen.second_pid != seen.first_pid {
            return Some(format!(
                "a connection's statements ran on server process {} then {}",
                seen.first_pid, seen.second_pid
            ));
        }
        if seen.second_mark.as_deref() != Some(seen.mark.as_str()) {
            return Some(format!(
                "a session setting did not survive to the connection's next statement (on \
                 server process {})",
                seen.first_pid
            ));
        }
    }
    None
}

const MARK: &str =
    "SELECT pg_backend_pid() FROM (SELECT set_config('forge.session_probe', $1, false)) s";
const READ: &str = "SELECT pg_backend_pid(), current_setting('forge.session_probe', true)";

/// Refuses to go on when `pool`'s database is behind a transaction-mode pooler.
pub(crate) async fn ensure_sessions(pool: &PgPool) -> Result<()> {
    let options = pool.connect_options().as_ref().clone();
    let mut a = options.connect().await?;
    let mut b = options.connect().await?;
    let probe = Uuid::new_v4().simple().to_string();
    let (mark_a, mark_b) = (format!("a{probe}"), format!("b{probe}"));
    let first_a: i32 = sqlx::query_scalar(MARK)
        .bind(&mark_a)
        .fetch_one(&mut a)
        .await?;
    let first_b: i32 = sqlx::query_scalar(MARK)
        .bind(&mark_b)
        .fetch_one(&mut b)
        .await?;
    let (second_a, read_a): (i32, Option<String>) = sqlx::query_as(READ).fetch_one(&mut a).await?;
    let (second_b, read_b): (i32, Option<String>) = sqlx::query_as(READ).fetch_one(&mut b).await?;
    close(a).await;
    close(b).await;
    let seen = |first_pid, mark, second_pid, second_mark| Seen {
        first_pid,
        mark,
        second_pid,
        second_mark,
    };
    match pooled(
        &seen(first_a, mark_a, second_a, read_a),
        &seen(first_b, mark_b, second_b, read_b),
    ) {
        None => Ok(()),
        Some(reason) => Err(Error::Internal(format!(
            "the database connection is pooled in transaction mode (PgBouncer?): {reason}. \
             forge's leader election and its LISTEN connection need server sessions of their \
             own: point DATABASE_URL at PostgreSQL directly or at a pool in session mode"
        ))),
    }
}

async fn close(conn: PgConnection) {
    if let Err(error) = conn.close().await {
        tracing::debug!(%error, "closing a session probe");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_db::testing::TestDatabase;

    fn seen(first_pid: i32, mark: &str, second_pid: i32, second_mark: Option<&str>) -> Seen {
        Seen {
            first_pid,
            mark: mark.into(),
            second_pid,
            second_mark: second_mark.map(Into::into),
        }
    }

    #[test]
    fn what_a_transaction_pooler_does_is_recognised() {
        let own = (seen(10, "a", 10, Some("a")), seen(11, "b", 11, Some("b")));
        assert_eq!(pooled(&own.0, &own.1), None);
        // PgBouncer with one idle server session: both clients get process 10 in turn, and
        // the first reads the second's mark.
        let shared = (seen(10, "a", 10, Some("b")), seen(10, "b", 10, Some("b")));
        assert!(pooled(&shared.0, &shared.1)
            .unwrap()
            .contains("one server process (10)"));
        // Several server sessions: a client moved between them.
        let moved = (seen(10, "a", 12, None), seen(11, "b", 11, Some("b")));
        assert!(pooled(&moved.0, &moved.1).unwrap().contains("10 then 12"));
        // Same process, but the setting was reset (server_reset_query between transactions).
        let reset = (seen(10, "a", 10, None), seen(11, "b", 11, Some("b")));
        assert!(pooled(&reset.0, &reset.1)
            .unwrap()
            .contains("did not survive"));
    }

    #[tokio::test]
    async fn a_direct_connection_passes() {
        let db = TestDatabase::new().await;
        ensure_sessions(db.pool()).await.unwrap();
    }
}
