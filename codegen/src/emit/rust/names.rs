//! Identifiers in the glue: the user's names spelled as Rust, and the argument structs'
//! names.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::Ident;

/// Words that are plain identifiers to syn (and in edition 2021) but keywords in a newer
/// edition the user's crate may be written in, so they must be spelled raw.
const NEWER_KEYWORDS: &[&str] = &["gen"];

/// How `name` (with or without `r#`) is written as an identifier: raw (`r#type`) when it
/// is a keyword. `None` when no identifier spells it (`self`, `_`, `2fa`, `a-b`): such a
/// name can only come from a broken IR, and the caller reports it rather than emit glue
/// that misnames a handler.
pub(super) fn spelling(name: &str) -> Option<String> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    if plain_without_parsing(name) {
        return Some(name.to_owned());
    }
    let plain = !NEWER_KEYWORDS.contains(&name) && syn::parse_str::<Ident>(name).is_ok();
    let spelled = if plain {
        name.to_owned()
    } else {
        format!("r#{name}")
    };
    syn::parse_str::<Ident>(&spelled).ok().map(|_| spelled)
}

/// [`spelling`], remembering the names that need syn's parser: a crate repeats the same
/// few words (`functions`, `id`, `input`) in thousands of handlers.
#[derive(Default)]
pub(super) struct Speller {
    parsed: HashMap<String, Option<String>>,
}

impl Speller {
    pub(super) fn spell(&mut self, name: &str) -> Option<String> {
        if plain_without_parsing(name.strip_prefix("r#").unwrap_or(name)) {
            return spelling(name);
        }
        if let Some(spelled) = self.parsed.get(name) {
            return spelled.clone();
        }
        let spelled = spelling(name);
        self.parsed.insert(name.to_owned(), spelled.clone());
        spelled
    }
}

/// Whether `name` is certainly a plain identifier, decided without syn's parser (which
/// dominates the glue's cost when every chunk is reused): ASCII identifier characters with
/// a `_`, a digit or an upper-case letter in them. Every keyword, in every edition, is a
/// word of lower-case letters, except `Self` and `_`.
fn plain_without_parsing(name: &str) -> bool {
    let bytes = name.as_bytes();
    let identifier = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    identifier
        && name != "_"
        && name != "Self"
        && bytes
            .iter()
            .any(|b| *b == b'_' || b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// One struct name per entry of `handler_names`, in order: the PascalCase of the handler's
/// name; a later handler whose name would repeat an earlier one's gets the first free
/// `2`, `3`, … suffix that no other handler's own name takes, so adding a suffix never
/// steals a name and the result depends only on the order of the IR.
pub(super) fn struct_names<'a>(handler_names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let bases: Vec<String> = handler_names.map(pascal_case).collect();
    let all: BTreeSet<&str> = bases.iter().map(String::as_str).collect();
    let mut taken = BTreeSet::new();
    bases
        .iter()
        .map(|base| {
            let mut candidate = base.clone();
            let mut n = 2;
            while taken.contains(&candidate)
                || (candidate != *base && all.contains(candidate.as_str()))
            {
                candidate = format!("{base}{n}");
                n += 1;
            }
            taken.insert(candidate.clone());
            candidate
        })
        .collect()
}

/// `list_items`, `listItems`, `tickets.list` → `ListItems`, `ListItems`, `TicketsList`.
/// Anything that would not be a type name (empty, leading digit, `Self`) or would read as
/// one of the structs' type parameters (`A0`) is prefixed with `Args`.
fn pascal_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split(|c: char| !continues_identifier(c)) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    let type_parameter = out
        .strip_prefix('A')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let identifier = plain_without_parsing(&out) || syn::parse_str::<Ident>(&out).is_ok();
    if identifier && !type_parameter {
        out
    } else {
        format!("Args{out}")
    }
}

fn continues_identifier(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || (!c.is_ascii()
            && c.is_alphanumeric()
            && syn::parse_str::<Ident>(&format!("a{c}")).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(handlers: &[&str]) -> Vec<String> {
        struct_names(handlers.iter().copied())
    }

    #[test]
    fn identifiers_are_raw_exactly_when_they_are_keywords() {
        assert_eq!(spelling("limit").as_deref(), Some("limit"));
        assert_eq!(spelling("type").as_deref(), Some("r#type"));
        assert_eq!(spelling("r#type").as_deref(), Some("r#type"));
        assert_eq!(spelling("r#limit").as_deref(), Some("limit"));
        assert_eq!(spelling("gen").as_deref(), Some("r#gen"));
        assert_eq!(spelling("async").as_deref(), Some("r#async"));
        assert_eq!(spelling("café").as_deref(), Some("café"));
        for unspellable in [
            "self", "Self", "super", "crate", "_", "", "2fa", "a-b", "a b", "r#",
        ] {
            assert_eq!(spelling(unspellable), None, "{unspellable:?}");
        }
    }

    #[test]
    fn names_spelled_without_parsing_are_identifiers_syn_accepts() {
        for name in [
            "list_items_0",
            "A0",
            "getHTTP",
            "_x",
            "__",
            "Self_",
            "r2d2",
            "type_",
            "async_",
        ] {
            assert!(plain_without_parsing(name), "{name}");
            assert!(syn::parse_str::<Ident>(name).is_ok(), "{name}");
        }
        for name in [
            "Self", "_", "self", "type", "gen", "limit", "café", "", "2fa", "a-b",
        ] {
            assert!(!plain_without_parsing(name), "{name}");
        }
    }

    #[test]
    fn struct_names_are_pascal_case() {
        assert_eq!(
            names(&[
                "list_items",
                "tickets.list",
                "getHTTP",
                "2fa",
                "self",
                "_",
                "a0",
                "a_b"
            ]),
            [
                "ListItems",
                "TicketsList",
                "GetHTTP",
                "Args2fa",
                "ArgsSelf",
                "Args",
                "ArgsA0",
                "AB"
            ]
        );
    }

    #[test]
    fn colliding_struct_names_get_suffixes_that_steal_no_name() {
        assert_eq!(
            names(&["list_items", "listItems", "list_items2", "list.items"]),
            ["ListItems", "ListItems3", "ListItems2", "ListItems4"]
        );
    }
}
