//! FG101–FG103: a private query returns only the caller's rows.
//!
//! Every literal SQL call of a private query (neither `public` nor `unscoped`) is parsed
//! again with sqlparser and must, in every statement, restrict its rows by an owner column
//! compared with `=` to a bind parameter (`$n`) whose value comes from the auth context.
//!
//! Where a comparison restricts rows: in the top-level `AND` chain of a `WHERE` (also of
//! `UPDATE` and `DELETE`), in the `ON` of an inner join, or through a filter that is itself
//! restricted: `col IN (subquery)`, `col = ANY (subquery)`, `col = (subquery)`, a correlated
//! `EXISTS (subquery)`, or a CTE or derived table read as a relation. Under an `OR`, in the
//! `ON` of an outer join (which keeps the rows of its preserved side), negated, or compared
//! with a literal, another column or `IS NULL`, a comparison restricts nothing.
//!
//! Decisions the issue left open:
//!
//! - Every side of a `UNION`, `INTERSECT` or `EXCEPT` must be restricted: each is a
//!   `SELECT` of its own, and even the side that only removes rows reveals which of them
//!   exist in another user's data.
//! - `EXISTS` counts only when its subquery is correlated (names a table it does not itself
//!   declare, through a qualified column): an uncorrelated `EXISTS (… WHERE user_id = $1)`
//!   gates the whole result on the caller having some row and then returns every row. The
//!   same goes for `IN`: its left side must mention a column.
//! - SQL that reads no table (`SELECT now()`, `FROM generate_series(1, $1)`,
//!   `INSERT … VALUES`) has nothing to restrict. A `SELECT` without a table in its FROM is
//!   judged by the subqueries it reads through (`SELECT (SELECT count(*) FROM items WHERE
//!   user_id = $1)`), and a relation without rows neither restricts nor excuses the
//!   tables it is joined with.
//! - A recursive CTE's references to itself count as restricted, so rows reached from a
//!   restricted anchor through an inner join stay restricted; the anchor, a side of the
//!   `UNION`, must be restricted on its own.
//! - The bind's origin decides whether the comparison counts: the auth context counts; a
//!   handler argument counts for FG101 but is FG102 (any caller can pass another user's
//!   id); anything else (a literal, a computation, no bind forge can see) does not count,
//!   and FG101 says so.
//! - SQL forge cannot analyse (not a literal, a `QueryBuilder`, `query_file!`, or SQL that
//!   does not parse) is FG103 in a private query, and in an `unscoped` query without
//!   `tables(...)`: `unscoped` alone says nothing about what the query reads. A private
//!   query with `tables(...)` but no SQL in its body reads through code forge cannot see,
//!   which is FG103 too. A private query without SQL and without `tables(...)` reads
//!   nothing forge knows of and is left alone.

use std::convert::Infallible;
use std::ops::ControlFlow;

use forge_attrs::QueryOptions;
use sqlparser::ast::{visit_expressions, Statement};

use rayon::prelude::*;

use super::{Project, Rule};
use crate::ir::{Diagnostic, Handler, Options, Origin, SqlCall};

