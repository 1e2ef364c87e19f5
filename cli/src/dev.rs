//! `forge dev`: the development loop in one command.
//!
//! 1. The database: `DATABASE_URL`, else the project's embedded cluster, started when it
//!    is not running. forge dev remembers whether it started the server and stops it on
//!    exit only then: a server the developer started with `forge db start` stays up.
//! 2. `migrate up`.
//! 3. Generation as `forge generate --watch` does it, in-process ([`Generator`]).
//! 4. `cargo run` of the app with `DATABASE_URL` set, in a process group of its own so
//!    that stopping it also stops a build in progress (cargo and its rustc children).
//!
//! Every debounced batch of changes regenerates; Rust sources, Cargo.toml, forge.toml, the
//! rewritten glue or a migration restart the app (migrations are applied first). A restart
//! is SIGTERM to the group, up to [`STOP_TIMEOUT`] for a graceful exit, then SIGKILL. A
//! build that fails leaves the app stopped and says so; the next save tries again.
//!
//! Ctrl-C (or SIGTERM, SIGHUP) stops the app, then the database server if forge dev started
//! it. Every line forge dev prints starts with what it is about: `dev`, `db`, `gen`, `app`.
//!
//! # Decisions
//!
//! - **`forge dev`** resolves the database with `forge_db::resolve`; only a server that
//!   resolving started (`Source::Embedded { started: true }`, decided under the cluster's
//!   lock) is stopped when forge dev exits.
//!   `migrate up` runs at start and before a restart that a migration caused; while it fails
//!   the app stays stopped. The app is `cargo run` (with `DATABASE_URL` set) in a process
//!   group of its own: Ctrl-C at the terminal reaches forge dev alone, and stopping the group
//!   also stops a build in progress. Restart: SIGTERM to the group, 10 s to exit (the
//!   runtime drains gracefully), then SIGKILL; then `cargo run` again. cargo execs the app on
//!   Unix, so the pid forge dev prints is the app's. A restart follows a change to a `.rs`
//!   under `src/`, Cargo.toml, build.rs, forge.toml, a migration, or glue that generation
//!   rewrote; a build failure (cargo's "could not compile") is reported and the next save
//!   tries again. Output lines are prefixed `dev |`, `db  |`, `gen |`, `app |`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use forge_db::{Cluster, Resolver, Source, DATABASE_URL_ENV};
use forge_migrate::runner::{self, UpOptions};
use nix::sys::signal::{killpg, Signal as UnixSignal};
use nix::unistd::Pid;
use sqlx::postgres::PgPoolOptions;

use crate::watch::{self, FsWatcher, Generator};
use crate::{Fatal, Outcome};

/// How long the app may take to shut down gracefully after SIGTERM before it is killed.
/// The runtime drains in-flight requests and jobs; in development they are short.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the loop looks at the app between file-system events, to report its exit.
const POLL: Duration = Duration::from_millis(100);

#[derive(clap::Args)]
pub struct Args {
    /// Passed to `cargo run` (for example `-- --bin api`).
    #[arg(last = true, value_name = "CARGO_RUN_ARGS")]
    cargo_args: Vec<String>,
}

pub fn run(project: Option<&Path>, args: &Args) -> Result<Outcome, Fatal> {
    let (sender, receiver) = mpsc::channel();
    watch::on_interrupt(sender.clone())?;
    let mut generator = Generator::open(project)?;
    let root = generator.root().to_path_buf();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal(format!("cannot start the async runtime: {e}")))?;

    // Declared before the app, so on any early return the app is dropped (stopped) first
    // and the database server it talks to after it.
    let database = DevDatabase::open(&root, &runtime)?;
    let mut migrated = database.migrate(&root, &runtime);
    generator.regenerate(&[]).print(&prefix(Who::Gen), color());
    let mut watcher = FsWatcher::start(&root, sender)?;
    let mut app = App {
        root: root.clone(),
        url: database.url.clone(),
        cargo_args: args.cargo_args.clone(),
        running: None,
    };
    say(
        Who::Dev,
        "watching src/, migrations/, forge.toml, forge.lock and Cargo.toml; Ctrl-C stops",
    );
    if migrated {
        app.start();
    } else {
        say(Who::Dev, "the app starts once the migrations apply");
    }

    while let Some(batch) = watch::next_batch(&receiver, Some(POLL)) {
        app.poll();
        if batch.paths.is_empty() && !batch.lost {
            continue;
        }
        let changes = generator.classify(&batch.paths);
        if changes.migrations_dir {
            watcher.watch_migrations(&root);
        }
        let regenerate = if batch.lost {
            generator.rescan();
            Some(Vec::new())
        } else {
            generator.apply(&changes)
        };
        let mut restart = changes.rust || changes.config || changes.migrations || batch.lost;
        if let Some(changed) = regenerate {
            let report = generator.regenerate(&changed);
            report.print(&prefix(Who::Gen), color());
            restart |= report.rust_written;
        }
        if !restart {
            continue;
        }
        app.stop();
        if changes.migrations || batch.lost || !migrated {
            migrated = database.migrate(&root, &runtime);
        }
        if migrated {
            app.start();
        } else {
            say(Who::Dev, "fix the migration and save to start the app");
        }
    }

    say(Who::Dev, "stopping");
    app.stop();
    drop(watcher);
    generator.save_cache();
    drop(database);
    Ok(Outcome::Clean)
}

