//! Rust names in the Dioxus client: the IR's types, the generated functions and hooks, and
//! the identifiers inside them.
//!
//! The module is one namespace shared with what it uses unqualified (the std prelude, the
//! primitive types, the crates its paths start from) and with the items of `client.rs`, so
//! every declared name comes from a [`Namer`] that hands each out once and never one of
//! those.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proc_macro2::{Ident, Span};

use crate::ir::TypeDef;

/// Type-namespace names the module declares or uses unqualified: a user type with one of
/// these names would shadow or clash with it.
const FIXED_TYPES: &[&str] = &[
    // client.rs, and the argument struct inside each generated function.
    "Args",
    "Client",
    "Envelope",
    "ForgeError",
    "Live",
    "LiveEntry",
    "LiveSubscription",
    "Session",
    // The std prelude the generated code relies on.
    "Box",
    "Clone",
    "Debug",
    "Default",
    "Drop",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "Into",
    "Option",
    "PartialEq",
    "Result",
    "Send",
    "Sized",
    "String",
    "Sync",
    "ToOwned",
    "ToString",
    "Vec",
    // Primitive types, which a type of the same name would shadow.
    "bool",
    "char",
    "f32",
    "f64",
    "i128",
    "i16",
    "i32",
    "i64",
    "i8",
    "isize",
    "str",
    "u128",
    "u16",
    "u32",
    "u64",
    "u8",
    "usize",
    // Crates paths start from.
    "alloc",
    "core",
    "dioxus",
    "futures_timer",
    "futures_util",
    "reqwest",
    "serde",
    "serde_json",
    "std",
];

/// Value-namespace names client.rs declares or the generated code uses unqualified.
const FIXED_VALUES: &[&str] = &[
    "Err",
    "FIRST_RETRY",
    "LAST_RETRY",
    "None",
    "Ok",
    "Some",
    "decode",
    "drop",
    "spawn_live",
    "use_client",
];

/// Hands out names that are unique in one namespace of the module.
pub(super) struct Namer {
    taken: HashSet<String>,
}

impl Namer {
    pub(super) fn types() -> Self {
        Namer::with(FIXED_TYPES)
    }

    pub(super) fn values() -> Self {
        Namer::with(FIXED_VALUES)
    }

    fn with(fixed: &[&str]) -> Self {
        Namer {
            taken: fixed.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    pub(super) fn is_free(&self, name: &str) -> bool {
        !self.taken.contains(name)
    }

    /// `base` (made an identifier) when free, else the first free of `base2`, `base3`, …
    pub(super) fn claim(&mut self, base: &str) -> String {
        let base = to_identifier(base);
        let mut name = base.clone();
        let mut n = 2u32;
        while !self.is_free(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }
}

/// The Rust name of every IR type, parallel to the IR's `types`: its own name when no other
/// type has it and it is free; otherwise its module path in PascalCase in front
/// (`billing::Status` → `BillingStatus`, the crate root is `Crate`), as in the TypeScript
/// client. Plain names are handed out first so that a prefixed name never takes one away.
pub(super) fn type_names(defs: &[Arc<TypeDef>], namer: &mut Namer) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for def in defs {
        *count.entry(def.name.as_str()).or_default() += 1;
    }
    let plain: Vec<Option<String>> = defs
        .iter()
        .map(|def| {
            let name = to_identifier(&def.name);
            let unique = count.get(def.name.as_str()) == Some(&1);
            (unique && namer.is_free(&name)).then(|| namer.claim(&name))
        })
        .collect();
    defs.iter()
        .zip(plain)
        .map(|(def, plain)| plain.unwrap_or_else(|| namer.claim(&qualified(def))))
        .collect()
}

fn qualified(def: &TypeDef) -> String {
    let module = if def.module.is_empty() {
        "crate"
    } else {
        &def.module
    };
    pascal_case(module) + &to_identifier(&def.name)
}

/// `functions::list_items` → `FunctionsListItems`.
fn pascal_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for word in path.split([':', '_']).filter(|word| !word.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// `name` without `r#`, with characters an identifier cannot hold replaced by `_`, and `_`
/// in front when it would start with a digit or be empty. Keywords stay as they are: they
/// are spelled raw by [`ident`].
pub(super) fn to_identifier(name: &str) -> String {
    let name = name.strip_prefix("r#").unwrap_or(name);
    let mut out: String = name
        .chars()
        .map(|c| if continues_identifier(c) { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

fn continues_identifier(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || (!c.is_ascii()
            && c.is_alphanumeric()
            && syn::parse_str::<Ident>(&format!("a{c}")).is_ok())
}

/// Words that are plain identifiers to syn (and in edition 2021) but keywords in a newer
/// edition the user's crate may be written in, so they are spelled raw.
const NEWER_KEYWORDS: &[&str] = &["gen"];

/// `name` as an identifier: raw (`r#type`) when it is a keyword; `None` when no identifier
/// spells it (`self`, `_`, `2fa`, `a-b`).
pub(super) fn ident(name: &str) -> Option<Ident> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    if !NEWER_KEYWORDS.contains(&name) {
        if let Ok(plain) = syn::parse_str::<Ident>(name) {
            return Some(plain);
        }
    }
    // `Ident::new_raw` panics on what cannot be raw; syn says first.
    syn::parse_str::<Ident>(&format!("r#{name}"))
        .ok()
        .map(|_| Ident::new_raw(name, Span::call_site()))
}

/// An identifier for a name [`to_identifier`] or a [`Namer`] produced: always spellable,
/// raw when it is a keyword; `_x` when even that fails (`self`), which cannot clash with
/// anything the namers hand out since those never start with `_` followed by a keyword.
pub(super) fn ident_or_escaped(name: &str) -> Ident {
    ident(name).unwrap_or_else(|| Ident::new(&format!("_{name}"), Span::call_site()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        let spelled = |name: &str| ident(name).map(|i| i.to_string());
        assert_eq!(spelled("limit").as_deref(), Some("limit"));
        assert_eq!(spelled("type").as_deref(), Some("r#type"));
        assert_eq!(spelled("r#type").as_deref(), Some("r#type"));
        assert_eq!(spelled("gen").as_deref(), Some("r#gen"));
        for unspellable in ["self", "Self", "super", "crate", "_", "", "2fa", "a-b"] {
            assert_eq!(spelled(unspellable), None, "{unspellable:?}");
        }
        assert_eq!(ident_or_escaped("self").to_string(), "_self");
        assert_eq!(to_identifier("2fa"), "_2fa");
        assert_eq!(to_identifier("tickets.list"), "tickets_list");
        assert_eq!(to_identifier("r#type"), "type");
    }

    #[test]
    fn namers_never_hand_out_a_name_twice_or_a_fixed_one() {
        let mut types = Namer::types();
        assert_eq!(types.claim("Client"), "Client2");
        assert_eq!(types.claim("User"), "User");
        assert_eq!(types.claim("User"), "User2");
        assert_eq!(types.claim("u32"), "u322");
        let mut values = Namer::values();
        assert_eq!(values.claim("use_client"), "use_client2");
        assert_eq!(values.claim("tickets.list"), "tickets_list");
    }
}
