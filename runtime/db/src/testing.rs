//! Test support (feature `test-support`): a fresh database per test, on one server.
//!
//! ```no_run
//! #[tokio::test]
//! async fn inserts() {
//!     let db = forge_db::testing::TestDatabase::new().await;
//!     sqlx::query("CREATE TABLE t (id int)").execute(db.pool()).await.unwrap();
//! }   // the database is dropped here
//! ```
//!
//! With `DATABASE_URL` set, the databases are created on that server (as `#[sqlx::test]`
//! does; the role needs `CREATEDB`). Otherwise on a disposable cluster (fsync off) in
//! `<target dir>/forge-test-pg`, never in a user's project, found from the test binary's
//! path (`<target>/<profile>/deps/…`, next to cargo's `CACHEDIR.TAG`).
//!
//! Every test process shares that cluster. A process registers its pid under `users/`
//! when it first needs the server, starting it if nobody runs it, and an `atexit` hook
//! unregisters it at exit and stops the server when no registered process lives. So
//! `cargo test` (a process per test binary, one after the other) starts and stops the
//! server once per test binary, and nextest (a process per test, several at once) shares
//! it between overlapping tests; no server outlives the run. A process killed before its
//! hook ran (SIGKILL, abort) leaves the server running: the next test run reuses it,
//! ignores the dead pid, and stops it at its end.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::os::pid_alive;
use crate::sql::{create_database, drop_database};
use crate::{blocking, lock, BinSearch, Cluster, DbError, Durability, DATABASE_URL_ENV};

const USERS_DIR: &str = "users";
const USERS_LOCK: &str = "users.lock";
/// Enough for a test that runs a few queries at once; many tests run side by side.
const POOL_SIZE: u32 = 4;

/// The server every test database of this process lives on: a URL of any of its
/// databases, or why there is none (kept as text so every test reports it).
static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
/// The shared cluster this process registered with, for the exit hook.
static REGISTERED: OnceLock<Shared> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database that exists from [`TestDatabase::new`] until the value is dropped.
pub struct TestDatabase {
    name: String,
    url: String,
    server: String,
    pool: PgPool,
}

impl TestDatabase {
    /// Creates an empty database with a unique name. Call it inside a tokio runtime.
    ///
    /// # Panics
    /// When no server can be had: the test cannot run without its database, and the message
    /// says why (no PostgreSQL installed, …).
    pub async fn new() -> TestDatabase {
        let server = blocking(|| SERVER.get_or_init(server_url).clone())
            .await
            .unwrap_or_else(|error| panic!("no database for tests: {error}"));
        let name = unique_name();
        if let Err(error) = create_database(&server, &name).await {
            panic!("no database for tests: {error}");
        }
        let url = with_database(&server, &name);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect(&url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to test database {name}: {error}"));
        TestDatabase {
            name,
            url,
            server,
            pool,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// For handing the database to a subprocess (`DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run on the test's single-threaded runtime, which cannot block on a
        // future: a thread with its own runtime drops the database. Best effort: a
        // database left behind must not fail a test.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?
                .block_on(drop_database(&server, &name))
                .map_err(|error| error.to_string())
        })
        .join();
        if let Ok(Err(error)) = dropped {
            tracing::warn!(database = self.name, %error, "test database left behind");
        }
    }
}

fn server_url() -> Result<String, String> {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => Shared::join()
            .map(|server| server.url("postgres"))
            .map_err(|error| error.to_string()),
    }
}

/// Unique across processes and runs (a killed run may leave its databases behind).
fn unique_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!(
        "forge_test_{}_{}_{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn with_database(server: &str, name: &str) -> String {
    match url::Url::parse(server) {
        Ok(mut url) => {
            url.set_path(&format!("/{name}"));
            url.into()
        }
        // sqlx rejects it too, when the pool connects, with a better message.
        Err(_) => server.to_owned(),
    }
}

/// The cluster shared by every test process of the workspace.
struct Shared {
    home: PathBuf,
    cluster: Cluster,
}

impl Shared {
    fn join() -> Result<crate::Server, DbError> {
        let home = test_home();
        let cluster = Cluster::open(&home, &BinSearch::from_env(), Durability::Disposable)?;
        let _users = lock::acquire(&home.join(USERS_LOCK))?;
        let server = cluster.start()?;
        let users = home.join(USERS_DIR);
        fs::create_dir_all(&users).map_err(DbError::io("cannot create", &users))?;
        let me = users.join(std::process::id().to_string());
        fs::write(&me, "").map_err(DbError::io("cannot write", &me))?;
        if REGISTERED.set(Shared { home, cluster }).is_ok() {
            // SAFETY: `leave_at_exit` is a plain function that lives as long as the process.
            unsafe { nix::libc::atexit(leave_at_exit) };
        }
        Ok(server)
    }

    /// Unregisters this process; stops the server when no registered process lives.
    fn leave(&self) -> Result<(), DbError> {
        let _users = lock::acquire(&self.home.join(USERS_LOCK))?;
        let users = self.home.join(USERS_DIR);
        let _ = fs::remove_file(users.join(std::process::id().to_string()));
        if live_users(&users) == 0 {
            self.cluster.stop()?;
        }
        Ok(())
    }
}

extern "C" fn leave_at_exit() {
    // Unwinding out of an `extern "C"` function aborts; a failed stop only leaves the
    // server for the next run to reuse.
    let _ = std::panic::catch_unwind(|| REGISTERED.get().map(Shared::leave));
}

/// Registered pids that still run; forgets the others.
fn live_users(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let alive = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse().ok())
                .is_some_and(pid_alive);
            if !alive {
                let _ = fs::remove_file(entry.path());
            }
            alive
        })
        .count()
}

/// `<target>/forge-test-pg`, where `<target>` is the nearest ancestor of the test binary
/// that cargo marked with `CACHEDIR.TAG`; the temp dir when there is none.
fn test_home() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(|target| target.join("forge-test-pg"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("forge-test-pg"))
}
