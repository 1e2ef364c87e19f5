//! Cron against a real PostgreSQL: exactly once per tick across nodes, outcomes, timeouts,
//! catch-up, and the admin view.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use common::{eventually, next_leader, node};
use forge::registry::{CronDef, Schedule};
use forge::testing::{token, TestDatabase};
use forge::{CronContext, Registry};
use serde_json::Value;
use uuid::Uuid;

fn def(name: &'static str, schedule: Schedule, catch_up: u32, timeout_ms: Option<u64>) -> CronDef {
    CronDef {
        name,
        module: "app::cron",
        schedule,
        timezone: None,
        catch_up,
        timeout_ms,
    }
}

/// A cron that records each tick it runs in `ticks` (the counter table).
fn counting(registry: &mut Registry, def: CronDef, node: &'static str) {
    let name = def.name;
    registry.cron(def, move |ctx: CronContext| async move {
        sqlx::query("INSERT INTO ticks (cron, node, scheduled_time, late) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(node)
            .bind(ctx.scheduled_time())
            .bind(ctx.is_late())
            .execute(ctx.db())
            .await?;
        Ok(())
    });
}

async fn database() -> TestDatabase {
    let db = TestDatabase::new().await;
    sqlx::query(
        "CREATE TABLE ticks (cron text NOT NULL, node text NOT NULL, \
                             scheduled_time timestamptz NOT NULL, late boolean NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    db
}

fn register(registry: &mut Registry, node: &'static str) {
    counting(
        registry,
        def("every_second", Schedule::Cron("*/1 * * * * *"), 0, None),
        node,
    );
    counting(
        registry,
        def("every_500ms", Schedule::EveryMs(500), 0, None),
        node,
    );
    registry.cron(
        def("fails", Schedule::EveryMs(1000), 0, None),
        |_ctx: CronContext| async move {
            Err::<(), _>(forge::Error::Internal("the mail server is down".into()))
        },
    );
    registry.cron(
        def("panics", Schedule::EveryMs(1000), 0, None),
        |ctx: CronContext| async move {
            if ctx.scheduled_time().timestamp() > 0 {
                panic!("index out of bounds");
            }
            Ok(())
        },
    );
    // Overruns its interval by far: cut off by the timeout, and never in the others' way.
    registry.cron(
        def("slow", Schedule::EveryMs(1000), 0, Some(300)),
        |_ctx: CronContext| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        },
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ticks_run_exactly_once_across_two_nodes_with_their_outcomes() {
    let db = database().await;
    let a = node(db.url(), |r| register(r, "a")).await;
    let b = node(db.url(), |r| register(r, "b")).await;
    next_leader(db.pool(), None, Duration::from_secs(5)).await;
    // Two upcoming ticks claimed by someone else (as a second leader would during a
    // failover): the claim is what decides, so this cluster must not run them.
    let soon = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap() + TimeDelta::seconds(2);
    let elsewhere = [soon, soon + TimeDelta::seconds(1)];
    for tick in elsewhere {
        sqlx::query(
            "INSERT INTO forge_cron_runs (name, scheduled_time) VALUES ('every_second', $1)",
        )
        .bind(tick)
        .execute(db.pool())
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(4200)).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    for (cron, step_ms, at_least) in [("every_second", 1000, 3), ("every_500ms", 500, 6)] {
        let runs: Vec<(DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT scheduled_time, status FROM forge_cron_runs WHERE name = $1 \
             ORDER BY scheduled_time",
        )
        .bind(cron)
        .fetch_all(db.pool())
        .await
        .unwrap();
        let ran: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT scheduled_time FROM ticks WHERE cron = $1 ORDER BY scheduled_time",
        )
        .bind(cron)
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert!(runs.len() >= at_least, "{cron}: {runs:?}");
        let elsewhere: &[DateTime<Utc>] = if cron == "every_second" {
            &elsewhere
        } else {
            &[]
        };
        // One handler call per tick this cluster claimed, none twice, none skipped.
        let claimed: Vec<DateTime<Utc>> = runs
            .iter()
            .map(|r| r.0)
            .filter(|t| !elsewhere.contains(t))
            .collect();
        assert_eq!(ran, claimed, "{cron}");
        for pair in runs.windows(2) {
            assert_eq!(
                (pair[1].0 - pair[0].0).num_milliseconds(),
                step_ms,
                "{cron}"
            );
        }
        for (tick, status) in &runs {
            let expected = if elsewhere.contains(tick) {
                "running"
            } else {
                "completed"
            };
            assert_eq!(status, expected, "{cron} {tick}");
            assert_eq!(tick.timestamp_millis() % step_ms, 0, "aligned: {tick}");
        }
    }
    let late: i64 = sqlx::query_scalar("SELECT count(*) FROM ticks WHERE late")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(late, 0);

    let outcomes: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT name, status, error FROM forge_cron_runs \
         WHERE name IN ('fails', 'panics', 'slow') ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        [
            (
                "fails".into(),
                "failed".into(),
                Some("the mail server is down".into())
            ),
            (
                "panics".into(),
                "failed".into(),
                Some("panicked: index out of bounds".into())
            ),
            (
                "slow".into(),
                "failed".into(),
                Some("did not finish within 300 ms".into())
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_runs_at_most_catch_up_missed_ticks_late() {
    let db = database().await;
    // A first run of the app creates the schema, then it is down for a while.
    node(db.url(), |_| {}).await.shutdown().await.unwrap();
    // The last recorded run is 10 seconds ago: 9 or 10 ticks were missed.
    let last = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap() - TimeDelta::seconds(10);
    sqlx::query(
        "INSERT INTO forge_cron_runs (name, scheduled_time, status) VALUES ('behind', $1, 'completed')",
    )
    .bind(last)
    .execute(db.pool())
    .await
    .unwrap();
    let started = Utc::now();
    let n = node(db.url(), |r| {
        counting(
            r,
            def("behind", Schedule::Cron("*/1 * * * * *"), 3, None),
            "a",
        );
        // Never ran before: starts from now, nothing to catch up.
        counting(r, def("new", Schedule::Cron("*/1 * * * * *"), 3, None), "a");
    })
    .await;
    eventually(
        Duration::from_secs(5),
        "on-time ticks after the catch-up",
        || async {
            let on_time: i64 =
                sqlx::query_scalar("SELECT count(*) FROM ticks WHERE NOT late AND cron = 'behind'")
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            (on_time >= 2).then_some(())
        },
    )
    .await;
    n.shutdown().await.unwrap();

    let late: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT scheduled_time FROM ticks WHERE late AND cron = 'behind' ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(late.len(), 3, "{late:?}");
    // The three latest missed ticks, consecutive, just before the node started.
    assert_eq!((late[2] - late[0]).num_seconds(), 2);
    assert!(
        late[0] > last + TimeDelta::seconds(5),
        "{late:?} after {last}"
    );
    assert!(
        late[2] <= started + TimeDelta::seconds(1),
        "{late:?} vs {started}"
    );
    let on_time_first: DateTime<Utc> = sqlx::query_scalar(
        "SELECT min(scheduled_time) FROM ticks WHERE NOT late AND cron = 'behind'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(on_time_first > late[2]);
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM forge_cron_runs WHERE name = 'behind'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    let ticks: i64 = sqlx::query_scalar("SELECT count(*) FROM ticks WHERE cron = 'behind'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(runs, ticks + 1, "the seeded row plus one per tick run");

    let new_late: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ticks WHERE late AND cron = 'new'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(new_late, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_view_lists_schedules_next_ticks_and_runs() {
    let db = database().await;
    let n = node(db.url(), |r| {
        counting(
            r,
            def("every_second", Schedule::Cron("*/1 * * * * *"), 0, None),
            "a",
        );
        let mut daily = def("morning", Schedule::DailyAt("09:00"), 2, Some(60_000));
        daily.timezone = Some("Europe/Berlin");
        counting(r, daily, "a");
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/_api/admin/cron", n.addr());
    let get = |token: Option<String>| {
        let mut request = http.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    assert_eq!(get(None).await.0, 401);
    let (status, body) = get(Some(token(Uuid::new_v4(), None, &["user"]))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );

    let admin = token(Uuid::new_v4(), None, &["admin"]);
    let crons = eventually(Duration::from_secs(5), "a completed run", || async {
        let (status, body) = get(Some(admin.clone())).await;
        assert_eq!(status, 200, "{body}");
        let done = body["data"][0]["runs"][0]["status"] == "completed";
        done.then_some(body["data"].clone())
    })
    .await;
    n.shutdown().await.unwrap();

    let names: Vec<&str> = crons
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["every_second", "morning"]);
    let second = &crons[0];
    assert_eq!(second["schedule"]["kind"], "cron");
    assert_eq!(second["schedule"]["expression"], "*/1 * * * * *");
    assert_eq!(second["timezone"], "UTC");
    let next: DateTime<Utc> = second["next_scheduled_time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > Utc::now() - TimeDelta::seconds(3));
    let run = &second["runs"][0];
    assert!(run["scheduled_time"].is_string() && run["finished_at"].is_string());
    assert_eq!(run["error"], Value::Null);

    let morning = &crons[1];
    assert_eq!(morning["schedule"]["kind"], "daily_at");
    assert_eq!(morning["schedule"]["time"], "09:00");
    assert_eq!(morning["timezone"], "Europe/Berlin");
    assert_eq!(
        (morning["catch_up"].as_u64(), morning["timeout_ms"].as_u64()),
        (Some(2), Some(60_000))
    );
    let next: DateTime<chrono_tz::Tz> = morning["next_scheduled_time"]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap()
        .with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(next.format("%H:%M:%S").to_string(), "09:00:00");
    assert_eq!(morning["runs"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tick_cut_off_at_shutdown_is_recorded_failed() {
    let db = database().await;
    let mut config = forge::testing::config(db.url());
    config.job_concurrency = 0;
    config.shutdown_grace = Duration::from_millis(200);
    let app = forge::App::new(config)
        .register(|registry| {
            registry.cron(
                def("endless", Schedule::EveryMs(500), 0, None),
                |_ctx: CronContext| async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(())
                },
            );
        })
        .start()
        .await
        .unwrap();
    let running = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM forge_cron_runs WHERE name = 'endless' AND status = 'running'",
        )
        .fetch_one(db.pool())
    };
    eventually(Duration::from_secs(5), "a tick starts", || async {
        (running().await.unwrap() > 0).then_some(())
    })
    .await;
    app.shutdown().await.unwrap();

    let outcomes: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT DISTINCT status, error FROM forge_cron_runs WHERE name = 'endless'")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        [(
            "failed".into(),
            Some("cut off: its node stopped before the tick finished".into())
        )]
    );
}

/// A tick's dispatches are written with its completion: a tick that fails after
/// dispatching queued nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_tick_dispatches_with_its_completion_and_a_failed_tick_dispatches_nothing() {
    let db = database().await;
    let job = forge::registry::JobDef {
        name: "tick_job",
        module: "",
        retry: forge::registry::Retry {
            max_attempts: 1,
            backoff: forge::registry::Backoff::Fixed,
            base_ms: 10,
            max_ms: 10,
        },
        timeout_ms: None,
        queue: "default",
        priority: 0,
    };
    let a = node(db.url(), |registry| {
        registry.job(job, |_ctx: forge::JobContext, _input| async move { Ok(()) });
        registry.cron(
            def("dispatches", Schedule::EveryMs(300), 0, None),
            |ctx: CronContext| async move {
                ctx.dispatch_job("tick_job", serde_json::json!({"ok": true}))
                    .await?;
                Ok(())
            },
        );
        registry.cron(
            def("dispatches_then_fails", Schedule::EveryMs(300), 0, None),
            |ctx: CronContext| async move {
                ctx.dispatch_job("tick_job", serde_json::json!({"ok": false}))
                    .await?;
                Err::<(), _>(forge::Error::Internal("after dispatching".into()))
            },
        );
    })
    .await;
    let count = |status: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM forge_cron_runs WHERE name = 'dispatches_then_fails' AND status = $1",
        )
        .bind(status)
        .fetch_one(db.pool())
    };
    eventually(Duration::from_secs(10), "two failed ticks", || async {
        (count("failed").await.unwrap() >= 2).then_some(())
    })
    .await;
    let inputs: Vec<Value> = sqlx::query_scalar("SELECT DISTINCT input FROM forge_jobs")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(
        inputs,
        [serde_json::json!({"ok": true})],
        "only completed ticks queued"
    );
    a.shutdown().await.unwrap();
}