pub const RULES: &[Rule] = &[
    Rule {
        code: "FG101",
        title: "a private query does not filter its rows by an owner column",
        explanation: "A query that is neither `public` nor `unscoped` is served to signed-in callers, and each of them must see only their own rows. Nothing in SQL enforces that: a forgotten `WHERE user_id = $1`, a filter under an `OR`, or one in the `ON` of a `LEFT JOIN` (which keeps every row of the left side) hands every user's rows to anyone with a token. So every statement of a private query must restrict its rows by an owner column (`[check] owner_columns` in forge.toml; by default `user_id`, `owner_id`, `tenant_id`) compared with `=` to a bind parameter whose value comes from the auth context (`ctx.user_id()?`, `ctx.tenant_id()?`, `ctx.auth()`): in the top-level `AND` chain of its `WHERE`, in the `ON` of an inner join, or through an `IN` or correlated `EXISTS` subquery, a CTE or a derived table that is restricted the same way. Every side of a `UNION`, `INTERSECT` or `EXCEPT` counts as a statement; SQL that reads no table has nothing to restrict. A query that really returns everyone's rows says so with `public` or `unscoped`.",
        example: r#"// refused: every user's items, and a filter under an OR restricts nothing
#[forge::query]
pub async fn list_items(ctx: &QueryContext) -> Result<Vec<Item>> {
    let uid = ctx.user_id()?;
    let items = sqlx::query_as!(Item, "SELECT * FROM items WHERE user_id = $1 OR shared", uid)
        .fetch_all(ctx.db())
        .await?;
    Ok(items)
}

// accepted
#[forge::query]
pub async fn list_items(ctx: &QueryContext) -> Result<Vec<Item>> {
    let uid = ctx.user_id()?;
    let items = sqlx::query_as!(Item, "SELECT * FROM items WHERE user_id = $1 AND NOT archived", uid)
        .fetch_all(ctx.db())
        .await?;
    Ok(items)
}"#,
    },
    Rule {
        code: "FG102",
        title: "an owner column is compared with a caller-supplied argument",
        explanation: "Filtering by an owner column only protects other users' rows when the value comes from the verified token. A handler argument is whatever the caller sends: `WHERE user_id = $1` bound to an argument `user_id` lets anyone read anyone's rows by passing another id. Bind the value from the auth context (`ctx.user_id()?`, `ctx.tenant_id()?`, `ctx.auth()`, or a local assigned from them) instead; forge follows values through `let`, `?`, `.clone()`, references, casts and field access to tell where they come from.",
        example: r#"// refused: the caller chooses whose items to read
#[forge::query]
pub async fn list_items(ctx: &QueryContext, user_id: Uuid) -> Result<Vec<Item>> {
    let items = sqlx::query_as!(Item, "SELECT * FROM items WHERE user_id = $1", user_id)
        .fetch_all(ctx.db())
        .await?;
    Ok(items)
}

// accepted
#[forge::query]
pub async fn list_items(ctx: &QueryContext) -> Result<Vec<Item>> {
    let items = sqlx::query_as!(Item, "SELECT * FROM items WHERE user_id = $1", ctx.user_id()?)
        .fetch_all(ctx.db())
        .await?;
    Ok(items)
}"#,
    },
    Rule {
        code: "FG103",
        title: "a query's SQL cannot be analysed and nothing says what it reads",
        explanation: "forge reads SQL only when it is a string literal in the handler. SQL assembled at run time (`format!`, a variable, `QueryBuilder`, `query_file!`), SQL that does not parse, or SQL in a function the handler calls cannot be checked for an owner filter (FG101), and forge cannot tell which tables the query reads, which live subscriptions need to be notified of changes. Write the SQL as a literal with bind parameters where you can. Where you cannot, mark the query `unscoped` (its own code is then responsible for filtering by the caller) and list the tables it reads with `tables(...)`. A `public` query needs neither: it is not scoped, and its tables are only needed for live updates.",
        example: r#"// refused: the SQL is built at run time
#[forge::query]
pub async fn search(ctx: &QueryContext, order: String) -> Result<Vec<Item>> {
    let sql = format!("SELECT * FROM items WHERE user_id = $1 ORDER BY {order}");
    let items = sqlx::query_as(&sql).bind(ctx.user_id()?).fetch_all(ctx.db()).await?;
    Ok(items)
}

// accepted: forge is told what it reads, and that the handler scopes it itself
#[forge::query(unscoped, tables("items"))]
pub async fn search(ctx: &QueryContext, order: String) -> Result<Vec<Item>> {
    let sql = format!("SELECT * FROM items WHERE user_id = $1 ORDER BY {order}");
    let items = sqlx::query_as(&sql).bind(ctx.user_id()?).fetch_all(ctx.db()).await?;
    Ok(items)
}"#,
    },
];

pub fn check(project: &Project, out: &mut Vec<Diagnostic>) {
    // Each query's SQL is parsed again here, thousands of statements on a large crate:
    // spread the handlers over the cores.
    let found: Vec<Vec<Diagnostic>> = project
        .ir
        .handlers
        .par_iter()
        .map(|handler| {
            let mut found = Vec::new();
            if let Options::Query(options) = &handler.options {
                if options.unscoped && !options.public {
                    undeclared_tables(handler, options, &mut found);
                } else if !options.public {
                    private_query(handler, options, &project.config.owner_columns, &mut found);
                }
            }
            found
        })
        .collect();
    out.extend(found.into_iter().flatten());
}

