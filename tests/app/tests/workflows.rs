//! Durable workflows across real processes: the test app's `journey` survives SIGKILL during
//! its sleep and during a step, each step's side effect happening exactly once, and several
//! nodes never execute one run at the same time.

mod support;

use std::time::{Duration, Instant};

use forge::prelude::Uuid;
use forge::testing::TestDatabase;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::Server;

/// Short leases so a dead node's run is claimed again within a test's patience.
const FAST: &[(&str, &str)] = &[
    ("FORGE_JOB_LEASE", "1s"),
    ("FORGE_HEARTBEAT", "500ms"),
    ("FORGE_POLL_INTERVAL", "200ms"),
];

async fn start_journey(server: &Server, sleep_ms: i32, work_ms: i32) -> Uuid {
    let response: Value = reqwest::Client::new()
        .post(format!("{}/_api/rpc/start_journey", server.url))
        .json(&json!({"args": {"sleep_ms": sleep_ms, "work_ms": work_ms}}))
        .send()
        .await
        .expect("call start_journey")
        .json()
        .await
        .expect("a JSON envelope");
    assert_eq!(response["success"], true, "{response}");
    serde_json::from_value(response["data"].clone()).expect("a run id")
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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn status(db: &PgPool, run: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM forge_workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(db)
        .await
        .expect("the run's status")
}

async fn reaches(db: &PgPool, run: Uuid, wanted: &str) {
    wait_for(wanted, Duration::from_secs(15), async || {
        (status(db, run).await == wanted).then_some(())
    })
    .await
}

/// (step, pid) of the run's side effects, in order.
async fn effects(db: &PgPool, run: Uuid) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT step, pid FROM workflow_effects WHERE run_id = $1 ORDER BY at")
        .bind(run)
        .fetch_all(db)
        .await
        .expect("effects")
}

/// (step, pid) of every start of the run's steps, in order.
async fn starts(db: &PgPool, run: Uuid) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT step, pid FROM workflow_step_starts WHERE run_id = $1 ORDER BY at")
        .bind(run)
        .fetch_all(db)
        .await
        .expect("step starts")
}

fn steps(rows: &[(String, i32)]) -> Vec<&str> {
    rows.iter().map(|(step, _)| step.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journey_survives_kill_9_in_its_sleep_and_in_a_step_and_runs_on_one_node_at_a_time() {
    let db = TestDatabase::new().await;
    let pool = db.pool();
    // What the journey records; created here rather than by a migration of the app, which
    // other tests' databases would carry for nothing.
    sqlx::raw_sql(
        "CREATE TABLE workflow_step_starts (run_id uuid NOT NULL, step text NOT NULL, \
             pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp()); \
         CREATE TABLE workflow_effects (run_id uuid NOT NULL, step text NOT NULL, \
             pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());",
    )
    .execute(pool)
    .await
    .expect("the journey's tables");

    // SIGKILL while the run sleeps: a restarted node resumes it after the wake time;
    // `book` is not run again.
    let first = Server::start(db.url(), FAST).await;
    let first_pid = first.pid();
    let run = start_journey(&first, 1000, 0).await;
    reaches(pool, run, "sleeping").await;
    first.kill();
    let second = Server::start(db.url(), FAST).await;
    let second_pid = second.pid();
    reaches(pool, run, "completed").await;
    assert_eq!(
        effects(pool, run).await,
        [
            ("book".into(), first_pid),
            ("pay".into(), second_pid),
            ("confirm".into(), second_pid)
        ]
    );
    assert_eq!(steps(&starts(pool, run).await), ["book", "pay", "confirm"]);

    // SIGKILL in the middle of `pay`: once its lease expires a node claims the run again,
    // `book` is replayed from storage and `pay` starts over; every side effect happens once.
    let third = Server::start(db.url(), FAST).await;
    let run = start_journey(&second, 0, 1500).await;
    let payer = wait_for("pay starting", Duration::from_secs(10), async || {
        let started = starts(pool, run).await;
        started
            .iter()
            .find(|(step, _)| step == "pay")
            .map(|(_, pid)| *pid)
    })
    .await;
    let (victim, survivor) = if payer == second_pid {
        (second, third)
    } else {
        (third, second)
    };
    let survivor_pid = survivor.pid();
    victim.kill();
    reaches(pool, run, "completed").await;
    let done = effects(pool, run).await;
    assert_eq!(steps(&done), ["book", "pay", "confirm"], "each effect once");
    assert_eq!(done[1].1, survivor_pid);
    assert_eq!(
        starts(pool, run).await,
        [
            ("book".into(), payer),
            ("pay".into(), payer),
            ("pay".into(), survivor_pid),
            ("confirm".into(), survivor_pid)
        ],
        "only the interrupted step ran again"
    );

    // Two nodes, several runs: each step of each run starts once, so no run was executed
    // by two nodes at once (which node claims which is up to them).
    let other = Server::start(db.url(), FAST).await;
    let mut runs = Vec::new();
    for _ in 0..8 {
        runs.push(start_journey(&survivor, 300, 100).await);
    }
    for run in &runs {
        reaches(pool, *run, "completed").await;
        assert_eq!(steps(&starts(pool, *run).await), ["book", "pay", "confirm"]);
        assert_eq!(
            steps(&effects(pool, *run).await),
            ["book", "pay", "confirm"]
        );
    }
    let nodes: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT pid) FROM workflow_step_starts WHERE run_id = ANY($1)",
    )
    .bind(&runs)
    .fetch_one(pool)
    .await
    .expect("pids");
    eprintln!("{} runs executed by {nodes} node(s)", runs.len());
    assert!(survivor.terminate().success());
    assert!(other.terminate().success());
}