/// What a line is about.
#[derive(Clone, Copy)]
enum Who {
    Dev,
    Db,
    Gen,
    App,
}

fn color() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(|| crate::render::use_color(&std::io::stderr()))
}

fn prefix(who: Who) -> String {
    let (name, code) = match who {
        Who::Dev => ("dev", "35"),
        Who::Db => ("db ", "34"),
        Who::Gen => ("gen", "36"),
        Who::App => ("app", "32"),
    };
    if color() {
        format!("\x1b[{code}m{name} |\x1b[0m ")
    } else {
        format!("{name} | ")
    }
}

/// One line on stderr, after its prefix. `eprintln!` holds the stderr lock for the whole
/// line, so lines from the output-forwarding threads never interleave within a line.
fn say(who: Who, message: impl std::fmt::Display) {
    eprintln!("{}{message}", prefix(who));
}

/// The database forge dev works with.
struct DevDatabase {
    url: String,
    /// The embedded cluster when forge dev started its server (and so stops it).
    started: Option<Cluster>,
}

impl DevDatabase {
    fn open(root: &Path, runtime: &tokio::runtime::Runtime) -> Result<DevDatabase, Fatal> {
        let resolver = Resolver::from_env();
        let fatal = |e: forge_db::DbError| Fatal(e.to_string());
        if resolver.database_url.is_none() {
            // initdb on first use takes seconds: say what is happening.
            say(
                Who::Db,
                "the development PostgreSQL (.forge/pg), started when needed",
            );
        }
        let database = runtime.block_on(resolver.resolve(root)).map_err(fatal)?;
        let mut started = None;
        match &database.source {
            Source::Embedded {
                server,
                data_dir,
                started: by_us,
            } => {
                // forge-db decided `by_us` under the cluster's lock, so a server another
                // forge process started at the same moment is not taken for ours.
                let whose = if *by_us {
                    started = Some(resolver.cluster(root).map_err(fatal)?);
                    "stopped when forge dev stops"
                } else {
                    "already running, left running on exit"
                };
                say(
                    Who::Db,
                    format_args!(
                        "PostgreSQL on 127.0.0.1:{} (pid {}, {whose}), data in {}",
                        server.port,
                        server.pid,
                        data_dir.display()
                    ),
                );
            }
            Source::Environment => say(Who::Db, "using the server in DATABASE_URL"),
        }
        say(Who::Db, format_args!("DATABASE_URL={}", database.url));
        Ok(DevDatabase {
            url: database.url,
            started,
        })
    }

    /// `migrate up`; whether the database is now current. Failures are reported, not
    /// fatal: the developer fixes the file and saves.
    fn migrate(&self, root: &Path, runtime: &tokio::runtime::Runtime) -> bool {
        let dir = root.join(crate::migrate::MIGRATIONS_DIR);
        let options = UpOptions {
            on_wait: Some(Arc::new(|holder| {
                say(
                    Who::Db,
                    format_args!("waiting for the migration lock, held by {holder}"),
                )
            })),
            on_applied: Some(Arc::new(|migration, _, _| {
                say(
                    Who::Db,
                    format_args!(
                        "applied {} migration {:04} {} ({} ms)",
                        migration.kind.as_str(),
                        migration.version,
                        migration.name,
                        migration.duration.as_millis()
                    ),
                )
            })),
            ..UpOptions::default()
        };
        let result: Result<usize, String> = runtime.block_on(async {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&self.url)
                .await
                .map_err(|e| format!("cannot connect to the database: {e}"))?;
            let applied = runner::up(&pool, &dir, &options).await;
            pool.close().await;
            applied
                .map(|applied| applied.migrations.len())
                .map_err(|e| e.to_string())
        });
        match result {
            Ok(0) => say(Who::Db, "migrations up to date"),
            Ok(n) => say(Who::Db, format_args!("applied {n} migrations")),
            Err(message) => {
                say(Who::Db, format_args!("migrate up failed: {message}"));
                return false;
            }
        }
        true
    }
}

