//! What a handler's body does: SQL calls with their binds, job and workflow dispatches,
//! blocking sleeps, and (for workflows) step and event keys.

use std::collections::HashMap;

use forge_attrs::Kind;
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Expr, ExprLit, Lit, LitStr, Token};

use super::span;
use super::syntax::{BodyFacts, TypeExpr};
use super::type_expr;
use crate::ir::{Bind, Dispatch, DispatchKind, Origin, SqlCall};

/// How deeply a handler body's expressions may nest for forge to read it. The visitors here
/// recurse, while syn parses operator, method-call, field and `?` chains with a loop: a
/// chain of a few thousand links parses, then overflows a 2 MiB thread's stack in a
/// visitor (about 1 KiB a level in a debug build). Real bodies nest a few dozen levels.
pub const MAX_EXPR_DEPTH: usize = 512;

/// The largest macro body the visitors parse as expressions. syn keeps a macro body as
/// flat tokens when it parses the file, but recurses through brackets when the body is
/// parsed and through operator chains when the result is dropped, so an unbounded body
/// could overflow the stack. A larger body is skipped like one that is not expressions
/// (`json!`, `quote!`); real arguments (`format!`, `vec!`, sqlx's `query!`) are far smaller.
const MAX_MACRO_TOKENS: usize = 8192;
const MAX_MACRO_NESTING: usize = 32;

/// Whether `block` nests expressions deeper than [`MAX_EXPR_DEPTH`], counting macro
/// arguments as [`extract`] reads them. Bounded recursion itself, so it is safe on any
/// block syn parsed.
pub fn too_deep(block: &syn::Block) -> bool {
    let mut probe = DepthProbe {
        depth: 0,
        too_deep: false,
    };
    probe.visit_block(block);
    probe.too_deep
}

struct DepthProbe {
    depth: usize,
    too_deep: bool,
}

impl<'ast> Visit<'ast> for DepthProbe {
    fn visit_expr(&mut self, expr: &'ast Expr) {
        if self.too_deep || self.depth == MAX_EXPR_DEPTH {
            self.too_deep = true;
            return;
        }
        self.depth += 1;
        visit::visit_expr(self, expr);
        self.depth -= 1;
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        for arg in macro_args(mac).iter().flatten() {
            self.visit_expr(arg);
        }
    }
}

/// A macro's arguments read as comma-separated expressions, if they are and the body is
/// within [`MAX_MACRO_TOKENS`] and [`MAX_MACRO_NESTING`].
fn macro_args(mac: &syn::Macro) -> Option<Punctuated<Expr, Token![,]>> {
    if !small(&mac.tokens) {
        return None;
    }
    mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        .ok()
}

/// Walks the tokens with a stack of its own, so any nesting is safe.
fn small(tokens: &proc_macro2::TokenStream) -> bool {
    let mut count = 0;
    let mut pending = vec![(tokens.clone(), 0)];
    while let Some((stream, depth)) = pending.pop() {
        if depth > MAX_MACRO_NESTING {
            return false;
        }
        for tree in stream {
            count += 1;
            if count > MAX_MACRO_TOKENS {
                return false;
            }
            if let proc_macro2::TokenTree::Group(group) = tree {
                pending.push((group.stream(), depth + 1));
            }
        }
    }
    true
}

/// Call only on a block that is not [`too_deep`].
pub fn extract(
    file: &str,
    kind: Kind,
    context: Option<&str>,
    params: &[String],
    sleep_imports: &[String],
    block: &syn::Block,
) -> BodyFacts {
    let mut visitor = BodyVisitor {
        file,
        workflow: kind == Kind::Workflow,
        context,
        params,
        sleep_imports,
        locals: HashMap::new(),
        let_type: None,
        facts: BodyFacts::default(),
    };
    visitor.visit_block(block);
    visitor.facts
}

struct BodyVisitor<'a> {
    file: &'a str,
    workflow: bool,
    /// The context parameter's name (`ctx`).
    context: Option<&'a str>,
    params: &'a [String],
    /// Names this file imports `tokio::time::sleep` / `std::thread::sleep` under.
    sleep_imports: &'a [String],
    /// Where each `let`-bound local's value comes from, updated in source order.
    locals: HashMap<String, Origin>,
    /// The annotated type of the `let` whose initialiser is being visited.
    let_type: Option<TypeExpr>,
    facts: BodyFacts,
}

const SQLX_FUNCTIONS: &[&str] = &[
    "query",
    "query_as",
    "query_scalar",
    "query_with",
    "query_as_with",
    "query_scalar_with",
];
const SQLX_MACROS: &[&str] = &[
    "query",
    "query_as",
    "query_scalar",
    "query_unchecked",
    "query_as_unchecked",
    "query_scalar_unchecked",
    "query_file",
    "query_file_as",
    "query_file_scalar",
];
const AUTH_METHODS: &[&str] = &["user_id", "tenant_id", "auth"];