/// FG103 for an `unscoped` query: it opted out of FG101, but must still say what it reads.
fn undeclared_tables(handler: &Handler, options: &QueryOptions, out: &mut Vec<Diagnostic>) {
    if !options.tables.is_empty() {
        return;
    }
    for call in &handler.sql {
        if let Err(why) = statements(call) {
            out.push(
                Diagnostic::error(
                    "FG103",
                    format!(
                        "query `{}` is `unscoped`, but nothing says which tables its SQL reads",
                        handler.name
                    ),
                    Some(call.span.clone()),
                )
                .with_label(why.label(call))
                .with_help(format!(
                    "list the tables it reads, `#[forge::query(unscoped, tables({}))]`, so live subscriptions are notified when they change; or write the SQL as a string literal",
                    tables_hint(options)
                )),
            );
        }
    }
}

/// FG101, FG102 and FG103 for a query that must return only the caller's rows.
fn private_query(
    handler: &Handler,
    options: &QueryOptions,
    owners: &[String],
    out: &mut Vec<Diagnostic>,
) {
    if handler.sql.is_empty() && !options.tables.is_empty() {
        out.push(hidden_sql(handler, options));
    }
    for call in &handler.sql {
        match statements(call) {
            Err(why) => out.push(unanalysable(handler, options, call, &why)),
            Ok(statements) => {
                let scope = analyse(&statements, &call.binds, owners);
                if !scope.restricted {
                    out.push(unrestricted(
                        handler,
                        call,
                        &statements,
                        owners,
                        scope.refused,
                    ));
                }
                out.extend(
                    scope
                        .spoofable
                        .into_iter()
                        .filter_map(|(index, column)| spoofable(handler, call, index, &column)),
                );
            }
        }
    }
}

/// Why forge cannot read a call's SQL.
enum Unanalysable {
    NotALiteral,
    DoesNotParse(String),
}

impl Unanalysable {
    fn label(&self, call: &SqlCall) -> String {
        match self {
            Unanalysable::DoesNotParse(error) => format!("forge cannot parse this SQL: {error}"),
            Unanalysable::NotALiteral if call.via == "QueryBuilder" => {
                "SQL assembled by a `QueryBuilder` at run time".to_owned()
            }
            Unanalysable::NotALiteral if call.via.starts_with("query_file") => {
                format!("SQL read from a file by `{}`", call.via)
            }
            Unanalysable::NotALiteral => "SQL built at run time, not a string literal".to_owned(),
        }
    }
}

fn statements(call: &SqlCall) -> Result<Vec<Statement>, Unanalysable> {
    let Some(sql) = &call.sql else {
        return Err(Unanalysable::NotALiteral);
    };
    if let Some(error) = &call.parse_error {
        return Err(Unanalysable::DoesNotParse(error.clone()));
    }
    crate::sql::parse(sql).map_err(Unanalysable::DoesNotParse)
}

fn unanalysable(
    handler: &Handler,
    options: &QueryOptions,
    call: &SqlCall,
    why: &Unanalysable,
) -> Diagnostic {
    Diagnostic::error(
        "FG103",
        format!(
            "query `{}` runs SQL forge cannot analyse, so its owner filter cannot be checked",
            handler.name
        ),
        Some(call.span.clone()),
    )
    .with_label(why.label(call))
    .with_help(format!(
        "write the SQL as one string literal with bind parameters (`$1`, `$2`, …) so forge can check it; if it must be built at run time, mark the query `#[forge::query(unscoped, tables({}))]`: forge then stops checking its scope, so the handler must filter by `ctx.user_id()?` itself",
        tables_hint(options)
    ))
}

/// FG103 for a private query that declares tables but runs no SQL forge can see.
fn hidden_sql(handler: &Handler, options: &QueryOptions) -> Diagnostic {
    Diagnostic::error(
        "FG103",
        format!(
            "query `{}` reads {} through SQL forge cannot see, so its owner filter cannot be checked",
            handler.name,
            quoted_list(&options.tables, "and")
        ),
        Some(handler.span.clone()),
    )
    .with_label("declares `tables(...)` but runs no SQL literal in its body")
    .with_help(format!(
        "move the SQL into the handler as a string literal so forge can check it, or mark the query `#[forge::query(unscoped, tables({}))]` if the code it calls filters by the caller itself",
        tables_hint(options)
    ))
}

