//! Diagnostics as rustc-style reports with code frames.

use std::collections::HashMap;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use forge_codegen::ir::{Diagnostic, Severity, Span};

/// Colour when the report goes to a terminal, never with `NO_COLOR` set.
pub fn use_color(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Renders every diagnostic; `sources` maps project-relative paths to file contents.
pub fn render(diagnostics: &[Diagnostic], sources: &HashMap<&str, &str>, color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for diagnostic in diagnostics {
        out.push_str(&render_one(&renderer, diagnostic, sources));
        out.push_str("\n\n");
    }
    out
}

fn render_one(renderer: &Renderer, d: &Diagnostic, sources: &HashMap<&str, &str>) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group = Group::with_title(level.primary_title(d.message.as_str()).id(d.code.as_str()));
    if let Some(span) = &d.span {
        match sources.get(span.file.as_str()) {
            Some(text) => {
                let range = byte_range(text, span);
                let mut annotation = AnnotationKind::Primary.span(range);
                if let Some(label) = &d.label {
                    annotation = annotation.label(label.as_str());
                }
                group = group.element(
                    Snippet::source(*text)
                        .path(span.file.as_str())
                        .annotation(annotation),
                );
            }
            None => {
                group = group.element(
                    Level::NOTE.message(format!("at {}:{}:{}", span.file, span.line, span.column)),
                );
            }
        }
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let report: [Group; 1] = [group];
    renderer.render(&report).to_string()
}

/// Byte offsets of a line/column span (1-based, columns in characters), clamped to the text.
fn byte_range(text: &str, span: &Span) -> std::ops::Range<usize> {
    let start = offset(text, span.line, span.column);
    let end = offset(text, span.end_line, span.end_column).max(start);
    start..end
}

fn offset(text: &str, line: u32, column: u32) -> usize {
    let mut line_start = 0;
    for _ in 1..line.max(1) {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_text = &text[line_start..];
    let line_end = line_text.find('\n').unwrap_or(line_text.len());
    let column_bytes = line_text[..line_end]
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map_or(line_end, |(i, _)| i);
    line_start + column_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(line: u32, column: u32, end_line: u32, end_column: u32) -> Span {
        Span {
            file: "src/a.rs".into(),
            line,
            column,
            end_line,
            end_column,
        }
    }

    #[test]
    fn offsets_count_characters_and_clamp() {
        let text = "fn a() {}\nlet é = 1;\n";
        assert_eq!(byte_range(text, &span(1, 4, 1, 5)), 3..4);
        assert_eq!(byte_range(text, &span(2, 5, 2, 6)), 14..16);
        assert_eq!(byte_range(text, &span(9, 1, 9, 2)), text.len()..text.len());
        assert_eq!(byte_range(text, &span(1, 99, 1, 100)), 9..9);
    }
}
