//! TypeScript names for IR types and for the declarations `api.ts` adds.
//!
//! `index.ts` re-exports every module with `export *`, so one name may be exported by only
//! one module: every declared name comes from one [`Namer`], which hands each out once.

use std::collections::{HashMap, HashSet};

use crate::ir::TypeDef;

/// Names the generated modules export, or global types they use (`Record<…>`, `Promise<…>`):
/// a user type with one of these names would clash in `index.ts` or shadow the global.
const FIXED: &[&str] = &[
    "CallOptions",
    "ClientOptions",
    "ForgeClient",
    "ForgeError",
    "ForgeErrorCode",
    "LiveState",
    "Mutations",
    "Partial",
    "Promise",
    "Queries",
    "Readable",
    "Record",
    "Unsubscribe",
    "createClient",
];

/// Words that cannot name a function, an interface or a type alias.
const RESERVED: &[&str] = &[
    "any",
    "arguments",
    "await",
    "bigint",
    "boolean",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "declare",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "infer",
    "instanceof",
    "interface",
    "keyof",
    "let",
    "never",
    "new",
    "null",
    "number",
    "object",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "string",
    "super",
    "switch",
    "symbol",
    "this",
    "throw",
    "true",
    "try",
    "type",
    "typeof",
    "undefined",
    "unique",
    "unknown",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Hands out names that are unique across the generated modules.
pub(super) struct Namer {
    taken: HashSet<String>,
}

impl Namer {
    pub(super) fn new() -> Self {
        Namer {
            taken: FIXED.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    fn is_free(&self, name: &str) -> bool {
        !self.taken.contains(name) && !RESERVED.contains(&name)
    }

    /// `base` when free, else the first free of `base2`, `base3`, …; a reserved word first
    /// becomes `word_`, the usual spelling for such names.
    pub(super) fn claim(&mut self, base: String) -> String {
        let base = if RESERVED.contains(&base.as_str()) {
            base + "_"
        } else {
            base
        };
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

/// The TypeScript name of every IR type.
pub(super) struct TypeNames<'a> {
    defs: &'a [TypeDef],
    /// Parallel to `defs`.
    names: Vec<String>,
}

impl<'a> TypeNames<'a> {
    /// A type keeps its Rust name when no other type has it and it is free; otherwise every
    /// type of that name gets its module path prepended (`billing::Status` →
    /// `BillingStatus`, the crate root is `Crate`). Plain names are handed out first so that
    /// a prefixed name never takes one away.
    pub(super) fn new(defs: &'a [TypeDef], namer: &mut Namer) -> Self {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for def in defs {
            *count.entry(def.name.as_str()).or_default() += 1;
        }
        let plain: Vec<Option<String>> = defs
            .iter()
            .map(|def| {
                let unique = count.get(def.name.as_str()) == Some(&1);
                (unique && namer.is_free(&def.name)).then(|| namer.claim(def.name.clone()))
            })
            .collect();
        let names = defs
            .iter()
            .zip(plain)
            .map(|(def, plain)| plain.unwrap_or_else(|| namer.claim(qualified(def))))
            .collect();
        TypeNames { defs, names }
    }

    /// The index of the type with this id in the IR's sorted `types`.
    pub(super) fn index(&self, id: &str) -> Option<usize> {
        self.defs
            .binary_search_by(|def| def.id.as_str().cmp(id))
            .ok()
    }

    pub(super) fn name(&self, index: usize) -> &str {
        &self.names[index]
    }
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
pub(super) fn pascal_case(path: &str) -> String {
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

/// `list_items` → `listItems`.
pub(super) fn camel_case(name: &str) -> String {
    let pascal = pascal_case(name);
    let mut chars = pascal.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => pascal,
    }
}

/// `name` with characters an identifier cannot hold replaced by `_`, and `_` in front when it
/// would start with a digit or be empty.
pub(super) fn to_identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if is_identifier_char(c) { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '$') {
        out.insert(0, '_');
    }
    out
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Whether `name` may stand unquoted as a property name. ASCII only: quoting is always
/// correct, and the Unicode identifier rules of JavaScript and Rust differ at the edges.
pub(super) fn is_plain_property(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}
