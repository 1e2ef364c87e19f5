//! `forge migrate new | up | status | verify`: the project's `migrations/`, on their own
//! (`new`, `verify`: no database) or against the database `forge_db::resolve` picks
//! (DATABASE_URL, else the development cluster).
//!
//! Results go to stdout, progress and problems to stderr. Exit codes: 1 when the migrations
//! are at fault (a failing statement, an edited or deleted applied file, a misnamed file), 2
//! when forge cannot run at all (no database, lock not obtained, unreadable forge.lock).
//!
//! `up` and `status` stop the development server afterwards when they started it, as DESIGN
//! says ("stops it when done"); one that was already running (`forge db start`, `forge dev`)
//! is left running.
//!
//! # Decisions
//!
//! - **`forge migrate new <name>`** takes the number FG601 would give a new file (past every
//!   number in `migrations/` and forge.lock, at the width FG601 requires; four digits in an
//!   empty directory) from `forge_codegen::migrations::new_file_name`, the code behind FG601, so a new file never
//!   trips the rule. The name must be lower-case snake_case (the error suggests one). The file
//!   is created with `create_new`: never overwritten, never written through a symlink. The path
//!   goes to stdout.
//! - **`forge migrate verify`** runs FG601 and FG602 (`check::check_migrations`: the same
//!   code as `forge check`, honouring `[check] allow`) with no database and no source parsing,
//!   and reports them as `forge check` does (`--format human|json|github|sarif`). Gaps in the
//!   numbers are fine. Exit 0 clean, 1 on findings, 2 when it cannot run (no forge.toml,
//!   unreadable forge.lock).
//! - **PgBouncer in transaction pooling mode** is refused (`MigrateError::PooledConnection`,
//!   exit 2): the session advisory lock needs a session. After the lock is granted, a second
//!   statement on the lock connection must run on the same backend (`pg_backend_pid()`), see
//!   the lock held by that backend in `pg_locks`, and the session must not carry another
//!   runner's mark (`forge.migrate_runner`, a custom setting set while a runner holds the lock
//!   and cleared on release), which is what a runner sees when the pooler hands it a session
//!   another runner locked (advisory locks are re-entrant, so the lock itself is granted).
//!   The decision is `lock::check_session`, unit-tested; the re-entrant case is tested on a
//!   real server by running two acquisitions on one connection. Each file then checks that its
//!   transaction's session holds the lock before committing. A lone runner that the pooler
//!   keeps on one backend throughout cannot be told from a direct connection, and needs not
//!   be: it is serialised correctly, and a second runner or a transaction on another backend
//!   is caught.

use std::collections::HashMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use forge_codegen::check;
use forge_codegen::ir::{Diagnostic, Severity};
use forge_codegen::lock::{Lock, LOCK_FILE};
use forge_codegen::migrations::new_file_name;
use forge_db::{Resolver, Source};
use forge_migrate::runner::{
    self, AppliedMigration, FileStatus, Kind, MigrateError, State, Status, UpOptions,
};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::generate::read_optional;
use crate::project::Project;
use crate::{format, output, render, sources, Fatal, Outcome};

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
    /// Create migrations/NNNN_<name>.sql with the next number and print its path.
    New {
        /// Lower-case words joined by `_`, such as `add_users`.
        name: String,
    },
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
    /// Check migrations/ without a database: file names and numbering (FG601), and that
    /// every migration forge.lock records is unchanged and present (FG602).
    Verify {
        /// How to report: rustc-style text, JSON lines, GitHub workflow commands or SARIF.
        #[arg(long, value_enum, default_value_t = format::Format::Human)]
        format: format::Format,
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
    match &args.command {
        Command::New { name } => new(&project, name),
        Command::Verify { format } => verify(&project, *format),
        Command::Up {
            dry_run,
            lock_timeout,
        } => with_database(&project, |pool| async move {
            up(&pool, &dir, *dry_run, Duration::from_secs(*lock_timeout)).await
        }),
        Command::Status { format } => with_database(&project, |pool| async move {
            status(&pool, &dir, *format).await
        }),
    }
}

