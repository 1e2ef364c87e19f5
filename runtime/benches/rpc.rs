//! RPC requests/s of a one-row query: a forge node against a bare axum + sqlx handler
//! doing the same query and answering the same envelope.
//!
//! ```sh
//! cargo bench -p forge --bench rpc                      # defaults below
//! cargo bench -p forge --bench rpc -- --connections 32 --duration 10 --rounds 5
//! cargo bench -p forge --bench rpc -- --tokens 1       # HS256 against RS256 bearer tokens
//! ```
//!
//! With `--tokens 1` it measures the forge node only, each request carrying a ~1 KB bearer
//! token: HS256 (`FORGE_JWT_SECRET`) against RS256 from an identity provider
//! (`FORGE_JWKS_URL`, a key set this process serves), both through the verified-token cache.
//!
//! Both servers run in this process on one multi-threaded tokio runtime (one worker per
//! core) against the same fresh test database, each with a pool of the same size. The
//! load generator is a closed loop on a current-thread runtime of its own (so it takes at
//! most one core, the same for both): `--connections` keep-alive HTTP/1.1 connections,
//! each sending its next request as soon as the previous answer is read. Each round warms
//! up, then measures forge and bare one after the other, alternating which goes first.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use forge::registry::{decode_args, QueryDef, RateLimit};
use forge::testing::{config, TestDatabase};
use forge::{App, QueryContext, Registry};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

const SQL: &str = "SELECT id, name, price, created_at FROM bench_items WHERE id = $1";
const NAME: &str = "get_item";

struct Options {
    rows: i64,
    pool: u32,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    rounds: usize,
    /// `forge` or `bare`: load only that server (for profiling one side).
    only: Option<String>,
    /// Compare HS256 and RS256 bearer tokens on the forge node instead of forge and bare.
    tokens: bool,
    /// `--rate-limit 1000000/m`: the handler's `rate_limit` and `FORGE_RATE_LIMIT` (the
    /// load is anonymous, from one address), to measure limits that are not exceeded.
    rate_limit: Option<RateLimit>,
}

