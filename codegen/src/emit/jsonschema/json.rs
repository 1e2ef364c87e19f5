//! A JSON value with its keys in the order they were written, and its two renderings.
//!
//! The emitter builds its output with this instead of `serde_json::Value` so that key
//! order is the emitter's choice (`type` before `properties`, …) and never depends on
//! whether some other crate in the build turned on serde_json's `preserve_order`.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
    /// A reference to definition `n`, rendered as the string `#/$defs/<its key>`.
    Ref(usize),
}

impl Json {
    pub(crate) fn str(text: impl Into<String>) -> Json {
        Json::Str(text.into())
    }

    /// An object from `(key, value)` pairs.
    pub(crate) fn obj<K: Into<String>>(members: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// `{"type": name}`.
    pub(crate) fn typed(name: &str) -> Json {
        Json::obj([("type", Json::str(name))])
    }

    /// Adds `key: value` to an object; anything else is wrapped in `allOf` first, which
    /// keeps its meaning.
    pub(crate) fn with(mut self, key: &str, value: Json) -> Json {
        match &mut self {
            Json::Obj(members) => {
                members.push((key.to_owned(), value));
                self
            }
            _ => Json::obj([("allOf", Json::Arr(vec![self])), (key, value)]),
        }
    }
}

/// Renders `json`, resolving references with `fragment(n)` (`#/$defs/…`). `indent` is
/// `None` for the compact form and `Some(0)` for the pretty one (two spaces per level, as
/// `serde_json::to_string_pretty` writes).
pub(crate) fn render(
    json: &Json,
    indent: Option<usize>,
    fragment: &dyn Fn(usize) -> String,
) -> String {
    let mut out = String::new();
    write(&mut out, json, indent, fragment);
    out
}

fn write(out: &mut String, json: &Json, indent: Option<usize>, fragment: &dyn Fn(usize) -> String) {
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Json::Str(s) => string(out, s),
        Json::Ref(n) => string(out, &fragment(*n)),
        Json::Arr(items) => {
            if items.is_empty() {
                return out.push_str("[]");
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i, indent);
                write(out, item, indent.map(|n| n + 1), fragment);
            }
            close(out, indent, ']');
        }
        Json::Obj(members) => {
            if members.is_empty() {
                return out.push_str("{}");
            }
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                separator(out, i, indent);
                string(out, key);
                out.push_str(if indent.is_some() { ": " } else { ":" });
                write(out, value, indent.map(|n| n + 1), fragment);
            }
            close(out, indent, '}');
        }
    }
}

fn separator(out: &mut String, i: usize, indent: Option<usize>) {
    if i > 0 {
        out.push(',');
    }
    if let Some(level) = indent {
        out.push('\n');
        out.push_str(&"  ".repeat(level + 1));
    }
}

fn close(out: &mut String, indent: Option<usize>, bracket: char) {
    if let Some(level) = indent {
        out.push('\n');
        out.push_str(&"  ".repeat(level));
    }
    out.push(bracket);
}

fn string(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).expect("a string always serialises"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_back_to_the_same_value() {
        let json = Json::obj([
            (
                "a",
                Json::Arr(vec![Json::Int(-1), Json::Null, Json::Bool(true)]),
            ),
            ("b \"q\"", Json::obj([("c", Json::Ref(0))])),
            ("e", Json::Arr(Vec::new())),
            ("f", Json::Obj(Vec::new())),
        ]);
        let fragment = |_| "#/$defs/X".to_owned();
        let compact = render(&json, None, &fragment);
        let pretty = render(&json, Some(0), &fragment);
        let a: serde_json::Value = serde_json::from_str(&compact).unwrap();
        let b: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string_pretty(&b).unwrap().len(),
            pretty.len()
        );
        assert!(!compact.contains(' ') || compact.contains("\"b \\\"q\\\"\""));
    }
}
