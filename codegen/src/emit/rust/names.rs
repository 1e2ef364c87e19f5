//! Identifiers in the glue: the user's names spelled as Rust, and the argument structs'
//! names.

use std::collections::BTreeSet;

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
    let plain = !NEWER_KEYWORDS.contains(&name) && syn::parse_str::<Ident>(name).is_ok();
    let spelled = if plain {
        name.to_owned()
    } else {
        format!("r#{name}")
    };
    syn::parse_str::<Ident>(&spelled).ok().map(|_| spelled)
}

/// One struct name per entry of `handler_names`, in order: the PascalCase of the handler's
/// name; a later handler whose name would repeat an earlier one's gets the first free
/// `2`, `3`, … suffix that no other handler's own name takes, so adding a suffix never
/// steals a name and the result depends only on the order of the IR.
pub(super) fn struct_names<'a>(
    handler_names: impl Iterator<Item = &'a str> + Clone,
) -> Vec<String> {
    let bases: BTreeSet<String> = handler_names.clone().map(pascal_case).collect();
    let mut taken = BTreeSet::new();
    handler_names
        .map(|name| {
            let base = pascal_case(name);
            let mut candidate = base.clone();
            let mut n = 2;
            while taken.contains(&candidate) || (candidate != base && bases.contains(&candidate)) {
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
    if syn::parse_str::<Ident>(&out).is_ok() && !type_parameter {
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