impl Drop for DevDatabase {
    fn drop(&mut self) {
        let Some(cluster) = self.started.take() else {
            return;
        };
        match cluster.stop() {
            Ok(Some(server)) => say(
                Who::Db,
                format_args!("stopped PostgreSQL (pid {})", server.pid),
            ),
            Ok(None) => say(Who::Db, "PostgreSQL had already stopped"),
            Err(error) => say(Who::Db, format_args!("cannot stop PostgreSQL: {error}")),
        }
    }
}

/// `cargo run` of the app, restarted on demand.
struct App {
    root: PathBuf,
    url: String,
    cargo_args: Vec<String>,
    running: Option<Running>,
}

struct Running {
    child: Child,
    /// cargo said "could not compile": the exit is a build failure, not the app's.
    build_failed: Arc<AtomicBool>,
}

impl App {
    fn start(&mut self) {
        // The cargo that runs forge (set by `cargo run`), else the one on PATH.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .arg("run")
            .args(&self.cargo_args)
            .current_dir(&self.root)
            .env(DATABASE_URL_ENV, &self.url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: Ctrl-C at the terminal reaches forge dev alone, which stops the
            // app gracefully, and a signal to the group reaches rustc processes of a build.
            .process_group(0);
        if color() {
            command.env("CARGO_TERM_COLOR", "always");
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                say(Who::Dev, format_args!("cannot run cargo: {error}"));
                return;
            }
        };
        // cargo run replaces itself with the app once it is built (exec on Unix), so this
        // pid is first the build's and then the app's.
        say(Who::Dev, format_args!("cargo run (pid {})", child.id()));
        let build_failed = Arc::new(AtomicBool::new(false));
        if let Some(stdout) = child.stdout.take() {
            forward(stdout, false, None);
        }
        if let Some(stderr) = child.stderr.take() {
            forward(stderr, true, Some(build_failed.clone()));
        }
        self.running = Some(Running {
            child,
            build_failed,
        });
    }

    /// Reports the app's exit when it ended on its own.
    fn poll(&mut self) {
        let Some(running) = &mut self.running else {
            return;
        };
        match running.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                report_exit(status, &running.build_failed);
                self.running = None;
            }
            Err(error) => {
                say(Who::Dev, format_args!("cannot watch the app: {error}"));
                self.running = None;
            }
        }
    }

    /// SIGTERM to the app's group, [`STOP_TIMEOUT`] to exit, then SIGKILL.
    fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        if let Ok(Some(status)) = running.child.try_wait() {
            report_exit(status, &running.build_failed);
            return;
        }
        // The group's id is the child's pid (`process_group(0)`). A pid beyond i32 cannot
        // occur on Unix; the fallback only keeps this total.
        let group = Pid::from_raw(i32::try_from(running.child.id()).unwrap_or(i32::MAX));
        let _ = killpg(group, UnixSignal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match running.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    say(
                        Who::Dev,
                        format_args!(
                            "the app did not stop within {} s; killing it",
                            STOP_TIMEOUT.as_secs()
                        ),
                    );
                    let _ = killpg(group, UnixSignal::SIGKILL);
                    let _ = running.child.wait();
                    break;
                }
            }
        }
        say(Who::Dev, "app stopped");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}

fn report_exit(status: ExitStatus, build_failed: &AtomicBool) {
    let message = if build_failed.load(Ordering::Relaxed) {
        "the build failed; fix the error and save to try again".to_owned()
    } else if status.success() {
        "the app exited; save a file to start it again".to_owned()
    } else {
        format!("the app exited ({status}); save a file to start it again")
    };
    say(Who::Dev, message);
}

/// Copies the child's output line by line after the `app` prefix, on a thread of its own
/// (it ends at end of file). With `build_failed`, notes cargo's "could not compile".
fn forward(
    stream: impl Read + Send + 'static,
    to_stderr: bool,
    build_failed: Option<Arc<AtomicBool>>,
) {
    let spawned = std::thread::Builder::new()
        .name("forge dev output".into())
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            let prefix = prefix(Who::App);
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                if let Some(flag) = &build_failed {
                    if strip_ansi(text).starts_with("error: could not compile") {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                // A closed stdout or stderr (forge dev piped into `head`) must not panic
                // this thread the way println! would.
                if to_stderr {
                    let _ = writeln!(std::io::stderr().lock(), "{prefix}{text}");
                } else {
                    let _ = writeln!(std::io::stdout().lock(), "{prefix}{text}");
                }
            }
        });
    if let Err(error) = spawned {
        say(
            Who::Dev,
            format_args!("cannot forward the app's output: {error}"),
        );
    }
}

/// `text` without ANSI escape sequences (cargo colours its output when forge dev's stderr
/// is a terminal).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;

    #[test]
    fn ansi_escapes_are_stripped() {
        assert_eq!(
            strip_ansi("\x1b[1m\x1b[91merror\x1b[0m\x1b[1m: could not compile `x`\x1b[0m"),
            "error: could not compile `x`"
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
