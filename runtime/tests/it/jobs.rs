//! The job queue against a real PostgreSQL: dispatch in a mutation's transaction, claiming
//! across nodes, retries, timeouts, panics, progress, leases, LISTEN, shutdown, and the
//! admin endpoints. Every job records its runs in the table `runs`.

use std::future::Future;
use std::time::{Duration, Instant};

use forge::registry::{decode_args, decode_input, Backoff, JobDef, MutationDef, Retry};
use forge::testing::{config, token, TestDatabase};
use forge::{App, Config, JobContext, MutationContext, Registry, Running};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

fn job(name: &'static str, max_attempts: u32, backoff: Backoff, base_ms: u64) -> JobDef {
    JobDef {
        name,
        module: "",
        retry: Retry {
            max_attempts,
            backoff,
            base_ms,
            max_ms: 10 * base_ms,
        },
        timeout_ms: None,
        queue: "default",
        priority: 0,
    }
}

/// Records one run of the job in `runs`; `note` says what the job wants the test to know.
async fn record(ctx: &JobContext, note: &str) -> forge::Result<()> {
    sqlx::query(
        "INSERT INTO runs (job_id, attempt, node, note) \
         SELECT $1, $2, locked_by, $3 FROM forge_jobs WHERE id = $1",
    )
    .bind(ctx.job_id())
    .bind(ctx.attempt() as i32)
    .bind(note)
    .execute(ctx.db())
    .await?;
    Ok(())
}

#[derive(Deserialize)]
struct EnqueueArgs {
    marker: String,
    hold_ms: u64,
    fail: bool,
}

#[derive(Deserialize)]
struct Marker {
    marker: String,
}

#[derive(Deserialize)]
struct SucceedOn {
    succeed_on: u32,
}

