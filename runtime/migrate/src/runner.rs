//! Applying migrations: forge's system schema first, then the project's files, each at most
//! once, serialised across processes by an advisory lock.
//!
//! Everything runs on one dedicated connection (not the pool's) because the lock is a
//! session lock: it must be held by the session that applies the files, for the whole run,
//! and must not stay behind in a pooled connection afterwards.

mod error;
mod files;
mod lock;
mod position;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{Connection, PgConnection, PgPool};

pub use error::{Failure, LockHolder, MigrateError};
pub use files::{discover, sha256_hex, MigrationFile};
pub use lock::LOCK_KEY;

use crate::schema::SYSTEM_MIGRATIONS;
use crate::split::{no_transaction, split, Statement};

/// How [`up`] runs.
#[derive(Clone)]
pub struct UpOptions {
    /// How long to wait for another runner to finish before giving up.
    pub lock_timeout: Duration,
    /// Report what would run, change nothing (and take no lock).
    pub dry_run: bool,
    /// Called while waiting for the lock, once per distinct holder.
    pub on_wait: Option<OnWait>,
    /// Called after each migration is applied (not under `dry_run`) with how many of how
    /// many are done, so callers can show progress, and what was applied before a failure.
    pub on_applied: Option<OnApplied>,
}

/// See [`UpOptions::on_wait`].
pub type OnWait = Arc<dyn Fn(&LockHolder) + Send + Sync>;
/// See [`UpOptions::on_applied`]: the migration, then done and total counts.
pub type OnApplied = Arc<dyn Fn(&AppliedMigration, usize, usize) + Send + Sync>;

impl Default for UpOptions {
    fn default() -> UpOptions {
        UpOptions {
            lock_timeout: Duration::from_secs(60),
            dry_run: false,
            on_wait: None,
            on_applied: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    System,
    User,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::System => "system",
            Kind::User => "user",
        }
    }
}

/// One migration [`up`] applied (or, under `dry_run`, would apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub kind: Kind,
    pub version: i64,
    pub name: String,
    /// Zero under `dry_run`.
    pub duration: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// In the order they ran; empty when everything was already applied.
    pub migrations: Vec<AppliedMigration>,
}

/// Where one of the project's migrations stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file changed since; `recorded` is the checksum applied.
    Edited {
        recorded: String,
    },
    /// Applied, and the file is gone.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub version: i64,
    pub name: String,
    /// `None` when the file is missing.
    pub path: Option<PathBuf>,
    /// The file's checksum, or the recorded one when the file is missing.
    pub checksum: String,
    pub state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Versions of forge's system schema not applied yet.
    pub system_pending: Vec<u32>,
    /// The project's migrations, applied or not, by version.
    pub files: Vec<FileStatus>,
}

/// Where the database and `dir` stand, without taking the lock or changing anything.
pub async fn status(pool: &PgPool, dir: &Path) -> Result<Status, MigrateError> {
    let mut conn = pool.acquire().await?;
    plan(&mut conn, dir).await
}

/// Applies forge's pending system migrations, then the project's pending files in `dir`.
/// Refuses to apply anything when an applied file was edited or deleted.
pub async fn up(pool: &PgPool, dir: &Path, options: &UpOptions) -> Result<Applied, MigrateError> {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    if options.dry_run {
        let result = pending(&mut conn, dir).await.map(|work| Applied {
            migrations: work.iter().map(|w| w.applied(Duration::ZERO)).collect(),
        });
        conn.close().await?;
        return result;
    }
    lock::acquire(&mut conn, options).await?;
    // The plan is read under the lock, so a runner that waited sees what the one before it
    // applied and does not apply it again.
    let result = run(&mut conn, dir, options).await;
    // A failed run's error is the one worth reporting; a release that fails after it (the
    // connection broke, say) loses nothing, since closing the session frees the lock.
    let released = lock::release(conn).await;
    let applied = result?;
    released?;
    Ok(applied)
}

async fn run(
    conn: &mut PgConnection,
    dir: &Path,
    options: &UpOptions,
) -> Result<Applied, MigrateError> {
    let mut applied = Applied::default();
    let pending = pending(conn, dir).await?;
    for (index, work) in pending.iter().enumerate() {
        let duration = apply(conn, work).await?;
        let migration = work.applied(duration);
        if let Some(on_applied) = &options.on_applied {
            on_applied(&migration, index + 1, pending.len());
        }
        applied.migrations.push(migration);
    }
    Ok(applied)
}

/// One migration to apply.
struct Work {
    kind: Kind,
    version: i64,
    name: String,
    /// How errors name it: the file's path, or the system schema version.
    label: String,
    sql: String,
    checksum: String,
}

impl Work {
    fn applied(&self, duration: Duration) -> AppliedMigration {
        AppliedMigration {
            kind: self.kind,
            version: self.version,
            name: self.name.clone(),
            duration,
        }
    }
}

/// The migrations to apply, in order, after refusing edited and missing files.
async fn pending(conn: &mut PgConnection, dir: &Path) -> Result<Vec<Work>, MigrateError> {
    let status = plan(conn, dir).await?;
    let mut work: Vec<Work> = SYSTEM_MIGRATIONS
        .iter()
        .filter(|m| status.system_pending.contains(&m.version))
        .map(|m| Work {
            kind: Kind::System,
            version: i64::from(m.version),
            name: m.name.to_owned(),
            label: format!("forge system schema v{:03} ({})", m.version, m.name),
            sql: m.sql.to_owned(),
            checksum: sha256_hex(m.sql.as_bytes()),
        })
        .collect();
    let mut files: HashMap<i64, MigrationFile> =
        discover(dir)?.into_iter().map(|f| (f.version, f)).collect();
    for file in status.files {
        match file.state {
            State::Applied => {}
            State::Edited { recorded } => {
                return Err(MigrateError::Edited {
                    file: label(file.path.as_deref()),
                    recorded,
                    current: file.checksum,
                })
            }
            State::Missing => {
                return Err(MigrateError::Missing {
                    version: file.version,
                    name: file.name,
                    recorded: file.checksum,
                })
            }
            State::Pending => {
                if let Some(f) = files.remove(&file.version) {
                    work.push(Work {
                        kind: Kind::User,
                        version: f.version,
                        label: label(Some(&f.path)),
                        name: f.name,
                        sql: f.sql,
                        checksum: f.checksum,
                    });
                }
            }
        }
    }
    Ok(work)
}

