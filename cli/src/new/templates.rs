//! The embedded templates (`templates/` in the repository), rendered with minijinja.

use include_dir::{include_dir, Dir};
use minijinja::Environment;
use serde::Serialize;

use crate::Fatal;

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../templates");

/// One rendered file: its path relative to the project, and its contents.
pub struct Rendered {
    pub path: String,
    pub contents: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Generated files end with a newline, like every file rustfmt and editors write.
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env
}

/// Renders every template under `dir` (e.g. `project`, `frontend/ts`), in path order.
pub fn render_dir(dir: &str, context: &impl Serialize) -> Result<Vec<Rendered>, Fatal> {
    let root = TEMPLATES
        .get_dir(dir)
        .ok_or_else(|| Fatal(format!("forge was built without the `{dir}` templates")))?;
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort_by(|a, b| a.path().cmp(b.path()));
    files
        .into_iter()
        .map(|file| {
            let relative = file.path().strip_prefix(dir).unwrap_or(file.path());
            let path = output_path(&relative.to_string_lossy());
            Ok(Rendered {
                contents: render(&file.path().to_string_lossy(), file.contents(), context)?,
                path,
            })
        })
        .collect()
}

/// Renders the single template at `path`.
pub fn render_file(path: &str, context: &impl Serialize) -> Result<String, Fatal> {
    let file = TEMPLATES
        .get_file(path)
        .ok_or_else(|| Fatal(format!("forge was built without the template {path}")))?;
    render(path, file.contents(), context)
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    out.extend(dir.files());
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

fn render(name: &str, source: &[u8], context: &impl Serialize) -> Result<String, Fatal> {
    let source =
        std::str::from_utf8(source).map_err(|_| Fatal(format!("template {name} is not UTF-8")))?;
    environment()
        .render_str(source, context)
        .map_err(|e| Fatal(format!("template {name}: {e}")))
}

/// `gitignore.j2` → `.gitignore`; `src/lib.rs.j2` → `src/lib.rs`.
fn output_path(template: &str) -> String {
    let path = template.trim_start_matches('/').trim_end_matches(".j2");
    match path.rsplit_once('/') {
        None if path == "gitignore" => ".gitignore".to_owned(),
        Some((dir, "gitignore")) => format!("{dir}/.gitignore"),
        _ => path.to_owned(),
    }
}
