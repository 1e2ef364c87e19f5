//! Walks a file's items: modules, `use`s, types, aliases and `#[forge::…]` handlers.

use forge_attrs::{Kind, Options};
use quote::ToTokens;
use syn::{Attribute, Item};

use super::serde_attrs;
use super::span;
use super::syntax::{
    BodyFacts, Import, ParsedFile, RawAlias, RawBody, RawField, RawHandler, RawParam, RawType,
    RawVariant, Scope,
};
use super::{body, type_expr};
use crate::ir::Diagnostic;

pub fn extract(parsed: &mut ParsedFile, file: &syn::File) {
    let module = parsed.module.clone();
    walk(parsed, &module, &file.items);
}

/// An identifier as serde and the wire see it: without `r#`.
pub fn unraw(ident: &syn::Ident) -> String {
    let text = ident.to_string();
    match text.strip_prefix("r#") {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}

fn walk(parsed: &mut ParsedFile, module: &str, items: &[Item]) {
    let mut scope = Scope {
        module: module.to_owned(),
        ..Scope::default()
    };
    // Imports first: a handler may use a name imported further down the file.
    for item in items {
        if let Item::Use(u) = item {
            collect_use(&mut scope, module, &u.tree, Vec::new());
        }
    }
    let sleeps = blocking_sleep_names(&scope);
    for item in items {
        match item {
            Item::Use(_) => {}
            Item::Struct(s) => {
                if let Some(kind) = forge_handler_attr(parsed, &s.attrs) {
                    misplaced(parsed, kind, &s.ident);
                }
                let serde = serde_attrs::container(&s.attrs, &parsed.file, &mut parsed.diagnostics);
                let body = fields_body(parsed, &s.fields);
                push_type(parsed, module, &s.ident, &s.generics, &s.attrs, serde, body);
            }
            Item::Enum(e) => {
                if let Some(kind) = forge_handler_attr(parsed, &e.attrs) {
                    misplaced(parsed, kind, &e.ident);
                }
                let serde = serde_attrs::container(&e.attrs, &parsed.file, &mut parsed.diagnostics);
                let variants = e.variants.iter().map(|v| variant(parsed, v)).collect();
                push_type(
                    parsed,
                    module,
                    &e.ident,
                    &e.generics,
                    &e.attrs,
                    serde,
                    RawBody::Enum { variants },
                );
            }
            Item::Type(t) => parsed.aliases.push(RawAlias {
                module: module.to_owned(),
                name: unraw(&t.ident),
                generics: type_params(&t.generics),
                target: type_expr::convert(&parsed.file, &t.ty),
            }),
            Item::Fn(f) => {
                if let Some(kind) = forge_handler_attr(parsed, &f.attrs) {
                    handler(parsed, module, kind, f, &sleeps);
                } else if model_attr(&f.attrs).is_some() {
                    misplaced(parsed, Kind::Model, &f.sig.ident);
                }
            }
            Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    let child = join(module, &unraw(&m.ident));
                    walk(parsed, &child, items);
                }
            }
            _ => {}
        }
    }
    parsed.scopes.push(scope);
}

fn join(module: &str, name: &str) -> String {
    if module.is_empty() {
        name.to_owned()
    } else {
        format!("{module}::{name}")
    }
}

fn misplaced(parsed: &mut ParsedFile, kind: Kind, ident: &syn::Ident) {
    let what = if kind == Kind::Model {
        "a struct or an enum"
    } else {
        "a `pub async fn`"
    };
    parsed.diagnostics.push(
        Diagnostic::error(
            "FG002",
            format!("#[forge::{}] marks {what}", kind.attribute_name()),
            Some(span::of(&parsed.file, ident)),
        )
        .with_label("not allowed here")
        .with_help(format!("move the attribute onto {what}")),
    );
}