fn label(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// Compares `dir` with `forge_migrations` (absent before the system schema is applied).
async fn plan(conn: &mut PgConnection, dir: &Path) -> Result<Status, MigrateError> {
    let files = discover(dir)?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('forge_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<(String, i64, String, String)> = if exists {
        sqlx::query_as("SELECT kind, version, name, checksum FROM forge_migrations")
            .fetch_all(&mut *conn)
            .await?
    } else {
        Vec::new()
    };
    // System migrations are compared by version only: they ship inside the binary, so a
    // changed checksum could only be a forge release that edited a released file, and
    // refusing would stop every project over forge's mistake rather than theirs.
    let system_pending = SYSTEM_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .filter(|v| {
            !rows
                .iter()
                .any(|(kind, version, ..)| kind == "system" && *version == i64::from(*v))
        })
        .collect();
    let mut recorded: HashMap<i64, (String, String)> = rows
        .into_iter()
        .filter(|(kind, ..)| kind == "user")
        .map(|(_, version, name, checksum)| (version, (name, checksum)))
        .collect();
    let mut statuses: Vec<FileStatus> = files
        .into_iter()
        .map(|f| {
            let state = match recorded.remove(&f.version) {
                None => State::Pending,
                Some((_, checksum)) if checksum == f.checksum => State::Applied,
                Some((_, checksum)) => State::Edited { recorded: checksum },
            };
            FileStatus {
                version: f.version,
                name: f.name,
                path: Some(f.path),
                checksum: f.checksum,
                state,
            }
        })
        .collect();
    statuses.extend(
        recorded
            .into_iter()
            .map(|(version, (name, checksum))| FileStatus {
                version,
                name,
                path: None,
                checksum,
                state: State::Missing,
            }),
    );
    statuses.sort_by_key(|s| s.version);
    Ok(Status {
        system_pending,
        files: statuses,
    })
}

/// Applies one migration and records it, in one transaction unless the file opts out.
async fn apply(conn: &mut PgConnection, work: &Work) -> Result<Duration, MigrateError> {
    let statements = split(&work.sql).map_err(|source| MigrateError::Split {
        file: work.label.clone(),
        source,
    })?;
    let started = Instant::now();
    if no_transaction(&work.sql) {
        // Statements such as CREATE INDEX CONCURRENTLY refuse to run in a transaction; the
        // record goes in last so that a failure leaves the file pending, to be fixed and
        // re-run (its statements should therefore be written to be re-runnable).
        lock::ensure_held(&mut *conn).await?;
        for (index, statement) in statements.iter().enumerate() {
            execute(&mut *conn, work, index, statement, false).await?;
        }
        record(&mut *conn, work, started.elapsed()).await?;
    } else {
        let mut tx = conn.begin().await?;
        lock::ensure_held(&mut tx).await?;
        for (index, statement) in statements.iter().enumerate() {
            if let Err(error) = execute(&mut tx, work, index, statement, true).await {
                // The error being reported matters more than a failed rollback, and the
                // server rolls back anyway when the connection closes.
                let _ = tx.rollback().await;
                return Err(error);
            }
        }
        record(&mut tx, work, started.elapsed()).await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

async fn execute(
    conn: &mut PgConnection,
    work: &Work,
    index: usize,
    statement: &Statement<'_>,
    in_transaction: bool,
) -> Result<(), MigrateError> {
    // The simple query protocol: no prepared statement to cache, and Postgres' error
    // positions are relative to exactly the text sent.
    match sqlx::raw_sql(statement.text).execute(conn).await {
        Ok(_) => Ok(()),
        Err(error) => Err(failure(error, work, index, statement, in_transaction)),
    }
}

fn failure(
    error: sqlx::Error,
    work: &Work,
    index: usize,
    statement: &Statement<'_>,
    in_transaction: bool,
) -> MigrateError {
    let Some(pg) = error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
    else {
        return MigrateError::Database(error);
    };
    // An `Internal` position points into a query Postgres generated (inside a function
    // body, say), not into the file; the statement's start is the best file position then.
    let (line, column) = match pg.position() {
        Some(PgErrorPosition::Original(position)) => position::file_position(statement, position),
        _ => (statement.line, statement.column),
    };
    MigrateError::Failed(Box::new(Failure {
        file: work.label.clone(),
        statement: index + 1,
        line,
        column,
        message: pg.message().to_owned(),
        detail: pg.detail().map(str::to_owned),
        hint: pg.hint().map(str::to_owned),
        code: pg.code().to_owned(),
        in_transaction,
    }))
}

async fn record(
    conn: &mut PgConnection,
    work: &Work,
    duration: Duration,
) -> Result<(), MigrateError> {
    sqlx::query(
        "INSERT INTO forge_migrations (kind, version, name, checksum, duration_ms)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(work.kind.as_str())
    .bind(work.version)
    .bind(&work.name)
    .bind(&work.checksum)
    .bind(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(())
}
