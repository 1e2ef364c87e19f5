//! Why a run stopped, with everything a developer needs to act without opening the database.

use std::path::PathBuf;
use std::time::Duration;

use crate::split::SplitError;

/// The session holding the migration lock, from `pg_locks` and `pg_stat_activity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: i32,
    pub application_name: String,
    /// When its session started, as Postgres prints a `timestamptz`.
    pub backend_start: Option<String>,
    /// When its current transaction started, if it is in one.
    pub xact_start: Option<String>,
    /// Its current (or last) query.
    pub query: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if !self.application_name.is_empty() {
            write!(f, " ({})", self.application_name)?;
        }
        if let Some(since) = self.xact_start.as_ref().or(self.backend_start.as_ref()) {
            write!(f, ", since {since}")?;
        }
        if let Some(query) = self.query.as_deref().filter(|q| !q.is_empty()) {
            write!(f, ", running: {}", query.trim())?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{} is not named NNNN_name.sql", path.display())]
    BadFileName { path: PathBuf },
    #[error("{} and {} both have version {version}", first.display(), second.display())]
    DuplicateVersion {
        version: i64,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{file}: {source}")]
    Split { file: String, source: SplitError },
    #[error(
        "{file} was edited after it was applied (recorded checksum {recorded}, file now {current}); \
         migrations are forward-only: revert the edit and add a new migration"
    )]
    Edited {
        file: String,
        recorded: String,
        current: String,
    },
    #[error(
        "migration {version} ({name}, checksum {recorded}) was applied but its file is gone; \
         restore the file"
    )]
    Missing {
        version: i64,
        name: String,
        recorded: String,
    },
    #[error(
        "gave up after {}s waiting for the migration lock{}",
        waited.as_secs(),
        holder.as_ref().map(|h| format!(", held by {h}")).unwrap_or_default()
    )]
    LockTimeout {
        waited: Duration,
        holder: Option<LockHolder>,
    },
    #[error(
        "this session no longer holds the migration lock; if forge connects through PgBouncer \
         in transaction pooling mode, migrate over a direct connection (or session pooling)"
    )]
    LockLost,
    #[error(
        "the database connection is pooled in transaction mode (PgBouncer?): migrations need a \
         session; connect directly or use session pooling ({reason})"
    )]
    PooledConnection { reason: String },
    /// Boxed: it is by far the largest variant, and every `Result` would carry its size.
    #[error("{0}")]
    Failed(Box<Failure>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl MigrateError {
    /// Whether the project's migrations are at fault (the developer must change a file), as
    /// opposed to forge being unable to run (no database, lock held, unreadable directory).
    pub fn is_migration_failure(&self) -> bool {
        matches!(
            self,
            MigrateError::BadFileName { .. }
                | MigrateError::NotUtf8 { .. }
                | MigrateError::DuplicateVersion { .. }
                | MigrateError::Split { .. }
                | MigrateError::Edited { .. }
                | MigrateError::Missing { .. }
                | MigrateError::Failed(_)
        )
    }
}

/// A statement Postgres rejected, placed in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{file}: statement {statement} at line {line}, column {column} failed: {message}{}{}{}",
    detail.as_ref().map(|d| format!("\n  detail: {d}")).unwrap_or_default(),
    hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default(),
    if *in_transaction {
        "\n  the file's transaction was rolled back; nothing of it was applied"
    } else {
        "\n  the file runs without a transaction: the statements before this one stay applied"
    }
)]
pub struct Failure {
    pub file: String,
    /// 1-based, in file order.
    pub statement: usize,
    /// 1-based line in the file.
    pub line: u32,
    /// 1-based column in the file, in characters.
    pub column: u32,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// SQLSTATE.
    pub code: String,
    pub in_transaction: bool,
}
