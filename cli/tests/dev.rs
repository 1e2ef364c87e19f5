//! `forge dev` as a subprocess on a project from `forge new`: it serves the app, restarts it
//! once per save with the change, reports a build failure and recovers, and Ctrl-C stops
//! the app and the database server it started.
//!
//! The app builds in the workspace's target directory with the profile of `tests/new.rs`'s
//! projects and with their feature set: `forge dev -- --features forge/test-support --config
//! <profile>` (cargo run arguments, passed through; `forge_tests::nested`) turns on the
//! feature the projects' tests build the runtime with. So the runtime and its dependencies
//! compile once for this test and `forge new`'s, and each rebuild here compiles the app's
//! crate alone.

mod running;
mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use forge_db::{BinSearch, Cluster, Resolver};
use running::{alive, Running};

/// The first build of the app may compile the runtime and its dependencies.
const FIRST_BUILD: Duration = Duration::from_secs(20 * 60);
/// A rebuild compiles the app's own crate (more when other builds hold cargo's lock).
const REBUILD: Duration = Duration::from_secs(10 * 60);

fn shared_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `POST /_api/rpc/{name}` with no arguments: the response, or `None` when nothing answers.
fn rpc(port: u16, name: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = r#"{"args":{}}"#;
    write!(
        stream,
        "POST /_api/rpc/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn greeting(value: &str) -> String {
    format!(
        "use forge::prelude::*;\n\n/// What the app answers now.\n#[forge::query(public)]\npub async fn greeting(ctx: &QueryContext) -> Result<String> {{\n    let _ = ctx;\n    Ok(\"{value}\".to_owned())\n}}\n"
    )
}

/// The pid of the latest `cargo run` forge dev started (the app's, once built).
fn app_pid(dev: &Running) -> u32 {
    dev.output()
        .lines()
        .rev()
        .filter_map(|line| line.strip_prefix("dev | cargo run (pid "))
        .find_map(|rest| rest.trim_end_matches(')').parse().ok())
        .expect("forge dev said which process it started")
}

/// Stops and deletes the embedded cluster forge dev created, even when the test fails.
struct ClusterGuard(Option<Cluster>);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        if let Some(cluster) = self.0.take() {
            let _ = cluster.destroy();
        }
    }
}

