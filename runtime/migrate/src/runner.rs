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

use futures_util::StreamExt;
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
    } else if let Batched::Retry = apply_batched(conn, work, &statements).await? {
        apply_in_steps(conn, work, &statements, started).await?;
    }
    Ok(started.elapsed())
}

/// How [`apply_batched`] ended when it did not fail for good.
enum Batched {
    Applied,
    /// Rolled back on an error it cannot place in the file; run the file statement by
    /// statement to find the failing one.
    Retry,
}

/// A transactional file in two round trips rather than one per statement: `BEGIN`, the lock
/// check, the file's statements as they stand in the file, and its record go as one
/// simple-query batch, then `COMMIT` once the check says this session holds the lock.
///
/// Postgres runs such a batch exactly as the statements one by one in a transaction: it
/// parses the whole text first (a syntax error anywhere runs nothing), then analyses and
/// executes each statement in turn, and stops at the first error. An error whose position
/// falls in the file's text names its statement, line and column directly; any other
/// (constraint violations, `already exists`, a timeout for the batch as a whole) rolls back
/// and the file runs again statement by statement, whose failure says which one failed
/// (and which, if the error was transient, simply applies it).
async fn apply_batched(
    conn: &mut PgConnection,
    work: &Work,
    statements: &[Statement<'_>],
) -> Result<Batched, MigrateError> {
    let batch = Batch::new(work, statements);
    let mut results = Vec::new();
    let mut stream = sqlx::raw_sql(&batch.text).execute_many(&mut *conn);
    let mut failed = None;
    while let Some(result) = stream.next().await {
        match result {
            Ok(result) => results.push(result),
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    drop(stream);
    let Some(error) = failed else {
        // Results: BEGIN, the lock check (one row when held), the statements, the record.
        if results.get(1).map(|r| r.rows_affected()) != Some(1) {
            sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
            return Err(MigrateError::LockLost);
        }
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
        return Ok(Batched::Applied);
    };
    let Some(pg) = error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
    else {
        // The connection, not the SQL: nothing to roll back on, nothing to retry.
        return Err(MigrateError::Database(error));
    };
    let placed = match pg.position() {
        Some(PgErrorPosition::Original(position)) => batch.locate(work, statements, position),
        _ => None,
    };
    let failure =
        placed.map(|(index, line, column)| pg_failure(pg, work, index, line, column, true));
    // Inside the batch's transaction, unless the text failed to parse and none was opened,
    // where ROLLBACK only warns.
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
    match failure {
        Some(failure) => Err(failure),
        None => Ok(Batched::Retry),
    }
}

/// The text [`apply_batched`] sends, and where the file's part of it starts.
struct Batch {
    text: String,
    /// Characters before the file's first statement.
    body_start: usize,
    /// Characters of the file's part, from its first statement to the end of its last.
    body_len: usize,
}

impl Batch {
    fn new(work: &Work, statements: &[Statement<'_>]) -> Batch {
        let body = match (statements.first(), statements.last()) {
            (Some(first), Some(last)) => &work.sql[first.offset..last.offset + last.text.len()],
            _ => "",
        };
        let prefix = format!("BEGIN;\n{};\n", lock::held_check_sql());
        // The line break ends a `--` comment the last statement may end with.
        let text = format!("{prefix}{body}\n;\n{}", record_sql(work));
        Batch {
            body_start: prefix.chars().count(),
            body_len: body.chars().count(),
            text,
        }
    }

    /// The statement (0-based), line and column in the file of the batch's `position`th
    /// character (1-based, as Postgres counts), when it falls in the file's part.
    fn locate(
        &self,
        work: &Work,
        statements: &[Statement<'_>],
        position: usize,
    ) -> Option<(usize, u32, u32)> {
        let in_body = position.checked_sub(self.body_start)?;
        if in_body == 0 || in_body > self.body_len {
            return None;
        }
        let first = statements.first()?.offset;
        let (mut start, mut previous) = (0, first);
        let mut found = None;
        for (index, statement) in statements.iter().enumerate() {
            start += work.sql[previous..statement.offset].chars().count();
            previous = statement.offset;
            if start >= in_body {
                break;
            }
            found = Some((index, in_body - start));
        }
        let (index, relative) = found?;
        let (line, column) = position::file_position(&statements[index], relative);
        Some((index, line, column))
    }
}

/// The record of `work` as plain SQL, for the batch, which cannot bind parameters. `E''`
/// escapes mean the same whatever `standard_conforming_strings` says. The duration is the
/// server's time since the transaction began: the file's statements, run just before.
fn record_sql(work: &Work) -> String {
    let quote = |s: &str| format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    format!(
        "INSERT INTO forge_migrations (kind, version, name, checksum, duration_ms) \
         VALUES ({}, {}, {}, {}, \
         (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint)",
        quote(work.kind.as_str()),
        work.version,
        quote(&work.name),
        quote(&work.checksum),
    )
}

/// A transactional file statement by statement, so that a failure names its statement.
async fn apply_in_steps(
    conn: &mut PgConnection,
    work: &Work,
    statements: &[Statement<'_>],
    started: Instant,
) -> Result<(), MigrateError> {
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
    Ok(())
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
    pg_failure(pg, work, index, line, column, in_transaction)
}

fn pg_failure(
    pg: &PgDatabaseError,
    work: &Work,
    index: usize,
    line: u32,
    column: u32,
    in_transaction: bool,
) -> MigrateError {
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

#[cfg(test)]
mod tests {
    use super::*;
    use forge_db::testing::TestDatabase;

    fn work(sql: &str) -> Work {
        Work {
            kind: Kind::User,
            version: 1,
            name: "t".to_owned(),
            label: "0001_t.sql".to_owned(),
            sql: sql.to_owned(),
            checksum: sha256_hex(sql.as_bytes()),
        }
    }

    /// The batch checks the lock before it commits: a session without it applies nothing.
    #[tokio::test]
    async fn a_batch_without_the_lock_is_rolled_back() {
        let db = TestDatabase::new().await;
        let mut conn = db.pool().acquire().await.expect("connection").detach();
        sqlx::raw_sql(crate::schema::SYSTEM_MIGRATIONS[0].sql)
            .execute(&mut conn)
            .await
            .expect("system schema");
        let error = apply(&mut conn, &work("CREATE TABLE unlocked (id int);"))
            .await
            .expect_err("refused");
        assert!(matches!(error, MigrateError::LockLost), "{error}");
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('unlocked') IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .expect("to_regclass");
        assert!(!exists);
        let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM forge_migrations")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(recorded, 0);
    }

    #[test]
    fn batch_positions_map_to_statements_in_the_file() {
        let sql = "-- head\nSELECT 1;\n\n  SELECT é,\n x;";
        let work = work(sql);
        let statements = split(sql).expect("splits");
        let batch = Batch::new(&work, &statements);
        let at = |character: usize| batch.locate(&work, &statements, batch.body_start + character);
        // The body starts at statement 1's first character.
        assert_eq!(at(1), Some((0, 2, 1)));
        assert_eq!(at(8), Some((0, 2, 8)));
        // Between the statements (the `;` and blank lines) is statement 1's, just after it.
        assert_eq!(at(10), Some((0, 2, 9)));
        // `x` on the last line: 9 characters to `SELECT 1;`, `\n\n  ` is 4 more, then
        // `SELECT é,\n ` is 11.
        assert_eq!(at(25), Some((1, 5, 2)));
        assert_eq!(at(0), None);
        assert_eq!(at(26), None, "past the file's text");
        assert_eq!(batch.locate(&work, &statements, 3), None, "in the prefix");
        let prefix: String = batch.text.chars().take(batch.body_start).collect();
        assert!(prefix.starts_with("BEGIN;"), "{prefix}");
        let body: String = batch
            .text
            .chars()
            .skip(batch.body_start)
            .take(batch.body_len)
            .collect();
        assert_eq!(body, "SELECT 1;\n\n  SELECT é,\n x");
    }
}