/// `#[forge::<kind>]` attributes on an item other than `model`; reports unknown kinds and
/// duplicates.
fn forge_handler_attr(parsed: &mut ParsedFile, attrs: &[Attribute]) -> Option<Kind> {
    let mut found = None;
    for attr in attrs {
        let Some(kind) = forge_kind(parsed, attr) else {
            continue;
        };
        if kind == Kind::Model {
            continue;
        }
        if found.is_some() {
            parsed.diagnostics.push(
                Diagnostic::error(
                    "FG002",
                    "an item has more than one #[forge::…] handler attribute",
                    Some(span::of(&parsed.file, attr)),
                )
                .with_help("keep exactly one of query, mutation, job, cron, workflow, daemon, webhook, mcp_tool"),
            );
            continue;
        }
        found = Some((kind, attr));
    }
    found.map(|(kind, _)| kind)
}

fn model_attr(attrs: &[Attribute]) -> Option<&Attribute> {
    attrs.iter().find(|attr| {
        let segments: Vec<String> = attr
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        segments == ["forge", "model"]
    })
}

fn forge_kind(parsed: &mut ParsedFile, attr: &Attribute) -> Option<Kind> {
    let path = attr.path();
    let mut segments = path.segments.iter();
    let first = segments.next()?;
    let second = segments.next()?;
    if first.ident != "forge" || segments.next().is_some() {
        return None;
    }
    let name = second.ident.to_string();
    let kind = Kind::from_attribute_name(&name);
    if kind.is_none() {
        let valid: Vec<&str> = Kind::ALL.iter().map(|k| k.attribute_name()).collect();
        parsed.diagnostics.push(
            Diagnostic::error(
                "FG002",
                format!("unknown attribute `#[forge::{name}]`"),
                Some(span::of(&parsed.file, path)),
            )
            .with_help(format!("forge's attributes are: {}", valid.join(", "))),
        );
    }
    kind
}

/// The attribute's arguments, parsed with the shared grammar.
fn options(parsed: &mut ParsedFile, kind: Kind, attr: &Attribute) -> Option<Options> {
    let tokens = match &attr.meta {
        syn::Meta::Path(_) => proc_macro2::TokenStream::new(),
        syn::Meta::List(list) => list.tokens.clone(),
        syn::Meta::NameValue(nv) => nv.value.to_token_stream(),
    };
    match forge_attrs::parse_options(kind, tokens) {
        Ok(options) => Some(options),
        Err(error) => {
            let span = if error.span().start().line == 0 {
                span::of(&parsed.file, attr)
            } else {
                span::convert(&parsed.file, error.span())
            };
            parsed.diagnostics.push(
                Diagnostic::error("FG002", error.to_string(), Some(span))
                    .with_label(format!("in #[forge::{}]", kind.attribute_name())),
            );
            None
        }
    }
}