#[test]
fn dev_serves_restarts_on_save_and_stops_what_it_started() {
    let parent = tempfile::tempdir().expect("temp dir");
    let created = support::forge(
        parent.path(),
        &["new", "devapp", "--frontend", "none", "--yes"],
    );
    assert!(
        created.status.success(),
        "{}{}",
        support::stdout(&created),
        support::stderr(&created)
    );
    let app = parent.path().join("devapp");
    let handler = app.join("src/functions/greeting.rs");
    std::fs::write(&handler, greeting("first")).expect("handler");
    let modules = app.join("src/functions/mod.rs");
    let mut mod_rs = running::read(&modules);
    mod_rs.push_str("pub mod greeting;\n");
    std::fs::write(&modules, mod_rs).expect("mod.rs");

    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_forge"));
    command
        .args(["dev", "--", "--features", "forge/test-support"])
        .args(forge_tests::nested::profile_args())
        .current_dir(&app)
        .env("FORGE_ADDR", format!("127.0.0.1:{port}"))
        .env("CARGO_TARGET_DIR", shared_target())
        .env("CARGO", env!("CARGO"));
    forge_tests::nested::clean_env(&mut command);
    // With DATABASE_URL the test uses a database of its own on that server and forge dev
    // starts none; without, forge dev starts the project's embedded cluster.
    let _database;
    let mut cluster = ClusterGuard(None);
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let database = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(forge_db::testing::TestDatabase::new());
            command.env("DATABASE_URL", database.url());
            _database = Some(database);
        }
        _ => {
            command.env_remove("DATABASE_URL");
            _database = None;
            let resolver = Resolver {
                database_url: None,
                search: BinSearch::from_env(),
            };
            cluster.0 = Some(resolver.cluster(&app).expect("the embedded cluster"));
        }
    }
    let answers = |value: &str| {
        let expected = format!("\"data\":\"{value}\"");
        move |_: &Running| rpc(port, "greeting").is_some_and(|r| r.contains(&expected))
    };

    let mut dev = Running::start(command);
    dev.wait_until("the app to serve", FIRST_BUILD, answers("first"));
    let first_app = app_pid(&dev);
    if let Some(cluster) = &cluster.0 {
        let status = cluster.status().expect("cluster status");
        assert!(status.server.is_some(), "forge dev started the database");
        assert!(dev.output().contains("stopped when forge dev stops"));
    }

    // One save: one regeneration, one restart, the new code.
    let restarts = dev.count("dev | cargo run (pid ");
    std::fs::write(&handler, greeting("second")).expect("save");
    dev.wait_until(
        "the app to restart with the change",
        REBUILD,
        answers("second"),
    );
    assert_eq!(
        dev.count("dev | cargo run (pid "),
        restarts + 1,
        "{}",
        dev.output()
    );
    assert!(!alive(first_app), "the old app was stopped");

    // A half-typed file: reported by forge and by the build; the app stays stopped.
    std::fs::write(
        &handler,
        format!("{}\nfn half_typed( {{\n", greeting("second")),
    )
    .expect("save");
    dev.wait_for_output("error[FG001]", REBUILD);
    dev.wait_for_output("the build failed", REBUILD);
    assert!(rpc(port, "greeting").is_none(), "the old app was stopped");
    assert!(dev.is_running());

    // The next good save recovers.
    std::fs::write(&handler, greeting("third")).expect("save");
    dev.wait_until("the app to recover", REBUILD, answers("third"));
    let last_app = app_pid(&dev);

    let status = dev.interrupt(Duration::from_secs(60));
    assert!(status.success(), "Ctrl-C: {status}\n{}", dev.output());
    assert!(!alive(last_app), "the app stopped with forge dev");
    assert!(rpc(port, "greeting").is_none(), "nothing serves any more");
    if let Some(cluster) = &cluster.0 {
        let status = cluster.status().expect("cluster status");
        assert!(status.server.is_none(), "{}", dev.output());
        assert!(dev.output().contains("db  | stopped PostgreSQL"));
    }
}

#[test]
fn a_server_forge_dev_did_not_start_is_left_running() {
    // Only meaningful with the embedded cluster, which this test starts itself.
    if std::env::var("DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        return;
    }
    let dir = support::copy_fixture("kitchen_sink");
    let project = dir.path();
    let resolver = Resolver {
        database_url: None,
        search: BinSearch::from_env(),
    };
    let cluster = ClusterGuard(Some(resolver.cluster(project).expect("cluster")));
    let server = cluster.0.as_ref().expect("cluster").start().expect("start");

    // The fixture does not build on its own (it is not in a workspace with the runtime):
    // this is about the database, so the app's failure is only reported.
    let mut command = Command::new(env!("CARGO_BIN_EXE_forge"));
    command
        .arg("dev")
        .current_dir(project)
        .env_remove("DATABASE_URL")
        .env("CARGO_TARGET_DIR", shared_target())
        .env("CARGO", env!("CARGO"));
    forge_tests::nested::clean_env(&mut command);
    let mut dev = Running::start(command);
    dev.wait_for_output(
        "already running, left running on exit",
        Duration::from_secs(60),
    );
    dev.wait_for_output("dev | cargo run", Duration::from_secs(60));
    let status = dev.interrupt(Duration::from_secs(60));
    assert!(status.success(), "Ctrl-C: {status}\n{}", dev.output());
    assert!(
        !dev.output().contains("stopped PostgreSQL"),
        "{}",
        dev.output()
    );
    assert_eq!(
        cluster
            .0
            .as_ref()
            .expect("cluster")
            .status()
            .expect("status")
            .server,
        Some(server)
    );
}
