//! Soak: one node under live sessions that read at different speeds and RPC clients, for a
//! while; the node's resident memory, RPC latency and errors.
//!
//! ```sh
//! cargo bench -p forge --bench soak                    # defaults below
//! cargo bench -p forge --bench soak -- --sessions 2000 --rpc 200 --seconds 60
//! ```
//!
//! The node runs in a child process (this binary with `--node <database url>`), so its
//! resident memory is its own. Against it, from this process:
//!
//! - `--sessions` `/_api/events` sessions, each subscribed to one of 100 live queries (a
//!   2 kB result per key). Half read everything as it comes (fast); half read one chunk
//!   every 2 s (slow), so their outboxes fill and the node disconnects the ones that fall too far
//!   behind (counted, not errors).
//! - A writer that changes every key twice a second, so every group re-runs and every
//!   session gets an update twice a second.
//! - `--rpc` clients calling a one-row query in a loop.
//!
//! First the RPC clients run alone for 10 s (the peer: same node, same clients, no
//! sessions), then everything for `--seconds`. Reported: RSS of the node (before,
//! peak, end), RPC p50/p99 and errors in both phases, updates received by fast sessions,
//! and sessions dropped.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forge::registry::{decode_args, QueryDef};
use forge::testing::{config, TestDatabase};
use forge::{App, QueryContext, Registry};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const KEYS: i32 = 100;

struct Options {
    sessions: usize,
    rpc: usize,
    seconds: u64,
}

fn options(mut args: impl Iterator<Item = String>) -> Options {
    let mut options = Options {
        sessions: 2000,
        rpc: 200,
        seconds: 60,
    };
    while let Some(flag) = args.next() {
        if flag == "--bench" {
            continue;
        }
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a whole number"));
        match flag.as_str() {
            "--sessions" => options.sessions = value as usize,
            "--rpc" => options.rpc = value as usize,
            "--seconds" => options.seconds = value,
            _ => panic!("unknown flag {flag}: --sessions, --rpc, --seconds"),
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
            rate_limit: None,
            name: "feed",
            module: "soak",
            public: true,
            unscoped: true,
            cache_ms: None,
            timeout_ms: None,
            tables_read: &["soak"],
        },
        |ctx: QueryContext, args| async move {
            let Args { k } = decode_args(args)?;
            let row: (i64, String) = sqlx::query_as("SELECT v, pad FROM soak WHERE k = $1")
                .bind(k)
                .fetch_one(ctx.db())
                .await?;
            Ok(json!({"k": k, "v": row.0, "pad": row.1}))
        },
    );
    registry.query(
        QueryDef {
            rate_limit: None,
            name: "get",
            module: "soak",
            public: true,
            unscoped: true,
            cache_ms: None,
            timeout_ms: None,
            tables_read: &[],
        },
        |ctx: QueryContext, args| async move {
            let Args { k } = decode_args(args)?;
            let v: i64 = sqlx::query_scalar("SELECT v FROM soak WHERE k = $1")
                .bind(k)
                .fetch_one(ctx.db())
                .await?;
            Ok(v)
        },
    );
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if args.peek().map(String::as_str) == Some("--node") {
        args.next();
        let url = args.next().expect("--node <database url>");
        runtime.block_on(node(url));
    } else {
        runtime.block_on(run(options(args)));
    }
}

/// The node: serves until its standard input closes.
async fn node(url: String) {
    let mut config = config(&url);
    config.max_connections = 20;
    config.job_concurrency = 0;
    config.live_max_sessions = 10_000;
    config.live_max_sessions_per_ip = 10_000;
    let node = App::new(config)
        .register(register)
        .start()
        .await
        .expect("start the node");
    println!("ADDR {}", node.addr());
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    })
    .await;
    node.shutdown().await.expect("shut down");
}

fn rss_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Counters {
    updates: AtomicU64,
    dropped_fast: AtomicU64,
    dropped_slow: AtomicU64,
    refused: AtomicU64,
}

