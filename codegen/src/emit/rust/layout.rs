//! Layout of the parts of the glue whose width depends on the user's names.
//!
//! prettyplease and rustfmt break long lines differently: prettyplease at column 89,
//! rustfmt at column 100 but with a 60-column limit on argument and array lists, a filled
//! layout for lists of short items, and a value moved after `key:` onto the next line when
//! that makes it fit. No shape of code agrees in both for every width, so prettyplease
//! formats the glue with a placeholder identifier in place of each part listed in
//! [`Leaf`], and [`fill`] then lays each part out as rustfmt (default configuration) does,
//! from the column its placeholder ended up in. Everything else in the glue has the same
//! width whatever the user's names are, and is left to prettyplease.
//!
//! The rules below are rustfmt's, reduced to the shapes the glue uses; the tests hold them
//! against the real rustfmt over sweeps of widths.

use std::fmt::Write;

use proc_macro2::{Ident, Span};

const MAX_WIDTH: usize = 100;
/// rustfmt's `fn_call_width` and `array_width`: the widest a list of two or more items
/// may be on one line.
const LIST_WIDTH: usize = 60;
/// rustfmt's `short_array_element_width_threshold`: lists whose items are all at most this
/// long are filled into lines rather than written one item per line.
const SHORT_ITEM: usize = 10;
const INDENT: usize = 4;

/// A part of the glue laid out by [`fill`].
pub(super) enum Leaf {
    /// The value after `key:` in a struct literal.
    Value(Value),
    /// The call ending a closure: `handler(<arguments>).await`.
    HandlerCall(Vec<String>),
    /// A struct's name and type parameters, after `struct`.
    Generics { name: String, params: Vec<String> },
    /// A struct field's type, after `name:`.
    FieldType(String),
}

pub(super) enum Value {
    /// A string literal, as source.
    Str(String),
    /// `&[…]` of string literals, as source.
    Strs(Vec<String>),
    /// A call with one argument, as source: `Some("…")`,
    /// `forge::registry::Schedule::Cron("…")`.
    Call { callee: &'static str, arg: String },
}

/// Hands out placeholders for one chunk of the glue and keeps what they stand for.
pub(super) struct Leaves {
    chunk: usize,
    leaves: Vec<Leaf>,
}

impl Leaves {
    pub(super) fn new(chunk: usize) -> Self {
        Leaves {
            chunk,
            leaves: Vec::new(),
        }
    }

    /// A placeholder for `leaf`: a raw identifier, which is never how the glue spells a
    /// user's name (those are raw only when they are keywords), so it cannot be mistaken
    /// for one.
    pub(super) fn push(&mut self, leaf: Leaf) -> Ident {
        let name = format!("{PLACEHOLDER}{}_{}", self.chunk, self.leaves.len());
        self.leaves.push(leaf);
        Ident::new_raw(&name, Span::call_site())
    }

    pub(super) fn str(&mut self, value: &str) -> Ident {
        self.push(Leaf::Value(Value::Str(string_literal(value))))
    }

    pub(super) fn strs<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> Ident {
        let literals = values.into_iter().map(string_literal).collect();
        self.push(Leaf::Value(Value::Strs(literals)))
    }

    pub(super) fn call(&mut self, callee: &'static str, arg: String) -> Ident {
        self.push(Leaf::Value(Value::Call { callee, arg }))
    }

    pub(super) fn some_str(&mut self, value: &str) -> Ident {
        self.call("Some", string_literal(value))
    }

    pub(super) fn into_vec(self) -> Vec<Leaf> {
        self.leaves
    }
}

const PLACEHOLDER: &str = "__forge_";
const RAW_PLACEHOLDER: &str = "r#__forge_";

/// `text` (prettyplease's output) with every placeholder replaced by the layout of its
/// leaf, `leaf(chunk, index)`. Text that only looks like a placeholder (a user's string in
/// a `compile_error!` message, say) names no leaf and is kept.
pub(super) fn fill<'a>(text: &str, leaf: impl Fn(usize, usize) -> Option<&'a Leaf>) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while let Some(at) = rest.find(RAW_PLACEHOLDER) {
        let (before, found) = rest.split_at(at);
        out.push_str(before);
        let digits = &found[RAW_PLACEHOLDER.len()..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit() && c != '_')
            .unwrap_or(digits.len());
        rest = &digits[end..];
        let leaf = parse_placeholder(&digits[..end]).and_then(|(chunk, index)| leaf(chunk, index));
        let Some(leaf) = leaf else {
            out.push_str(&found[..RAW_PLACEHOLDER.len() + end]);
            continue;
        };
        let line = &out[out.rfind('\n').map_or(0, |n| n + 1)..];
        let indent = line.len() - line.trim_start_matches(' ').len();
        let laid_out = layout(leaf, indent, width(line));
        if laid_out.starts_with('\n') && out.ends_with(' ') {
            // The value moves to the next line: drop the space prettyplease put after `:`.
            out.pop();
        }
        out.push_str(&laid_out);
    }
    out.push_str(rest);
    out
}

fn parse_placeholder(digits: &str) -> Option<(usize, usize)> {
    let (chunk, index) = digits.split_once('_')?;
    Some((chunk.parse().ok()?, index.parse().ok()?))
}

