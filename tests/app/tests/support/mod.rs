//! The test app as a child process.
#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use forge::testing::JWT_SECRET;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The secret the app's `note_hook` webhook verifies signatures with.
pub const NOTES_WEBHOOK_SECRET: &str = "notes-webhook-test-secret";

pub fn app_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

/// The app's process; killed when dropped, so a failing test leaves no server behind.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Starts the app on `database_url` with `env` on top of the test settings and waits
    /// until it answers.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_forge-test-app"))
            .current_dir(app_dir())
            .env("DATABASE_URL", database_url)
            .env("FORGE_ADDR", format!("127.0.0.1:{port}"))
            .env("FORGE_JWT_SECRET", JWT_SECRET)
            .env("NOTES_WEBHOOK_SECRET", NOTES_WEBHOOK_SECRET)
            .env("FORGE_SHUTDOWN_GRACE", "5s")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the test app");
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            let health = client
                .get(format!("{}/_api/health", server.url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not answer /_api/health within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: the process dies without cleaning anything up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the app") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not stop within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