fn literal_str(expr: &Expr) -> Option<&LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s),
        Expr::Paren(p) => literal_str(&p.expr),
        Expr::Group(g) => literal_str(&g.expr),
        _ => None,
    }
}

fn path_names(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// The SQL of an sqlx call when it is a literal. A `QueryBuilder`'s literal is only the start
/// of the SQL it assembles at run time, so it counts as no literal at all.
fn sql_literal<'e>(via: &str, call: &'e syn::ExprCall) -> Option<&'e LitStr> {
    if via == "QueryBuilder" {
        return None;
    }
    call.args.first().and_then(literal_str)
}

/// `sqlx::query`, `sqlx::query_as::<_, T>` … (a bare `query(…)` is too common a name to claim).
fn sqlx_function(func: &Expr) -> Option<String> {
    let Expr::Path(path) = func else {
        return None;
    };
    let names = path_names(&path.path);
    match names.as_slice() {
        [krate, name] if krate == "sqlx" && SQLX_FUNCTIONS.contains(&name.as_str()) => {
            Some(name.clone())
        }
        [krate, builder, new] if krate == "sqlx" && builder == "QueryBuilder" && new == "new" => {
            Some("QueryBuilder".to_owned())
        }
        _ => None,
    }
}

impl<'a> BodyVisitor<'a> {
    fn origin(&self, expr: &Expr) -> Origin {
        match expr {
            Expr::Path(p) => match p.path.get_ident().map(|i| i.to_string()) {
                Some(name) => self.locals.get(&name).cloned().unwrap_or_else(|| {
                    if self.params.contains(&name) {
                        Origin::Argument { name }
                    } else {
                        Origin::Other
                    }
                }),
                None => Origin::Other,
            },
            Expr::MethodCall(call) => {
                let method = call.method.to_string();
                if self.is_context(&call.receiver) {
                    return if AUTH_METHODS.contains(&method.as_str()) {
                        Origin::Auth { method }
                    } else {
                        Origin::Other
                    };
                }
                // `.clone()`, `.min(50)`, `.to_string()`…: a value derived from an argument or
                // the auth context still comes from there.
                self.origin(&call.receiver)
            }
            Expr::Try(t) => self.origin(&t.expr),
            Expr::Await(a) => self.origin(&a.base),
            Expr::Reference(r) => self.origin(&r.expr),
            Expr::Paren(p) => self.origin(&p.expr),
            Expr::Group(g) => self.origin(&g.expr),
            Expr::Cast(c) => self.origin(&c.expr),
            Expr::Field(f) => self.origin(&f.base),
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => self.origin(&u.expr),
            _ => Origin::Other,
        }
    }

    fn is_context(&self, expr: &Expr) -> bool {
        match (expr, self.context) {
            (Expr::Path(p), Some(context)) => p.path.is_ident(context),
            (Expr::Reference(r), _) => self.is_context(&r.expr),
            (Expr::Paren(p), _) => self.is_context(&p.expr),
            _ => false,
        }
    }

    fn record_sql(
        &mut self,
        via: &str,
        sql: Option<&LitStr>,
        binds: &[&Expr],
        at: proc_macro2::Span,
    ) {
        let text = sql.map(LitStr::value);
        let (tables_read, tables_written, parse_error) = match &text {
            Some(text) => match crate::sql::analyze(text) {
                Ok(tables) => (tables.read, tables.written, None),
                Err(error) => (Vec::new(), Vec::new(), Some(error)),
            },
            None => (Vec::new(), Vec::new(), None),
        };
        let binds = binds
            .iter()
            .map(|expr| Bind {
                expr: expr.to_token_stream().to_string(),
                origin: self.origin(expr),
                span: span::of(self.file, expr),
            })
            .collect();
        self.facts.sql.push(SqlCall {
            via: via.to_owned(),
            sql: text,
            binds,
            tables_read,
            tables_written,
            parse_error,
            span: span::convert(self.file, at),
        });
    }

    /// `sqlx::query("…").bind(a).bind(b).fetch_all(…)`: the root call with every `.bind`.
    /// Returns false when the chain does not start at an sqlx call.
    fn sqlx_chain(&mut self, outer: &syn::ExprMethodCall) -> bool {
        let mut methods = vec![outer];
        let mut root = &*outer.receiver;
        while let Expr::MethodCall(call) = root {
            methods.push(call);
            root = &call.receiver;
        }
        let Expr::Call(call) = root else {
            return false;
        };
        let Some(via) = sqlx_function(&call.func) else {
            return false;
        };
        methods.reverse();
        let binds: Vec<&Expr> = methods
            .iter()
            .filter(|m| m.method == "bind")
            .filter_map(|m| m.args.first())
            .collect();
        let sql = sql_literal(&via, call);
        self.record_sql(&via, sql, &binds, call.span());
        for arg in &call.args {
            self.visit_expr(arg);
        }
        for method in methods {
            for arg in &method.args {
                self.visit_expr(arg);
            }
        }
        true
    }

