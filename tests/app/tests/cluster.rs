//! Two processes of the test app on one database: cron ticks run once each, the
//! leader-elected daemon runs on one node, and both move when the leader is killed; a job
//! whose worker is killed mid-run completes once elsewhere.

mod support;

use std::time::{Duration, Instant};

use forge::testing::TestDatabase;
use serde_json::json;
use sqlx::PgPool;
use support::Server;

/// Short leases so failover and reclaiming happen within a test's patience.
const FAST: &[(&str, &str)] = &[
    ("FORGE_LEADER_LEASE", "2s"),
    ("FORGE_JOB_LEASE", "1s"),
    ("FORGE_HEARTBEAT", "500ms"),
    ("FORGE_POLL_INTERVAL", "200ms"),
];

async fn leader_pid(db: &PgPool) -> Option<i32> {
    sqlx::query_scalar("SELECT n.pid FROM forge_leaders l JOIN forge_nodes n ON n.id = l.node_id WHERE l.role = 'leader'")
        .fetch_optional(db)
        .await
        .expect("read the leader")
}

async fn wait_for<T>(what: &str, within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every tick ran exactly once; returns how many ticks each pid ran.
async fn ticks_ran_once(db: &PgPool) -> Vec<(i32, i64)> {
    let repeated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT scheduled_time FROM tick_runs GROUP BY 1 HAVING count(*) > 1) t",
    )
    .fetch_one(db)
    .await
    .expect("count repeated ticks");
    assert_eq!(repeated, 0, "a tick ran more than once");
    sqlx::query_as("SELECT pid, count(*) FROM tick_runs GROUP BY pid ORDER BY pid")
        .fetch_all(db)
        .await
        .expect("ticks per pid")
}

async fn running_singletons(db: &PgPool) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM singleton_runs WHERE stopped_at IS NULL ORDER BY pid")
        .fetch_all(db)
        .await
        .expect("running singletons")
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_and_the_singleton_daemon_run_once_and_move_when_the_leader_dies() {
    let db = TestDatabase::new().await;
    let first = Server::start(db.url(), FAST).await;
    let second = Server::start(db.url(), FAST).await;
    let pool = db.pool();

    // Ten ticks with two nodes up.
    wait_for("ten ticks", Duration::from_secs(20), async || {
        let ticks: i64 = sqlx::query_scalar("SELECT count(*) FROM tick_runs")
            .fetch_one(pool)
            .await
            .ok()?;
        (ticks >= 10).then_some(())
    })
    .await;
    let leader = leader_pid(pool).await.expect("a leader");
    assert_eq!(
        ticks_ran_once(pool)
            .await
            .iter()
            .map(|(pid, _)| *pid)
            .collect::<Vec<_>>(),
        [leader]
    );
    assert_eq!(running_singletons(pool).await, [leader]);

    let (dead, survivor) = if leader == first.pid() {
        (first, second)
    } else {
        (second, first)
    };
    let survivor_pid = survivor.pid();
    dead.kill();
    let killed = Instant::now();
    wait_for("the survivor leading", Duration::from_secs(5), async || {
        (leader_pid(pool).await == Some(survivor_pid)).then_some(())
    })
    .await;
    let failover = killed.elapsed();
    // The bound for a leader that dies: one follower retry, at most a second.
    assert!(
        failover < Duration::from_secs(2),
        "failover took {failover:?}"
    );
    wait_for("the survivor ticking", Duration::from_secs(5), async || {
        let by_survivor: i64 = sqlx::query_scalar("SELECT count(*) FROM tick_runs WHERE pid = $1")
            .bind(survivor_pid)
            .fetch_one(pool)
            .await
            .ok()?;
        (by_survivor >= 2).then_some(())
    })
    .await;
    ticks_ran_once(pool).await;
    wait_for(
        "the singleton on the survivor",
        Duration::from_secs(5),
        async || {
            running_singletons(pool)
                .await
                .contains(&survivor_pid)
                .then_some(())
        },
    )
    .await;
    eprintln!("failover after SIGKILL of the leader: {failover:?}");
    assert!(survivor.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_worker_is_killed_completes_once_elsewhere() {
    let db = TestDatabase::new().await;
    let first = Server::start(db.url(), FAST).await;
    let second = Server::start(db.url(), FAST).await;
    let pool = db.pool();

    let response: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_api/rpc/start_slow", first.url))
        .json(&json!({"args": {"marker": "m1"}}))
        .send()
        .await
        .expect("call start_slow")
        .json()
        .await
        .expect("a JSON envelope");
    assert_eq!(response["success"], true, "{response}");

    let runner: i32 = wait_for("the job starting", Duration::from_secs(5), async || {
        sqlx::query_scalar("SELECT pid FROM job_attempts WHERE marker = 'm1'")
            .fetch_optional(pool)
            .await
            .ok()?
    })
    .await;
    let (victim, survivor) = if runner == first.pid() {
        (first, second)
    } else {
        (second, first)
    };
    let survivor_pid = survivor.pid();
    victim.kill();

    wait_for(
        "the job completing on the survivor",
        Duration::from_secs(15),
        async || {
            let status: String =
                sqlx::query_scalar("SELECT status FROM forge_jobs WHERE name = 'slow_job'")
                    .fetch_one(pool)
                    .await
                    .ok()?;
            (status == "completed").then_some(())
        },
    )
    .await;
    let attempts: Vec<(i32, bool)> =
        sqlx::query_as("SELECT pid, finished FROM job_attempts WHERE marker = 'm1' ORDER BY at")
            .fetch_all(pool)
            .await
            .expect("attempts");
    assert_eq!(
        attempts,
        [(runner, false), (survivor_pid, true)],
        "killed once, completed once elsewhere"
    );
    assert!(survivor.terminate().success());
}
