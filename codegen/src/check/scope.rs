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

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::ControlFlow;

use forge_attrs::QueryOptions;
use sqlparser::ast::{
    visit_expressions, BinaryOperator, Expr, FromTable, Ident, InTarget, JoinConstraint,
    JoinOperator, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor,
    TableWithJoins, UpdateTableFromKind, Value, ValueWithSpan, Visit, Visitor, With,
};

use rayon::prelude::*;

use super::{Project, Rule};
use crate::ir::{Bind, Diagnostic, Handler, Options, Origin, SqlCall};
use crate::sql::ident_name;

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

/// What the statements of one SQL call say about its owner filter.
#[derive(Debug, PartialEq, Eq)]
struct Scope {
    /// Every statement restricts its rows to the caller's.
    restricted: bool,
    /// Owner comparisons that count but are bound to a handler argument (FG102): bind index
    /// to the configured column.
    spoofable: BTreeMap<usize, String>,
    /// The first owner comparison that did not count.
    refused: Option<Refusal>,
}

fn analyse(statements: &[Statement], binds: &[Bind], owners: &[String]) -> Scope {
    let mut walker = Walker {
        owners,
        binds,
        ctes: Vec::new(),
        spoofable: BTreeMap::new(),
        refused: None,
    };
    let rows = statements.iter().fold(Rows::Nothing, |rows, statement| {
        rows.max(walker.statement(statement))
    });
    Scope {
        restricted: rows != Rows::Unrestricted,
        spoofable: walker.spoofable,
        refused: walker.refused,
    }
}

/// What a statement, query or relation returns, ordered so that `max` combines the parts
/// of a whole that must each be restricted (statements, the sides of a set operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rows {
    /// No table's rows (`SELECT now()`, `VALUES`, `generate_series(…)`): nothing to restrict.
    Nothing,
    /// Only rows tied to the caller.
    Restricted,
    /// Rows of every owner.
    Unrestricted,
}

impl Rows {
    /// Rows matched by an inner join or cross product: each comes with a row of both
    /// sides, so one restricted side restricts them all.
    fn inner(self, other: Rows) -> Rows {
        if self == Rows::Restricted || other == Rows::Restricted {
            Rows::Restricted
        } else {
            self.max(other)
        }
    }

    /// Rows of an outer join that keeps every row of `self`: the other side's rows come
    /// attached to them, so they decide unless `self` reads no table.
    fn preserving(self, other: Rows) -> Rows {
        match self {
            Rows::Nothing => other,
            kept => kept,
        }
    }
}

/// Walks the parts of the SQL that restrict rows. Recursion follows subqueries, which
/// sqlparser's recursion limit keeps shallow; the chains it builds with a loop (`AND`,
/// set operations) are walked iteratively. Every part is walked, never short-circuited,
/// so that every owner comparison is seen for FG102.
struct Walker<'a> {
    owners: &'a [String],
    binds: &'a [Bind],
    /// CTEs in scope, innermost last, with what each returns.
    ctes: Vec<(String, Rows)>,
    spoofable: BTreeMap<usize, String>,
    refused: Option<Refusal>,
}

