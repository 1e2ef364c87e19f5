//! `forge new <name>`: a complete project that builds, checks clean and passes its tests.
//!
//! The project is written to a temporary directory next to its destination and renamed
//! into place at the end, so a failure at any step leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use super::{interactive, names, templates, Args, Frontend};
use crate::{Fatal, Outcome};

#[derive(Serialize)]
struct Context {
    name: String,
    crate_ident: String,
    frontend: &'static str,
    targets: String,
    forge_dependency: String,
    forge_test_dependency: String,
}

pub fn run(args: &Args, name: Option<&String>) -> Result<Outcome, Fatal> {
    let asking = interactive(args.yes);
    let name = match name {
        Some(name) => name.clone(),
        None if asking => prompt_name()?,
        None => {
            return Err(Fatal(
                "forge new needs the project's name: `forge new <name>` (or run it in a terminal to be asked)".into(),
            ))
        }
    };
    names::check_project(&name)
        .map_err(|why| Fatal(format!("{why}; choose another project name")))?;
    let frontend = match args.frontend {
        Some(frontend) => frontend,
        None if asking => prompt_frontend()?,
        None => Frontend::Ts,
    };
    let cwd = std::env::current_dir()
        .map_err(|e| Fatal(format!("cannot read the current directory: {e}")))?;
    let destination = cwd.join(args.output.clone().unwrap_or_else(|| PathBuf::from(&name)));
    refuse_non_empty(&destination)?;
    let runtime = runtime_dependency(args.forge_path.as_deref())?;

    let context = Context {
        crate_ident: name.replace('-', "_"),
        name: name.clone(),
        frontend: match frontend {
            Frontend::Ts => "ts",
            Frontend::Dioxus => "dioxus",
            Frontend::None => "none",
        },
        targets: match frontend {
            Frontend::Ts => r#""rust", "typescript""#,
            Frontend::Dioxus => r#""rust", "dioxus""#,
            Frontend::None => r#""rust""#,
        }
        .to_owned(),
        forge_test_dependency: runtime.with_features(&["test-support"]),
        forge_dependency: runtime.with_features(&[]),
    };

    let parent = destination
        .parent()
        .ok_or_else(|| Fatal(format!("{} has no parent directory", destination.display())))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| Fatal(format!("cannot create {}: {e}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".forge-new-")
        .tempdir_in(parent)
        .map_err(|e| {
            Fatal(format!(
                "cannot create a temporary directory in {}: {e}",
                parent.display()
            ))
        })?;
    let mut files = templates::render_dir("project", &context)?;
    match frontend {
        Frontend::Ts => files.extend(prefixed(
            "frontend",
            templates::render_dir("frontend/ts", &context)?,
        )),
        Frontend::Dioxus => files.extend(prefixed(
            "frontend",
            templates::render_dir("frontend/dioxus", &context)?,
        )),
        Frontend::None => {}
    }
    for file in &files {
        let path = staging.path().join(&file.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Fatal(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(&path, &file.contents)
            .map_err(|e| Fatal(format!("cannot write {}: {e}", path.display())))?;
    }
    // The glue, the client and forge.lock, so the project builds as it is.
    if let Outcome::Problems = crate::generate::run_in(staging.path())? {
        return Err(Fatal(
            "the new project does not pass forge generate; this is a bug in forge's templates"
                .into(),
        ));
    }
    let _ = std::fs::remove_dir_all(staging.path().join("target"));

    if destination.exists() {
        std::fs::remove_dir(&destination).map_err(|e| {
            Fatal(format!(
                "cannot replace the empty directory {}: {e}",
                destination.display()
            ))
        })?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &destination).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        Fatal(format!(
            "cannot move the project to {}: {e}",
            destination.display()
        ))
    })?;
    let git = git_init(&destination);

    let shown = destination.strip_prefix(&cwd).unwrap_or(&destination);
    eprintln!("Created {} in {}{git}", name, shown.display());
    eprintln!();
    eprintln!("Next steps:");
    eprintln!("  cd {}", shown.display());
    eprintln!("  forge dev       # database, migrations, generated code and the server, live");
    eprintln!("  cargo test      # the tests in tests/, each on a fresh database");
    Ok(Outcome::Clean)
}

fn prefixed(
    dir: &str,
    files: Vec<templates::Rendered>,
) -> impl Iterator<Item = templates::Rendered> + '_ {
    files.into_iter().map(move |mut file| {
        file.path = format!("{dir}/{}", file.path);
        file
    })
}

fn prompt_name() -> Result<String, Fatal> {
    dialoguer::Input::<String>::new()
        .with_prompt("Project name")
        .validate_with(|name: &String| names::check_project(name))
        .interact_text()
        .map_err(|e| Fatal(format!("cannot read the answer: {e}")))
}

fn prompt_frontend() -> Result<Frontend, Fatal> {
    let choice = dialoguer::Select::new()
        .with_prompt("Frontend")
        .items(&[
            "TypeScript client",
            "Dioxus (Rust) client",
            "none (backend only)",
        ])
        .default(0)
        .interact()
        .map_err(|e| Fatal(format!("cannot read the answer: {e}")))?;
    Ok([Frontend::Ts, Frontend::Dioxus, Frontend::None][choice])
}

fn refuse_non_empty(destination: &Path) -> Result<(), Fatal> {
    if destination.is_file() {
        return Err(Fatal(format!(
            "{} is a file; choose another name or --output DIR",
            destination.display()
        )));
    }
    let entries = match std::fs::read_dir(destination) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Fatal(format!("cannot read {}: {e}", destination.display()))),
    };
    if entries.count() > 0 {
        return Err(Fatal(format!(
            "{} exists and is not empty; choose another name or --output DIR",
            destination.display()
        )));
    }
    Ok(())
}

