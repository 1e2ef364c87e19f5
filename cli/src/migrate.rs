//! `forge migrate up | status`: the project's `migrations/` against the database
//! `forge_db::resolve` picks (DATABASE_URL, else the development cluster).
//!
//! Results go to stdout, progress and problems to stderr. Exit codes: 1 when the migrations
//! are at fault (a failing statement, an edited or deleted applied file), 2 when forge cannot
//! run at all (no database, lock not obtained).

use std::future::Future;
use std::io::IsTerminal;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use forge_migrate::runner::{
    self, AppliedMigration, FileStatus, Kind, MigrateError, State, Status, UpOptions,
};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::project::Project;
use crate::{Fatal, Outcome};

/// Where a project's migration files live, relative to its root.
pub const MIGRATIONS_DIR: &str = "migrations";

/// How other sessions see forge in `pg_stat_activity`, so a waiting runner can say who
/// holds the lock.
const APPLICATION_NAME: &str = "forge migrate";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Apply forge's system schema and the pending files of migrations/, in order.
    Up {
        /// List what would be applied; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for another runner to finish before giving up.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        lock_timeout: u64,
    },
    /// Show each migration as applied, pending, edited or missing.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

pub fn run(project: Option<&Path>, args: &Args) -> Result<Outcome, Fatal> {
    let project = Project::locate(project)?;
    let dir = project.root.join(MIGRATIONS_DIR);
    block_on(async {
        let database = forge_db::resolve(&project.root)
            .await
            .map_err(|e| Fatal(e.to_string()))?;
        let pool = connect(&database.url).await?;
        let outcome = match &args.command {
            Command::Up {
                dry_run,
                lock_timeout,
            } => up(&pool, &dir, *dry_run, Duration::from_secs(*lock_timeout)).await,
            Command::Status { format } => status(&pool, &dir, *format).await,
        };
        pool.close().await;
        outcome
    })
}

async fn connect(url: &str) -> Result<PgPool, Fatal> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| Fatal(format!("invalid database URL: {e}")))?
        .application_name(APPLICATION_NAME);
    // One connection up front reports a wrong URL or a down server at once with the real
    // cause; a pool would retry until its acquire timeout (30 s) and then say "timed out".
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| Fatal(format!("cannot connect to the database: {e}")))?
        .close()
        .await
        .map_err(|e| Fatal(format!("cannot connect to the database: {e}")))?;
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(options))
}

async fn up(
    pool: &PgPool,
    dir: &Path,
    dry_run: bool,
    lock_timeout: Duration,
) -> Result<Outcome, Fatal> {
    let progress = Arc::new(Progress::new());
    let sink = progress.clone();
    let options = UpOptions {
        lock_timeout,
        dry_run,
        on_wait: Some(Arc::new(|holder| {
            eprintln!("forge migrate: waiting for the migration lock, held by {holder}")
        })),
        on_applied: Some(Arc::new(move |migration, done, total| {
            sink.applied(migration, done, total)
        })),
    };
    let result = runner::up(pool, dir, &options).await;
    progress.finish();
    let applied = match result {
        Ok(applied) => applied,
        Err(error) => return failed(error),
    };
    if dry_run {
        for migration in &applied.migrations {
            println!("would apply {}", describe(migration));
        }
    }
    match (applied.migrations.len(), dry_run) {
        (0, _) => eprintln!("forge migrate: up to date"),
        (n, true) => eprintln!("forge migrate: {n} pending, nothing applied (--dry-run)"),
        (n, false) => eprintln!("forge migrate: applied {n}"),
    }
    Ok(Outcome::Clean)
}

fn describe(migration: &AppliedMigration) -> String {
    match migration.kind {
        Kind::System => format!("forge system schema v{:03}", migration.version),
        Kind::User => format!("{:04}_{}", migration.version, migration.name),
    }
}

/// Below this many migrations a progress bar would flash by; plain lines say more.
const PROGRESS_BAR_FROM: usize = 20;
const BAR_WIDTH: usize = 30;