async fn run(options: Options) {
    let db = TestDatabase::new().await;
    sqlx::raw_sql(
        "CREATE TABLE soak (k int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL); \
         INSERT INTO soak SELECT k, 0, repeat('x', 2000) FROM generate_series(0, 99) k;",
    )
    .execute(db.pool())
    .await
    .expect("create the table");
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("this binary"))
        .arg("--node")
        .arg(db.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start the node process");
    let pid = child.id().expect("the node's pid");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = stdout
            .next_line()
            .await
            .expect("the node's output")
            .expect("the node's address");
        if let Some(addr) = line.strip_prefix("ADDR ") {
            break addr.to_owned();
        }
    };
    sqlx::query("SELECT forge_enable_reactivity('soak')")
        .execute(db.pool())
        .await
        .expect("enable reactivity");
    let base = format!("http://{addr}");
    let rss_start = rss_of(pid);
    println!(
        "soak: {} sessions, {} RPC clients, {} s; node pid {pid}, RSS at start {}",
        options.sessions,
        options.rpc,
        options.seconds,
        mib(rss_start)
    );

    // The peer: RPC alone.
    let (alone, alone_errors, alone_calls) =
        rpc_phase(&base, options.rpc, Duration::from_secs(10)).await;
    println!(
        "RPC alone, 10 s:   {alone_calls} calls, {alone_errors} errors, p50 {:?}, p99 {:?}",
        percentile(&alone, 0.5),
        percentile(&alone, 0.99)
    );

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    let opened = Instant::now();
    let mut readers = Vec::new();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(50));
    for index in 0..options.sessions {
        let permit = semaphore.clone().acquire_owned().await.expect("open");
        let (http, base, counters, stop) =
            (http.clone(), base.clone(), counters.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let slow = index % 2 == 1;
            session(&http, &base, index, slow, &counters, &stop, permit).await;
        }));
    }
    let _ = semaphore.acquire_many(50).await;
    println!(
        "{} sessions opened and subscribed in {:.1} s ({} refused); RSS {}",
        options.sessions,
        opened.elapsed().as_secs_f64(),
        counters.refused.load(Ordering::Relaxed),
        mib(rss_of(pid))
    );

    let writer = {
        let pool = db.pool().clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sqlx::query("UPDATE soak SET v = v + 1")
                    .execute(&pool)
                    .await
                    .expect("write");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_of(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let (soaked, soak_errors, soak_calls) =
        rpc_phase(&base, options.rpc, Duration::from_secs(options.seconds)).await;
    let rss_end = rss_of(pid);
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    let _ = sampler.await;
    for reader in readers {
        reader.abort();
    }
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "RPC under soak, {} s: {soak_calls} calls, {soak_errors} errors, p50 {:?}, p99 {:?}",
        options.seconds,
        percentile(&soaked, 0.5),
        percentile(&soaked, 0.99)
    );
    println!(
        "ratios soak/alone: p50 {:.2}, p99 {:.2}, calls/s {:.2}",
        percentile(&soaked, 0.5).as_secs_f64() / percentile(&alone, 0.5).as_secs_f64(),
        percentile(&soaked, 0.99).as_secs_f64() / percentile(&alone, 0.99).as_secs_f64(),
        (soak_calls as f64 / options.seconds as f64) / (alone_calls as f64 / 10.0)
    );
    println!(
        "updates received by fast sessions: {}; sessions dropped: {} fast, {} slow",
        counters.updates.load(Ordering::Relaxed),
        counters.dropped_fast.load(Ordering::Relaxed),
        counters.dropped_slow.load(Ordering::Relaxed)
    );
    println!(
        "node RSS: start {}, peak {}, end {}",
        mib(rss_start),
        mib(peak),
        mib(rss_end)
    );
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.shutdown().await;
    }
    drop(child.stdin.take());
    let _ = child.wait().await;
}

/// `clients` RPC callers for `length`: every call's latency, errors and calls.
async fn rpc_phase(base: &str, clients: usize, length: Duration) -> (Vec<Duration>, u64, u64) {
    let http = reqwest::Client::new();
    let until = Instant::now() + length;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, url, errors) = (http.clone(), format!("{base}/_api/rpc/get"), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let started = Instant::now();
                let response = http
                    .post(&url)
                    .json(&json!({"args": {"k": client as i32 % KEYS}}))
                    .send()
                    .await;
                let ok = match response {
                    Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(started.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("an RPC client"));
    }
    all.sort();
    let calls = all.len() as u64;
    (all, errors.load(Ordering::Relaxed), calls)
}

/// One session: opens, subscribes, reads fast or slow until stopped.
async fn session(
    http: &reqwest::Client,
    base: &str,
    index: usize,
    slow: bool,
    counters: &Counters,
    stop: &AtomicBool,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let Ok(mut response) = http.get(format!("{base}/_api/events")).send().await else {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if response.status() != 200 {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut buffer = String::new();
    let connected: Value = loop {
        let Ok(Some(chunk)) = response.chunk().await else {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(data) = buffer.lines().find_map(|l| l.strip_prefix("data:")) {
            if let Ok(value) = serde_json::from_str(data.trim()) {
                break value;
            }
        }
    };
    buffer.clear();
    let subscribed = http
        .post(format!("{base}/_api/subscribe"))
        .json(&json!({
            "session_id": connected["session_id"], "session_secret": connected["session_secret"],
            "subscription_id": "feed", "function": "feed", "args": {"k": index as i32 % KEYS},
        }))
        .send()
        .await;
    if !subscribed.is_ok_and(|r| r.status() == 200) {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    drop(permit);
    loop {
        if slow {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if !slow {
                    let text = String::from_utf8_lossy(&chunk);
                    let updates = text.matches("event: update").count() as u64;
                    counters.updates.fetch_add(updates, Ordering::Relaxed);
                }
            }
            _ => {
                if !stop.load(Ordering::Relaxed) {
                    let dropped = if slow {
                        &counters.dropped_slow
                    } else {
                        &counters.dropped_fast
                    };
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
    }
}