fn options() -> Options {
    let mut options = Options {
        rows: 10_000,
        pool: 10,
        connections: 32,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(5),
        rounds: 3,
        only: None,
        tokens: false,
        rate_limit: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        // `cargo bench` passes `--bench`; anything else unknown is a mistake.
        if flag == "--bench" {
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || -> u64 {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{flag}: `{value}` is not a whole number"))
        };
        match flag.as_str() {
            "--rows" => options.rows = number() as i64,
            "--pool" => options.pool = number() as u32,
            "--connections" => options.connections = number() as usize,
            "--warmup" => options.warmup = Duration::from_secs(number()),
            "--duration" => options.duration = Duration::from_secs(number()),
            "--rounds" => options.rounds = number() as usize,
            "--only" if value == "forge" || value == "bare" => options.only = Some(value),
            "--tokens" => options.tokens = number() != 0,
            "--rate-limit" => {
                options.rate_limit =
                    Some(RateLimit::parse(&value).unwrap_or_else(|e| panic!("{e}")))
            }
            _ => panic!(
                "unknown option {flag}; options: --rows --pool --connections --warmup \
                 --duration (seconds) --rounds --only forge|bare --rate-limit N/unit --tokens 0|1"
            ),
        }
    }
    options
}

#[derive(Deserialize)]
struct Args {
    id: i64,
}

#[derive(Serialize)]
struct Item {
    id: i64,
    name: String,
    price: i64,
    created_at: chrono::DateTime<chrono::Utc>,
}

type Row = (i64, String, i64, chrono::DateTime<chrono::Utc>);

fn item((id, name, price, created_at): Row) -> Item {
    Item {
        id,
        name,
        price,
        created_at,
    }
}

/// The handler as the generated glue registers it.
fn register(registry: &mut Registry, rate_limit: Option<RateLimit>) {
    registry.query(
        QueryDef {
            name: NAME,
            module: "items",
            public: true,
            unscoped: true,
            cache_ms: None,
            timeout_ms: None,
            tables_read: &["bench_items"],
            rate_limit,
        },
        |ctx: QueryContext, args| async move {
            let Args { id } = decode_args(args)?;
            let row: Row = sqlx::query_as(SQL).bind(id).fetch_one(ctx.db()).await?;
            Ok(item(row))
        },
    );
}

/// What a hand-written axum + sqlx service would do: the same query, the same envelope
/// (`success`, `data`, `request_id`, and the `x-request-id` header).
#[derive(Deserialize)]
struct Envelope {
    args: Args,
}

async fn bare_handler(
    State(pool): State<PgPool>,
    Json(Envelope { args }): Json<Envelope>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let request_id = Uuid::new_v4().to_string();
    let row: Result<Row, sqlx::Error> = sqlx::query_as(SQL).bind(args.id).fetch_one(&pool).await;
    let (status, body) = match row {
        Ok(row) => (
            StatusCode::OK,
            json!({"success": true, "data": item(row), "request_id": request_id}),
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"success": false, "error": {"code": "INTERNAL_ERROR", "message": error.to_string()}, "request_id": request_id}),
        ),
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn start_bare(url: &str, pool_size: u32) -> (SocketAddr, PgPool) {
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .connect(url)
        .await
        .expect("the bare server's pool");
    let router = Router::new()
        .route(&format!("/_api/rpc/{NAME}"), post(bare_handler))
        .with_state(pool.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, pool)
}

/// One measured run: requests answered within the window, their latencies, and the CPU
/// time the server runtime's threads spent meanwhile.
struct Run {
    requests: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    server_cpu: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU per request: less sensitive to other load on the machine than req/s.
    fn cpu_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests as f64
    }

    fn percentile(&self, p: f64) -> f64 {
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

/// Closed loop: `connections` keep-alive connections, each with one request in flight;
/// requests that finish within `[warm-up end, warm-up end + duration)` are counted.
async fn load(
    addr: SocketAddr,
    rows: i64,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    authorization: Option<std::sync::Arc<str>>,
) -> Run {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let uri = format!("http://{addr}/_api/rpc/{NAME}");
    let uri: axum::http::Uri = uri.parse().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let uri = uri.clone();
        let authorization = authorization.clone();
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut n = connection as i64;
            loop {
                // Spread the ids over the table, differently per connection.
                n = n
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let id = (n >> 33).rem_euclid(rows) + 1;
                let body = format!("{{\"args\":{{\"id\":{id}}}}}");
                let mut request = Request::post(uri.clone())
                    .header("host", "bench")
                    .header("content-type", "application/json");
                if let Some(authorization) = &authorization {
                    request = request.header("authorization", &**authorization);
                }
                let request = request.body(Full::new(Bytes::from(body))).unwrap();
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                sender.ready().await.unwrap();
                let response = sender.send_request(request).await.unwrap();
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
                let done = Instant::now();
                if sent >= start && done < end {
                    latencies.push((done - sent).as_micros().min(u32::MAX as u128) as u32);
                }
            }
            latencies
        });
    }
    let mut latencies_us = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies_us.extend(joined.unwrap());
    }
    latencies_us.sort_unstable();
    Run {
        requests: latencies_us.len() as u64,
        elapsed: duration,
        latencies_us,
        server_cpu: Duration::ZERO,
    }
}

const SERVER_THREAD: &str = "bench-server";

/// CPU time used so far by the server runtime's threads (Linux: each thread's
/// `schedstat`); zero elsewhere.
fn server_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        let path = task.path();
        let is_server = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|comm| comm.trim_end() == SERVER_THREAD);
        if !is_server {
            continue;
        }
        nanos += std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(nanos)
}

/// Runs the load generator on a thread of its own with a current-thread runtime.
fn drive(addr: SocketAddr, options: &Options) -> Run {
    drive_with(addr, options, None)
}

fn drive_with(
    addr: SocketAddr,
    options: &Options,
    authorization: Option<std::sync::Arc<str>>,
) -> Run {
    let (rows, connections, warmup, duration) = (
        options.rows,
        options.connections,
        options.warmup,
        options.duration,
    );
    std::thread::spawn(move || {
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The server's CPU over the measured window: sampled when warm-up ends and when
        // the window closes.
        let cpu = std::thread::spawn(move || {
            std::thread::sleep(warmup);
            let before = server_cpu();
            std::thread::sleep(duration);
            server_cpu().saturating_sub(before)
        });
        let mut run = client.block_on(load(
            addr,
            rows,
            connections,
            warmup,
            duration,
            authorization,
        ));
        run.server_cpu = cpu.join().unwrap();
        run
    })
    .join()
    .unwrap()
}