fn register(registry: &mut Registry) {
    registry.mutation(
        MutationDef {
            name: "enqueue",
            module: "",
            transactional: true,
            public: true,
            timeout_ms: None,
            tables_written: &["notes"],
            rate_limit: None,
        },
        |ctx: MutationContext, args| async move {
            let EnqueueArgs {
                marker,
                hold_ms,
                fail,
            } = decode_args(args)?;
            sqlx::query("INSERT INTO notes (text) VALUES ($1)")
                .bind(&marker)
                .execute(ctx.tx())
                .await?;
            let id = ctx
                .dispatch_job("record", json!({"marker": marker}))
                .await?;
            // Workers must not see the job while the transaction is open.
            tokio::time::sleep(Duration::from_millis(hold_ms)).await;
            if fail {
                return Err(forge::Error::Validation("asked to fail".into()));
            }
            Ok(id)
        },
    );
    // Notes whether the mutation's note was visible: it is when the job runs after commit.
    registry.job(
        job("record", 1, Backoff::Fixed, 10),
        |ctx: JobContext, input| async move {
            let Marker { marker } = decode_input(input)?;
            let seen: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT FROM notes WHERE text = $1)")
                    .bind(&marker)
                    .fetch_one(ctx.db())
                    .await?;
            record(&ctx, &format!("{marker} seen={seen}")).await
        },
    );
    registry.job(
        job("flaky", 4, Backoff::Exponential, 100),
        |ctx: JobContext, input| async move {
            let SucceedOn { succeed_on } = decode_input(input)?;
            record(&ctx, "").await?;
            if ctx.attempt() < succeed_on {
                return Err(forge::Error::Internal(format!(
                    "flaked on attempt {}",
                    ctx.attempt()
                )));
            }
            Ok(())
        },
    );
    registry.job(
        job("doomed", 2, Backoff::Fixed, 50),
        |ctx: JobContext, _input| async move {
            record(&ctx, "").await?;
            Err::<(), _>(forge::Error::Validation(format!(
                "doomed on attempt {}",
                ctx.attempt()
            )))
        },
    );
    registry.job(
        JobDef {
            timeout_ms: Some(100),
            ..job("slow", 1, Backoff::Fixed, 10)
        },
        |ctx: JobContext, _input| async move {
            record(&ctx, "").await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        },
    );
    registry.job(
        job("panics", 1, Backoff::Fixed, 10),
        |ctx: JobContext, _input| async move {
            record(&ctx, "").await?;
            if !ctx.job_id().is_nil() {
                panic!("kaboom on attempt {}", ctx.attempt());
            }
            Ok(())
        },
    );
    // Reports 40%, waits for a row in `gate`, then finishes at 100%.
    registry.job(
        job("progress", 1, Backoff::Fixed, 10),
        |ctx: JobContext, _input| async move {
            ctx.progress(40, "reading")?;
            for _ in 0..500 {
                let open: bool = sqlx::query_scalar("SELECT EXISTS (SELECT FROM gate)")
                    .fetch_one(ctx.db())
                    .await?;
                if open {
                    ctx.progress(100, "done")?;
                    return record(&ctx, "").await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(forge::Error::Internal("the gate never opened".into()))
        },
    );
    registry.job(
        job("count", 1, Backoff::Fixed, 10),
        |ctx: JobContext, _input| async move {
            record(&ctx, "").await?;
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok(())
        },
    );
    // Hangs on its first attempt (a worker that will die), succeeds on the next.
    registry.job(
        job("stuck", 3, Backoff::Fixed, 10),
        |ctx: JobContext, _input| async move {
            record(&ctx, "").await?;
            if ctx.attempt() == 1 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(())
        },
    );
    // Dispatches `record` on every attempt and fails its first: only the second attempt's
    // dispatch is written, with its completion.
    registry.job(
        job("chain", 2, Backoff::Fixed, 10),
        |ctx: JobContext, _input| async move {
            let marker = format!("chain-{}", ctx.attempt());
            let id = ctx
                .dispatch_job("record", json!({"marker": marker}))
                .await?;
            record(&ctx, &id.to_string()).await?;
            if ctx.attempt() == 1 {
                return Err(forge::Error::Internal("first attempts fail".into()));
            }
            Ok(())
        },
    );
    registry.job(
        job("noop", 1, Backoff::Fixed, 10),
        |_ctx: JobContext, _input| async move { Ok(()) },
    );
    registry.job(
        job("nap", 3, Backoff::Fixed, 10),
        |ctx: JobContext, input| async move {
            let ms = input["ms"].as_u64().unwrap_or(0);
            record(&ctx, "started").await?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            record(&ctx, "finished").await
        },
    );
}

async fn database() -> TestDatabase {
    let db = TestDatabase::new().await;
    for table in [
        "CREATE TABLE notes (text text NOT NULL)",
        "CREATE TABLE runs (job_id uuid NOT NULL, attempt int NOT NULL, node uuid, \
                            note text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
        "CREATE TABLE gate ()",
    ] {
        sqlx::query(table).execute(db.pool()).await.unwrap();
    }
    db
}

async fn start(config: Config) -> Running {
    App::new(config).register(register).start().await.unwrap()
}

/// Queues a job the way `dispatch_job` does, outside any mutation.
async fn enqueue(pool: &PgPool, name: &str, input: Value, max_attempts: i32) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO forge_jobs (name, input, max_attempts) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(input)
    .bind(max_attempts)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[derive(Debug)]
struct Row {
    status: String,
    attempts: i32,
    last_error: Option<String>,
    progress: (Option<i16>, Option<String>),
    locked_by: Option<Uuid>,
}

async fn row(pool: &PgPool, id: Uuid) -> Row {
    let (status, attempts, last_error, pct, message, locked_by) = sqlx::query_as(
        "SELECT status, attempts, last_error, progress_pct, progress_message, locked_by \
         FROM forge_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    Row {
        status,
        attempts,
        last_error,
        progress: (pct, message),
        locked_by,
    }
}

/// Waits until `check` holds, for at most `limit`; panics naming `what` otherwise.
async fn until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status_is(pool: &PgPool, id: Uuid, status: &str) -> bool {
    row(pool, id).await.status == status
}

async fn runs(pool: &PgPool, id: Uuid) -> Vec<(i32, String, f64)> {
    sqlx::query_as(
        "SELECT attempt, note, extract(epoch FROM at)::float8 FROM runs \
         WHERE job_id = $1 ORDER BY at",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

const SOON: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_mutation_runs_its_job_after_commit_and_a_failed_one_none() {
    let db = database().await;
    let node = start(config(db.url())).await;
    let url = format!("http://{}/_api/rpc/enqueue", node.addr());
    let http = reqwest::Client::new();
    let call = |marker: &str, fail: bool| {
        http.post(&url)
            .json(&json!({"args": {"marker": marker, "hold_ms": 600, "fail": fail}}))
            .send()
    };

    let pending = tokio::spawn(call("committed", false));
    // Well into the mutation's sleep: the job row exists in its transaction only.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (jobs, ran): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM forge_jobs), (SELECT count(*) FROM runs)")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((jobs, ran), (0, 0), "nothing is visible before commit");
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let id: Uuid = serde_json::from_value(body["data"].clone()).unwrap();
    until("the job to complete", SOON, || {
        status_is(db.pool(), id, "completed")
    })
    .await;
    let runs = runs(db.pool(), id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, "committed seen=true");
    let done = row(db.pool(), id).await;
    assert_eq!((done.attempts, done.locked_by), (1, None));

    let response = call("rolled-back", true).await.unwrap();
    assert_eq!(response.status(), 400);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_jobs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 1, "the failed mutation's job was rolled back with it");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_with_backoff_until_success_or_death() {
    let db = database().await;
    let node = start(config(db.url())).await;
    let flaky = enqueue(db.pool(), "flaky", json!({"succeed_on": 3}), 4).await;
    let doomed = enqueue(db.pool(), "doomed", json!(null), 2).await;

    until("flaky to complete", SOON, || {
        status_is(db.pool(), flaky, "completed")
    })
    .await;
    let row_flaky = row(db.pool(), flaky).await;
    assert_eq!(row_flaky.attempts, 3);
    let attempts = runs(db.pool(), flaky).await;
    assert_eq!(attempts.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    // Exponential from 100 ms: at least 100 ms before attempt 2 and 200 ms before attempt 3.
    let gaps = [attempts[1].2 - attempts[0].2, attempts[2].2 - attempts[1].2];
    assert!(gaps[0] >= 0.1 && gaps[1] >= 0.2, "gaps {gaps:?}");
    assert!(gaps[1] < 1.5, "the retry waited far too long: {gaps:?}");

    until("doomed to die", SOON, || {
        status_is(db.pool(), doomed, "dead")
    })
    .await;
    let dead = row(db.pool(), doomed).await;
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.last_error.as_deref(), Some("doomed on attempt 2"));
    assert_eq!(runs(db.pool(), doomed).await.len(), 2);
    let finished: bool =
        sqlx::query_scalar("SELECT finished_at IS NOT NULL FROM forge_jobs WHERE id = $1")
            .bind(doomed)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(finished);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_and_panics_are_failed_attempts_and_the_worker_goes_on() {
    let db = database().await;
    let node = start(config(db.url())).await;
    let slow = enqueue(db.pool(), "slow", json!(null), 1).await;
    let panics = enqueue(db.pool(), "panics", json!(null), 1).await;
    until("slow to time out", SOON, || {
        status_is(db.pool(), slow, "dead")
    })
    .await;
    until("panics to die", SOON, || {
        status_is(db.pool(), panics, "dead")
    })
    .await;
    let slow = row(db.pool(), slow).await;
    assert_eq!(slow.last_error.as_deref(), Some("timed out after 100 ms"));
    let panics = row(db.pool(), panics).await;
    assert_eq!(
        panics.last_error.as_deref(),
        Some("panicked: kaboom on attempt 1")
    );
    let after = enqueue(db.pool(), "count", json!(null), 1).await;
    until("a job after the panic", SOON, || {
        status_is(db.pool(), after, "completed")
    })
    .await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_is_visible_while_running_and_flushed_at_the_end() {
    let db = database().await;
    let node = start(config(db.url())).await;
    let id = enqueue(db.pool(), "progress", json!(null), 1).await;
    until("progress 40%", SOON, || async {
        let r = row(db.pool(), id).await;
        r.status == "running" && r.progress == (Some(40), Some("reading".into()))
    })
    .await;
    sqlx::query("INSERT INTO gate DEFAULT VALUES")
        .execute(db.pool())
        .await
        .unwrap();
    until("the job to complete", SOON, || {
        status_is(db.pool(), id, "completed")
    })
    .await;
    // The last report came right before the end, well within the write interval: it is
    // written with the outcome.
    assert_eq!(
        row(db.pool(), id).await.progress,
        (Some(100), Some("done".into()))
    );
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_run_every_job_exactly_once() {
    let db = database().await;
    let nodes = [start(config(db.url())).await, start(config(db.url())).await];
    const JOBS: i64 = 400;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO forge_jobs (name, input, max_attempts) \
         SELECT 'count', to_jsonb(n), 1 FROM generate_series(1, $1) n",
    )
    .bind(JOBS)
    .execute(db.pool())
    .await
    .unwrap();
    let elapsed = until("every job to complete", Duration::from_secs(30), || async {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM forge_jobs WHERE status = 'completed'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        done == JOBS
    })
    .await;
    let (executions, distinct, by_a, by_b): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT job_id), \
                count(*) FILTER (WHERE node = $1), count(*) FILTER (WHERE node = $2) FROM runs",
    )
    .bind(nodes[0].node_id())
    .bind(nodes[1].node_id())
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((executions, distinct), (JOBS, JOBS));
    assert_eq!(by_a + by_b, JOBS);
    assert!(by_a > 0 && by_b > 0, "both nodes worked: {by_a} and {by_b}");
    eprintln!(
        "{JOBS} jobs on 2 nodes × 8 workers in {:?} ({:.0} jobs/s; split {by_a}/{by_b})",
        elapsed,
        JOBS as f64 / started.elapsed().as_secs_f64()
    );
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_of_a_dead_worker_is_reclaimed_after_its_lease() {
    let db = database().await;
    let mut config = config(db.url());
    config.job_lease = Duration::from_millis(600);

    // A node that will die mid-job: aborted without a graceful shutdown.
    let doomed_node = start(config.clone()).await;

    // A row left behind by a process that died: running, its lease long expired.
    let orphan = enqueue(db.pool(), "count", json!(null), 2).await;
    sqlx::query(
        "UPDATE forge_jobs SET status = 'running', attempts = 1, locked_by = $2, \
                started_at = now() - interval '1 minute', \
                lease_expires_at = now() - interval '30 seconds' WHERE id = $1",
    )
    .bind(orphan)
    .bind(Uuid::new_v4())
    .execute(db.pool())
    .await
    .unwrap();

    let stuck = enqueue(db.pool(), "stuck", json!(null), 3).await;
    until("the stuck job to start", SOON, || async {
        runs(db.pool(), stuck).await.len() == 1
    })
    .await;
    until("the orphan to be reclaimed", SOON, || {
        status_is(db.pool(), orphan, "completed")
    })
    .await;
    let reclaimed = row(db.pool(), orphan).await;
    assert_eq!(reclaimed.attempts, 2, "{reclaimed:?}");
    drop(doomed_node);
    let died = Instant::now();

    let survivor = start(config).await;
    until("the stuck job to complete elsewhere", SOON, || {
        status_is(db.pool(), stuck, "completed")
    })
    .await;
    let took = died.elapsed();
    let stuck_runs = runs(db.pool(), stuck).await;
    assert_eq!(
        stuck_runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2],
        "attempt 1 on the dead node, attempt 2 on the survivor"
    );
    assert!(took < Duration::from_secs(3), "reclaimed after {took:?}");
    survivor.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_wakes_workers_long_before_the_poll_interval() {
    let db = database().await;
    let mut config = config(db.url());
    config.poll_interval = Duration::from_secs(10);
    let node = start(config).await;
    // Past the start-up claim and the listener's connect, so only a notification can help.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let id = enqueue(db.pool(), "count", json!(null), 1).await;
        let took = until(
            "the notified job to complete",
            Duration::from_secs(1),
            || status_is(db.pool(), id, "completed"),
        )
        .await;
        worst = worst.max(took);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("worst dispatch-to-completion latency with a 10 s poll interval: {worst:?}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_short_jobs_finish_and_hands_back_the_rest() {
    let db = database().await;
    let mut config = config(db.url());
    config.shutdown_grace = Duration::from_millis(1000);
    let node = start(config).await;
    let short = enqueue(db.pool(), "nap", json!({"ms": 300}), 3).await;
    let long = enqueue(db.pool(), "nap", json!({"ms": 60_000}), 3).await;
    until("both to start", SOON, || async {
        runs(db.pool(), short).await.len() == 1 && runs(db.pool(), long).await.len() == 1
    })
    .await;
    let started = Instant::now();
    node.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
    assert_eq!(row(db.pool(), short).await.status, "completed");
    let handed_back = row(db.pool(), long).await;
    assert_eq!(
        (
            handed_back.status.as_str(),
            handed_back.attempts,
            handed_back.locked_by
        ),
        ("pending", 0, None),
        "back in the queue with its attempt unused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_lists_and_shows_jobs_to_admins_only() {
    let db = database().await;
    let mut config = config(db.url());
    config.job_concurrency = 0;
    let node = start(config).await;
    let first = enqueue(db.pool(), "count", json!({"n": 1}), 1).await;
    let second = enqueue(db.pool(), "count", json!({"n": 2}), 1).await;
    let dead = enqueue(db.pool(), "doomed", json!(null), 1).await;
    sqlx::query(
        "UPDATE forge_jobs SET status = 'dead', last_error = 'boom', \
                created_at = created_at + interval '1 second' WHERE id = $1",
    )
    .bind(dead)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "UPDATE forge_jobs SET created_at = created_at - interval '1 second' WHERE id = $1",
    )
    .bind(first)
    .execute(db.pool())
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let admin = token(Uuid::new_v4(), None, &["admin"]);
    let get = |path: &str, token: Option<&str>| {
        let mut request = http.get(format!("http://{}/_api/admin{path}", node.addr()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let ids = |body: &Value| -> Vec<Uuid> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| serde_json::from_value(j["id"].clone()).unwrap())
            .collect()
    };

    let (status, body) = get("/jobs", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), [dead, second, first], "newest first");
    assert!(
        body["data"][0].get("input").is_none(),
        "the list leaves inputs out"
    );
    let (_, body) = get("/jobs?status=pending&limit=1", Some(&admin)).await;
    assert_eq!(ids(&body), [second]);
    let (_, body) = get("/jobs?status=dead", Some(&admin)).await;
    assert_eq!(ids(&body), [dead]);
    assert_eq!(body["data"][0]["last_error"], "boom");
    let (status, body) = get("/jobs?status=zombie", Some(&admin)).await;
    assert_eq!(
        (
            status,
            &body["error"]["code"],
            &body["error"]["details"]["field"]
        ),
        (400, &json!("VALIDATION_ERROR"), &json!("status"))
    );

    let (status, body) = get(&format!("/jobs/{first}"), Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&body["data"]["status"], &body["data"]["input"]),
        (&json!("pending"), &json!({"n": 1}))
    );
    let (status, body) = get(&format!("/jobs/{}", Uuid::new_v4()), Some(&admin)).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("NOT_FOUND")));
    let (status, body) = get("/jobs/not-a-uuid", Some(&admin)).await;
    assert_eq!(
        (status, &body["error"]["details"]["field"]),
        (400, &json!("id"))
    );

    let user = token(Uuid::new_v4(), None, &["support"]);
    for path in ["/jobs".to_owned(), format!("/jobs/{first}")] {
        let (status, body) = get(&path, Some(&user)).await;
        assert_eq!((status, &body["error"]["code"]), (403, &json!("FORBIDDEN")));
        let (status, _) = get(&path, None).await;
        assert_eq!(status, 401);
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_dispatches_with_its_completion_and_a_failed_attempt_dispatches_nothing() {
    let db = database().await;
    let node = start(config(db.url())).await;
    let chain = enqueue(db.pool(), "chain", json!(null), 2).await;
    until("the chain completes", SOON, || {
        status_is(db.pool(), chain, "completed")
    })
    .await;
    let said: Vec<Uuid> = runs(db.pool(), chain)
        .await
        .into_iter()
        .map(|(_, note, _)| note.parse().unwrap())
        .collect();
    assert_eq!(said.len(), 2, "two attempts");
    let queued: Vec<(Uuid, Value)> =
        sqlx::query_as("SELECT id, input FROM forge_jobs WHERE name = 'record'")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        queued,
        [(said[1], json!({"marker": "chain-2"}))],
        "only the completed attempt's dispatch, under the id it was given"
    );
    until("the dispatched job runs", SOON, || {
        status_is(db.pool(), said[1], "completed")
    })
    .await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_retries_cancels_and_pages_jobs_and_refuses_what_a_status_forbids() {
    let db = database().await;
    let mut config = config(db.url());
    config.job_concurrency = 0;
    let node = start(config).await;
    let http = reqwest::Client::new();
    let admin = token(Uuid::new_v4(), None, &["admin"]);
    let post = |path: String| {
        let request = http
            .post(format!("http://{}/_api/admin/jobs/{path}", node.addr()))
            .bearer_auth(&admin);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let get = |path: String| {
        let request = http
            .get(format!("http://{}/_api/admin/jobs{path}", node.addr()))
            .bearer_auth(&admin);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let set = |id: Uuid, status: &'static str, attempts: i32| {
        sqlx::query("UPDATE forge_jobs SET status = $2, attempts = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(attempts)
            .execute(db.pool())
    };
    let dead = enqueue(db.pool(), "doomed", json!(null), 2).await;
    set(dead, "dead", 2).await.unwrap();
    let (status, body) = post(format!("{dead}/retry")).await;
    assert_eq!(
        (status, &body["data"]["status"]),
        (200, &json!("pending")),
        "{body}"
    );
    let retried = row(db.pool(), dead).await;
    assert_eq!(
        (retried.status.as_str(), retried.attempts),
        ("pending", 0),
        "a full retry budget"
    );

    let failed = enqueue(db.pool(), "doomed", json!(null), 2).await;
    set(failed, "failed", 1).await.unwrap();
    let (status, _) = post(format!("{failed}/retry")).await;
    assert_eq!(status, 200);
    assert_eq!(
        row(db.pool(), failed).await.attempts,
        1,
        "a failed job keeps its attempts"
    );

    // Refusals name the status and change nothing.
    let running = enqueue(db.pool(), "count", json!(null), 1).await;
    set(running, "running", 1).await.unwrap();
    let completed = enqueue(db.pool(), "count", json!(null), 1).await;
    set(completed, "completed", 1).await.unwrap();
    for (id, action, current) in [
        (running, "retry", "running"),
        (running, "cancel", "running"),
        (completed, "cancel", "completed"),
        (completed, "retry", "completed"),
    ] {
        let (status, body) = post(format!("{id}/{action}")).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("VALIDATION_ERROR")),
            "{action} {current}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("the job is {current}")),
            "{message}"
        );
        assert_eq!(row(db.pool(), id).await.status, current, "unchanged");
    }
    let (status, body) = post(format!("{}/cancel", Uuid::new_v4())).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("NOT_FOUND")));

    // Cancel: the `cancelled` status is reachable.
    let (status, body) = post(format!("{failed}/cancel")).await;
    assert_eq!(
        (status, &body["data"]["status"]),
        (200, &json!("cancelled"))
    );
    let (status, _) = post(format!("{failed}/cancel")).await;
    assert_eq!(status, 400, "cancelled once");

    // Filters and keyset pages.
    let mut mail = Vec::new();
    for n in 0..5 {
        let id = enqueue(db.pool(), "mail", json!({"n": n}), 1).await;
        sqlx::query(
            "UPDATE forge_jobs SET queue = 'outbox', created_at = now() + $2 * interval '1 second'              WHERE id = $1",
        )
        .bind(id)
        .bind(f64::from(n))
        .execute(db.pool())
        .await
        .unwrap();
        mail.push(id);
    }
    mail.reverse();
    let ids = |body: &Value| -> Vec<Uuid> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| serde_json::from_value(j["id"].clone()).unwrap())
            .collect()
    };
    let page = get("?name=mail&limit=2".into()).await;
    assert_eq!(ids(&page), mail[..2]);
    let page = get(format!("?name=mail&limit=2&before={}", mail[1])).await;
    assert_eq!(ids(&page), mail[2..4]);
    let page = get(format!("?queue=outbox&limit=2&before={}", mail[3])).await;
    assert_eq!(ids(&page), mail[4..]);
    assert_eq!(ids(&get("?queue=nowhere".into()).await), Vec::<Uuid>::new());
    let page = get(format!("?before={}", Uuid::new_v4())).await;
    assert_eq!(page["error"]["details"]["field"], "before", "{page}");
    node.shutdown().await.unwrap();
}

