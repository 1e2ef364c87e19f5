//! The rules that need only the handler itself, run inside the attribute from forge-codegen's
//! implementation (the same code `forge check` runs), so editors show them while typing.

use forge_attrs::Kind;
use forge_codegen::check::{self, Project};
use forge_codegen::config::{CheckConfig, Config};
use forge_codegen::ir::{Diagnostic, Severity};
use forge_codegen::lock::Lock;
use forge_codegen::{parse, resolve};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;

/// What can be decided from one function: the rest (unknown job names, duplicate names,
/// contracts against forge.lock, types defined elsewhere) needs the whole crate.
const COMPILE_TIME: &[&str] = &[
    "FG101", "FG102", "FG103", "FG201", "FG301", "FG402", "FG403", "FG501", "FG503",
];

pub fn check(kind: Kind, args: TokenStream, function: &syn::ItemFn) -> syn::Result<()> {
    let mut item = function.clone();
    let name = syn::Ident::new(kind.attribute_name(), Span::call_site());
    item.attrs.push(syn::parse_quote!(#[forge::#name(#args)]));
    let file = syn::File {
        shebang: None,
        attrs: Vec::new(),
        items: vec![syn::Item::Fn(item)],
    };
    let parsed = parse::parse_syntax("", "", &file);
    let resolved = resolve::build(std::slice::from_ref(&parsed));
    let config = project_config();
    let project = Project {
        ir: &resolved.ir,
        config: &config,
        lock: &Lock::default(),
        migrations: &[],
    };
    let findings = resolved
        .diagnostics
        .iter()
        // A type this function names but does not define is the crate's business.
        .filter(|d| d.label.as_deref() != Some(forge_codegen::resolve::UNRESOLVED_LABEL))
        .cloned()
        .chain(check::check(&project))
        .filter(|d| d.severity == Severity::Error)
        .filter(|d| COMPILE_TIME.contains(&d.code.as_str()) && !config.allow.contains(&d.code));
    let tokens = function.to_token_stream();
    let mut errors = findings.map(|d| {
        let span = d
            .span
            .as_ref()
            .and_then(|s| span_at(tokens.clone(), s.line, s.column))
            .unwrap_or_else(|| function.sig.ident.span());
        syn::Error::new(span, message(&d))
    });
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            errors.for_each(|e| first.combine(e));
            Err(first)
        }
    }
}

fn message(d: &Diagnostic) -> String {
    match &d.help {
        Some(help) => format!("[{}] {}\nhelp: {help}", d.code, d.message),
        None => format!("[{}] {}", d.code, d.message),
    }
}

/// `[check]` of the crate's forge.toml; the defaults when there is none (the CLI reports a
/// broken one).
fn project_config() -> CheckConfig {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(|dir| std::path::PathBuf::from(dir).join("forge.toml"))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| Config::parse(&text).ok())
        .map(|config| config.check)
        .unwrap_or_default()
}

/// The span of the token that starts at `line`:`column` (1-based), so the error points
/// where `forge check` would.
fn span_at(tokens: TokenStream, line: u32, column: u32) -> Option<Span> {
    for tree in tokens {
        let start = tree.span().start();
        if start.line as u32 == line && start.column as u32 + 1 == column {
            return Some(tree.span());
        }
        if let TokenTree::Group(group) = &tree {
            if let Some(span) = span_at(group.stream(), line, column) {
                return Some(span);
            }
        }
    }
    None
}