/// FG101.
fn unrestricted(
    handler: &Handler,
    call: &SqlCall,
    statements: &[Statement],
    owners: &[String],
    refused: Option<Refusal>,
) -> Diagnostic {
    let (label, fix) = match refused {
        Some(refusal) => (refusal.label(), refusal.fix(call)),
        None => match owners.first() {
            Some(column) => (
                format!(
                    "not every statement here filters by {} = $n",
                    quoted_list(owners, "or")
                ),
                add_filter(call, statements, owners, column),
            ),
            None => (
                "no owner column is configured to filter by".to_owned(),
                "`[check] owner_columns` in forge.toml is empty, so no query can be filtered by its owner; list the columns that tie a row to its owner (by default `user_id`, `owner_id`, `tenant_id`).".to_owned(),
            ),
        },
    };
    Diagnostic::error(
        "FG101",
        format!(
            "private query `{}` does not filter its rows by an owner column",
            handler.name
        ),
        Some(call.span.clone()),
    )
    .with_label(label)
    .with_help(format!(
        "{fix} If the query is meant to return every user's rows, mark it `#[forge::query(public)]` (no sign-in) or `#[forge::query(unscoped)]`."
    ))
}

fn add_filter(call: &SqlCall, statements: &[Statement], owners: &[String], column: &str) -> String {
    let n = next_placeholder(statements, call.binds.len());
    format!(
        "filter every statement by an owner column ({}) compared with `=` to a value from the auth context, e.g. `… AND {column} = ${n}`, and {}.",
        quoted_list(owners, "or"),
        bind_auth(call, column, n)
    )
}

/// How to bind the caller's id to `$n` of `call`.
fn bind_auth(call: &SqlCall, column: &str, n: usize) -> String {
    let method = auth_method(column);
    if call.via.ends_with('!') {
        format!("pass `ctx.{method}()?` as the macro's argument for `${n}`")
    } else {
        format!(
            "chain `.bind(ctx.{method}()?)` for `${n}` onto the `sqlx::{}(…)` call",
            call.via
        )
    }
}

/// FG102, unless the bind does not come from an argument after all.
fn spoofable(handler: &Handler, call: &SqlCall, index: usize, column: &str) -> Option<Diagnostic> {
    let bind = call.binds.get(index)?;
    let Origin::Argument { name } = &bind.origin else {
        return None;
    };
    let method = auth_method(column);
    Some(
        Diagnostic::error(
            "FG102",
            format!(
                "query `{}` compares `{column}` with a value the caller chooses",
                handler.name
            ),
            Some(bind.span.clone()),
        )
        .with_label(format!("comes from the caller-supplied argument `{name}`"))
        .with_help(format!(
            "any caller can pass someone else's id here and read their rows; bind `ctx.{method}()?` (from the verified token) for `${}` instead of `{name}`",
            index + 1
        )),
    )
}

/// `ctx.user_id()` or `ctx.tenant_id()`, whichever holds what `column` stores.
fn auth_method(column: &str) -> &'static str {
    if column.to_ascii_lowercase().contains("tenant") {
        "tenant_id"
    } else {
        "user_id"
    }
}

/// The first bind parameter number the SQL and its binds leave free.
fn next_placeholder(statements: &[Statement], binds: usize) -> usize {
    let mut highest = binds;
    for statement in statements {
        let ControlFlow::<Infallible>::Continue(()) = visit_expressions(statement, |expr| {
            if let Some(n) = placeholder(expr) {
                highest = highest.max(n);
            }
            ControlFlow::Continue(())
        });
    }
    // `$18446744073709551615` is valid sqlparser input.
    highest.saturating_add(1)
}

fn tables_hint(options: &QueryOptions) -> String {
    match options.tables.as_slice() {
        [] => "\"…\"".to_owned(),
        tables => tables
            .iter()
            .map(|table| format!("{table:?}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// "`a`, `b` or `c`".
fn quoted_list(items: &[String], conjunction: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("`{item}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

/// An owner comparison in a restricting place that still does not count, by its bind.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    column: String,
    /// The `n` of `$n`.
    n: usize,
    /// Whether a value is bound to `$n` at all (it then does not come from the auth context).
    bound: bool,
}

impl Refusal {
    fn label(&self) -> String {
        let Refusal { column, n, .. } = self;
        if self.bound {
            format!(
                "`{column} = ${n}` is bound to a value that does not come from the auth context"
            )
        } else {
            format!("`{column} = ${n}`, but forge sees no value bound to `${n}` on this call")
        }
    }

    fn fix(&self, call: &SqlCall) -> String {
        if self.bound {
            format!(
                "bind `ctx.{}()?` (or a local assigned from it) to `${}` instead, so the filter is the caller's own id.",
                auth_method(&self.column),
                self.n
            )
        } else {
            format!(
                "{}, where forge can see where the value comes from.",
                bind_auth(call, &self.column, self.n)
            )
        }
    }
}

mod rows;

use rows::{analyse, placeholder};
#[cfg(test)]
mod tests;