/// `leaf` laid out from `column` (where its placeholder starts) on a line indented
/// `indent`. Text starting with a newline moves the leaf to the next line.
fn layout(leaf: &Leaf, indent: usize, column: usize) -> String {
    match leaf {
        Leaf::Value(Value::Str(literal)) => after_colon(literal, indent, column),
        Leaf::Value(Value::Strs(literals)) => {
            let items = list(literals, indent, column + "&[".len(), "],".len());
            format!("&[{items}]")
        }
        Leaf::Value(Value::Call { callee, arg }) => {
            let column = column + callee.len() + "(".len();
            let arg = list(std::slice::from_ref(arg), indent, column, "),".len());
            format!("{callee}({arg})")
        }
        Leaf::HandlerCall(args) => {
            let args = list(args, indent, column + "handler(".len(), ").await".len());
            if args.contains('\n') {
                // rustfmt puts `.await` on its own line after a broken argument list.
                format!("handler({args})\n{}.await", " ".repeat(indent))
            } else {
                format!("handler({args}).await")
            }
        }
        Leaf::Generics { name, params } => {
            let column = column + width(name) + "<".len();
            format!(
                "{name}<{}>",
                list_one_per_line(params, indent, column, ">".len())
            )
        }
        Leaf::FieldType(ty) => after_colon(ty, indent, column),
    }
}

/// Something that cannot be broken, after `key: ` and before `,`: on that line when it
/// fits, else on the next line when it fits there; when it fits nowhere rustfmt gives up
/// on the whole statement and keeps it as written, so it stays on the line.
fn after_colon(item: &str, indent: usize, column: usize) -> String {
    let next_line = indent + INDENT;
    if column + width(item) + ",".len() > MAX_WIDTH && next_line + width(item) <= MAX_WIDTH {
        format!("\n{}{item}", " ".repeat(next_line))
    } else {
        item.to_owned()
    }
}

/// The inside of a bracketed list that starts at `column` on a line indented `indent` and
/// is followed on its last line by `tail` characters: on that line when it fits (and, with
/// two or more items, is at most [`LIST_WIDTH`] wide); else filled into lines when every
/// item is short, else one item per line.
fn list(items: &[String], indent: usize, column: usize, tail: usize) -> String {
    let one_line = items.join(", ");
    let fits = items.len() < 2 || width(&one_line) <= LIST_WIDTH;
    if fits && column + width(&one_line) + tail <= MAX_WIDTH {
        return one_line;
    }
    // Short is measured in bytes, as rustfmt measures it.
    let lines = if items.len() > 1 && items.iter().all(|item| item.len() <= SHORT_ITEM) {
        filled(items, MAX_WIDTH.saturating_sub(indent + INDENT + ",".len()))
    } else {
        items.iter().map(|item| format!("{item},")).collect()
    };
    broken(&lines, indent)
}

/// Like [`list`], for lists rustfmt never fills or limits (type parameters).
fn list_one_per_line(items: &[String], indent: usize, column: usize, tail: usize) -> String {
    let one_line = items.join(", ");
    if column + width(&one_line) + tail <= MAX_WIDTH {
        return one_line;
    }
    let lines: Vec<String> = items.iter().map(|item| format!("{item},")).collect();
    broken(&lines, indent)
}

fn broken(lines: &[String], indent: usize) -> String {
    let mut out = String::new();
    for line in lines {
        let _ = write!(out, "\n{}{line}", " ".repeat(indent + INDENT));
    }
    let _ = write!(out, "\n{}", " ".repeat(indent));
    out
}

/// rustfmt's filled layout: each line takes items while it stays within `max`, counting
/// each item's comma; the last item's comma counts only once a line has been broken.
fn filled(items: &[String], max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for (i, item) in items.iter().enumerate() {
        let comma = usize::from(i + 1 < items.len() || !lines.is_empty());
        if !line.is_empty() && width(&line) + " ".len() + width(item) + comma > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(item);
        line.push(',');
    }
    lines.push(line);
    lines
}

/// Columns taken by `text`. rustfmt counts display width; counting characters agrees for
/// everything the glue writes (string literals are ASCII, see [`string_literal`]) except
/// identifiers with wide or combining characters.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// `value` as a Rust string literal in ASCII, so that its width is its length.
pub(super) fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_are_ascii_and_round_trip() {
        for value in [
            "plain",
            "quote \" and \\",
            "tab\tline\nreturn\r",
            "é — ✓ \u{0}",
        ] {
            let literal = string_literal(value);
            assert!(literal.is_ascii(), "{literal}");
            let parsed: syn::LitStr = syn::parse_str(&literal).expect("a valid literal");
            assert_eq!(parsed.value(), value);
        }
    }

    #[test]
    fn filled_lists_count_the_last_comma_only_after_a_break() {
        let t = |n| vec!["\"t\"".to_owned(); n];
        // `"t", "t", "t"` is 13 columns: its trailing comma does not count…
        assert_eq!(filled(&t(3), 13), ["\"t\", \"t\", \"t\","]);
        // …once a line has been broken it does.
        assert_eq!(
            filled(&t(5), 13),
            ["\"t\", \"t\",", "\"t\", \"t\",", "\"t\","]
        );
    }
}
