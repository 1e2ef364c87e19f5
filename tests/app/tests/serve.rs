//! The test app's real binary, with its generated glue, served against a real database and
//! called through its generated TypeScript client in Node.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod support;

use forge::prelude::Uuid;
use forge::testing::{token, TestDatabase};
use forge_tests::typescript;
use support::{app_dir, Server, NOTES_WEBHOOK_SECRET};

/// Compiles the generated client with `client.test.ts` and `live.test.ts` once per test
/// process (the tests run in parallel) and returns the directory to run them in.
fn compile_client() -> PathBuf {
    static COMPILED: OnceLock<PathBuf> = OnceLock::new();
    COMPILED.get_or_init(compile).clone()
}

fn compile() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_client");
    let _ = std::fs::remove_dir_all(&dir);
    let forge_dir = dir.join("forge");
    std::fs::create_dir_all(&forge_dir).expect("create the client directory");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(app_dir().join("frontend/forge")).expect("generated client") {
        let path = entry.expect("directory entry").path();
        let target = forge_dir.join(path.file_name().expect("file name"));
        std::fs::copy(&path, &target).expect("copy a generated file");
        files.push(target);
    }
    for test in ["client.test.ts", "live.test.ts"] {
        let target = dir.join(test);
        std::fs::copy(app_dir().join("tests").join(test), &target).expect("copy a test script");
        files.push(target);
    }
    let out = dir.join("out");
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    typescript::compile(&dir, &paths, &out);
    std::fs::write(out.join("package.json"), r#"{ "type": "module" }"#).expect("package.json");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generated_client_talks_to_the_served_app() {
    let db = TestDatabase::new().await;
    let out = tokio::task::spawn_blocking(compile_client);
    let server = Server::start(db.url(), &[]).await;
    let out = out.await.expect("compile the client");

    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let node = Command::new("node")
        .arg("client.test.js")
        .current_dir(&out)
        .env("FORGE_URL", &server.url)
        .env("ALICE_ID", alice.to_string())
        .env("ALICE_TOKEN", token(alice, None, &[]))
        .env("BOB_TOKEN", token(bob, None, &[]))
        .output()
        .expect("run node");
    assert!(
        node.status.success(),
        "node client.test.js failed:\n{}{}",
        String::from_utf8_lossy(&node.stdout),
        String::from_utf8_lossy(&node.stderr)
    );

    // The jobs the mutations dispatched ran.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM notes WHERE NOT indexed")
            .fetch_one(db.pool())
            .await
            .expect("count notes");
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} note(s) still not indexed after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The once-a-second cron ran on this single node, the leader.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tick_runs")
        .fetch_one(db.pool())
        .await
        .expect("count ticks")
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the cron did not tick within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let status = server.terminate();
    assert!(
        status.success(),
        "the app exited with {status} after SIGTERM"
    );
    let nodes: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_nodes")
        .fetch_one(db.pool())
        .await
        .expect("count nodes");
    assert_eq!(nodes, 0, "a node removes itself when it stops cleanly");
}

/// Kills every node's LISTEN connection, as a network failure or a database restart would;
/// returns how many it killed.
async fn kill_listeners(db: &TestDatabase) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE 'forge listener %') k",
    )
    .fetch_one(db.pool())
    .await
    .expect("terminate the listeners")
}

