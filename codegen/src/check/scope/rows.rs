//! The SQL row walker behind FG101/FG102: what each statement of a call returns (no rows,
//! the caller's rows, every owner's rows) and which owner comparisons count. The rules
//! it implements are in the parent module's doc.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_expressions, BinaryOperator, Expr, FromTable, Ident, InTarget, JoinConstraint,
    JoinOperator, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor,
    TableWithJoins, UpdateTableFromKind, Value, ValueWithSpan, Visit, Visitor, With,
};

use super::Refusal;
use crate::ir::{Bind, Origin};
use crate::sql::ident_name;

/// What the statements of one SQL call say about its owner filter.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Scope {
    /// Every statement restricts its rows to the caller's.
    pub restricted: bool,
    /// Owner comparisons that count but are bound to a handler argument (FG102): bind index
    /// to the configured column.
    pub spoofable: BTreeMap<usize, String>,
    /// The first owner comparison that did not count.
    pub refused: Option<Refusal>,
}

pub(super) fn analyse(statements: &[Statement], binds: &[Bind], owners: &[String]) -> Scope {
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
pub(super) fn placeholder(expr: &Expr) -> Option<usize> {
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
