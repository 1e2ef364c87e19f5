//! Durable workflows against a real PostgreSQL, nodes in-process: steps cached and replayed,
//! parallel steps, durable sleeps, events and their timeout, compensation order (also
//! after a restart), cancel and abort, the run-level timeout, and versions: pinning,
//! blocking on a missing version or a changed signature, and retry once fixed. Every step
//! records its side effect in the table `effects`.

use std::time::Duration;

use forge::registry::{decode_args, decode_input, MutationDef, WorkflowDef};
use forge::testing::{config, token, TestClient, TestDatabase};
use forge::{App, Error, MutationContext, Registry, Running, WorkflowContext};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const SIG_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SIG_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn def(name: &'static str, version: &'static str, signature: &'static str) -> WorkflowDef {
    WorkflowDef {
        name,
        module: "",
        version,
        active: false,
        timeout_ms: None,
        signature,
        steps: &[],
        waits: &[],
    }
}

/// Records a side effect of run `run`.
async fn effect(ctx: &WorkflowContext, what: &str) -> forge::Result<()> {
    sqlx::query("INSERT INTO effects (run_id, what) VALUES ($1, $2)")
        .bind(ctx.run_id())
        .bind(what)
        .execute(ctx.db())
        .await?;
    Ok(())
}

/// A step that records `name` and is compensated by recording `undo <name>`.
async fn undoable(ctx: &WorkflowContext, name: &'static str) -> forge::Result<String> {
    let undo = ctx.clone();
    ctx.step(name)
        .run(|| async move {
            effect(ctx, name).await?;
            Ok(name.to_owned())
        })
        .compensate(move |done: String| async move { effect(&undo, &format!("undo {done}")).await })
        .await
}

#[derive(Deserialize)]
struct Start {
    workflow: String,
    input: Value,
}

