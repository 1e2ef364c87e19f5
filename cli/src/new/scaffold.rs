//! `forge new <kind> <name>`: one handler (or model) from a template, in its own file,
//! declared with `pub mod` where it belongs, and the generated files brought up to date.

use std::path::{Path, PathBuf};

use serde::Serialize;

use forge_codegen::ir::Kind;

use super::{names, templates};
use crate::project::Project;
use crate::{Fatal, Outcome};

/// The kind `forge new <kind> <name>` names (`mcp_tool` or `mcp-tool`).
pub fn parse_kind(word: &str) -> Result<Kind, Fatal> {
    Kind::from_attribute_name(&word.replace('-', "_")).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|kind| kind.attribute_name()).collect();
        Fatal(format!(
            "`{word}` is not a handler kind; `forge new <kind> <name>` takes one of {}, and `forge new <name>` creates a project",
            names.join(", ")
        ))
    })
}

fn template(kind: Kind) -> String {
    format!("scaffold/{}.rs.j2", kind.attribute_name())
}

/// The module directory under `src/` the file goes in.
fn module(kind: Kind) -> &'static str {
    match kind {
        Kind::Model => "models",
        _ => "functions",
    }
}

#[derive(Serialize)]
struct Context {
    name: String,
    type_name: String,
    table: String,
    secret_env: String,
}

pub fn run(project: Option<&Path>, kind: Kind, name: &str) -> Result<Outcome, Fatal> {
    let project = Project::locate(project)?;
    let file_name = match kind {
        Kind::Model => names::snake_case(name),
        _ => name.to_owned(),
    };
    names::check_handler(&file_name).map_err(|why| Fatal(format!("{why}; choose another name")))?;
    let context = Context {
        type_name: names::pascal_case(&file_name),
        table: format!("{file_name}s"),
        secret_env: format!("{}_SECRET", file_name.to_ascii_uppercase()),
        name: file_name.clone(),
    };
    let src = project.root.join("src");
    let module_dir = src.join(module(kind));
    let file = module_dir.join(format!("{file_name}.rs"));
    if file.exists() {
        return Err(Fatal(format!(
            "{} already exists; forge new never overwrites a file",
            file.display()
        )));
    }
    let contents = templates::render_file(&template(kind), &context)?;

    let module_file = module_dir.join("mod.rs");
    let sibling_file = src.join(format!("{}.rs", module(kind)));
    let (module_file, new_module) = if module_file.is_file() {
        (module_file, false)
    } else if sibling_file.is_file() {
        (sibling_file, false)
    } else {
        (module_file, true)
    };
    let crate_root = crate_root(&src)?;

    std::fs::create_dir_all(&module_dir)
        .map_err(|e| Fatal(format!("cannot create {}: {e}", module_dir.display())))?;
    write_new(&file, &contents)?;
    add_mod(&module_file, &file_name)?;
    if new_module {
        add_mod(&crate_root, module(kind))?;
    }
    eprintln!(
        "Created {}",
        file.strip_prefix(&project.root).unwrap_or(&file).display()
    );
    crate::generate::run_in(&project.root)
}

/// `src/lib.rs` when the crate has one (handlers belong to the library), else `src/main.rs`.
fn crate_root(src: &Path) -> Result<PathBuf, Fatal> {
    ["lib.rs", "main.rs"]
        .iter()
        .map(|name| src.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| Fatal(format!("{} has neither lib.rs nor main.rs", src.display())))
}

fn write_new(path: &Path, contents: &str) -> Result<(), Fatal> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Fatal(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| Fatal(format!("cannot write {}: {e}", path.display())))
}

/// Adds `pub mod <name>;` to `file` (created when missing) after its last `mod` line, unless
/// the module is declared already.
fn add_mod(file: &Path, name: &str) -> Result<(), Fatal> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Fatal(format!("cannot read {}: {e}", file.display()))),
    };
    let declares = |line: &str| {
        let line = line.trim();
        let line = line.strip_prefix("pub ").unwrap_or(line);
        line == format!("mod {name};")
    };
    if text.lines().any(declares) {
        return Ok(());
    }
    let mut lines: Vec<&str> = text.lines().collect();
    let is_mod = |line: &&str| {
        let line = line.trim_start();
        line.starts_with("mod ") || line.starts_with("pub mod ")
    };
    let at = lines
        .iter()
        .rposition(is_mod)
        .map_or_else(|| first_code_line(&lines), |i| i + 1);
    let declaration = format!("pub mod {name};");
    lines.insert(at, &declaration);
    let mut updated = lines.join("\n");
    updated.push('\n');
    std::fs::write(file, updated)
        .map_err(|e| Fatal(format!("cannot write {}: {e}", file.display())))
}

/// Where a first `mod` line goes: after the leading inner doc comments and attributes.
fn first_code_line(lines: &[&str]) -> usize {
    lines
        .iter()
        .position(|line| {
            let line = line.trim_start();
            !(line.starts_with("//!") || line.starts_with("#![") || line.is_empty())
        })
        .unwrap_or(lines.len())
}