impl<'a> Walker<'a> {
    fn statement(&mut self, statement: &Statement) -> Rows {
        match statement {
            Statement::Query(query) => self.query(query),
            Statement::Insert(insert) => match insert.source.as_deref() {
                Some(source) => self.query(source),
                None => Rows::Nothing,
            },
            Statement::Update(update) => {
                let from = match &update.from {
                    Some(
                        UpdateTableFromKind::BeforeSet(from) | UpdateTableFromKind::AfterSet(from),
                    ) => from.as_slice(),
                    None => &[],
                };
                self.rows(
                    std::iter::once(&update.table).chain(from),
                    update.selection.as_ref(),
                )
            }
            Statement::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                self.rows(
                    from.iter().chain(delete.using.iter().flatten()),
                    delete.selection.as_ref(),
                )
            }
            other if reads_nothing(other) => Rows::Nothing,
            _ => Rows::Unrestricted,
        }
    }

    fn query(&mut self, query: &Query) -> Rows {
        let outer = self.ctes.len();
        if let Some(with) = &query.with {
            self.with(with);
        }
        let rows = set_leaves(&query.body)
            .into_iter()
            .fold(Rows::Nothing, |rows, leaf| rows.max(self.leaf(leaf)));
        self.ctes.truncate(outer);
        rows
    }

    fn with(&mut self, with: &With) {
        for cte in &with.cte_tables {
            let name = ident_name(&cte.alias.name);
            // Rows a recursive CTE adds are joined to its earlier rows: they stay restricted
            // when those are, and the anchor is checked on its own as a side of the UNION.
            if with.recursive {
                self.ctes.push((name.clone(), Rows::Restricted));
            }
            let rows = self.query(&cte.query);
            if with.recursive {
                self.ctes.pop();
            }
            self.ctes.push((name, rows));
        }
    }

    fn leaf(&mut self, leaf: &SetExpr) -> Rows {
        match leaf {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Query(query) => self.query(query),
            SetExpr::Insert(statement)
            | SetExpr::Update(statement)
            | SetExpr::Delete(statement)
            | SetExpr::Merge(statement) => self.statement(statement),
            SetExpr::Values(values) => self.subqueries(values),
            // `TABLE t` is every row of `t`; `set_leaves` never yields a set operation.
            SetExpr::Table(_) | SetExpr::SetOperation { .. } => Rows::Unrestricted,
        }
    }

    fn select(&mut self, select: &Select) -> Rows {
        match self.rows(&select.from, select.selection.as_ref()) {
            // Without a table in FROM, whatever the SELECT reads it reads in subqueries.
            Rows::Nothing => self.subqueries(select),
            rows => rows,
        }
    }

    /// What rows read from a FROM list (a cross product) and filtered by a WHERE are.
    fn rows<'q>(
        &mut self,
        from: impl IntoIterator<Item = &'q TableWithJoins>,
        filter: Option<&Expr>,
    ) -> Rows {
        let joined = from
            .into_iter()
            .fold(Rows::Nothing, |rows, table| rows.inner(self.joined(table)));
        let filtered = filter.is_some_and(|filter| self.condition(filter));
        if filtered {
            Rows::Restricted
        } else {
            joined
        }
    }

    fn joined(&mut self, table: &TableWithJoins) -> Rows {
        let mut rows = self.relation(&table.relation);
        for join in &table.joins {
            let right = self.relation(&join.relation);
            rows = match &join.join_operator {
                JoinOperator::Join(constraint)
                | JoinOperator::Inner(constraint)
                | JoinOperator::CrossJoin(constraint) => {
                    if self.constraint(constraint) {
                        Rows::Restricted
                    } else {
                        rows.inner(right)
                    }
                }
                // An outer join keeps every row of its preserved side, whatever its `ON` says.
                JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => rows.preserving(right),
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) => right.preserving(rows),
                JoinOperator::FullOuter(_) => rows.max(right),
                // Joins of other dialects, which the Postgres parser does not produce.
                _ => Rows::Unrestricted,
            };
        }
        rows
    }

    fn relation(&mut self, factor: &TableFactor) -> Rows {
        match factor {
            TableFactor::Table {
                name, args: None, ..
            } => self.table(name),
            TableFactor::Derived { subquery, .. } => self.query(subquery),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.joined(table_with_joins),
            // Set-returning functions read tables only through subqueries in their arguments.
            TableFactor::Table { args: Some(_), .. }
            | TableFactor::Function { .. }
            | TableFactor::TableFunction { .. }
            | TableFactor::UNNEST { .. } => self.subqueries(factor),
            _ => Rows::Unrestricted,
        }
    }

    /// A CTE in scope returns what its query does; a table returns every row.
    fn table(&self, name: &ObjectName) -> Rows {
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return Rows::Unrestricted;
        };
        let name = ident_name(ident);
        self.ctes
            .iter()
            .rev()
            .find(|(cte, _)| *cte == name)
            .map_or(Rows::Unrestricted, |(_, rows)| *rows)
    }

    /// What the outermost subqueries inside `node` return together: for SQL that reads
    /// tables only through them (`SELECT (SELECT count(*) FROM …)`).
    fn subqueries<V: Visit>(&mut self, node: &V) -> Rows {
        struct Outermost<'w, 'a> {
            walker: &'w mut Walker<'a>,
            depth: usize,
            rows: Rows,
        }
        impl Visitor for Outermost<'_, '_> {
            type Break = Infallible;

            fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Infallible> {
                if self.depth == 0 {
                    self.rows = self.rows.max(self.walker.query(query));
                }
                self.depth += 1;
                ControlFlow::Continue(())
            }

            fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<Infallible> {
                self.depth -= 1;
                ControlFlow::Continue(())
            }
        }
        let mut outermost = Outermost {
            walker: self,
            depth: 0,
            rows: Rows::Nothing,
        };
        let ControlFlow::Continue(()) = node.visit(&mut outermost);
        outermost.rows
    }

    fn constraint(&mut self, constraint: &JoinConstraint) -> bool {
        match constraint {
            JoinConstraint::On(on) => self.condition(on),
            _ => false,
        }
    }

    /// Whether `condition` restricts the rows it filters to the caller's.
    fn condition(&mut self, condition: &Expr) -> bool {
        conjuncts(condition)
            .into_iter()
            .fold(false, |any, conjunct| self.conjunct(conjunct) | any)
    }

    fn conjunct(&mut self, conjunct: &Expr) -> bool {
        match conjunct {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => self.equality(left, right),
            Expr::In {
                expr,
                target: InTarget::Subquery(subquery),
                negated: false,
                ..
            } => self.member(expr, subquery),
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                right,
                ..
            } => match peel(right) {
                Expr::Subquery(subquery) => self.member(left, subquery),
                _ => false,
            },
            Expr::Exists {
                subquery,
                negated: false,
            } => self.query(subquery) == Rows::Restricted && correlated(subquery),
            _ => false,
        }
    }

    fn equality(&mut self, left: &Expr, right: &Expr) -> bool {
        for (column, value) in [(left, right), (right, left)] {
            if let (Some(owner), Some(n)) = (self.owner_column(column), placeholder(value)) {
                return self.bound(owner, n);
            }
            if let Expr::Subquery(subquery) = peel(value) {
                return self.member(column, subquery);
            }
        }
        false
    }

    /// `expr IN (subquery)` and its equivalents: restricting when the subquery is
    /// restricted and `expr` depends on the row (a constant would gate the whole result).
    fn member(&mut self, expr: &Expr, subquery: &Query) -> bool {
        self.query(subquery) == Rows::Restricted && mentions_column(expr)
    }

    /// Whether `column = $n` counts, by where the value bound to `$n` comes from.
    fn bound(&mut self, column: &str, n: usize) -> bool {
        // `placeholder` only returns numbers from 1.
        let index = n - 1;
        let bound = match self.binds.get(index).map(|bind| &bind.origin) {
            Some(Origin::Auth { .. }) => return true,
            Some(Origin::Argument { .. }) => {
                self.spoofable.insert(index, column.to_owned());
                return true;
            }
            Some(Origin::Other) => true,
            None => false,
        };
        self.refused.get_or_insert(Refusal {
            column: column.to_owned(),
            n,
            bound,
        });
        false
    }

    /// The configured owner column `expr` names, if any: unquoted names match in any case,
    /// quoted ones exactly, as Postgres folds them.
    fn owner_column(&self, expr: &Expr) -> Option<&'a str> {
        let ident = column(expr)?;
        self.owners
            .iter()
            .find(|owner| match ident.quote_style {
                None => ident.value.eq_ignore_ascii_case(owner),
                Some(_) => ident.value == **owner,
            })
            .map(String::as_str)
    }
}