#[derive(Deserialize)]
struct Send {
    run_id: Uuid,
    key: String,
    payload: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Input {
    sleep_ms: u64,
    fail: bool,
    timeout_ms: Option<u64>,
}

/// `start` and `send` (mutations) and the workflows every test uses.
fn base(registry: &mut Registry) {
    let mutation = |name| MutationDef {
        name,
        module: "",
        transactional: true,
        public: true,
        timeout_ms: None,
        tables_written: &[],
        rate_limit: None,
    };
    registry.mutation(mutation("start"), |ctx: MutationContext, args| async move {
        let Start { workflow, input } = decode_args(args)?;
        ctx.start_workflow(&workflow, input).await
    });
    registry.mutation(mutation("send"), |ctx: MutationContext, args| async move {
        let Send {
            run_id,
            key,
            payload,
        } = decode_args(args)?;
        ctx.send_event(run_id, &key, payload).await
    });
    // Two steps, one durable sleep, two steps in parallel; fails at the end on request.
    registry.workflow(
        def("saga", "1", SIG_A),
        |ctx: WorkflowContext, input| async move {
            let input: Input = decode_input(input)?;
            undoable(&ctx, "reserve").await?;
            undoable(&ctx, "charge").await?;
            ctx.sleep(Duration::from_millis(input.sleep_ms)).await?;
            let (a, b) = tokio::try_join!(undoable(&ctx, "left"), undoable(&ctx, "right"))?;
            if input.fail {
                ctx.step("ship")
                    .run(|| async { Err::<(), _>(Error::Validation("out of stock".into())) })
                    .await?;
            }
            Ok(format!("{a}+{b}"))
        },
    );
    // Waits for `approved`, handling its timeout.
    registry.workflow(
        def("approval", "1", SIG_A),
        |ctx: WorkflowContext, input| async move {
            let input: Input = decode_input(input)?;
            undoable(&ctx, "request").await?;
            let timeout = input.timeout_ms.map(Duration::from_millis);
            match ctx.wait_for_event::<Value>("approved", timeout).await {
                Ok(payload) => Ok(json!({ "approved": payload })),
                Err(Error::Timeout(_)) => Ok(json!("timed out")),
                Err(error) => Err(error),
            }
        },
    );
}

async fn start_node(url: &str, register: impl FnOnce(&mut Registry)) -> Running {
    App::new(config(url))
        .register(register)
        .start()
        .await
        .expect("the node starts")
}

async fn setup() -> (TestDatabase, PgPool) {
    let db = TestDatabase::new().await;
    let pool = db.pool().clone();
    sqlx::query(
        "CREATE TABLE effects (id bigint GENERATED ALWAYS AS IDENTITY, run_id uuid NOT NULL, \
         what text NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    (db, pool)
}

async fn start(node: &Running, workflow: &str, input: Value) -> Uuid {
    let id = TestClient::new(node)
        .call("start", json!({"workflow": workflow, "input": input}))
        .await
        .expect("start");
    serde_json::from_value(id).unwrap()
}

async fn effects(pool: &PgPool, run: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT what FROM effects WHERE run_id = $1 ORDER BY id")
        .bind(run)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn status(pool: &PgPool, run: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM forge_workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn reaches(pool: &PgPool, run: Uuid, wanted: &str) {
    let start = std::time::Instant::now();
    while status(pool, run).await != wanted {
        if start.elapsed() > Duration::from_secs(10) {
            let row: Value = sqlx::query_scalar(
                "SELECT to_jsonb(r) || jsonb_build_object('steps', (SELECT jsonb_agg(s) \
                 FROM forge_workflow_steps s WHERE s.run_id = r.id)) \
                 FROM forge_workflow_runs r WHERE id = $1",
            )
            .bind(run)
            .fetch_one(pool)
            .await
            .unwrap();
            panic!("the run is not {wanted} within 10 s: {row:#}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn admin(node: &Running, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("http://{}/_api/admin/workflows/{path}", node.addr());
    let http = reqwest::Client::new();
    let request = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request
        .bearer_auth(token(Uuid::new_v4(), None, &["admin"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What `/_api/ready` answers once it answers `want` (readiness is re-checked in the
/// background), or after 5 s.
async fn ready(node: &Running, want: u16) -> (u16, String) {
    let started = std::time::Instant::now();
    loop {
        let response = reqwest::get(format!("http://{}/_api/ready", node.addr()))
            .await
            .unwrap();
        let answer = (response.status().as_u16(), response.text().await.unwrap());
        if answer.0 == want || started.elapsed() > Duration::from_secs(5) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn steps_run_once_through_a_durable_sleep_and_parallel_steps() {
    let (db, pool) = setup().await;
    let node = start_node(db.url(), base).await;
    // 700 ms is over the poll interval: the run suspends, holding no worker, and resumes.
    let run = start(&node, "saga", json!({"sleep_ms": 700})).await;
    reaches(&pool, run, "sleeping").await;
    reaches(&pool, run, "completed").await;
    let row: (Value, i32) =
        sqlx::query_as("SELECT output, claims FROM forge_workflow_runs WHERE id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row.0, json!("left+right"));
    assert_eq!(row.1, 2, "claimed to start and again to wake");
    let mut done = effects(&pool, run).await;
    done[2..].sort();
    assert_eq!(
        done,
        ["reserve", "charge", "left", "right"],
        "each step ran once"
    );

    let view = admin(&node, "GET", &run.to_string(), None).await;
    assert_eq!(view["data"]["status"], "completed", "{view}");
    let steps: Vec<&str> = view["data"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert!(steps.contains(&"~sleep/1"), "{steps:?}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_compensates_in_reverse_order_also_after_a_restart() {
    let (db, pool) = setup().await;
    // In one go.
    let node = start_node(db.url(), base).await;
    let run = start(&node, "saga", json!({"fail": true})).await;
    reaches(&pool, run, "compensated").await;
    let done = effects(&pool, run).await;
    assert_eq!(&done[..2], ["reserve", "charge"]);
    // The parallel steps completed in some order (which need not be the order of their
    // effects); they are undone in the reverse of it.
    let completed: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM forge_workflow_steps \
         WHERE run_id = $1 AND key IN ('left', 'right') ORDER BY sequence",
    )
    .bind(run)
    .fetch_all(&pool)
    .await
    .unwrap();
    let (left, right) = (&completed[0], &completed[1]);
    assert_eq!(
        &done[4..],
        [
            format!("undo {right}"),
            format!("undo {left}"),
            "undo charge".into(),
            "undo reserve".into()
        ]
    );
    let error: String = sqlx::query_scalar("SELECT error FROM forge_workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(error.contains("out of stock"), "{error}");

    // Across a restart: the first node dies while the run sleeps, after `reserve` and
    // `charge`; the second replays them (registering their compensations) and undoes them.
    let run = start(&node, "saga", json!({"fail": true, "sleep_ms": 1500})).await;
    reaches(&pool, run, "sleeping").await;
    node.kill().await;
    let node = start_node(db.url(), base).await;
    reaches(&pool, run, "compensated").await;
    let done = effects(&pool, run).await;
    assert_eq!(
        &done[..2],
        ["reserve", "charge"],
        "ran once, before the restart"
    );
    assert_eq!(&done[6..], ["undo charge", "undo reserve"]);
    assert_eq!(done.len(), 8, "{done:?}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_delivered_and_a_wait_times_out() {
    let (db, pool) = setup().await;
    let node = start_node(db.url(), base).await;
    let client = TestClient::new(&node);

    // Sent by a mutation, in its transaction.
    let run = start(&node, "approval", json!({})).await;
    reaches(&pool, run, "waiting").await;
    client
        .call(
            "send",
            json!({"run_id": run, "key": "approved", "payload": {"by": "ann"}}),
        )
        .await
        .unwrap();
    reaches(&pool, run, "completed").await;
    let output: Value = sqlx::query_scalar("SELECT output FROM forge_workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(output, json!({"approved": {"by": "ann"}}));

    // Sent before the run waits: kept for the wait. Through the admin API.
    let run = start(&node, "approval", json!({})).await;
    let sent = admin(
        &node,
        "POST",
        &format!("{run}/events/approved"),
        Some(json!(7)),
    )
    .await;
    assert_eq!(sent["success"], true, "{sent}");
    reaches(&pool, run, "completed").await;

    // To a run that does not exist.
    let missing = client
        .call(
            "send",
            json!({"run_id": Uuid::new_v4(), "key": "approved", "payload": null}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code, "NOT_FOUND");

    // Nobody approves within 300 ms: the workflow handles the timeout.
    let run = start(&node, "approval", json!({"timeout_ms": 300})).await;
    reaches(&pool, run, "completed").await;
    let output: Value = sqlx::query_scalar("SELECT output FROM forge_workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(output, json!("timed out"));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_compensates_abort_does_not_and_the_run_timeout_fails_the_run() {
    let (db, pool) = setup().await;
    let node = start_node(db.url(), |registry| {
        base(registry);
        registry.workflow(
            WorkflowDef {
                timeout_ms: Some(400),
                ..def("bounded", "1", SIG_A)
            },
            |ctx: WorkflowContext, _input| async move {
                undoable(&ctx, "begin").await?;
                ctx.sleep(Duration::from_secs(30)).await?;
                Ok(())
            },
        );
    })
    .await;

    let run = start(&node, "approval", json!({})).await;
    reaches(&pool, run, "waiting").await;
    let cancelled = admin(&node, "POST", &format!("{run}/cancel"), None).await;
    assert_eq!(cancelled["success"], true, "{cancelled}");
    reaches(&pool, run, "cancelled").await;
    assert_eq!(effects(&pool, run).await, ["request", "undo request"]);
    let again = admin(&node, "POST", &format!("{run}/cancel"), None).await;
    assert_eq!(again["error"]["code"], "VALIDATION_ERROR", "{again}");

    let run = start(&node, "approval", json!({})).await;
    reaches(&pool, run, "waiting").await;
    let aborted = admin(&node, "POST", &format!("{run}/abort"), None).await;
    assert_eq!(aborted["data"]["status"], "cancelled", "{aborted}");
    assert_eq!(
        effects(&pool, run).await,
        ["request"],
        "nothing compensated"
    );

    let run = start(&node, "bounded", json!(null)).await;
    reaches(&pool, run, "compensated").await;
    assert_eq!(effects(&pool, run).await, ["begin", "undo begin"]);
    let error: String = sqlx::query_scalar("SELECT error FROM forge_workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(error.contains("timed out"), "{error}");
    node.shutdown().await.unwrap();
}

/// Version "1" of `trip` as first deployed, or with its contract changed (`signature`);
/// optionally next to version "2", the active one, whose steps differ.
fn trip(signature: &'static str, v1: bool, v2: bool) -> impl FnOnce(&mut Registry) {
    move |registry| {
        base(registry);
        if v1 {
            registry.workflow(
                def("trip", "1", signature),
                |ctx: WorkflowContext, _input| async move {
                    undoable(&ctx, "v1 book").await?;
                    ctx.sleep(Duration::from_millis(800)).await?;
                    undoable(&ctx, "v1 pay").await?;
                    Ok("v1")
                },
            );
        }
        if v2 {
            registry.workflow(
                WorkflowDef {
                    active: true,
                    ..def("trip", "2", SIG_B)
                },
                |ctx: WorkflowContext, _input| async move {
                    undoable(&ctx, "v2 book").await?;
                    Ok("v2")
                },
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_pin_block_and_resume_after_a_retry() {
    let (db, pool) = setup().await;
    let node = start_node(db.url(), trip(SIG_A, true, false)).await;
    let old = start(&node, "trip", json!(null)).await;
    reaches(&pool, old, "sleeping").await;
    node.kill().await;

    // Deployed with version 2 only: the sleeping run of version 1 blocks when it wakes,
    // new runs use version 2, and the node is not ready.
    let node = start_node(db.url(), trip(SIG_A, false, true)).await;
    reaches(&pool, old, "blocked_missing_version").await;
    let new = start(&node, "trip", json!(null)).await;
    reaches(&pool, new, "completed").await;
    assert_eq!(effects(&pool, new).await, ["v2 book"]);
    let version: String =
        sqlx::query_scalar("SELECT version FROM forge_workflow_runs WHERE id = $1")
            .bind(new)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(version, "2");
    let (code, body) = ready(&node, 503).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("blocked"), "{body}");
    let view = admin(&node, "GET", &old.to_string(), None).await;
    let reason = view["data"]["blocking_reason"].as_str().unwrap();
    assert!(
        reason.contains("version \"1\"") && reason.contains("\"2\""),
        "{reason}"
    );
    node.kill().await;

    // Version 1 is back, but its contract changed without a version bump: still blocked.
    let node = start_node(db.url(), trip(SIG_B, true, true)).await;
    let retried = admin(&node, "POST", &format!("{old}/retry"), None).await;
    assert_eq!(retried["data"]["status"], "pending", "{retried}");
    reaches(&pool, old, "blocked_signature_mismatch").await;
    let view = admin(&node, "GET", &old.to_string(), None).await;
    let reason = view["data"]["blocking_reason"].as_str().unwrap();
    assert!(reason.contains(SIG_A) && reason.contains(SIG_B), "{reason}");
    node.kill().await;

    // The old version redeployed as it was, next to the new one: the retried run finishes
    // on version 1, its first step not run again; new runs still use version 2.
    let node = start_node(db.url(), trip(SIG_A, true, true)).await;
    admin(&node, "POST", &format!("{old}/retry"), None).await;
    reaches(&pool, old, "completed").await;
    assert_eq!(effects(&pool, old).await, ["v1 book", "v1 pay"]);
    let active: Vec<(String, bool)> = sqlx::query_as(
        "SELECT version, active FROM forge_workflow_definitions WHERE name = 'trip' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(active, [("1".into(), false), ("2".into(), true)]);
    let (code, body) = ready(&node, 200).await;
    assert_eq!(code, 200, "{body}");
    node.shutdown().await.unwrap();
}

/// Dispatching from a workflow is a step: the run suspends on a sleep after dispatching and
/// replays from the top, and the replay gets the stored ids instead of dispatching again.
#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_dispatches_once_across_replays() {
    let (db, pool) = setup().await;
    let node = start_node(db.url(), |registry| {
        base(registry);
        registry.job(
            forge::registry::JobDef {
                name: "noted",
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
            },
            |_ctx: forge::JobContext, _input| async move { Ok(()) },
        );
        registry.workflow(
            def("fan_out", "1", SIG_A),
            |ctx: WorkflowContext, _input| async move {
                let job = ctx.dispatch_job("noted", json!({"n": 1})).await?;
                let again = ctx.dispatch_job("noted", json!({"n": 2})).await?;
                let child = ctx.start_workflow("approval", json!({})).await?;
                ctx.send_event(child, "approved", json!("yes")).await?;
                effect(&ctx, "dispatched").await?;
                ctx.sleep(Duration::from_millis(700)).await?;
                Ok(json!({"job": job, "again": again, "child": child}))
            },
        );
    })
    .await;
    let run = start(&node, "fan_out", json!({})).await;
    reaches(&pool, run, "completed").await;
    let output: Value = sqlx::query_scalar("SELECT output FROM forge_workflow_runs WHERE id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        effects(&pool, run).await,
        ["dispatched", "dispatched"],
        "the handler ran twice (a replay after the sleep)"
    );
    let jobs: Vec<(Uuid, Value)> = sqlx::query_as(
        "SELECT id, input FROM forge_jobs WHERE name = 'noted' ORDER BY input->>'n'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let ids: Vec<Value> = jobs.iter().map(|(id, _)| json!(id)).collect();
    assert_eq!(
        ids,
        [output["job"].clone(), output["again"].clone()],
        "two jobs, once each"
    );
    let child: Uuid = serde_json::from_value(output["child"].clone()).unwrap();
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM forge_workflow_runs WHERE name = 'approval'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(runs, 1, "one child run");
    reaches(&pool, child, "completed").await;
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM forge_workflow_events WHERE run_id = $1")
            .bind(child)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(events, 1, "one event");
    node.shutdown().await.unwrap();
}

/// `forge::testing::Work`: a day-long sleep fired without waiting for it, an event
/// delivered, the worker drained until idle, and what the calls dispatched read back.
#[tokio::test(flavor = "multi_thread")]
async fn testing_helpers_fire_timers_deliver_events_and_drain_the_work() {
    let (db, pool) = setup().await;
    let node = start_node(db.url(), |registry| {
        base(registry);
        registry.job(
            forge::registry::JobDef {
                name: "notify",
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
            },
            |_ctx: forge::JobContext, _input| async move { Ok(()) },
        );
        registry.workflow(
            def("trial", "1", SIG_A),
            |ctx: WorkflowContext, _input| async move {
                ctx.step("start").run(|| effect(&ctx, "started")).await?;
                ctx.sleep(Duration::from_secs(24 * 3600)).await?;
                ctx.step("later")
                    .run(|| effect(&ctx, "a day later"))
                    .await?;
                let answer: Value = ctx.wait_for_event("answer", None).await?;
                ctx.dispatch_job("notify", json!({"answer": answer}))
                    .await?;
                Ok(answer)
            },
        );
    })
    .await;
    let work = forge::testing::Work::new(&node);
    let mark = work.mark().await.unwrap();
    let run = start(&node, "trial", json!({})).await;
    let runs = work.runs_since(&mark).await.unwrap();
    assert_eq!(
        (runs.len(), runs[0].id, runs[0].name.as_str()),
        (1, run, "trial")
    );
    work.drain(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status(&pool, run).await, "sleeping");
    assert_eq!(
        work.fire_timers(chrono::Utc::now() + chrono::Duration::hours(1))
            .await
            .unwrap(),
        0,
        "not due within the hour"
    );
    assert_eq!(
        work.fire_timers(chrono::Utc::now() + chrono::Duration::days(2))
            .await
            .unwrap(),
        1
    );
    work.drain(Duration::from_secs(10)).await.unwrap();
    assert_eq!(effects(&pool, run).await, ["started", "a day later"]);
    assert_eq!(status(&pool, run).await, "waiting");
    work.send_event(run, "answer", "yes").await.unwrap();
    work.drain(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status(&pool, run).await, "completed");
    let jobs = work.jobs_since(&mark).await.unwrap();
    assert_eq!(
        jobs.iter()
            .map(|j| (j.name.as_str(), &j.input, j.status.as_str()))
            .collect::<Vec<_>>(),
        [("notify", &json!({"answer": "yes"}), "completed")]
    );
    let missing = work.send_event(Uuid::new_v4(), "answer", "no").await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    node.shutdown().await.unwrap();
}
