//! Resolution against real PostgreSQL: each test has its own project and development
//! cluster, deleted when the test ends, pass or fail.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use forge_db::{BinSearch, Database, DbError, Resolver, Server, Source};
use sqlx::{Connection, PgConnection};

struct Project {
    dir: tempfile::TempDir,
    resolver: Resolver,
}

impl Project {
    /// `open`: searchable by everyone, so even as root the data lives in the project;
    /// otherwise a 0700 directory, which the `postgres` user cannot enter.
    fn new(open: bool) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let mode = if open { 0o755 } else { 0o700 };
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).expect("chmod");
        std::fs::write(
            dir.path().join("forge.toml"),
            "[project]\nname = \"shop\"\n",
        )
        .expect("write forge.toml");
        Project {
            dir,
            resolver: Resolver {
                database_url: None,
                search: BinSearch::from_env(),
            },
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    async fn resolve(&self) -> (Database, Server) {
        let database = self.resolver.resolve(self.root()).await.expect("resolves");
        let Source::Embedded { server, .. } = database.source else {
            panic!("not the embedded cluster: {database:?}");
        };
        (database, server)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Ok(cluster) = self.resolver.cluster(self.root()) {
            let _ = cluster.destroy();
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

async fn scalar(url: &str, sql: &str) -> Option<String> {
    let mut conn = PgConnection::connect(url).await.expect("connects");
    sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .expect("query runs")
}

#[tokio::test]
async fn database_url_wins_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = "postgres://app:secret@db.internal:6543/prod?sslmode=require";
    let resolver = Resolver {
        database_url: Some(url.to_owned()),
        search: BinSearch::only(Vec::new()),
    };
    let database = resolver.resolve(dir.path()).await.expect("resolves");
    assert_eq!(database.url, url);
    assert_eq!(database.source, Source::Environment);
    assert!(!dir.path().join(".forge").exists());
}

#[tokio::test]
async fn resolve_initialises_starts_connects_and_then_reuses() {
    let project = Project::new(false);
    let (database, server) = project.resolve().await;
    assert_eq!(
        database.url,
        format!("postgres://postgres@127.0.0.1:{}/shop", server.port)
    );
    let version = scalar(&database.url, "SELECT version()").await;
    assert!(
        version
            .as_deref()
            .is_some_and(|v| v.starts_with("PostgreSQL ")),
        "{version:?}"
    );
    assert_eq!(
        scalar(&database.url, "SELECT current_database()::text")
            .await
            .as_deref(),
        Some("shop")
    );
    assert_eq!(
        scalar(&database.url, "SHOW server_encoding")
            .await
            .as_deref(),
        Some("UTF8")
    );

    let started = |database: &Database| matches!(database.source, Source::Embedded { started, .. } if started);
    assert!(started(&database), "the first resolve starts the server");
    let (again, same) = project.resolve().await;
    assert!(!started(&again), "a later one finds it running");
    assert_eq!(
        (again.url, same),
        (database.url, server),
        "the running server is reused"
    );

    let cluster = project.resolver.cluster(project.root()).expect("cluster");
    let data = cluster.data_dir();
    let state =
        std::fs::read_to_string(project.root().join(".forge/pg/state.json")).expect("state file");
    assert!(state.contains(&*data.to_string_lossy()), "{state}");
    assert!(state.contains(&server.port.to_string()), "{state}");
    if is_root() {
        // The postgres user cannot enter a 0700 directory of root's.
        assert!(!data.starts_with(project.root()), "{}", data.display());
        assert!(data.starts_with(std::env::temp_dir()), "{}", data.display());
        let postgres = std::fs::metadata("/var/lib/postgresql").map(|m| m.uid());
        let owner = std::fs::metadata(data).expect("data dir").uid();
        assert_ne!(owner, 0, "the server's files belong to the postgres user");
        if let Ok(postgres) = postgres {
            assert_eq!(owner, postgres);
        }
    } else {
        assert!(data.starts_with(project.root()), "{}", data.display());
    }
}

#[tokio::test]
async fn stop_then_start_keeps_the_data() {
    let project = Project::new(true);
    let (database, server) = project.resolve().await;
    let cluster = project.resolver.cluster(project.root()).expect("cluster");
    assert!(cluster
        .data_dir()
        .starts_with(project.root().canonicalize().expect("path")));
    let mut conn = PgConnection::connect(&database.url)
        .await
        .expect("connects");
    sqlx::query("CREATE TABLE kept (id int)")
        .execute(&mut conn)
        .await
        .expect("create table");
    conn.close().await.expect("close");

    let status = cluster.status().expect("status");
    assert_eq!(status.server, Some(server));
    assert!(status.initialised);
    assert!(status.version.contains("PostgreSQL"), "{}", status.version);

    assert_eq!(cluster.stop().expect("stops"), Some(server));
    assert_eq!(cluster.status().expect("status").server, None);
    assert!(PgConnection::connect(&database.url).await.is_err());
    assert_eq!(cluster.stop().expect("stopping twice is fine"), None);

    let (restarted, _) = project.resolve().await;
    assert_eq!(
        scalar(&restarted.url, "SELECT to_regclass('kept')::text")
            .await
            .as_deref(),
        Some("kept")
    );
}

#[tokio::test]
async fn reset_gives_an_empty_database() {
    let project = Project::new(true);
    let (database, _) = project.resolve().await;
    let mut conn = PgConnection::connect(&database.url)
        .await
        .expect("connects");
    sqlx::query("CREATE TABLE gone (id int)")
        .execute(&mut conn)
        .await
        .expect("create table");
    conn.close().await.expect("close");

    let cluster = project.resolver.cluster(project.root()).expect("cluster");
    cluster.destroy().expect("destroys");
    assert!(!cluster.data_dir().exists());
    let (fresh, _) = project.resolve().await;
    assert_eq!(
        scalar(&fresh.url, "SELECT to_regclass('gone')::text").await,
        None
    );
}

#[tokio::test]
async fn missing_binaries_name_both_ways_out() {
    let project = Project::new(true);
    let empty = tempfile::tempdir().expect("temp dir");
    let resolver = Resolver {
        database_url: None,
        search: BinSearch::only(vec![empty.path().to_path_buf()]),
    };
    let error = resolver
        .resolve(project.root())
        .await
        .expect_err("no binaries");
    assert!(
        matches!(error, DbError::BinariesNotFound { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    for needle in [
        "pg_ctl",
        "FORGE_PG_BIN_DIRS",
        "apt-get install postgresql",
        "DATABASE_URL",
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
}

/// A data directory of another major version (here a stand-in with only `PG_VERSION`).
fn plant_old_cluster(data: &Path) {
    std::fs::create_dir_all(data).expect("create");
    std::fs::write(data.join("PG_VERSION"), "9.6\n").expect("write");
}

#[tokio::test]
async fn a_development_cluster_of_another_version_is_kept_and_named() {
    let project = Project::new(true);
    let cluster = project.resolver.cluster(project.root()).expect("cluster");
    plant_old_cluster(cluster.data_dir());
    let error = project
        .resolver
        .resolve(project.root())
        .await
        .expect_err("another version");
    assert!(
        matches!(error, DbError::VersionMismatch { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    for needle in ["PostgreSQL 9.6", "FORGE_PG_BIN_DIRS", "forge db reset"] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
    assert!(
        cluster.data_dir().join("PG_VERSION").is_file(),
        "the data is kept"
    );
}

#[tokio::test]
async fn a_disposable_cluster_of_another_version_is_rebuilt() {
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let cluster = forge_db::Cluster::open(
        home.path(),
        &BinSearch::from_env(),
        forge_db::Durability::Disposable,
    )
    .expect("cluster");
    plant_old_cluster(cluster.data_dir());
    let started = cluster.clone();
    let server = tokio::task::spawn_blocking(move || started.start())
        .await
        .expect("no panic");
    let version = std::fs::read_to_string(cluster.data_dir().join("PG_VERSION"));
    cluster.destroy().expect("destroyed");
    server.expect("rebuilt and started");
    assert_ne!(version.expect("PG_VERSION").trim(), "9.6");
}