/// The operands of a top-level `AND` chain, through parentheses. Iterative: sqlparser
/// builds operator chains with a loop, so a long chain is a deep tree.
fn conjuncts(condition: &Expr) -> Vec<&Expr> {
    let mut found = Vec::new();
    let mut pending = vec![condition];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                pending.push(right);
                pending.push(left);
            }
            Expr::Nested(inner) => pending.push(inner),
            _ => found.push(expr),
        }
    }
    found
}

/// The operands of a chain of set operations, left to right. Iterative for the same
/// reason as [`conjuncts`].
fn set_leaves(body: &SetExpr) -> Vec<&SetExpr> {
    let mut found = Vec::new();
    let mut pending = vec![body];
    while let Some(expr) = pending.pop() {
        match expr {
            SetExpr::SetOperation { left, right, .. } => {
                pending.push(right);
                pending.push(left);
            }
            _ => found.push(expr),
        }
    }
    found
}

/// Parentheses and casts change neither which column is compared nor which bind it is
/// compared with (`user_id = $1::uuid`).
fn peel(mut expr: &Expr) -> &Expr {
    while let Expr::Nested(inner) | Expr::Cast { expr: inner, .. } = expr {
        expr = inner;
    }
    expr
}

/// `n` of a `$n` bind parameter.
fn placeholder(expr: &Expr) -> Option<usize> {
    let Expr::Value(ValueWithSpan {
        value: Value::Placeholder(text),
        ..
    }) = peel(expr)
    else {
        return None;
    };
    text.strip_prefix('$')?
        .parse()
        .ok()
        .filter(|n: &usize| *n > 0)
}

/// The column a (possibly qualified) column reference names.
fn column(expr: &Expr) -> Option<&Ident> {
    match peel(expr) {
        Expr::Identifier(ident) => Some(ident),
        Expr::CompoundIdentifier(parts) => parts.last(),
        _ => None,
    }
}