/// Each applied migration as a line on stdout, or, when stderr is a terminal and many run,
/// one progress bar redrawn in place on stderr.
struct Progress {
    terminal: bool,
    /// Whether a bar is drawn and its line not yet ended.
    bar_open: AtomicBool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            bar_open: AtomicBool::new(false),
        }
    }

    fn applied(&self, migration: &AppliedMigration, done: usize, total: usize) {
        if self.terminal && total >= PROGRESS_BAR_FROM {
            let filled = BAR_WIDTH * done / total;
            eprint!(
                "\r\x1b[2K[{}{}] {done}/{total} {}",
                "=".repeat(filled),
                " ".repeat(BAR_WIDTH - filled),
                describe(migration)
            );
            self.bar_open.store(true, Ordering::Relaxed);
        } else {
            println!(
                "applied {} ({} ms)",
                describe(migration),
                migration.duration.as_millis()
            );
        }
    }

    /// Ends the bar's line so that what follows (a summary, an error) starts on its own.
    fn finish(&self) {
        if self.bar_open.swap(false, Ordering::Relaxed) {
            eprintln!();
        }
    }
}

async fn status(pool: &PgPool, dir: &Path, format: Format) -> Result<Outcome, Fatal> {
    let status = match runner::status(pool, dir).await {
        Ok(status) => status,
        Err(error) => return failed(error),
    };
    match format {
        Format::Human => print_human(&status),
        Format::Json => println!("{}", to_json(&status)),
    }
    let broken = status
        .files
        .iter()
        .any(|f| matches!(f.state, State::Edited { .. } | State::Missing));
    Ok(if broken {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

fn print_human(status: &Status) {
    if !status.system_pending.is_empty() {
        println!(
            "pending  forge system schema ({} version(s))",
            status.system_pending.len()
        );
    }
    for file in &status.files {
        let extra = match &file.state {
            State::Edited { recorded } => {
                format!(" (applied {recorded}, file now {})", file.checksum)
            }
            State::Missing => format!(" (applied {}, file deleted)", file.checksum),
            State::Applied | State::Pending => String::new(),
        };
        println!("{:<8} {}{extra}", state_name(&file.state), display(file));
    }
    if status.files.is_empty() {
        eprintln!("forge migrate: no migrations in {MIGRATIONS_DIR}/");
    }
}

fn to_json(status: &Status) -> serde_json::Value {
    let files: Vec<_> = status
        .files
        .iter()
        .map(|f| {
            let (checksum, recorded) = match &f.state {
                State::Applied => (Some(&f.checksum), Some(&f.checksum)),
                State::Pending => (Some(&f.checksum), None),
                State::Edited { recorded } => (Some(&f.checksum), Some(recorded)),
                State::Missing => (None, Some(&f.checksum)),
            };
            json!({
                "version": f.version,
                "name": f.name,
                "file": f.path.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy()),
                "state": state_name(&f.state),
                "checksum": checksum,
                "applied_checksum": recorded,
            })
        })
        .collect();
    json!({ "system_pending": status.system_pending, "migrations": files })
}

fn state_name(state: &State) -> &'static str {
    match state {
        State::Applied => "applied",
        State::Pending => "pending",
        State::Edited { .. } => "edited",
        State::Missing => "missing",
    }
}

fn display(file: &FileStatus) -> String {
    match file.path.as_ref().and_then(|p| p.file_name()) {
        Some(name) => name.to_string_lossy().into_owned(),
        None => format!("{:04}_{}.sql", file.version, file.name),
    }
}

/// Migration problems are the project's (exit 1); anything else means forge could not run.
fn failed(error: MigrateError) -> Result<Outcome, Fatal> {
    if error.is_migration_failure() {
        eprintln!("error: {error}");
        Ok(Outcome::Problems)
    } else {
        Err(Fatal(error.to_string()))
    }
}

fn block_on<T>(future: impl Future<Output = Result<T, Fatal>>) -> Result<T, Fatal> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}