    fn method_call(&mut self, call: &syn::ExprMethodCall) {
        let method = call.method.to_string();
        match method.as_str() {
            "dispatch_job" | "start_workflow" => {
                let target_kind = if method == "dispatch_job" {
                    DispatchKind::Job
                } else {
                    DispatchKind::Workflow
                };
                let first = call.args.first();
                self.facts.dispatches.push(Dispatch {
                    target_kind,
                    target: first.and_then(literal_str).map(LitStr::value),
                    span: match first {
                        Some(arg) => span::of(self.file, arg),
                        None => span::of(self.file, &call.method),
                    },
                });
            }
            "step" if self.workflow && call.args.len() == 1 => {
                self.workflow_key(&call.args[0], |facts, key| facts.steps.push(key));
            }
            "wait_for_event" if self.workflow && !call.args.is_empty() => {
                let turbofish = call.turbofish.as_ref().and_then(|t| {
                    t.args.iter().find_map(|arg| match arg {
                        syn::GenericArgument::Type(ty) => Some(type_expr::convert(self.file, ty)),
                        _ => None,
                    })
                });
                let ty = turbofish.or_else(|| self.let_type.clone());
                self.workflow_key(&call.args[0], |facts, key| facts.waits.push((key, ty)));
            }
            _ => {}
        }
    }

    fn workflow_key(&mut self, arg: &Expr, push: impl FnOnce(&mut BodyFacts, String)) {
        match literal_str(arg) {
            Some(key) => push(&mut self.facts, key.value()),
            None => self.facts.dynamic_keys.push(span::of(self.file, arg)),
        }
    }
}

impl<'ast> Visit<'ast> for BodyVisitor<'_> {
    fn visit_expr(&mut self, expr: &'ast Expr) {
        match expr {
            Expr::MethodCall(call) if self.sqlx_chain(call) => {}
            Expr::Call(call) => {
                if let Some(via) = sqlx_function(&call.func) {
                    let sql = sql_literal(&via, call);
                    self.record_sql(&via, sql, &[], call.span());
                } else if let Expr::Path(path) = &*call.func {
                    let names = path_names(&path.path).join("::");
                    let imported = self.sleep_imports.contains(&names);
                    if imported
                        || names.ends_with("thread::sleep")
                        || names.ends_with("time::sleep")
                    {
                        self.facts.blocking_sleeps.push(span::of(self.file, call));
                    }
                }
                visit::visit_expr_call(self, call);
            }
            _ => visit::visit_expr(self, expr),
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        self.method_call(call);
        visit::visit_expr_method_call(self, call);
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        let (name, ty) = match &local.pat {
            syn::Pat::Ident(ident) => (Some(ident.ident.to_string()), None),
            syn::Pat::Type(typed) => match &*typed.pat {
                syn::Pat::Ident(ident) => (
                    Some(ident.ident.to_string()),
                    Some(type_expr::convert(self.file, &typed.ty)),
                ),
                _ => (None, Some(type_expr::convert(self.file, &typed.ty))),
            },
            _ => (None, None),
        };
        let previous = std::mem::replace(&mut self.let_type, ty);
        if let Some(init) = &local.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
        }
        self.let_type = previous;
        if let Some(name) = name {
            let origin = local
                .init
                .as_ref()
                .map_or(Origin::Other, |init| self.origin(&init.expr));
            self.locals.insert(name, origin);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let names = path_names(&mac.path);
        let is_sqlx = match names.as_slice() {
            [name] => SQLX_MACROS.contains(&name.as_str()),
            [krate, name] => krate == "sqlx" && SQLX_MACROS.contains(&name.as_str()),
            _ => false,
        };
        let Some(args) = macro_args(mac) else {
            return;
        };
        if is_sqlx {
            let via = format!("{}!", names.last().map_or("query", String::as_str));
            // `query_as!(Type, "SQL", binds…)`: the SQL follows the row type.
            let sql_index =
                usize::from(via.starts_with("query_as") || via.starts_with("query_file_as"));
            let all: Vec<&Expr> = args.iter().collect();
            let sql = all.get(sql_index).and_then(|e| literal_str(e));
            let sql = if via.starts_with("query_file") {
                None
            } else {
                sql
            };
            let binds = all.get(sql_index + 1..).unwrap_or_default();
            self.record_sql(&via, sql, binds, mac.span());
        }
        for arg in &args {
            self.visit_expr(arg);
        }
    }
}
