//! `#[serde(...)]` attributes, read the way serde_derive reads them.
//!
//! Options that do not change the wire shape (`bound`, `borrow`, `crate`, …) are accepted
//! and ignored; options that change it in ways forge cannot follow (`with`, `from`, `into`,
//! `remote`, …) become warnings, since the generated types could not be trusted.

use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, Lit, Meta, Token};

use super::span;
use super::syntax::{ContainerAttrs, Directional, FieldAttrs, VariantAttrs};
use crate::ir::{Diagnostic, Severity};

/// One `name` / `name = "value"` / `name(...)` inside `#[serde(...)]`.
struct Entry<'a> {
    name: String,
    meta: &'a Meta,
}

fn entries(attrs: &[Attribute], file: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<Meta> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => out.extend(metas),
            Err(error) => diagnostics.push(Diagnostic::error(
                "FG503",
                format!("this #[serde] attribute does not parse: {error}"),
                Some(span::of(file, attr)),
            )),
        }
    }
    out
}

fn named(meta: &Meta) -> Entry<'_> {
    Entry {
        name: meta
            .path()
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        meta,
    }
}

fn string_value(meta: &Meta) -> Option<String> {
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

/// `rename = "x"` or `rename(serialize = "a", deserialize = "b")`.
fn directional(meta: &Meta) -> Directional {
    if let Some(both) = string_value(meta) {
        return Directional {
            serialize: Some(both.clone()),
            deserialize: Some(both),
        };
    }
    let mut out = Directional::default();
    if let Meta::List(list) = meta {
        if let Ok(inner) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            for meta in &inner {
                if meta.path().is_ident("serialize") {
                    out.serialize = string_value(meta);
                } else if meta.path().is_ident("deserialize") {
                    out.deserialize = string_value(meta);
                }
            }
        }
    }
    out
}

/// Options that change the wire shape in ways forge cannot see.
const OPAQUE: &[&str] = &[
    "with",
    "serialize_with",
    "deserialize_with",
    "from",
    "try_from",
    "into",
    "remote",
    "getter",
];

fn opaque(file: &str, entry: &Entry, diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.push(Diagnostic {
        code: "FG503".to_owned(),
        severity: Severity::Warning,
        message: format!(
            "`#[serde({})]` changes the wire format in a way forge cannot read from source",
            entry.name
        ),
        span: Some(span::of(file, entry.meta)),
        label: Some("custom serde representation".to_owned()),
        help: Some(
            "the generated client types this value as `unknown`; use a plain field type or a newtype with the wire shape you want".to_owned(),
        ),
    });
}

pub struct Read<T> {
    pub attrs: T,
    /// A custom representation forge cannot follow: the value is typed as unknown.
    pub opaque: bool,
}

/// Reads every `#[serde(...)]` entry with `apply` (which ignores names it does not know);
/// the options that make the wire shape unknowable are handled here, for all three kinds.
fn read<T: Default>(
    attrs: &[Attribute],
    file: &str,
    diagnostics: &mut Vec<Diagnostic>,
    mut apply: impl FnMut(&mut T, &str, &Meta),
) -> Read<T> {
    let mut out = T::default();
    let mut is_opaque = false;
    for meta in entries(attrs, file, diagnostics) {
        let entry = named(&meta);
        if OPAQUE.contains(&entry.name.as_str()) {
            is_opaque = true;
            opaque(file, &entry, diagnostics);
        } else {
            apply(&mut out, &entry.name, &meta);
        }
    }
    Read {
        attrs: out,
        opaque: is_opaque,
    }
}

/// `skip`, `skip_serializing`, `skip_deserializing`, shared by fields and variants:
/// `(serializing, deserializing)` after the entry, or `None` for another name.
fn skip(name: &str, current: (bool, bool)) -> Option<(bool, bool)> {
    match name {
        "skip" => Some((true, true)),
        "skip_serializing" => Some((true, current.1)),
        "skip_deserializing" => Some((current.0, true)),
        _ => None,
    }
}

pub fn container(
    attrs: &[Attribute],
    file: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Read<ContainerAttrs> {
    read(
        attrs,
        file,
        diagnostics,
        |out: &mut ContainerAttrs, name, meta| match name {
            "rename" => out.rename = directional(meta),
            "rename_all" => out.rename_all = directional(meta),
            "rename_all_fields" => out.rename_all_fields = directional(meta),
            "tag" => out.tag = string_value(meta),
            "content" => out.content = string_value(meta),
            "untagged" => out.untagged = true,
            "transparent" => out.transparent = true,
            "default" => out.default = true,
            _ => {}
        },
    )
}

pub fn field(
    attrs: &[Attribute],
    file: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Read<FieldAttrs> {
    read(
        attrs,
        file,
        diagnostics,
        |out: &mut FieldAttrs, name, meta| {
            if let Some((ser, de)) = skip(name, (out.skip_serializing, out.skip_deserializing)) {
                (out.skip_serializing, out.skip_deserializing) = (ser, de);
                return;
            }
            match name {
                "rename" => out.rename = directional(meta),
                "alias" => out.aliases.extend(string_value(meta)),
                "skip_serializing_if" => out.skip_serializing_if = string_value(meta),
                "default" => out.default = true,
                "flatten" => out.flatten = true,
                _ => {}
            }
        },
    )
}

pub fn variant(
    attrs: &[Attribute],
    file: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Read<VariantAttrs> {
    read(
        attrs,
        file,
        diagnostics,
        |out: &mut VariantAttrs, name, meta| {
            if let Some((ser, de)) = skip(name, (out.skip_serializing, out.skip_deserializing)) {
                (out.skip_serializing, out.skip_deserializing) = (ser, de);
                return;
            }
            match name {
                "rename" => out.rename = directional(meta),
                "alias" => out.aliases.extend(string_value(meta)),
                "rename_all" => out.rename_all = directional(meta),
                "other" => out.other = true,
                "untagged" => out.untagged = true,
                _ => {}
            }
        },
    )
}