/// Runs `command` against the project's database, then stops the development server if
/// resolving it started it, whatever the command's outcome.
fn with_database<F, Fut>(project: &Project, command: F) -> Result<Outcome, Fatal>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = Result<Outcome, Fatal>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal(format!("cannot start the async runtime: {e}")))?;
    let resolver = Resolver::from_env();
    let database = runtime
        .block_on(resolver.resolve(&project.root))
        .map_err(|e| Fatal(e.to_string()))?;
    let outcome = runtime.block_on(async {
        let pool = connect(&database.url).await?;
        let outcome = command(pool.clone()).await;
        pool.close().await;
        outcome
    });
    if let Source::Embedded { started: true, .. } = database.source {
        // A failure to stop is worth a line but must not hide how the command went.
        match resolver.cluster(&project.root).and_then(|c| c.stop()) {
            Ok(_) => eprintln!(
                "forge migrate: stopped the development server it started \
                 (`forge db start` keeps one running)"
            ),
            Err(e) => eprintln!("forge migrate: could not stop the development server: {e}"),
        }
    }
    outcome
}

fn new(project: &Project, name: &str) -> Result<Outcome, Fatal> {
    let migrations = sources::read_migrations(&project.root)?;
    let lock = read_lock(project)?;
    let file = new_file_name(&migrations, &lock, name).map_err(|e| Fatal(e.to_string()))?;
    let dir = project.root.join(MIGRATIONS_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Fatal(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(&file);
    output::create_new(&path, template(&file).as_bytes())?;
    println!("{}", path.display());
    Ok(Outcome::Clean)
}

fn template(file: &str) -> String {
    format!(
        "-- {file}\n\
         -- Forward-only: once a database has applied this file, change things in a new one.\n\
         -- It runs in one transaction; for statements that refuse one (CREATE INDEX\n\
         -- CONCURRENTLY) put the line `-- forge:no-transaction` in this comment block.\n\n"
    )
}

fn read_lock(project: &Project) -> Result<Lock, Fatal> {
    match read_optional(&project.root.join(LOCK_FILE))? {
        Some(text) => Lock::parse(&text).map_err(|e| Fatal(format!("{LOCK_FILE}: {e}"))),
        None => Ok(Lock::default()),
    }
}

/// FG601 and FG602, the same code and the same report as `forge check`, without parsing
/// the crate or touching a database.
fn verify(project: &Project, format: format::Format) -> Result<Outcome, Fatal> {
    let migrations = sources::read_migrations(&project.root)?;
    let lock_text = read_optional(&project.root.join(LOCK_FILE))?;
    let lock = match &lock_text {
        Some(text) => Lock::parse(text).map_err(|e| Fatal(format!("{LOCK_FILE}: {e}")))?,
        None => Lock::default(),
    };
    let diagnostics = check::check_migrations(&migrations, &lock, &project.config.check);
    let report = match format {
        format::Format::Human => {
            let texts = report_sources(project, &diagnostics, lock_text.as_deref());
            let texts: HashMap<&str, &str> = texts
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            render::render(&diagnostics, &texts, render::use_color(&std::io::stdout()))
        }
        other => format::format(other, &diagnostics),
    };
    let _ = std::io::stdout().lock().write_all(report.as_bytes());
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if format == format::Format::Human {
        if diagnostics.is_empty() {
            eprintln!(
                "forge migrate verify: no problems in {} file(s) in {MIGRATIONS_DIR}/",
                migrations.len()
            );
        } else {
            let warnings = diagnostics.len() - errors;
            eprintln!("forge migrate verify: {errors} error(s), {warnings} warning(s)");
        }
    }
    Ok(if errors > 0 {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

/// The text of every file a diagnostic points at, for the code frames; a file that cannot
/// be read as text is reported by name and position alone.
fn report_sources(
    project: &Project,
    diagnostics: &[Diagnostic],
    lock_text: Option<&str>,
) -> HashMap<String, String> {
    let mut texts = HashMap::new();
    for span in diagnostics.iter().filter_map(|d| d.span.as_ref()) {
        if texts.contains_key(&span.file) {
            continue;
        }
        let text = if span.file == LOCK_FILE {
            lock_text.map(str::to_owned)
        } else {
            std::fs::read_to_string(project.root.join(&span.file)).ok()
        };
        if let Some(text) = text {
            texts.insert(span.file.clone(), text);
        }
    }
    texts
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
