//! `forge new`: a new project (`forge new <name>`), or a handler in the current one
//! (`forge new <kind> <name>`). Templates live in `templates/` and are embedded in the
//! binary.

mod names;
mod project;
mod scaffold;
mod templates;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use crate::{Fatal, Outcome};

#[derive(clap::Args)]
pub struct Args {
    /// The project's name; or a handler kind (query, mutation, job, cron, workflow, daemon,
    /// webhook, mcp_tool, model) and the handler's name.
    #[arg(value_name = "NAME | KIND NAME", num_args = 0..=2)]
    words: Vec<String>,
    /// The client to generate and the frontend folder to create.
    #[arg(long, value_enum)]
    frontend: Option<Frontend>,
    /// Where to create the project (default: ./NAME).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// The forge runtime crate to depend on by path (default: this checkout's, when forge
    /// was built from one; otherwise the published version).
    #[arg(long, value_name = "PATH")]
    forge_path: Option<PathBuf>,
    /// Ask nothing; use defaults for whatever was not given.
    #[arg(long, short)]
    yes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Frontend {
    /// A TypeScript client in frontend/src/lib/forge.
    Ts,
    /// A Dioxus crate in frontend/ with the generated Rust client.
    Dioxus,
    /// The backend only.
    None,
}

pub fn run(project: Option<&Path>, args: &Args) -> Result<Outcome, Fatal> {
    match args.words.as_slice() {
        [kind, name] => {
            let kind = scaffold::parse_kind(kind)?;
            scaffold::run(project, kind, name)
        }
        [name] => project::run(args, Some(name)),
        _ => project::run(args, None),
    }
}

/// Whether forge may ask questions: both ends are a terminal and `--yes` was not given.
fn interactive(yes: bool) -> bool {
    !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}
