//! Leader election and node heartbeats against a real PostgreSQL: one leader among several
//! nodes, failover when the leader dies, is shut down or loses its session, and stale nodes.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{eventually, leader, next_leader, node};
use forge::registry::{DaemonDef, DaemonMode};
use forge::testing::TestDatabase;
use forge::{DaemonContext, Running};
use uuid::Uuid;

fn take(nodes: &mut Vec<Running>, id: Uuid) -> Running {
    let at = nodes.iter().position(|n| n.node_id() == id).unwrap();
    nodes.remove(at)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_leader_among_three_and_bounded_failover() {
    let db = TestDatabase::new().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(db.url(), |_| {}).await);
    }
    let (first, _) = next_leader(db.pool(), None, Duration::from_secs(5)).await;
    // It stays that way: the others keep trying and keep failing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(leader(db.pool()).await, Some(first));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_leaders")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // The leader dies (no clean-up at all): its session ends with its socket, and a
    // follower takes the lock on its next try (every leader_lease / 3 = 667ms here).
    take(&mut nodes, first).kill().await;
    let (second, after_kill) = next_leader(db.pool(), Some(first), Duration::from_secs(5)).await;
    println!("failover after the leader died: {after_kill:?}");
    assert!(after_kill < Duration::from_secs(2), "{after_kill:?}");

    // A graceful shutdown releases leadership explicitly.
    take(&mut nodes, second).shutdown().await.unwrap();
    let (third, after_shutdown) =
        next_leader(db.pool(), Some(second), Duration::from_secs(5)).await;
    println!("failover after the leader shut down: {after_shutdown:?}");
    assert!(
        after_shutdown < Duration::from_secs(2),
        "{after_shutdown:?}"
    );
    assert_eq!(nodes[0].node_id(), third);
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_loses_its_session_steps_down_and_stops_its_work() {
    let db = TestDatabase::new().await;
    // Per node: how often its leader-elected daemon was told to stop.
    let stops: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut nodes = Vec::new();
    for stopped in &stops {
        let stopped = stopped.clone();
        nodes.push(
            node(db.url(), move |registry| {
                registry.daemon(
                    DaemonDef {
                        name: "singleton",
                        module: "",
                        mode: DaemonMode::LeaderElected,
                        restart_ms: 100,
                    },
                    move |ctx: DaemonContext| {
                        let stopped = stopped.clone();
                        async move {
                            ctx.shutdown().await;
                            stopped.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        }
                    },
                );
            })
            .await,
        );
    }
    let (first, _) = next_leader(db.pool(), None, Duration::from_secs(5)).await;
    let index = nodes.iter().position(|n| n.node_id() == first).unwrap();

    // Cut the leader's session from the server side, as a failed network would.
    let terminated: bool = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1",
    )
    .bind(format!("forge leader {}", &first.to_string()[..8]))
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(terminated);

    // The leader notices at its next check (leader_lease / 3) and cancels its daemon.
    eventually(
        Duration::from_secs(3),
        "the old leader's daemon stops",
        || async { (stops[index].load(Ordering::SeqCst) == 1).then_some(()) },
    )
    .await;
    // Someone leads again (either node), and runs the daemon there.
    let now = eventually(Duration::from_secs(5), "a leader again", || {
        leader(db.pool())
    })
    .await;
    // Either node may win again: the daemon runs on the leader, and any other node's
    // instance is recorded as stopped.
    eventually(
        Duration::from_secs(3),
        "the daemon on the leader only",
        || async {
            let rows: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT node_id, status FROM forge_daemons WHERE name = 'singleton'",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            let expected = |node: &Uuid| if *node == now { "running" } else { "stopped" };
            let leader_runs = rows.iter().any(|(node, _)| *node == now);
            (leader_runs && rows.iter().all(|(node, status)| status == expected(node)))
                .then_some(())
        },
    )
    .await;
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_refresh_nodes_and_the_leader_removes_stale_ones() {
    let db = TestDatabase::new().await;
    let a = node(db.url(), |_| {}).await;
    let b = node(db.url(), |_| {}).await;
    let seen = |id: Uuid| {
        sqlx::query_scalar::<_, DateTime<Utc>>("SELECT last_seen_at FROM forge_nodes WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
    };
    let before = seen(b.node_id()).await.unwrap().unwrap();
    eventually(
        Duration::from_secs(3),
        "a heartbeat (every 500ms)",
        || async { (seen(b.node_id()).await.unwrap().unwrap() > before).then_some(()) },
    )
    .await;

    // A node that vanished long ago, with a daemon row: both go.
    let ghost = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO forge_nodes (id, hostname, pid, version, last_seen_at) \
         VALUES ($1, 'ghost', 1, 'v0', now() - interval '1 hour')",
    )
    .bind(ghost)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query("INSERT INTO forge_daemons (name, node_id) VALUES ('d', $1)")
        .bind(ghost)
        .execute(db.pool())
        .await
        .unwrap();
    // A cron tick the ghost was running when it died, and one it finished.
    sqlx::query(
        "INSERT INTO forge_cron_runs (name, scheduled_time, node_id, status) \
         VALUES ('report', now() - interval '2 hours', $1, 'running'), \
                ('report', now() - interval '3 hours', $1, 'completed')",
    )
    .bind(ghost)
    .execute(db.pool())
    .await
    .unwrap();
    let leader = next_leader(db.pool(), None, Duration::from_secs(5)).await.0;
    eventually(Duration::from_secs(3), "the ghost is removed", || async {
        seen(ghost).await.unwrap().is_none().then_some(())
    })
    .await;
    let daemons: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_daemons")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(daemons, 0);
    let ticks: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, error FROM forge_cron_runs WHERE name = 'report' \
         ORDER BY scheduled_time",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        ticks,
        [
            ("completed".into(), None),
            (
                "failed".into(),
                Some("cut off: its node stopped before the tick finished".into())
            ),
        ]
    );

    // A killed follower stops heartbeating and is removed after 4 heartbeats (2s).
    let (follower, survivor) = if a.node_id() == leader {
        (b, a)
    } else {
        (a, b)
    };
    let follower_id = follower.node_id();
    follower.kill().await;
    assert!(seen(follower_id).await.unwrap().is_some());
    eventually(
        Duration::from_secs(5),
        "the dead node is removed",
        || async { seen(follower_id).await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert!(seen(survivor.node_id()).await.unwrap().is_some());

    // A live node removed anyway (a stall longer than the limit) registers again.
    sqlx::query("DELETE FROM forge_nodes WHERE id = $1")
        .bind(survivor.node_id())
        .execute(db.pool())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(3),
        "the node registers again",
        || async { seen(survivor.node_id()).await.unwrap().map(|_| ()) },
    )
    .await;
    survivor.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_trims_rows_past_the_retention_period() {
    let db = TestDatabase::new().await;
    // A first node lays down the system schema.
    node(db.url(), |_| {}).await.shutdown().await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO forge_webhook_events (name, idempotency_key, received_at, status) VALUES \
           ('stripe', 'old', now() - interval '8 days', 'completed'), \
           ('stripe', 'recent', now() - interval '6 days', 'completed'), \
           ('stripe', 'old-in-flight', now() - interval '8 days', 'processing'); \
         INSERT INTO forge_cron_runs (name, scheduled_time, status) VALUES \
           ('daily', now() - interval '9 days', 'completed'), \
           ('daily', now() - interval '8 days', 'failed'), \
           ('daily', now() - interval '1 day', 'completed'), \
           ('monthly', now() - interval '30 days', 'completed'), \
           ('stuck', now() - interval '9 days', 'running'), \
           ('stuck', now() - interval '8 days', 'completed');",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let a = node(db.url(), |_| {}).await;
    let keys = || {
        sqlx::query_scalar::<_, String>(
            "SELECT idempotency_key FROM forge_webhook_events ORDER BY 1",
        )
        .fetch_all(db.pool())
    };
    eventually(Duration::from_secs(5), "old keys are trimmed", || async {
        (keys().await.unwrap().len() == 2).then_some(())
    })
    .await;
    assert_eq!(keys().await.unwrap(), ["old-in-flight", "recent"]);
    // Each cron keeps its latest run (catch-up starts from it) and ticks still running.
    let runs: Vec<(String, String)> =
        sqlx::query_as("SELECT name, status FROM forge_cron_runs ORDER BY name, scheduled_time")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        runs,
        [
            ("daily".into(), "completed".into()),
            ("monthly".into(), "completed".into()),
            ("stuck".into(), "running".into()),
            ("stuck".into(), "completed".into()),
        ]
    );
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_trims_finished_jobs_and_workflow_runs_with_their_own_retention() {
    let db = TestDatabase::new().await;
    node(db.url(), |_| {}).await.shutdown().await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO forge_jobs (name, input, max_attempts, status, created_at, finished_at) VALUES \
           ('old-completed', '{}', 1, 'completed', now() - interval '3 days', now() - interval '3 days'), \
           ('old-dead', '{}', 1, 'dead', now() - interval '3 days', now() - interval '2 days'), \
           ('old-cancelled', '{}', 1, 'cancelled', now() - interval '3 days', now() - interval '3 days'), \
           ('recently-finished', '{}', 1, 'completed', now() - interval '3 days', now() - interval '1 hour'), \
           ('old-pending', '{}', 1, 'pending', now() - interval '3 days', NULL), \
           ('old-failed', '{}', 1, 'failed', now() - interval '3 days', NULL); \
         INSERT INTO forge_workflow_runs (name, version, signature, input, status, updated_at) VALUES \
           ('old-completed', '1', repeat('a', 32), '{}', 'completed', now() - interval '9 days'), \
           ('old-failed', '1', repeat('a', 32), '{}', 'failed', now() - interval '9 days'), \
           ('old-sleeping', '1', repeat('a', 32), '{}', 'sleeping', now() - interval '9 days'), \
           ('recent', '1', repeat('a', 32), '{}', 'completed', now() - interval '3 days'); \
         INSERT INTO forge_workflow_steps (run_id, key, status) \
           SELECT id, 'a', 'completed' FROM forge_workflow_runs;",
    )
    .execute(db.pool())
    .await
    .unwrap();
    // Jobs keep one day, workflow runs the default week.
    let mut config = forge::testing::config(db.url());
    config.job_concurrency = 0;
    config.retention_jobs = Duration::from_secs(24 * 3600);
    let a = forge::App::new(config).start().await.unwrap();
    let names = |table: &'static str| {
        let sql = match table {
            "forge_jobs" => "SELECT name FROM forge_jobs ORDER BY name",
            _ => "SELECT name FROM forge_workflow_runs ORDER BY name",
        };
        sqlx::query_scalar::<_, String>(sql).fetch_all(db.pool())
    };
    eventually(
        Duration::from_secs(5),
        "finished jobs are trimmed",
        || async { (names("forge_jobs").await.unwrap().len() == 3).then_some(()) },
    )
    .await;
    assert_eq!(
        names("forge_jobs").await.unwrap(),
        ["old-failed", "old-pending", "recently-finished"]
    );
    eventually(
        Duration::from_secs(5),
        "finished runs are trimmed",
        || async { (names("forge_workflow_runs").await.unwrap().len() == 2).then_some(()) },
    )
    .await;
    assert_eq!(
        names("forge_workflow_runs").await.unwrap(),
        ["old-sleeping", "recent"]
    );
    let steps: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_workflow_steps")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(steps, 2, "the trimmed runs' steps went with them");
    a.shutdown().await.unwrap();
}
