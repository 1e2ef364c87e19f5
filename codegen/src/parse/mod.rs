//! Per-file extraction: one `.rs` file's text in, a [`ParsedFile`] out.
//!
//! Nothing here looks at other files; names are resolved later, in `resolve`.

mod body;
mod items;
mod serde_attrs;
mod span;
pub mod syntax;
mod type_expr;

pub use items::absolute as absolute_path;
pub use syntax::ParsedFile;

use crate::ir::Diagnostic;

/// The generated glue file, which the parser must not read back.
pub const GENERATED_RUST_FILE: &str = "src/forge_generated.rs";

/// The module path of a crate source file (`src/functions/users.rs` → `functions::users`),
/// or `None` when the file is not part of the crate's module tree: outside `src/`, under
/// `src/bin/` (other crates), or the generated glue.
pub fn module_path(rel_path: &str) -> Option<String> {
    let inner = rel_path.strip_prefix("src/")?.strip_suffix(".rs")?;
    if rel_path == GENERATED_RUST_FILE || inner.starts_with("bin/") || inner == "bin" {
        return None;
    }
    let mut parts: Vec<&str> = inner.split('/').collect();
    if parts.len() == 1 && matches!(parts[0], "main" | "lib") {
        return Some(String::new());
    }
    if parts.last() == Some(&"mod") {
        parts.pop();
    }
    if parts.iter().any(|p| p.is_empty() || p.contains('.')) {
        return None;
    }
    Some(parts.join("::"))
}

/// Extracts everything forge needs from one file. Total: a file that does not parse gives
/// an FG001 diagnostic and nothing else.
pub fn parse_file(rel_path: &str, module: &str, text: &str) -> ParsedFile {
    let parsed = match syn::parse_file(text) {
        Ok(file) => parse_syntax(rel_path, module, &file),
        Err(error) => {
            let mut parsed = empty(rel_path, module);
            parsed.diagnostics.push(syntax_error(rel_path, &error));
            parsed
        }
    };
    // Spans are only needed until they are converted to line/column; free the thread's
    // source map so parsing thousands of files does not accumulate it.
    proc_macro2::extra::invalidate_current_thread_spans();
    parsed
}

/// [`parse_file`] for a syntax tree already in hand, such as the item a proc-macro sees
/// (whose spans are the compiler's, so nothing may be invalidated here).
pub fn parse_syntax(rel_path: &str, module: &str, file: &syn::File) -> ParsedFile {
    let mut parsed = empty(rel_path, module);
    items::extract(&mut parsed, file);
    parsed
}

fn empty(rel_path: &str, module: &str) -> ParsedFile {
    ParsedFile {
        file: rel_path.to_owned(),
        module: module.to_owned(),
        scopes: Vec::new(),
        types: Vec::new(),
        aliases: Vec::new(),
        handlers: Vec::new(),
        diagnostics: Vec::new(),
    }
}

/// The stand-in for a file that is not valid UTF-8: an FG001 diagnostic and nothing else.
pub fn unreadable(rel_path: &str, module: &str, reason: &str) -> ParsedFile {
    ParsedFile {
        diagnostics: vec![Diagnostic::error(
            "FG001",
            format!("this file is not valid UTF-8: {reason}"),
            Some(crate::ir::Span {
                file: rel_path.to_owned(),
                line: 1,
                column: 1,
                end_line: 1,
                end_column: 1,
            }),
        )
        .with_help("save the file as UTF-8")],
        ..empty(rel_path, module)
    }
}

fn syntax_error(rel_path: &str, error: &syn::Error) -> Diagnostic {
    Diagnostic::error(
        "FG001",
        format!("this file does not parse: {error}"),
        Some(span::convert(rel_path, error.span())),
    )
    .with_label(error.to_string())
    .with_help(
        "fix the syntax error; until then forge skips this file and reads the rest of the crate",
    )
}