#[tokio::test(flavor = "multi_thread")]
async fn live_queries_reach_subscribers_on_every_node() {
    let db = TestDatabase::new().await;
    let out = tokio::task::spawn_blocking(compile_client);
    let a = Server::start(db.url(), &[]).await;
    let b = Server::start(db.url(), &[]).await;
    let out = out.await.expect("compile the client");

    let mut node = Command::new("node")
        .arg("live.test.js")
        .current_dir(&out)
        .env("FORGE_URL_A", &a.url)
        .env("FORGE_URL_B", &b.url)
        .env("ALICE_TOKEN", token(Uuid::new_v4(), None, &[]))
        .env("BOB_TOKEN", token(Uuid::new_v4(), None, &[]))
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node");
    let stdout = node.stdout.take().expect("node's stdout");
    let (lines, phases) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("node: {line}");
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut killing, mut killed) = (false, 0);
    let status = loop {
        if let Some(status) = node.try_wait().expect("wait for node") {
            break status;
        }
        while let Ok(line) = phases.try_recv() {
            killing = match line.as_str() {
                "phase:kill" => true,
                "phase:kill-done" => false,
                _ => killing,
            };
        }
        if killing {
            killed += kill_listeners(&db).await;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            panic!("live.test.js did not finish within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(status.success(), "node live.test.js failed: {status}");
    assert!(killed > 0, "no LISTEN connection was killed");
}

#[test]
fn the_checked_in_glue_and_client_are_current() {
    let forge = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("forge")))
        .filter(|forge| forge.exists())
        .expect("the forge binary next to the test binaries: run `cargo test --workspace`");
    let output = Command::new(forge)
        .args(["generate", "--check", "--project"])
        .arg(app_dir())
        .output()
        .expect("run forge generate --check");
    assert!(
        output.status.success(),
        "forge generate --check found stale files:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Posts `body` to the app's notes webhook, signed with `secret`, and returns the status and
/// whether the app says it acknowledged a replay.
async fn deliver(server: &Server, body: &str, key: &str, secret: &str) -> (u16, bool) {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let response = reqwest::Client::new()
        .post(format!("{}/hooks/notes", server.url))
        .header("X-Signature", signature)
        .header("Idempotency-Key", key)
        .body(body.to_owned())
        .send()
        .await
        .expect("post to the webhook");
    let replayed = response.headers().contains_key("idempotent-replayed");
    (response.status().as_u16(), replayed)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_app_takes_signed_webhooks_once() {
    let db = TestDatabase::new().await;
    let server = Server::start(db.url(), &[]).await;
    let owner = Uuid::new_v4();
    let body = format!(r#"{{"owner_id": "{owner}", "text": "from a webhook"}}"#);
    let notes = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM notes WHERE owner_id = $1")
            .bind(owner)
            .fetch_one(db.pool())
            .await
            .expect("count notes")
    };

    assert_eq!(deliver(&server, &body, "d-1", "forged").await, (401, false));
    assert_eq!(notes().await, 0);
    assert_eq!(
        deliver(&server, &body, "d-1", NOTES_WEBHOOK_SECRET).await,
        (200, false)
    );
    assert_eq!(
        deliver(&server, &body, "d-1", NOTES_WEBHOOK_SECRET).await,
        (200, true)
    );
    assert_eq!(notes().await, 1);

    // The job the webhook dispatched in its transaction ran.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM notes WHERE owner_id = $1 AND indexed")
        .bind(owner)
        .fetch_one(db.pool())
        .await
        .expect("count indexed notes")
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the note was not indexed within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());
}

#[test]
fn the_app_does_not_start_without_its_webhook_secret() {
    let output = Command::new(env!("CARGO_BIN_EXE_forge-test-app"))
        .current_dir(app_dir())
        .env("DATABASE_URL", "postgres://127.0.0.1:1/unused")
        .env("FORGE_ADDR", "127.0.0.1:0")
        .env_remove("NOTES_WEBHOOK_SECRET")
        .output()
        .expect("run the test app");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("note_hook") && stderr.contains("NOTES_WEBHOOK_SECRET"),
        "{stderr}"
    );
}

/// The app's checked-in OpenAPI document is valid against the official OpenAPI 3.1 schema,
/// and a client generated from it by a third-party generator (`openapi-typescript`, with
/// `openapi-fetch`) type-checks under `tsc --strict` and calls the served app.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_generated_from_the_openapi_document_calls_the_served_app() {
    let db = TestDatabase::new().await;
    let document = app_dir().join("frontend/openapi/openapi.json");
    let out = tokio::task::spawn_blocking(move || {
        typescript::validate_openapi(&document);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("app_openapi_client");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the client directory");
        // The script imports `openapi-fetch` from the pinned packages.
        std::os::unix::fs::symlink(
            typescript::package_dir().join("node_modules"),
            dir.join("node_modules"),
        )
        .expect("link node_modules");
        let api = dir.join("api.d.ts");
        typescript::openapi_typescript(&document, &api);
        let script = dir.join("openapi.test.ts");
        std::fs::copy(app_dir().join("tests/openapi.test.ts"), &script).expect("copy the script");
        let out = dir.join("out");
        typescript::compile(&dir, &[&api, &script], &out);
        std::fs::write(out.join("package.json"), r#"{ "type": "module" }"#).expect("package.json");
        std::os::unix::fs::symlink(
            typescript::package_dir().join("node_modules"),
            out.join("node_modules"),
        )
        .expect("link node_modules");
        out
    });
    let server = Server::start(db.url(), &[]).await;
    let out = out.await.expect("generate and compile the client");
    let alice = Uuid::new_v4();
    let node = Command::new("node")
        .arg("openapi.test.js")
        .current_dir(&out)
        .env("FORGE_URL", &server.url)
        .env("ALICE_TOKEN", token(alice, None, &[]))
        .output()
        .expect("run node");
    assert!(
        node.status.success(),
        "node openapi.test.js failed:\n{}{}",
        String::from_utf8_lossy(&node.stdout),
        String::from_utf8_lossy(&node.stderr)
    );
}