/// How the project depends on the runtime: by path (`--forge-path`, or this checkout when
/// forge was built from one) or by version.
enum Runtime {
    Path(String),
    Version(&'static str),
}

impl Runtime {
    fn with_features(&self, features: &[&str]) -> String {
        let source = match self {
            Runtime::Path(path) => format!("path = {}", toml_string(path)),
            Runtime::Version(version) => format!("version = \"{version}\""),
        };
        if features.is_empty() {
            format!("{{ {source} }}")
        } else {
            let list: Vec<String> = features.iter().map(|f| toml_string(f)).collect();
            format!("{{ {source}, features = [{}] }}", list.join(", "))
        }
    }
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn runtime_dependency(explicit: Option<&Path>) -> Result<Runtime, Fatal> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None if checkout.join("Cargo.toml").is_file() => checkout,
        None => return Ok(Runtime::Version(env!("CARGO_PKG_VERSION"))),
    };
    let manifest = std::fs::read_to_string(path.join("Cargo.toml")).map_err(|e| {
        Fatal(format!(
            "--forge-path {}: cannot read its Cargo.toml: {e}",
            path.display()
        ))
    })?;
    let is_forge = manifest
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| Some(t.get("package")?.get("name")?.as_str()? == "forge"))
        .unwrap_or(false);
    if !is_forge {
        return Err(Fatal(format!(
            "--forge-path {}: not the forge runtime crate (its Cargo.toml must name the package `forge`)",
            path.display()
        )));
    }
    let absolute = path
        .canonicalize()
        .map_err(|e| Fatal(format!("--forge-path {}: {e}", path.display())))?;
    Ok(Runtime::Path(absolute.to_string_lossy().into_owned()))
}

/// `git init` unless the project is already inside a repository; the note for the summary.
fn git_init(dir: &Path) -> String {
    let inside = Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .current_dir(dir)
        .output();
    match inside {
        Err(_) => " (git not found: no repository created)".to_owned(),
        Ok(output) if output.status.success() => String::new(),
        Ok(_) => match Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir)
            .status()
        {
            Ok(status) if status.success() => " (a new git repository)".to_owned(),
            _ => " (git init failed: no repository created)".to_owned(),
        },
    }
}
