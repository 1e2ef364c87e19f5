//! `forge db`: the project's development PostgreSQL cluster in `.forge/pg`.
//!
//! The URL goes to stdout (`export DATABASE_URL=$(forge db url)`), everything said to the
//! developer to stderr.

use std::future::Future;
use std::path::Path;

use forge_db::{Database, DbError, Origin, Resolver, Source};

use crate::project::Project;
use crate::{Fatal, Outcome};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Start the development cluster (created on first use) and print its URL.
    Start,
    /// Stop the development cluster.
    Stop,
    /// Say whether the development cluster runs, its port, data directory, server version
    /// and where its binaries came from (installed, or downloaded by forge).
    Status,
    /// Print the URL forge uses: DATABASE_URL when set, else the development cluster's
    /// (started when needed).
    Url,
    /// Delete the development cluster and start an empty one. Asks nothing: it holds
    /// development data only, and DATABASE_URL's server is never touched.
    Reset,
}

pub fn run(project: Option<&Path>, args: &Args) -> Result<Outcome, Fatal> {
    let project = Project::locate(project)?;
    let root = project.root.as_path();
    let resolver = Resolver::from_env();
    if resolver.database_url.is_some() && !matches!(args.command, Command::Url) {
        eprintln!("forge db: DATABASE_URL is set, so forge uses that server, not this cluster");
    }
    match args.command {
        Command::Start => started(&block_on(resolver.embedded(root))?),
        Command::Stop => match resolver
            .cluster(root)
            .and_then(|c| c.stop())
            .map_err(fatal)?
        {
            Some(server) => eprintln!("forge db: stopped the server on port {}", server.port),
            None => eprintln!("forge db: not running"),
        },
        Command::Status => status(&resolver, root)?,
        Command::Url => println!("{}", block_on(resolver.resolve(root))?.url),
        Command::Reset => {
            resolver
                .cluster(root)
                .and_then(|c| c.destroy())
                .map_err(fatal)?;
            eprintln!("forge db: deleted the development cluster");
            started(&block_on(resolver.embedded(root))?);
        }
    }
    Ok(Outcome::Clean)
}

fn block_on<T>(future: impl Future<Output = Result<T, DbError>>) -> Result<T, Fatal> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
        .map_err(fatal)
}

fn fatal(error: DbError) -> Fatal {
    Fatal(error.to_string())
}

fn started(database: &Database) {
    if let Source::Embedded {
        data_dir, server, ..
    } = &database.source
    {
        eprintln!(
            "forge db: PostgreSQL runs on 127.0.0.1:{} (pid {}), data in {}",
            server.port,
            server.pid,
            data_dir.display()
        );
    }
    println!("{}", database.url);
}

fn status(resolver: &Resolver, root: &Path) -> Result<(), Fatal> {
    let cluster = resolver.cluster(root).map_err(fatal)?;
    let status = cluster.status().map_err(fatal)?;
    let state = match (status.server, status.initialised) {
        (Some(server), _) => format!("running (pid {})", server.pid),
        (None, true) => "stopped".to_owned(),
        (None, false) => "not created yet (`forge db start` creates it)".to_owned(),
    };
    println!("status:   {state}");
    if let Some(server) = status.server {
        println!("port:     {}", server.port);
        println!("url:      {}", server.url(&forge_db::database_name(root)));
    }
    println!("data dir: {}", status.data_dir.display());
    let binaries = cluster.binaries();
    println!(
        "server:   {} in {}",
        status.version,
        binaries.dir().display()
    );
    match binaries.origin() {
        Origin::Installed => println!("binaries: installed"),
        Origin::Downloaded { package, url } => {
            println!("binaries: downloaded by forge ({package} from {url})");
        }
    }
    Ok(())
}
