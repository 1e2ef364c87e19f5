//! Helpers for the cluster tests (leader, cron, daemons): several nodes on one database.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use forge::testing::config;
use forge::{App, Registry, Running};
use sqlx::PgPool;
use uuid::Uuid;

/// forge's leader lock key ("forgeldr"), as `pg_locks` shows a bigint key.
const LOCK_KEY: i64 = 0x666f_7267_656c_6472;

/// Starts a node on `url` with `register`.
pub async fn node(url: &str, register: impl FnOnce(&mut Registry)) -> Running {
    let mut config = config(url);
    config.job_concurrency = 0;
    App::new(config).register(register).start().await.unwrap()
}

/// Polls `check` every 20ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The leader as `forge_leaders` records it, checked against the lock: exactly one session
/// holds the lock, and it is that node's leader connection.
pub async fn leader(pool: &PgPool) -> Option<Uuid> {
    let row: Option<Uuid> =
        sqlx::query_scalar("SELECT node_id FROM forge_leaders WHERE role = 'leader'")
            .fetch_optional(pool)
            .await
            .unwrap();
    let holders: Vec<String> = sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.database = \
               (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid::bigint = $1 AND l.objid::bigint = $2",
    )
    .bind(LOCK_KEY >> 32)
    .bind(LOCK_KEY & 0xffff_ffff)
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(holders.len() <= 1, "two sessions hold the leader lock");
    let node = row?;
    let holder = holders.first()?;
    (holder == &format!("forge leader {}", &node.to_string()[..8])).then_some(node)
}

/// Waits for a leader other than `not` and returns it with how long that took.
pub async fn next_leader(pool: &PgPool, not: Option<Uuid>, within: Duration) -> (Uuid, Duration) {
    let start = Instant::now();
    let leader = eventually(within, "a new leader", || async {
        leader(pool).await.filter(|l| Some(*l) != not)
    })
    .await;
    (leader, start.elapsed())
}