/// Both servers answer the same data in the same envelope.
async fn same_answers(forge: SocketAddr, bare: SocketAddr) {
    let http = reqwest::Client::new();
    for id in [1, 4242] {
        let mut bodies = Vec::new();
        for addr in [forge, bare] {
            let response = http
                .post(format!("http://{addr}/_api/rpc/{NAME}"))
                .json(&json!({"args": {"id": id}}))
                .send()
                .await
                .unwrap();
            assert!(response.headers().contains_key("x-request-id"));
            let mut body: Value = response.json().await.unwrap();
            assert!(body["request_id"].is_string(), "{body}");
            body["request_id"] = Value::Null;
            bodies.push(body);
        }
        assert_eq!(bodies[0], bodies[1]);
        assert_eq!(bodies[0]["data"]["id"], id);
    }
}

fn main() {
    let options = options();
    let server = tokio::runtime::Builder::new_multi_thread()
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let (db, forge_addr, bare_addr, node, bare_pool) = server.block_on(async {
        let db = TestDatabase::new().await;
        sqlx::query(
            "CREATE TABLE bench_items (id bigint PRIMARY KEY, name text NOT NULL, \
             price bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
        )
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO bench_items (id, name, price) \
             SELECT n, 'item ' || n, n * 100 FROM generate_series(1, $1) n",
        )
        .bind(options.rows)
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE bench_items")
            .execute(db.pool())
            .await
            .unwrap();

        let mut config = config(db.url());
        if options.tokens {
            config.jwks_url = Some(tokens::serve_jwks().await);
        }
        config.max_connections = options.pool;
        // Production timings, not the test ones: background work stays background.
        config.heartbeat = Duration::from_secs(5);
        config.poll_interval = Duration::from_secs(1);
        config.leader_lease = Duration::from_secs(15);
        config.job_lease = Duration::from_secs(30);
        config.rate_limit = options.rate_limit;
        let rate_limit = options.rate_limit;
        let node = App::new(config)
            .register(move |registry| register(registry, rate_limit))
            .start()
            .await
            .unwrap();
        let (bare, bare_pool) = start_bare(db.url(), options.pool).await;
        same_answers(node.addr(), bare).await;
        (db, node.addr(), bare, node, bare_pool)
    });

    eprintln!(
        "one-row query over {} rows; pool {}; {} connections; {}s warm-up + {}s per run; {} cores; rate limit {:?}",
        options.rows,
        options.pool,
        options.connections,
        options.warmup.as_secs(),
        options.duration.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.rate_limit,
    );
    let report = |label: &str, run: &Run| {
        eprintln!(
            "  {label:<5} {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   server CPU {:>5.1} us/req",
            run.rate(),
            run.percentile(0.50),
            run.percentile(0.99),
            run.cpu_us(),
        );
    };
    if options.tokens {
        tokens::compare(forge_addr, &options, report);
        server.block_on(async move {
            node.shutdown().await.unwrap();
            bare_pool.close().await;
        });
        return;
    }
    let mut ratios = Vec::new();
    let (mut forge_runs, mut bare_runs) = (Vec::new(), Vec::new());
    if let Some(only) = &options.only {
        let addr = if only == "forge" {
            forge_addr
        } else {
            bare_addr
        };
        for round in 0..options.rounds {
            eprintln!("round {}", round + 1);
            report(only, &drive(addr, &options));
        }
        server.block_on(async move {
            node.shutdown().await.unwrap();
            bare_pool.close().await;
        });
        return;
    }
    for round in 0..options.rounds {
        eprintln!("round {}", round + 1);
        let (forge, bare) = if round % 2 == 0 {
            let forge = drive(forge_addr, &options);
            (forge, drive(bare_addr, &options))
        } else {
            let bare = drive(bare_addr, &options);
            (drive(forge_addr, &options), bare)
        };
        report("forge", &forge);
        report("bare", &bare);
        ratios.push(forge.rate() / bare.rate());
        eprintln!("  ratio {:.2}x", forge.rate() / bare.rate());
        forge_runs.push(forge);
        bare_runs.push(bare);
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let forge_rate = median(forge_runs.iter().map(Run::rate).collect());
    let bare_rate = median(bare_runs.iter().map(Run::rate).collect());
    let p = |runs: &[Run], q: f64| median(runs.iter().map(|r| r.percentile(q)).collect());
    let cpu = |runs: &[Run]| median(runs.iter().map(Run::cpu_us).collect());
    println!(
        "forge {forge_rate:.0} req/s (p50 {:.2} ms, p99 {:.2} ms, {:.1} us CPU/req); \
         bare axum + sqlx {bare_rate:.0} req/s (p50 {:.2} ms, p99 {:.2} ms, {:.1} us CPU/req); \
         forge/bare {:.2}x (median of {} rounds; per round: {})",
        p(&forge_runs, 0.5),
        p(&forge_runs, 0.99),
        cpu(&forge_runs),
        p(&bare_runs, 0.5),
        p(&bare_runs, 0.99),
        cpu(&bare_runs),
        median(ratios.clone()),
        options.rounds,
        ratios
            .iter()
            .map(|r| format!("{r:.2}x"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    server.block_on(async move {
        node.shutdown().await.unwrap();
        bare_pool.close().await;
    });
    drop(server);
    drop(db);
}

/// `--tokens 1`: HS256 against RS256 bearer tokens of about 1 KB on the forge node.
mod tokens {
    use std::net::SocketAddr;
    use std::sync::{Arc, OnceLock};

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    use serde_json::json;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::{drive_with, Options, Run};

    const KID: &str = "bench-rsa";

    fn rsa() -> &'static rsa::RsaPrivateKey {
        static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
    }

    /// Serves the RSA key's JWKS on 127.0.0.1 and returns its URL.
    pub async fn serve_jwks() -> String {
        let public = rsa().to_public_key();
        let body = json!({"keys": [{"kty": "RSA", "kid": KID, "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be())}]})
        .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        url
    }

    /// A bearer header of about 1 KB: the same claims, padded, under either algorithm.
    fn bearer(algorithm: Algorithm) -> Arc<str> {
        let exp = chrono::Utc::now().timestamp() + 3600;
        let pad = match algorithm {
            Algorithm::RS256 => 360,
            _ => 640,
        };
        let claims = json!({"sub": uuid::Uuid::new_v4(), "exp": exp, "roles": ["member"],
                            "profile": "x".repeat(pad)});
        let token = match algorithm {
            Algorithm::RS256 => {
                let der = rsa().to_pkcs1_der().unwrap();
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some(KID.into());
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes()))
            }
            _ => jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(forge::testing::JWT_SECRET.as_bytes()),
            ),
        }
        .unwrap();
        Arc::from(format!("Bearer {token}"))
    }

    pub fn compare(addr: SocketAddr, options: &Options, report: impl Fn(&str, &Run)) {
        let (hs, rs) = (bearer(Algorithm::HS256), bearer(Algorithm::RS256));
        eprintln!(
            "bearer tokens: HS256 {} bytes, RS256 {} bytes",
            hs.len() - 7,
            rs.len() - 7
        );
        let (mut ratios, mut hs_rates, mut rs_rates) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..options.rounds {
            eprintln!("round {}", round + 1);
            let run = |token: &Arc<str>| drive_with(addr, options, Some(token.clone()));
            let (h, r) = if round % 2 == 0 {
                let h = run(&hs);
                (h, run(&rs))
            } else {
                let r = run(&rs);
                (run(&hs), r)
            };
            report("hs256", &h);
            report("rs256", &r);
            ratios.push(r.rate() / h.rate());
            hs_rates.push(h.rate());
            rs_rates.push(r.rate());
        }
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        println!(
            "forge with a ~1 KB bearer token: HS256 {:.0} req/s, RS256 {:.0} req/s; \
             RS256/HS256 {:.2}x (median of {} rounds; per round: {})",
            median(hs_rates),
            median(rs_rates),
            median(ratios.clone()),
            options.rounds,
            ratios
                .iter()
                .map(|r| format!("{r:.2}x"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
