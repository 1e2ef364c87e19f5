//! Small pieces of TypeScript syntax: doc comments, property names, string literals.

use std::fmt::{self, Write};

use super::names::is_plain_property;

/// A JSDoc block from a Rust doc comment, its lines indented by `indent` spaces; nothing when
/// the doc is absent or blank.
pub(super) fn write_doc(out: &mut String, doc: Option<&str>, indent: usize) -> fmt::Result {
    let Some(doc) = doc else { return Ok(()) };
    let lines: Vec<&str> = doc.lines().map(str::trim_end).collect();
    let Some(first) = lines.iter().position(|line| !line.is_empty()) else {
        return Ok(());
    };
    let last = lines
        .iter()
        .rposition(|line| !line.is_empty())
        .unwrap_or(first);
    let lines = &lines[first..=last];
    // Doc attributes keep the space after `///`; strip what all lines share, keep the rest
    // (indented code blocks).
    let margin = lines
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| line.len() - line.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let pad = Pad(indent);
    if let [line] = lines {
        return writeln!(out, "{pad}/** {} */", escape_doc(&line[margin..]));
    }
    writeln!(out, "{pad}/**")?;
    for line in lines {
        match line.get(margin..) {
            Some(text) if !text.is_empty() => writeln!(out, "{pad} * {}", escape_doc(text))?,
            _ => writeln!(out, "{pad} *")?,
        }
    }
    writeln!(out, "{pad} */")
}

/// A `*/` inside the doc would end the comment early.
fn escape_doc(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains("*/") {
        text.replace("*/", "*\\/").into()
    } else {
        text.into()
    }
}

/// `indent` spaces.
pub(super) struct Pad(pub(super) usize);

impl fmt::Display for Pad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:1$}", "", self.0)
    }
}

/// A property name, quoted when it is not an identifier (`"first-name"`).
pub(super) fn write_property(out: &mut String, name: &str) -> fmt::Result {
    if is_plain_property(name) {
        out.write_str(name)
    } else {
        write_string(out, name)
    }
}

/// A string literal (also a string literal type). JSON's escaping is valid TypeScript.
pub(super) fn write_string(out: &mut String, value: &str) -> fmt::Result {
    out.write_char('"')?;
    if !value.chars().any(needs_escape) {
        out.write_str(value)?;
        return out.write_char('"');
    }
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if needs_escape(c) => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Quotes, backslashes, control characters, and the two line separators older engines
/// reject in string literals.
fn needs_escape(c: char) -> bool {
    matches!(c, '"' | '\\') || c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}
