//! Live queries: write → update latency and re-runs per write.
//!
//! ```sh
//! cargo bench -p forge --bench live                       # defaults below
//! cargo bench -p forge --bench live -- --sessions 10 --keys 100 --writes 200
//! ```
//!
//! One node in this process against a fresh test database. `--sessions` SSE sessions each
//! subscribe to the same query for every one of `--keys` argument values: sessions × keys
//! subscriptions in `--keys` groups. Then `--writes` single-row updates, one at a time, each
//! to the rows of one key (round-robin), straight through SQL (the change triggers fire for
//! any writer). A write's latency is measured per subscriber of its key, from just before
//! the UPDATE to the `update` event arriving on that subscriber's stream; the next write
//! waits until every subscriber got it and the debounce window has passed, so batches do
//! not merge. The query counts its own runs.
//!
//! Invalidation is per table: every group reads the one table, so every write re-runs all
//! `--keys` groups once each; only the group whose result changed pushes anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use forge::registry::{decode_args, QueryDef};
use forge::testing::{config, TestDatabase};
use forge::{App, QueryContext, Registry};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

static RUNS: AtomicU64 = AtomicU64::new(0);

struct Options {
    sessions: usize,
    keys: usize,
    writes: usize,
}

fn options() -> Options {
    let mut options = Options {
        sessions: 10,
        keys: 100,
        writes: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--bench" {
            continue;
        }
        let value: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a whole number"));
        match flag.as_str() {
            "--sessions" => options.sessions = value,
            "--keys" => options.keys = value,
            "--writes" => options.writes = value,
            _ => panic!("unknown flag {flag}: --sessions, --keys, --writes"),
        }
    }
    options
}

#[derive(Deserialize)]
struct Args {
    k: i32,
}

fn register(registry: &mut Registry) {
    registry.query(
        QueryDef {
            name: "by_key",
            module: "bench",
            public: true,
            unscoped: true,
            cache_ms: None,
            timeout_ms: None,
            tables_read: &["bench_live"],
            rate_limit: None,
        },
        |ctx: QueryContext, args| async move {
            RUNS.fetch_add(1, Ordering::Relaxed);
            let Args { k } = decode_args(args)?;
            let rows: Vec<i64> =
                sqlx::query_scalar("SELECT v FROM bench_live WHERE k = $1 ORDER BY id")
                    .bind(k)
                    .fetch_all(ctx.db())
                    .await?;
            Ok(rows)
        },
    );
}

/// One SSE session: its id pair, and its `update` events as (subscription id, arrival).
async fn open_session(
    http: &reqwest::Client,
    base: &str,
    index: usize,
    arrivals: mpsc::UnboundedSender<(usize, String, Instant)>,
) -> (String, String) {
    let mut response = http
        .get(format!("{base}/_api/events"))
        .send()
        .await
        .expect("open /_api/events");
    let (ready, connected) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready);
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let now = Instant::now();
                let event = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(str::trim);
                let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                    continue;
                };
                let data: Value = serde_json::from_str(data.trim()).expect("event data is JSON");
                match event {
                    Some("connected") => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send((
                                data["session_id"].as_str().unwrap_or_default().to_owned(),
                                data["session_secret"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned(),
                            ));
                        }
                    }
                    Some("update") => {
                        let id = data["subscription_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = arrivals.send((index, id, now));
                    }
                    other => panic!("unexpected event {other:?}: {data}"),
                }
            }
        }
    });
    connected.await.expect("the connected event")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let db = TestDatabase::new().await;
    sqlx::raw_sql(
        "CREATE TABLE bench_live (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         k int NOT NULL, v bigint NOT NULL); CREATE INDEX ON bench_live (k);",
    )
    .execute(db.pool())
    .await
    .expect("create the table");
    sqlx::query("INSERT INTO bench_live (k, v) SELECT k, 0 FROM generate_series(0, $1 - 1) k")
        .bind(options.keys as i32)
        .execute(db.pool())
        .await
        .expect("fill the table");
    let mut config = config(db.url());
    config.max_connections = 10;
    let node = App::new(config)
        .register(register)
        .start()
        .await
        .expect("start the node");
    // The system schema exists once the node migrated.
    sqlx::query("SELECT forge_enable_reactivity('bench_live')")
        .execute(db.pool())
        .await
        .expect("enable reactivity");
    let base = format!("http://{}", node.addr());
    let http = reqwest::Client::new();

    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    let mut sessions = Vec::new();
    for index in 0..options.sessions {
        sessions.push(open_session(&http, &base, index, arrivals.clone()).await);
    }
    let started = Instant::now();
    for (session_id, secret) in &sessions {
        for k in 0..options.keys {
            let response: Value = http
                .post(format!("{base}/_api/subscribe"))
                .json(&json!({
                    "session_id": session_id, "session_secret": secret,
                    "subscription_id": k.to_string(), "function": "by_key", "args": {"k": k},
                }))
                .send()
                .await
                .expect("subscribe")
                .json()
                .await
                .expect("the envelope");
            assert_eq!(response["success"], true, "{response}");
        }
    }
    let subscriptions = options.sessions * options.keys;
    // Every first result arrives.
    for _ in 0..subscriptions {
        arrived.recv().await.expect("a first result");
    }
    println!(
        "{subscriptions} subscriptions ({} sessions × {} keys, {} groups) set up in {:?}; \
         query runs so far: {}",
        options.sessions,
        options.keys,
        options.keys,
        started.elapsed(),
        RUNS.load(Ordering::Relaxed)
    );

    let mut latencies = Vec::new();
    let mut runs_per_write = Vec::new();
    let mut stray = 0usize;
    for write in 0..options.writes {
        let k = write % options.keys;
        let runs_before = RUNS.load(Ordering::Relaxed);
        let sent = Instant::now();
        sqlx::query("UPDATE bench_live SET v = v + 1 WHERE k = $1")
            .bind(k as i32)
            .execute(db.pool())
            .await
            .expect("write");
        let mut waiting: HashMap<usize, ()> = (0..options.sessions).map(|s| (s, ())).collect();
        while !waiting.is_empty() {
            let (session, id, at) = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
                .await
                .expect("an update within 10 s")
                .expect("the streams are open");
            if id == k.to_string() && waiting.remove(&session).is_some() {
                latencies.push(at - sent);
            } else {
                stray += 1;
            }
        }
        // Past the debounce window, so the next write starts a batch of its own.
        tokio::time::sleep(Duration::from_millis(250)).await;
        runs_per_write.push(RUNS.load(Ordering::Relaxed) - runs_before);
    }
    latencies.sort();
    runs_per_write.sort();
    let mean_runs = runs_per_write.iter().sum::<u64>() as f64 / runs_per_write.len() as f64;
    println!(
        "{} writes, {} updates received: latency p50 {:?}, p99 {:?}, max {:?}",
        options.writes,
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "query runs per write: mean {mean_runs:.2}, min {}, max {} ({} groups read the table: \
         {:.2} runs per group per write); updates to unchanged subscriptions: {stray}",
        runs_per_write.first().copied().unwrap_or_default(),
        runs_per_write.last().copied().unwrap_or_default(),
        options.keys,
        mean_runs / options.keys as f64,
    );
    node.shutdown().await.expect("stop the node");
}