/// A benchmark, not a timed test (`cargo test --release -p forge --test it jobs:: -- --ignored
/// --nocapture`): no-op jobs per second through one node's worker, against a bare loop of
/// the same width doing claim-one-with-SKIP-LOCKED and complete on the same table.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn bench_throughput_against_a_bare_skip_locked_loop() {
    const JOBS: i64 = 5000;
    const WIDTH: usize = 8;
    let db = database().await;
    let mut config = config(db.url());
    config.max_connections = 10;
    config.job_concurrency = WIDTH;
    let fill = || async {
        sqlx::query("DELETE FROM forge_jobs")
            .execute(db.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO forge_jobs (name, input, max_attempts) \
             SELECT 'noop', to_jsonb(n), 1 FROM generate_series(1, $1) n",
        )
        .bind(JOBS)
        .execute(db.pool())
        .await
        .unwrap();
    };
    let all_done = || async {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM forge_jobs WHERE status = 'completed'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        done == JOBS
    };

    // forge: the node is up and idle, then the jobs arrive in one transaction.
    let node = start(config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    fill().await;
    let started = Instant::now();
    until(
        "forge to drain the queue",
        Duration::from_secs(120),
        all_done,
    )
    .await;
    let forge = JOBS as f64 / started.elapsed().as_secs_f64();
    node.shutdown().await.unwrap();

    // The bare loop, on a pool of the same size.
    fill().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(db.url())
        .await
        .unwrap();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WIDTH {
        let pool = pool.clone();
        workers.spawn(async move {
            loop {
                let claimed: Option<Uuid> = sqlx::query_scalar(
                    "UPDATE forge_jobs SET status = 'running', attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM forge_jobs \
                                  WHERE queue = 'default' AND status IN ('pending', 'failed') \
                                    AND scheduled_at <= now() \
                                  ORDER BY priority DESC, scheduled_at LIMIT 1 \
                                  FOR UPDATE SKIP LOCKED) RETURNING id",
                )
                .fetch_optional(&pool)
                .await
                .unwrap();
                let Some(id) = claimed else { return };
                sqlx::query("UPDATE forge_jobs SET status = 'completed' WHERE id = $1")
                    .bind(id)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let bare = JOBS as f64 / started.elapsed().as_secs_f64();
    assert!(all_done().await);
    eprintln!(
        "{JOBS} no-op jobs, width {WIDTH}: forge {forge:.0} jobs/s, bare SKIP LOCKED loop {bare:.0} jobs/s ({:.2}x)",
        forge / bare
    );
}