pub fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|text| {
            text.lines()
                .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn type_params(generics: &syn::Generics) -> Vec<String> {
    generics.type_params().map(|p| unraw(&p.ident)).collect()
}

fn push_type(
    parsed: &mut ParsedFile,
    module: &str,
    ident: &syn::Ident,
    generics: &syn::Generics,
    attrs: &[Attribute],
    serde: serde_attrs::Read<super::syntax::ContainerAttrs>,
    body: RawBody,
) {
    let model = match model_attr(attrs) {
        Some(attr) => match options(parsed, Kind::Model, attr) {
            Some(Options::Model(model)) => {
                if model.table.is_some() && matches!(body, RawBody::Enum { .. }) {
                    parsed.diagnostics.push(
                        Diagnostic::error(
                            "FG002",
                            "`table` applies to structs only: an enum is stored in a column, not a table",
                            Some(span::of(&parsed.file, attr)),
                        )
                        .with_help("remove `table = …` from this enum's #[forge::model]"),
                    );
                }
                Some(model)
            }
            _ => None,
        },
        None => None,
    };
    parsed.types.push(RawType {
        module: module.to_owned(),
        name: unraw(ident),
        generics: type_params(generics),
        doc: doc(attrs),
        model,
        serde: serde.attrs,
        opaque: serde.opaque,
        body,
        span: span::of(&parsed.file, ident),
    });
}

fn fields_body(parsed: &mut ParsedFile, fields: &syn::Fields) -> RawBody {
    match fields {
        syn::Fields::Named(named) => RawBody::Named {
            fields: named
                .named
                .iter()
                .enumerate()
                .map(|(i, f)| field(parsed, i, f))
                .collect(),
        },
        syn::Fields::Unnamed(unnamed) => RawBody::Tuple {
            fields: unnamed
                .unnamed
                .iter()
                .enumerate()
                .map(|(i, f)| field(parsed, i, f))
                .collect(),
        },
        syn::Fields::Unit => RawBody::Unit,
    }
}

fn field(parsed: &mut ParsedFile, index: usize, f: &syn::Field) -> RawField {
    let serde = serde_attrs::field(&f.attrs, &parsed.file, &mut parsed.diagnostics);
    RawField {
        name: f.ident.as_ref().map_or_else(|| index.to_string(), unraw),
        ty: type_expr::convert(&parsed.file, &f.ty),
        serde: serde.attrs,
        opaque: serde.opaque,
        doc: doc(&f.attrs),
        span: match &f.ident {
            Some(ident) => span::of(&parsed.file, ident),
            None => span::of(&parsed.file, &f.ty),
        },
    }
}

fn variant(parsed: &mut ParsedFile, v: &syn::Variant) -> RawVariant {
    let serde = serde_attrs::variant(&v.attrs, &parsed.file, &mut parsed.diagnostics);
    RawVariant {
        name: unraw(&v.ident),
        serde: serde.attrs,
        doc: doc(&v.attrs),
        body: fields_body(parsed, &v.fields),
        span: span::of(&parsed.file, &v.ident),
    }
}

/// Local names for `tokio::time::sleep` / `std::thread::sleep` (`use tokio::time::sleep;`),
/// so a bare `sleep(…)` call is recognised as blocking.
fn blocking_sleep_names(scope: &Scope) -> Vec<String> {
    scope
        .imports
        .iter()
        .filter(|import| {
            matches!(
                import
                    .path
                    .iter()
                    .rev()
                    .take(2)
                    .map(String::as_str)
                    .collect::<Vec<_>>()[..],
                ["sleep", "time" | "thread"]
            )
        })
        .map(|import| import.name.clone())
        .collect()
}

fn handler(
    parsed: &mut ParsedFile,
    module: &str,
    kind: Kind,
    f: &syn::ItemFn,
    blocking_sleeps: &[String],
) {
    let Some(attr) = f.attrs.iter().find(|a| {
        let segments: Vec<String> = a
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        segments.len() == 2 && segments[0] == "forge" && segments[1] == kind.attribute_name()
    }) else {
        return;
    };
    let Some(options) = options(parsed, kind, attr) else {
        return;
    };
    let file = parsed.file.clone();
    let mut inputs = f.sig.inputs.iter().peekable();
    let mut context = None;
    let mut context_name = None;
    if let Some(syn::FnArg::Typed(first)) = inputs.peek() {
        if let Some(name) = context_type_name(&first.ty) {
            context = Some(name);
            context_name = pat_name(&first.pat);
            inputs.next();
        }
    }
    let mut params = Vec::new();
    for input in inputs {
        match input {
            syn::FnArg::Receiver(receiver) => parsed.diagnostics.push(
                Diagnostic::error(
                    "FG501",
                    "a handler is a free function, not a method",
                    Some(span::of(&file, receiver)),
                )
                .with_help("move the handler out of the `impl` block"),
            ),
            syn::FnArg::Typed(typed) => match pat_name(&typed.pat) {
                Some(name) => params.push(RawParam {
                    name,
                    ty: type_expr::convert(&file, &typed.ty),
                    span: span::of(&file, &typed.pat),
                }),
                None => parsed.diagnostics.push(
                    Diagnostic::error(
                        "FG501",
                        "a handler parameter needs a plain name: clients send arguments by parameter name",
                        Some(span::of(&file, &typed.pat)),
                    )
                    .with_help("bind the argument to a name (`input: CreateUser`) and destructure it in the body"),
                ),
            },
        }
    }
    let param_names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    let body = if body::too_deep(&f.block) {
        // Skipping the body silently could hide the SQL that the scope rules check.
        parsed.diagnostics.push(
            Diagnostic::error(
                "FG001",
                format!(
                    "forge cannot read the body of `{}`: its expressions nest more than {} levels deep",
                    unraw(&f.sig.ident),
                    body::MAX_EXPR_DEPTH
                ),
                Some(span::of(&file, &f.sig.ident)),
            )
            .with_label("body not analysed")
            .with_help("split the expression up with `let` bindings"),
        );
        BodyFacts::default()
    } else {
        body::extract(
            &file,
            kind,
            context_name.as_deref(),
            &param_names,
            blocking_sleeps,
            &f.block,
        )
    };
    parsed.handlers.push(RawHandler {
        module: module.to_owned(),
        function: unraw(&f.sig.ident),
        options,
        doc: doc(&f.attrs),
        is_async: f.sig.asyncness.is_some(),
        context,
        params,
        returns: match &f.sig.output {
            syn::ReturnType::Default => None,
            syn::ReturnType::Type(_, ty) => Some(type_expr::convert(&file, ty)),
        },
        body,
        span: span::of(&file, &f.sig.ident),
    });
}

/// `&QueryContext`, `&forge::QueryContext`, … → `QueryContext`.
fn context_type_name(ty: &syn::Type) -> Option<String> {
    let syn::Type::Reference(reference) = ty else {
        return None;
    };
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let last = path.path.segments.last()?.ident.to_string();
    last.ends_with("Context").then_some(last)
}

fn pat_name(pat: &syn::Pat) -> Option<String> {
    match pat {
        syn::Pat::Ident(ident) => Some(unraw(&ident.ident)),
        syn::Pat::Type(typed) => pat_name(&typed.pat),
        _ => None,
    }
}

fn collect_use(scope: &mut Scope, module: &str, tree: &syn::UseTree, mut prefix: Vec<String>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(unraw(&p.ident));
            collect_use(scope, module, &p.tree, prefix);
        }
        syn::UseTree::Name(n) => {
            let ident = unraw(&n.ident);
            if ident == "self" {
                if let Some(last) = prefix.last().cloned() {
                    push_import(scope, module, last, prefix);
                }
            } else {
                prefix.push(ident.clone());
                push_import(scope, module, ident, prefix);
            }
        }
        syn::UseTree::Rename(r) => {
            let rename = unraw(&r.rename);
            if rename == "_" {
                return;
            }
            let ident = unraw(&r.ident);
            if ident != "self" {
                prefix.push(ident);
            }
            push_import(scope, module, rename, prefix);
        }
        syn::UseTree::Glob(_) => {
            if let Some(path) = absolute(module, prefix) {
                scope.globs.push(path);
            }
        }
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                collect_use(scope, module, tree, prefix.clone());
            }
        }
    }
}

fn push_import(scope: &mut Scope, module: &str, name: String, path: Vec<String>) {
    if let Some(path) = absolute(module, path) {
        scope.imports.push(Import { name, path });
    }
}

/// Rewrites `self::…` and `super::…` as `crate::…`; `None` when `super` climbs past the root.
pub fn absolute(module: &str, path: Vec<String>) -> Option<Vec<String>> {
    let mut base: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    let mut rest = path.into_iter().peekable();
    match rest.peek().map(String::as_str) {
        Some("self") => {
            rest.next();
        }
        Some("super") => {
            while rest.peek().map(String::as_str) == Some("super") {
                rest.next();
                base.pop()?;
            }
        }
        _ => return Some(rest.collect()),
    }
    let mut out = vec!["crate".to_owned()];
    out.extend(base);
    out.extend(rest);
    Some(out)
}