fn mentions_column(expr: &Expr) -> bool {
    visit_expressions(expr, |expr| match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Whether a statement other than a query or DML names no table at all.
fn reads_nothing(statement: &Statement) -> bool {
    struct Tables;
    impl Visitor for Tables {
        type Break = ();

        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            // `args: Some(_)` is a set-returning function (`generate_series(1, 3)`).
            match factor {
                TableFactor::Table { args: None, .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }

        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            let table = set_leaves(&query.body)
                .iter()
                .any(|leaf| matches!(leaf, SetExpr::Table(_)));
            if table {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    statement.visit(&mut Tables).is_continue()
}

/// Whether `subquery` refers, through a qualified column, to a table or alias it does not
/// declare itself: one of an enclosing query's, so it is evaluated per outer row.
fn correlated(subquery: &Query) -> bool {
    #[derive(Default)]
    struct Names {
        declared: BTreeSet<String>,
        qualifiers: BTreeSet<String>,
    }
    impl Visitor for Names {
        type Break = Infallible;

        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Infallible> {
            // An alias hides the table's own name, as in Postgres.
            let alias = match factor {
                TableFactor::Table {
                    alias: Some(alias), ..
                }
                | TableFactor::Derived {
                    alias: Some(alias), ..
                }
                | TableFactor::NestedJoin {
                    alias: Some(alias), ..
                } => Some(&alias.name),
                TableFactor::Table { name, .. } => name.0.last().and_then(ObjectNamePart::as_ident),
                _ => None,
            };
            if let Some(alias) = alias {
                self.declared.insert(ident_name(alias));
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Infallible> {
            if let Expr::CompoundIdentifier(parts) = expr {
                if let [.., table, _column] = parts.as_slice() {
                    self.qualifiers.insert(ident_name(table));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names::default();
    let ControlFlow::Continue(()) = subquery.visit(&mut names);
    !names.qualifiers.is_subset(&names.declared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CheckConfig;
    use crate::ir::Span;
    use crate::lock::Lock;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn bind(origin: Origin) -> Bind {
        Bind {
            expr: "value".to_owned(),
            origin,
            span: Span::default(),
        }
    }

    fn auth() -> Bind {
        bind(Origin::Auth {
            method: "user_id".to_owned(),
        })
    }

    fn argument(name: &str) -> Bind {
        bind(Origin::Argument {
            name: name.to_owned(),
        })
    }

    fn scope_with(sql: &str, binds: &[Bind], owners: &[&str]) -> Scope {
        let statements =
            Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let owners: Vec<String> = owners.iter().map(|owner| owner.to_string()).collect();
        analyse(&statements, binds, &owners)
    }

    fn scope(sql: &str, binds: &[Bind]) -> Scope {
        let owners = CheckConfig::default().owner_columns;
        let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
        scope_with(sql, binds, &owners)
    }

    /// Whether `sql` counts as restricted when every bind comes from the auth context.
    fn restricted(sql: &str) -> bool {
        scope(sql, &[auth(), auth(), auth()]).restricted
    }

    #[track_caller]
    fn accepted(sqls: &[&str]) {
        for sql in sqls {
            assert!(restricted(sql), "should be accepted: {sql}");
        }
    }

    #[track_caller]
    fn refused(sqls: &[&str]) {
        for sql in sqls {
            assert!(!restricted(sql), "should be refused: {sql}");
        }
    }

    #[test]
    fn comparisons_in_the_top_level_and_chain() {
        accepted(&[
            "SELECT * FROM items WHERE user_id = $1",
            "SELECT * FROM items WHERE NOT archived AND user_id = $1 AND created_at > $2",
            "SELECT * FROM items WHERE (archived = false AND (user_id = $1))",
            "SELECT * FROM items WHERE $1 = owner_id",
            "SELECT * FROM items WHERE tenant_id = $1::uuid",
            "SELECT * FROM items WHERE CAST($2 AS uuid) = user_id",
            "SELECT * FROM items WHERE user_id = ($1)",
        ]);
    }

    #[test]
    fn comparisons_that_restrict_nothing() {
        refused(&[
            "SELECT * FROM items",
            "SELECT * FROM items WHERE id = $1",
            // under an OR
            "SELECT * FROM items WHERE user_id = $1 OR shared",
            "SELECT * FROM items WHERE (user_id = $1 OR shared) AND NOT archived",
            "SELECT * FROM items WHERE NOT (user_id = $1)",
            // with a literal, another column, IS NULL
            "SELECT * FROM items WHERE user_id = 'b7d6c1a0-0000-0000-0000-000000000000'",
            "SELECT * FROM items WHERE user_id = 42",
            "SELECT * FROM items WHERE user_id = owner_id",
            "SELECT * FROM items i WHERE i.user_id = i.created_by",
            "SELECT * FROM items WHERE user_id IS NULL",
            "SELECT * FROM items WHERE user_id IS NOT NULL AND $1::uuid IS NOT NULL",
            // not `=`
            "SELECT * FROM items WHERE user_id <> $1",
            "SELECT * FROM items WHERE user_id IN ($1, $2)",
            "SELECT * FROM items WHERE user_id = ANY($1)",
            // a filter on groups, not rows
            "SELECT user_id, count(*) FROM items GROUP BY user_id HAVING user_id = $1",
        ]);
    }

    #[test]
    fn inner_join_on_restricts_outer_join_on_does_not() {
        accepted(&[
            "SELECT i.* FROM items i JOIN shares s ON s.item_id = i.id AND s.user_id = $1",
            "SELECT i.* FROM items i INNER JOIN shares s ON s.user_id = $1 AND s.item_id = i.id",
            "SELECT i.* FROM items i CROSS JOIN settings s WHERE s.owner_id = $1",
            "SELECT i.* FROM items i LEFT JOIN shares s ON s.item_id = i.id WHERE s.user_id = $1",
            "SELECT * FROM a JOIN (b JOIN c ON c.user_id = $1) ON a.id = b.id",
            "SELECT * FROM a LEFT JOIN b ON b.id = a.id JOIN c ON c.a_id = a.id AND c.user_id = $1",
            "SELECT * FROM a, b WHERE a.id = b.id AND b.owner_id = $1",
        ]);
        refused(&[
            "SELECT i.* FROM items i LEFT JOIN shares s ON s.item_id = i.id AND s.user_id = $1",
            "SELECT i.* FROM items i LEFT OUTER JOIN shares s ON s.user_id = $1",
            "SELECT i.* FROM shares s RIGHT JOIN items i ON s.item_id = i.id AND s.user_id = $1",
            "SELECT * FROM a FULL JOIN b ON b.id = a.id AND b.user_id = $1",
            // the inner join restricts `a` and `b`, but the right join keeps every row of `c`
            "SELECT * FROM a JOIN b ON b.user_id = $1 RIGHT JOIN c ON c.id = a.c_id",
            // the nested inner join sits on the nullable side of the left join
            "SELECT * FROM a LEFT JOIN (b JOIN c ON c.user_id = $1) ON a.id = b.id",
            "SELECT * FROM items i JOIN users u USING (user_id)",
        ]);
    }

    #[test]
    fn restricted_subqueries_restrict() {
        accepted(&[
            "SELECT * FROM tasks WHERE project_id IN (SELECT id FROM projects WHERE owner_id = $1)",
            "SELECT * FROM tasks WHERE project_id = ANY (SELECT id FROM projects WHERE owner_id = $1)",
            "SELECT * FROM tasks WHERE project_id = (SELECT id FROM projects WHERE owner_id = $1 LIMIT 1)",
            "SELECT * FROM projects p WHERE EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.user_id = $1)",
            "SELECT * FROM projects WHERE EXISTS (SELECT 1 FROM members WHERE members.project_id = projects.id AND members.user_id = $1)",
            "SELECT * FROM (SELECT * FROM items WHERE user_id = $1) AS mine WHERE mine.score > $2",
        ]);
        refused(&[
            "SELECT * FROM tasks WHERE project_id NOT IN (SELECT id FROM projects WHERE owner_id = $1)",
            "SELECT * FROM tasks WHERE project_id IN (SELECT id FROM projects)",
            "SELECT * FROM tasks WHERE project_id IN (SELECT id FROM projects WHERE owner_id = $1 OR public)",
            // a constant on the left gates the whole result instead of filtering rows
            "SELECT * FROM tasks WHERE $2 IN (SELECT id FROM projects WHERE owner_id = $1)",
            "SELECT * FROM projects p WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.user_id = $1)",
            // uncorrelated: every project as soon as the caller has one membership
            "SELECT * FROM projects WHERE EXISTS (SELECT 1 FROM members m WHERE m.user_id = $1)",
            // `m.id` belongs to the subquery's own table
            "SELECT * FROM projects p WHERE EXISTS (SELECT 1 FROM members m WHERE m.id = m.project_id AND m.user_id = $1)",
            // a subquery in the select list does not filter the rows
            "SELECT p.*, (SELECT count(*) FROM members m WHERE m.user_id = $1) FROM projects p",
            "SELECT * FROM (SELECT * FROM items) AS everything",
        ]);
    }

    #[test]
    fn ctes() {
        accepted(&[
            "WITH mine AS (SELECT * FROM items WHERE user_id = $1) SELECT * FROM mine",
            "WITH mine AS (SELECT id FROM items WHERE user_id = $1) \
             SELECT * FROM tags WHERE item_id IN (SELECT id FROM mine)",
            "WITH mine AS (SELECT * FROM items WHERE user_id = $1), \
                  recent AS (SELECT * FROM mine WHERE created_at > now() - interval '1 day') \
             SELECT * FROM recent",
            "WITH everything AS (SELECT * FROM items) SELECT * FROM everything WHERE user_id = $1",
            "WITH RECURSIVE tree AS ( \
                 SELECT id, parent_id FROM folders WHERE owner_id = $1 \
                 UNION ALL \
                 SELECT f.id, f.parent_id FROM folders f JOIN tree t ON f.parent_id = t.id) \
             SELECT * FROM tree",
        ]);
        refused(&[
            "WITH everything AS (SELECT * FROM items) SELECT * FROM everything",
            "WITH mine AS (SELECT * FROM items WHERE user_id = $1) SELECT * FROM items",
            // a non-recursive CTE's own name inside it is the real table
            "WITH items AS (SELECT * FROM items) SELECT * FROM items",
            // the CTE exists only inside the parenthesised query
            "SELECT * FROM (WITH mine AS (SELECT * FROM items WHERE user_id = $1) SELECT 1) s, mine",
            "WITH RECURSIVE tree AS ( \
                 SELECT id, parent_id FROM folders WHERE parent_id IS NULL \
                 UNION ALL \
                 SELECT f.id, f.parent_id FROM folders f JOIN tree t ON f.parent_id = t.id) \
             SELECT * FROM tree",
            "WITH RECURSIVE tree AS ( \
                 SELECT id FROM folders WHERE owner_id = $1 \
                 UNION ALL \
                 SELECT f.id FROM folders f LEFT JOIN tree t ON f.parent_id = t.id) \
             SELECT * FROM tree",
        ]);
    }

    #[test]
    fn every_side_of_a_set_operation() {
        accepted(&[
            "SELECT id FROM items WHERE user_id = $1 UNION SELECT id FROM archived WHERE user_id = $1",
            "(SELECT id FROM a WHERE owner_id = $1) UNION ALL (SELECT id FROM b WHERE owner_id = $1) \
             UNION ALL SELECT id FROM c WHERE user_id = $1",
            "SELECT id FROM items WHERE user_id = $1 UNION ALL SELECT 0",
        ]);
        refused(&[
            "SELECT id FROM items WHERE user_id = $1 UNION SELECT id FROM archived",
            "SELECT id FROM items UNION SELECT id FROM archived WHERE user_id = $1",
            "SELECT id FROM items WHERE user_id = $1 INTERSECT SELECT item_id FROM flags",
            "SELECT id FROM items WHERE user_id = $1 EXCEPT SELECT item_id FROM hidden",
            "SELECT id FROM a WHERE user_id = $1 UNION SELECT id FROM b WHERE user_id = $1 UNION TABLE c",
        ]);
    }

    #[test]
    fn every_statement() {
        refused(&["SELECT * FROM a WHERE user_id = $1; SELECT * FROM b"]);
        accepted(&["SELECT * FROM a WHERE user_id = $1; SELECT * FROM b WHERE owner_id = $1"]);
    }

    #[test]
    fn statements_that_read_no_table_have_nothing_to_restrict() {
        accepted(&[
            "SELECT now()",
            "SELECT $1::int + 1",
            "SELECT * FROM generate_series(1, $1)",
            "VALUES (1), (2)",
            "INSERT INTO audit (user_id, action) VALUES ($1, 'read')",
            "SET LOCAL statement_timeout = '5s'",
            "SELECT * FROM unnest($1::uuid[]) AS ids(id)",
            // reads tables only through restricted subqueries
            "SELECT (SELECT count(*) FROM items WHERE user_id = $1) AS items, \
                    (SELECT count(*) FROM tags WHERE owner_id = $1) AS tags",
            "SELECT EXISTS (SELECT 1 FROM items WHERE user_id = $1)",
            "SELECT * FROM generate_series(1, 3) g JOIN items i ON i.n = g AND i.user_id = $1",
        ]);
        refused(&[
            // a relation without rows neither restricts nor excuses the others
            "SELECT * FROM items, (SELECT 1) AS one",
            "SELECT * FROM items JOIN (VALUES (1)) AS v(n) ON true",
            "SELECT * FROM generate_series(1, 3) g LEFT JOIN items i ON i.n = g",
            "SELECT * FROM unnest(ARRAY(SELECT id FROM items)) AS ids(id)",
            "SELECT (SELECT count(*) FROM items WHERE user_id = $1), (SELECT count(*) FROM tags)",
            "SELECT (SELECT count(*) FROM items)",
            "VALUES ((SELECT max(id) FROM items))",
            "SELECT * FROM (TABLE items) AS t",
            "INSERT INTO copies SELECT * FROM items",
        ]);
    }

    #[test]
    fn updates_and_deletes_are_restricted_by_their_where() {
        accepted(&[
            "UPDATE notifications SET seen = true WHERE user_id = $1 RETURNING *",
            "UPDATE items SET score = 0 FROM projects p WHERE items.project_id = p.id AND p.owner_id = $1",
            "DELETE FROM drafts WHERE owner_id = $1 AND id = $2",
            "DELETE FROM drafts d USING projects p WHERE d.project_id = p.id AND p.owner_id = $1",
            "INSERT INTO copies SELECT * FROM items WHERE user_id = $1",
        ]);
        refused(&[
            "UPDATE notifications SET seen = true WHERE id = $1",
            "DELETE FROM drafts WHERE id = $1",
        ]);
    }

    #[test]
    fn qualified_and_quoted_columns() {
        accepted(&[
            "SELECT * FROM items i WHERE i.user_id = $1",
            "SELECT * FROM app.items WHERE app.items.user_id = $1",
            "SELECT * FROM items i WHERE I.USER_ID = $1",
            "SELECT * FROM items WHERE \"user_id\" = $1",
        ]);
        refused(&["SELECT * FROM items WHERE \"User_Id\" = $1"]);
    }

    #[test]
    fn owner_columns_are_configurable() {
        let binds = [auth()];
        let owners = ["account_id", "OrgId"];
        let accepted = |sql: &str| scope_with(sql, &binds, &owners).restricted;
        assert!(accepted("SELECT * FROM items WHERE account_id = $1"));
        assert!(accepted("SELECT * FROM items WHERE i.Account_ID = $1"));
        assert!(accepted("SELECT * FROM items WHERE \"OrgId\" = $1"));
        assert!(accepted("SELECT * FROM items WHERE orgid = $1"));
        assert!(!accepted("SELECT * FROM items WHERE \"orgid\" = $1"));
        assert!(!accepted("SELECT * FROM items WHERE user_id = $1"));
        assert!(!scope_with("SELECT * FROM items WHERE user_id = $1", &binds, &[]).restricted);
    }

    #[test]
    fn a_bind_parameter_without_a_bind_does_not_count() {
        for sql in [
            "SELECT * FROM items WHERE user_id = $2",
            "SELECT * FROM items WHERE user_id = $18446744073709551615",
            "SELECT * FROM items WHERE user_id = $99999999999999999999999",
            "SELECT * FROM items WHERE user_id = $0",
        ] {
            assert!(!scope(sql, &[auth()]).restricted, "{sql}");
        }
        assert_eq!(
            scope("SELECT * FROM items WHERE user_id = $2", &[auth()]).refused,
            Some(Refusal {
                column: "user_id".to_owned(),
                n: 2,
                bound: false
            })
        );
    }

    #[test]
    fn where_the_bound_value_comes_from() {
        let sql = "SELECT * FROM items WHERE user_id = $1";
        assert_eq!(
            scope(sql, &[auth()]),
            Scope {
                restricted: true,
                spoofable: BTreeMap::new(),
                refused: None
            }
        );
        assert_eq!(
            scope(sql, &[argument("user_id")]),
            Scope {
                restricted: true,
                spoofable: BTreeMap::from([(0, "user_id".to_owned())]),
                refused: None
            }
        );
        assert_eq!(
            scope(sql, &[bind(Origin::Other)]),
            Scope {
                restricted: false,
                spoofable: BTreeMap::new(),
                refused: Some(Refusal {
                    column: "user_id".to_owned(),
                    n: 1,
                    bound: true
                })
            }
        );
    }

    #[test]
    fn spoofable_comparisons_are_the_accepted_ones() {
        let found = scope(
            "SELECT * FROM items i JOIN projects p ON p.id = i.project_id AND p.tenant_id = $2 \
             LEFT JOIN shares s ON s.item_id = i.id AND s.user_id = $3 \
             WHERE (i.user_id = $1 OR i.owner_id = $3) AND i.user_id = $4",
            &[
                argument("input"),
                argument("tenant"),
                argument("other"),
                auth(),
            ],
        );
        assert!(found.restricted);
        assert_eq!(
            found.spoofable,
            BTreeMap::from([(1, "tenant_id".to_owned())])
        );
    }

    #[test]
    fn long_chains_are_walked_without_recursion() {
        let conjuncts = "a = 1 AND ".repeat(2000);
        assert!(restricted(&format!(
            "SELECT * FROM t WHERE {conjuncts}user_id = $1"
        )));
        let sides = "SELECT 1 UNION ".repeat(2000);
        assert!(!restricted(&format!("{sides}SELECT * FROM t")));
    }

    fn diagnostics(source: &str) -> Vec<Diagnostic> {
        let file = crate::parse::parse_file("src/main.rs", "", source);
        let resolved = crate::resolve::build(&[file]);
        let project = Project {
            ir: &resolved.ir,
            config: &CheckConfig::default(),
            lock: &Lock::default(),
            migrations: &[],
        };
        let mut out = Vec::new();
        check(&project, &mut out);
        out
    }

    fn codes(source: &str) -> Vec<String> {
        diagnostics(source).into_iter().map(|d| d.code).collect()
    }

    #[test]
    fn public_unscoped_and_other_kinds_are_not_scoped() {
        let source = r#"
use forge::prelude::*;
#[forge::query(public)]
pub async fn a(ctx: &QueryContext) -> Result<()> { sqlx::query("SELECT * FROM items").execute(ctx.db()).await?; Ok(()) }
#[forge::query(unscoped)]
pub async fn b(ctx: &QueryContext) -> Result<()> { sqlx::query("SELECT * FROM items").execute(ctx.db()).await?; Ok(()) }
#[forge::query(scope = "global")]
pub async fn c(ctx: &QueryContext) -> Result<()> { sqlx::query("SELECT * FROM items").execute(ctx.db()).await?; Ok(()) }
#[forge::mutation]
pub async fn d(ctx: &MutationContext) -> Result<()> { sqlx::query("DELETE FROM items").execute(ctx.tx()).await?; Ok(()) }
#[forge::query]
pub async fn e(ctx: &QueryContext) -> Result<i32> { let _ = ctx; Ok(1) }
"#;
        assert_eq!(codes(source), Vec::<String>::new());
    }

    #[test]
    fn fg101_says_how_to_fix_it() {
        let found = diagnostics(
            r#"
use forge::prelude::*;
#[forge::query]
pub async fn a(ctx: &QueryContext, limit: i64) -> Result<()> {
    sqlx::query("SELECT * FROM items LIMIT $1").bind(limit).execute(ctx.db()).await?;
    sqlx::query!("SELECT * FROM items WHERE user_id = $1", Uuid::nil()).execute(ctx.db()).await?;
    Ok(())
}
"#,
        );
        let [by_function, by_macro] = found.as_slice() else {
            panic!("{found:#?}");
        };
        assert_eq!(by_function.code, "FG101");
        assert_eq!(
            by_function.label.as_deref(),
            Some("not every statement here filters by `user_id`, `owner_id` or `tenant_id` = $n")
        );
        let help = by_function.help.as_deref().unwrap_or_default();
        assert!(
            help.contains(
                "`… AND user_id = $2`, and chain `.bind(ctx.user_id()?)` for `$2` onto the `sqlx::query(…)` call."
            ),
            "{help}"
        );
        assert!(help.contains("`#[forge::query(public)]`"), "{help}");
        assert!(help.contains("`#[forge::query(unscoped)]`"), "{help}");
        assert_eq!(by_macro.code, "FG101");
        assert_eq!(
            by_macro.label.as_deref(),
            Some("`user_id = $1` is bound to a value that does not come from the auth context")
        );
        let help = by_macro.help.as_deref().unwrap_or_default();
        assert!(
            help.starts_with("bind `ctx.user_id()?` (or a local assigned from it) to `$1` instead"),
            "{help}"
        );
    }

    #[test]
    fn huge_bind_parameter_numbers_do_not_overflow() {
        let found = codes(
            r#"
use forge::prelude::*;
#[forge::query]
pub async fn a(ctx: &QueryContext) -> Result<()> {
    sqlx::query("SELECT * FROM items WHERE user_id = $18446744073709551615").execute(ctx.db()).await?;
    Ok(())
}
"#,
        );
        assert_eq!(found, ["FG101"]);
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT $18446744073709551615")
            .expect("parses");
        assert_eq!(next_placeholder(&statements, 0), usize::MAX);
    }

    #[test]
    fn fg102_points_at_the_argument() {
        let found = diagnostics(
            r#"
use forge::prelude::*;
#[forge::query]
pub async fn a(ctx: &QueryContext, tenant: Uuid) -> Result<()> {
    sqlx::query("SELECT * FROM items WHERE tenant_id = $1")
        .bind(tenant)
        .execute(ctx.db())
        .await?;
    Ok(())
}
"#,
        );
        let [spoofed] = found.as_slice() else {
            panic!("{found:#?}");
        };
        assert_eq!(spoofed.code, "FG102");
        assert_eq!(
            spoofed.label.as_deref(),
            Some("comes from the caller-supplied argument `tenant`")
        );
        let span = spoofed.span.as_ref().map(|s| (s.line, s.column));
        assert_eq!(span, Some((6, 15)));
        assert!(spoofed
            .help
            .as_deref()
            .is_some_and(|help| help.contains("bind `ctx.tenant_id()?`")));
    }

    #[test]
    fn fg103_needs_unscoped_and_tables() {
        let source = r#"
use forge::prelude::*;
#[forge::query]
pub async fn private(ctx: &QueryContext, order: String) -> Result<()> {
    let sql = format!("SELECT * FROM items ORDER BY {order}");
    sqlx::query(&sql).execute(ctx.db()).await?;
    Ok(())
}
#[forge::query(tables("items"))]
pub async fn private_with_tables(ctx: &QueryContext) -> Result<()> {
    sqlx::query("SELECT * FROM items WHERE").execute(ctx.db()).await?;
    Ok(())
}
#[forge::query(unscoped)]
pub async fn unscoped_alone(ctx: &QueryContext) -> Result<()> {
    let mut builder = sqlx::QueryBuilder::new("SELECT * FROM items");
    builder.build().execute(ctx.db()).await?;
    Ok(())
}
#[forge::query(tables("items", "tags"))]
pub async fn elsewhere(ctx: &QueryContext) -> Result<()> {
    let _ = ctx;
    Ok(())
}
#[forge::query(unscoped, tables("items"))]
pub async fn declared(ctx: &QueryContext, order: String) -> Result<()> {
    sqlx::query(&format!("SELECT * FROM items ORDER BY {order}")).execute(ctx.db()).await?;
    Ok(())
}
#[forge::query(public)]
pub async fn public(ctx: &QueryContext, order: String) -> Result<()> {
    sqlx::query(&format!("SELECT * FROM items ORDER BY {order}")).execute(ctx.db()).await?;
    Ok(())
}
"#;
        let mut found = diagnostics(source);
        found.sort_by_key(|d| d.span.as_ref().map(|s| s.line));
        let found: Vec<(String, u32, Option<String>, Option<String>)> = found
            .into_iter()
            .map(|d| (d.code, d.span.map_or(0, |s| s.line), d.label, d.help))
            .collect();
        let summary: Vec<(&str, u32)> = found.iter().map(|f| (f.0.as_str(), f.1)).collect();
        assert_eq!(
            summary,
            [("FG103", 6), ("FG103", 11), ("FG103", 16), ("FG103", 21)]
        );
        assert_eq!(
            found[0].2.as_deref(),
            Some("SQL built at run time, not a string literal")
        );
        assert!(found[0]
            .3
            .as_deref()
            .is_some_and(|help| help.contains("`#[forge::query(unscoped, tables(\"…\"))]`")));
        assert!(found[1]
            .2
            .as_deref()
            .is_some_and(|label| label.starts_with("forge cannot parse this SQL: ")));
        assert!(found[1]
            .3
            .as_deref()
            .is_some_and(|help| help.contains("`#[forge::query(unscoped, tables(\"items\"))]`")));
        assert_eq!(
            found[2].2.as_deref(),
            Some("SQL assembled by a `QueryBuilder` at run time")
        );
        assert_eq!(
            found[3].2.as_deref(),
            Some("declares `tables(...)` but runs no SQL literal in its body")
        );
        assert!(found[3].3.as_deref().is_some_and(
            |help| help.contains("`#[forge::query(unscoped, tables(\"items\", \"tags\"))]`")
        ));
    }

    #[test]
    fn every_rule_is_documented() {
        let codes: Vec<&str> = RULES.iter().map(|rule| rule.code).collect();
        assert_eq!(codes, ["FG101", "FG102", "FG103"]);
        for rule in RULES {
            assert!(rule.example.contains("// refused") && rule.example.contains("// accepted"));
        }
    }
}
