//! TypeScript names for IR types and for the declarations `api.ts` adds.
//!
//! `index.ts` re-exports every module with `export *`, so one name may be exported by only
//! one module: every declared name comes from one [`Namer`], which hands each out once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::ir::{Handler, Ir, Kind, TypeDef};

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

/// Words that cannot name a function, an interface or a type alias, sorted.
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

fn is_reserved(name: &str) -> bool {
    RESERVED.binary_search(&name).is_ok()
}

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
        !self.taken.contains(name) && !is_reserved(name)
    }

    /// `base` when free, else the first free of `base2`, `base3`, …; a reserved word first
    /// becomes `word_`, the usual spelling for such names.
    pub(super) fn claim(&mut self, base: String) -> String {
        let base = if is_reserved(&base) { base + "_" } else { base };
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

/// Every name the client declares for an IR, handed out by one [`Namer`] in a fixed order:
/// the types, then each callable handler's function and arguments interface (in IR
/// order), then the live entry points. They depend on nothing but [`NamingInput`], so an
/// IR that differs from the last one only inside types and handlers keeps every name.
pub(super) struct Naming {
    input: NamingInput,
    /// Parallel to the IR's types.
    types: Vec<String>,
    /// Parallel to the IR's [`callable`] handlers.
    pub(super) calls: Vec<CallNames>,
    /// `subscribe` and `live`, when there is a query to subscribe to.
    pub(super) live: Option<(String, String)>,
}

/// The names `api.ts` declares for one callable handler.
pub(super) struct CallNames {
    pub(super) function: String,
    /// Its arguments interface, when it takes arguments.
    pub(super) args: Option<String>,
}

/// What naming reads of an IR.
#[derive(PartialEq)]
struct NamingInput {
    /// Each type's module and name.
    types: Vec<(String, String)>,
    /// Each callable handler's name and kind, and whether it takes arguments.
    calls: Vec<(String, Kind, bool)>,
}

impl NamingInput {
    fn of(ir: &Ir) -> Self {
        NamingInput {
            types: ir
                .types
                .iter()
                .map(|def| (def.module.clone(), def.name.clone()))
                .collect(),
            calls: callable(ir)
                .map(|h| (h.name.clone(), h.kind, !h.args.is_empty()))
                .collect(),
        }
    }

    /// Whether `ir` reads as this input, compared in place.
    fn describes(&self, ir: &Ir) -> bool {
        self.types.len() == ir.types.len()
            && self
                .types
                .iter()
                .zip(&ir.types)
                .all(|((module, name), def)| *module == def.module && *name == def.name)
            && self
                .calls
                .iter()
                .map(|(name, kind, args)| (name.as_str(), *kind, *args))
                .eq(callable(ir).map(|h| (h.name.as_str(), h.kind, !h.args.is_empty())))
    }
}

/// The handlers `api.ts` gives a function: queries and mutations. Other kinds run inside
/// the server and cannot be called over RPC.
pub(super) fn callable(ir: &Ir) -> impl Iterator<Item = &Arc<Handler>> {
    ir.handlers
        .iter()
        .filter(|h| matches!(h.kind, Kind::Query | Kind::Mutation))
}

impl Naming {
    pub(super) fn new(ir: &Ir) -> Self {
        let mut namer = Namer::new();
        let types = type_names(&ir.types, &mut namer);
        let calls = callable(ir)
            .map(|handler| CallNames {
                function: namer.claim(to_identifier(&camel_case(&handler.name))),
                args: (!handler.args.is_empty())
                    .then(|| namer.claim(to_identifier(&pascal_case(&handler.name)) + "Args")),
            })
            .collect();
        // Claimed after the handlers, so a query named `subscribe` keeps its name.
        let live = callable(ir).any(|h| h.kind == Kind::Query).then(|| {
            (
                namer.claim("subscribe".to_owned()),
                namer.claim("live".to_owned()),
            )
        });
        Naming {
            input: NamingInput::of(ir),
            types,
            calls,
            live,
        }
    }

    /// Whether these are the names of `ir` too.
    pub(super) fn fits(&self, ir: &Ir) -> bool {
        self.input.describes(ir)
    }

    /// The types' names, for writing type expressions.
    pub(super) fn type_names<'a>(&'a self, defs: &'a [Arc<TypeDef>]) -> TypeNames<'a> {
        TypeNames {
            defs,
            names: &self.types,
        }
    }
}

/// A type keeps its Rust name when no other type has it and it is free; otherwise every
/// type of that name gets its module path prepended (`billing::Status` → `BillingStatus`,
/// the crate root is `Crate`). Plain names are handed out first so that a prefixed name
/// never takes one away.
fn type_names(defs: &[Arc<TypeDef>], namer: &mut Namer) -> Vec<String> {
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
    defs.iter()
        .zip(plain)
        .map(|(def, plain)| plain.unwrap_or_else(|| namer.claim(qualified(def))))
        .collect()
}

/// The TypeScript name of every IR type.
pub(super) struct TypeNames<'a> {
    defs: &'a [Arc<TypeDef>],
    /// Parallel to `defs`.
    names: &'a [String],
}

impl TypeNames<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_sorted_for_binary_search() {
        assert!(RESERVED.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(is_reserved("yield") && is_reserved("any") && !is_reserved("items"));
    }
}
