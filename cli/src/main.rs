//! `forge`: the command-line tool. Orchestration and I/O only; everything that reads or
//! writes code lives in `forge-codegen`.

mod against;
mod check;
mod db;
mod dev;
mod format;
mod generate;
mod migrate;
mod new;
mod output;
mod project;
mod reactivity;
mod render;
mod sources;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// glibc's allocator spends a third of a cold `forge generate` in malloc/free across the
/// parser threads; mimalloc's thread-local heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "forge",
    version,
    about = "Postgres-backed Rust backends from plain async functions"
)]
struct Cli {
    /// The project directory (default: the nearest directory upwards with a forge.toml).
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the Rust glue, the TypeScript client and forge.lock from the source.
    Generate(generate::Args),
    /// Check the crate against every rule; the CI gate.
    Check(check::Args),
    /// Start, stop, inspect or reset the development PostgreSQL cluster in .forge/pg.
    Db(db::Args),
    /// Apply the project's migrations or show where they stand.
    Migrate(migrate::Args),
    /// Run the app for development: database, migrations, watch-mode generation and
    /// `cargo run`, restarted on every change.
    Dev(dev::Args),
    /// Create a project (`forge new <name>`) or a handler in this one (`forge new <kind> <name>`).
    New(new::Args),
}

/// A failure that stops forge before it could do its job (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Fatal(pub String);

/// How a command ended when forge itself ran fine.
pub enum Outcome {
    /// Nothing to report (exit 0).
    Clean,
    /// Errors in the project, or stale files under `--check` (exit 1).
    Problems,
}

/// syn recurses on nested types and modules; deep but valid user code must not overflow
/// the 2 MiB default stacks of rayon's workers.
const PARSER_STACK: usize = 64 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only fails when a pool already exists, which it cannot at this point.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(PARSER_STACK)
        .build_global();
    let result = match cli.command {
        Command::Generate(args) => generate::run(cli.project.as_deref(), &args),
        Command::Check(args) => check::run(cli.project.as_deref(), &args),
        Command::Db(args) => db::run(cli.project.as_deref(), &args),
        Command::Migrate(args) => migrate::run(cli.project.as_deref(), &args),
        Command::New(args) => new::run(cli.project.as_deref(), &args),
        Command::Dev(args) => dev::run(cli.project.as_deref(), &args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(Fatal(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
