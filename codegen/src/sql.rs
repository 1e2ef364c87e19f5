//! Analysis of literal SQL: which tables a statement reads and writes.
//!
//! sqlparser's [`Visitor`] walks every node of the parsed statements; the hooks here only
//! decide what each table reference means. Three things need state across hooks:
//!
//! - DML targets are visited as ordinary table factors (`UPDATE t`, `DELETE FROM t`,
//!   `MERGE INTO t`), so the statement hook remembers their nodes and the table-factor hook
//!   skips exactly those nodes: the target is written, not read, while the same table named
//!   again in a `FROM` or a subquery still counts as read.
//! - CTE names are not tables, but only where Postgres lets them be seen: a non-recursive
//!   CTE sees the CTEs before it (so `WITH items AS (SELECT * FROM items …)` reads the real
//!   `items`), a recursive one sees them all, and the query body sees them all.
//! - `TABLE t` (Postgres shorthand for `SELECT * FROM t`) is not a table factor, so each
//!   query's body is checked for it once its CTEs are in scope.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::ptr;

use sqlparser::ast::{
    CopySource, FromTable, Ident, ObjectName, ObjectNamePart, Query, SetExpr, Statement, Table,
    TableFactor, TableObject, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

/// The tables a piece of SQL touches, as Postgres names them: unquoted identifiers folded
/// to lower case, quoted ones verbatim, schema-qualified names joined with `.`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlTables {
    /// Tables read through `FROM`, `JOIN`, `USING`, `TABLE` or `COPY … TO`, anywhere in the
    /// SQL; sorted.
    pub read: Vec<String>,
    /// Targets of `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE` and `COPY … FROM`;
    /// sorted.
    pub written: Vec<String>,
}

/// The longest SQL analysed, in tokens. sqlparser bounds recursion while parsing, but
/// operator chains (`a + b + c …`, `… UNION …`) are built by a loop into a tree as deep as
/// the chain is long, and dropping that tree recurses without protection: around 20 000
/// levels overflow a 2 MiB thread stack when sqlparser is built without optimisation. Every level of the tree takes at
/// least one token, so this bound keeps the depth well inside that; real queries are
/// far shorter.
const MAX_TOKENS: usize = 10_000;

/// Parses `sql` (any number of statements, Postgres dialect) and lists the tables it
/// reads and writes. The error is sqlparser's description of why the SQL does not parse.
pub fn analyze(sql: &str) -> Result<SqlTables, String> {
    let statements = parse(sql)?;
    let mut collector = Collector::default();
    // The collector never breaks (`Break = Infallible`), so this pattern is irrefutable.
    let ControlFlow::Continue(()) = statements.visit(&mut collector);
    Ok(SqlTables {
        read: collector.read.into_iter().collect(),
        written: collector.written.into_iter().collect(),
    })
}

/// The statements of `sql`, refusing input long enough to overflow the stack when dropped.
pub(crate) fn parse(sql: &str) -> Result<Vec<Statement>, String> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|error| error.to_string())?;
    let significant = tokens
        .iter()
        .filter(|token| !matches!(token.token, Token::Whitespace(_)))
        .count();
    if significant > MAX_TOKENS {
        return Err(format!(
            "the SQL has {significant} tokens; forge analyses at most {MAX_TOKENS}"
        ));
    }
    Parser::new(&dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(describe)
}

fn describe(error: ParserError) -> String {
    match error {
        ParserError::TokenizerError(message) | ParserError::ParserError(message) => message,
        ParserError::RecursionLimitExceeded => {
            "the SQL is nested too deeply to be analysed".to_owned()
        }
    }
}

#[derive(Default)]
struct Collector {
    read: BTreeSet<String>,
    written: BTreeSet<String>,
    /// The table factors that are DML targets. Compared by address: the visitor hands back
    /// references into the same AST, and a name comparison would also hide the target table
    /// where it is genuinely read (`UPDATE t … FROM t AS old`).
    targets: Vec<*const TableFactor>,
    /// One entry per query being visited, innermost last.
    scopes: Vec<CteScope>,
}

/// The CTEs one query declares, and how many of them the SQL being visited can see.
struct CteScope {
    names: Vec<String>,
    bodies: Vec<*const Query>,
    visible: usize,
}

impl CteScope {
    fn of(query: &Query) -> CteScope {
        let Some(with) = &query.with else {
            return CteScope {
                names: Vec::new(),
                bodies: Vec::new(),
                visible: 0,
            };
        };
        let names: Vec<String> = with
            .cte_tables
            .iter()
            .map(|cte| ident_name(&cte.alias.name))
            .collect();
        CteScope {
            visible: if with.recursive { names.len() } else { 0 },
            bodies: with
                .cte_tables
                .iter()
                .map(|cte| ptr::from_ref::<Query>(&cte.query))
                .collect(),
            names,
        }
    }

    fn sees(&self, name: &str) -> bool {
        self.names.iter().take(self.visible).any(|cte| cte == name)
    }
}

impl Visitor for Collector {
    type Break = Infallible;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Infallible> {
        match statement {
            Statement::Insert(insert) => {
                if let TableObject::TableName(name) = &insert.table {
                    self.written.insert(qualified(name));
                }
            }
            Statement::Update(update) => self.target(&update.table.relation),
            Statement::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                for table in from {
                    self.target(&table.relation);
                }
            }
            Statement::Merge(merge) => self.target(&merge.table),
            Statement::Truncate(truncate) => {
                for table in &truncate.table_names {
                    self.written.insert(qualified(&table.name));
                }
            }
            Statement::Copy {
                source: CopySource::Table { table_name, .. },
                to,
                ..
            } => {
                let direction = if *to {
                    &mut self.read
                } else {
                    &mut self.written
                };
                direction.insert(qualified(table_name));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Infallible> {
        self.scopes.push(CteScope::of(query));
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<Infallible> {
        // Every CTE body of this query has been visited by now, so all its CTEs are visible.
        for table in bare_tables(&query.body) {
            if let Some(name) = table_command_name(table) {
                self.read_unless_cte(name);
            }
        }
        self.scopes.pop();
        if let Some(parent) = self.scopes.last_mut() {
            if let Some(index) = parent.bodies.iter().position(|&b| ptr::eq(b, query)) {
                parent.visible = parent.visible.max(index + 1);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Infallible> {
        // `args: Some(_)` is a set-returning function (`generate_series(1, 3)`), not a table.
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            if !self.targets.iter().any(|&t| ptr::eq(t, factor)) {
                self.read_unless_cte(object_name(name));
            }
        }
        ControlFlow::Continue(())
    }
}

impl Collector {
    fn target(&mut self, factor: &TableFactor) {
        if let TableFactor::Table { name, .. } = factor {
            self.written.insert(qualified(name));
            self.targets.push(factor);
        }
    }

    fn read_unless_cte(&mut self, parts: Vec<String>) {
        let is_cte = match parts.as_slice() {
            [single] => self.scopes.iter().any(|scope| scope.sees(single)),
            _ => false,
        };
        if !is_cte {
            self.read.insert(parts.join("."));
        }
    }
}

/// The `TABLE t` commands directly in a query body, through set operations. Iterative so
/// that a long `UNION` chain cannot exhaust the stack; nested queries are left to their own
/// `post_visit_query`.
fn bare_tables(body: &SetExpr) -> Vec<&Table> {
    let mut found = Vec::new();
    let mut pending = vec![body];
    while let Some(expr) = pending.pop() {
        match expr {
            SetExpr::Table(table) => found.push(table.as_ref()),
            SetExpr::SetOperation { left, right, .. } => {
                pending.push(left);
                pending.push(right);
            }
            _ => {}
        }
    }
    found
}

fn table_command_name(table: &Table) -> Option<Vec<String>> {
    let name = ident_name(table.table_name.as_ref()?);
    Some(match &table.schema_name {
        Some(schema) => vec![ident_name(schema), name],
        None => vec![name],
    })
}

fn qualified(name: &ObjectName) -> String {
    object_name(name).join(".")
}

fn object_name(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident_name(ident),
            ObjectNamePart::Function(function) => function.to_string(),
        })
        .collect()
}

/// Postgres folds unquoted identifiers to lower case, ASCII letters only (in a UTF-8
/// database other characters are kept), and keeps quoted ones as written.
pub(crate) fn ident_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str, read: &[&str], written: &[&str]) {
        let expected = SqlTables {
            read: read.iter().map(|name| name.to_string()).collect(),
            written: written.iter().map(|name| name.to_string()).collect(),
        };
        assert_eq!(analyze(sql), Ok(expected), "{sql}");
    }

    fn reads(sql: &str) -> Vec<String> {
        analyze(sql)
            .map(|found| found.read)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn writes(sql: &str) -> Vec<String> {
        analyze(sql)
            .map(|found| found.written)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn plain_select() {
        check("SELECT id FROM items", &["items"], &[]);
    }

    #[test]
    fn row_locks_are_not_writes() {
        let sql = "SELECT * FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1 \
                   FOR UPDATE OF jobs SKIP LOCKED";
        check(sql, &["jobs"], &[]);
    }

    #[test]
    fn joins_with_aliases() {
        let sql = "SELECT i.id, u.name FROM items AS i \
                   JOIN users u ON u.id = i.owner_id \
                   LEFT JOIN tags t ON t.item_id = i.id, categories c \
                   WHERE c.id = i.category_id";
        assert_eq!(reads(sql), ["categories", "items", "tags", "users"]);
    }

    #[test]
    fn nested_join_in_parentheses() {
        assert_eq!(
            reads("SELECT * FROM a JOIN (b JOIN c ON b.id = c.id) ON a.id = b.id"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn result_is_sorted_and_deduplicated() {
        assert_eq!(
            reads("SELECT * FROM zeta z1 JOIN alpha ON true JOIN zeta z2 ON true"),
            ["alpha", "zeta"]
        );
    }

    #[test]
    fn subquery_in_where() {
        assert_eq!(
            reads("SELECT * FROM a WHERE a.x = (SELECT max(x) FROM b WHERE b.y > $1)"),
            ["a", "b"]
        );
    }

    #[test]
    fn subquery_in_select_list() {
        assert_eq!(
            reads("SELECT a.id, (SELECT count(*) FROM b WHERE b.a_id = a.id) AS n FROM a"),
            ["a", "b"]
        );
    }

    #[test]
    fn subquery_in_having() {
        assert_eq!(
            reads(
                "SELECT g, count(*) FROM a GROUP BY g \
                 HAVING count(*) > (SELECT avg(n) FROM b)"
            ),
            ["a", "b"]
        );
    }

    #[test]
    fn subquery_in_join_condition() {
        assert_eq!(
            reads("SELECT * FROM a JOIN b ON b.id = a.id AND b.k IN (SELECT k FROM c)"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn in_subquery() {
        assert_eq!(
            reads("SELECT * FROM a WHERE a.id IN (SELECT a_id FROM b)"),
            ["a", "b"]
        );
    }

    #[test]
    fn exists_subquery() {
        assert_eq!(
            reads(
                "SELECT * FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id) \
                 AND a.x = ANY (SELECT x FROM c)"
            ),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn derived_table_in_from() {
        assert_eq!(
            reads("SELECT * FROM (SELECT * FROM a) AS sub JOIN b ON true"),
            ["a", "b"]
        );
    }

    #[test]
    fn cte_names_are_not_tables_but_their_bodies_are_read() {
        let sql =
            "WITH recent AS (SELECT * FROM items WHERE created_at > now() - interval '1 day') \
                   SELECT * FROM recent";
        check(sql, &["items"], &[]);
    }

    #[test]
    fn later_cte_sees_earlier_cte() {
        let sql = "WITH a1 AS (SELECT * FROM t1), a2 AS (SELECT * FROM a1 JOIN t2 ON true) \
                   SELECT * FROM a2";
        assert_eq!(reads(sql), ["t1", "t2"]);
    }

    #[test]
    fn non_recursive_cte_cannot_see_itself_or_later_ctes() {
        // Postgres resolves `items` inside its own non-recursive CTE to the real table, and a
        // forward reference (`b` inside `a`) to a table as well.
        let sql = "WITH items AS (SELECT * FROM items WHERE owner_id = $1), \
                        a AS (SELECT * FROM b), \
                        b AS (SELECT 1) \
                   SELECT * FROM items, a, b";
        assert_eq!(reads(sql), ["b", "items"]);
    }

    #[test]
    fn cte_name_is_visible_in_nested_subqueries() {
        let sql = "WITH r AS (SELECT id FROM items) \
                   SELECT * FROM orders WHERE item_id IN (SELECT id FROM r)";
        assert_eq!(reads(sql), ["items", "orders"]);
    }

    #[test]
    fn cte_scope_ends_with_its_query() {
        // `r` is a CTE only inside the parenthesised subquery; outside it names a table.
        let sql = "SELECT * FROM (WITH r AS (SELECT * FROM a) SELECT * FROM r) AS x, r";
        assert_eq!(reads(sql), ["a", "r"]);
    }

    #[test]
    fn schema_qualified_name_is_never_a_cte() {
        let sql = "WITH items AS (SELECT 1) SELECT * FROM public.items, items";
        assert_eq!(reads(sql), ["public.items"]);
    }

    #[test]
    fn recursive_cte_reads_the_real_tables_of_its_body() {
        let sql = "WITH RECURSIVE tree AS ( \
                       SELECT id, parent_id FROM nodes WHERE id = $1 \
                       UNION ALL \
                       SELECT n.id, n.parent_id FROM nodes n JOIN tree ON n.parent_id = tree.id \
                   ) SELECT * FROM tree JOIN labels ON labels.node_id = tree.id";
        check(sql, &["labels", "nodes"], &[]);
    }

    #[test]
    fn union_intersect_except_read_both_arms() {
        assert_eq!(reads("SELECT id FROM a UNION SELECT id FROM b"), ["a", "b"]);
        assert_eq!(
            reads("SELECT id FROM a INTERSECT SELECT id FROM b EXCEPT SELECT id FROM c"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn table_command_is_a_read() {
        // sqlparser does not accept `TABLE` at the start of a statement, only in a query body.
        assert_eq!(reads("(TABLE items)"), ["items"]);
        assert_eq!(reads("SELECT * FROM (TABLE items) AS x"), ["items"]);
        assert_eq!(
            reads("SELECT * FROM a UNION ALL TABLE Public.B"),
            ["a", "public.b"]
        );
        assert_eq!(reads("WITH r AS (SELECT * FROM a) TABLE r"), ["a"]);
        assert_eq!(reads("WITH r AS (TABLE r) SELECT * FROM r"), ["r"]);
    }

    #[test]
    fn table_functions_are_not_tables() {
        check("SELECT * FROM generate_series(1, 3) AS g(n)", &[], &[]);
        check("SELECT * FROM unnest($1::int[]) AS u(id)", &[], &[]);
        assert_eq!(
            reads("SELECT * FROM items i, jsonb_to_recordset($1) AS r(id int) WHERE r.id = i.id"),
            ["items"]
        );
    }

    #[test]
    fn subquery_inside_table_function_arguments_is_read() {
        assert_eq!(
            reads("SELECT * FROM generate_series(1, (SELECT max(n) FROM counters))"),
            ["counters"]
        );
    }

    #[test]
    fn lateral_subquery() {
        let sql = "SELECT u.id, last.* FROM users u, \
                   LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id LIMIT 1) AS last";
        assert_eq!(reads(sql), ["orders", "users"]);
        let sql = "SELECT * FROM users u \
                   LEFT JOIN LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) x ON true";
        assert_eq!(reads(sql), ["orders", "users"]);
    }

    #[test]
    fn insert_target_is_written_not_read() {
        check(
            "INSERT INTO items (id, title) VALUES ($1, $2)",
            &[],
            &["items"],
        );
    }

    #[test]
    fn insert_select_reads_its_source() {
        check(
            "INSERT INTO archive (id) SELECT id FROM items WHERE done",
            &["items"],
            &["archive"],
        );
    }

    #[test]
    fn insert_select_from_its_own_target_reads_it() {
        check(
            "INSERT INTO items (title) SELECT title FROM items WHERE id = $1",
            &["items"],
            &["items"],
        );
    }

    #[test]
    fn upsert() {
        let sql = "INSERT INTO counters (key, n) VALUES ($1, 1) \
                   ON CONFLICT (key) DO UPDATE SET n = counters.n + excluded.n \
                   WHERE counters.key <> (SELECT key FROM frozen LIMIT 1)";
        check(sql, &["frozen"], &["counters"]);
        check(
            "INSERT INTO t (id) VALUES (1) ON CONFLICT DO NOTHING",
            &[],
            &["t"],
        );
    }

    #[test]
    fn returning() {
        check(
            "INSERT INTO items (title) VALUES ($1) RETURNING id, title",
            &[],
            &["items"],
        );
        check(
            "DELETE FROM items WHERE id = $1 RETURNING (SELECT name FROM users LIMIT 1)",
            &["users"],
            &["items"],
        );
    }

    #[test]
    fn update_target_is_written_not_read() {
        check(
            "UPDATE items SET title = $1 WHERE items.id = $2 AND owner_id = $3",
            &[],
            &["items"],
        );
        check(
            "UPDATE ONLY items AS i SET title = $1 WHERE i.id = $2",
            &[],
            &["items"],
        );
    }

    #[test]
    fn update_from_reads_its_sources() {
        let sql = "UPDATE items SET price = p.price FROM prices p JOIN currencies c ON true \
                   WHERE p.item_id = items.id";
        check(sql, &["currencies", "prices"], &["items"]);
    }

    #[test]
    fn update_reads_its_target_when_it_is_also_in_from() {
        let sql = "UPDATE items SET n = old.n + 1 FROM items AS old WHERE old.id = items.id";
        check(sql, &["items"], &["items"]);
    }

    #[test]
    fn subquery_in_update_set_value() {
        let sql =
            "UPDATE items SET total = (SELECT sum(n) FROM lines WHERE lines.item_id = items.id)";
        check(sql, &["lines"], &["items"]);
        let sql = "UPDATE items SET n = (SELECT n + 1 FROM items WHERE id = $1) WHERE id = $2";
        check(sql, &["items"], &["items"]);
    }

    #[test]
    fn delete_target_is_written_not_read() {
        check("DELETE FROM items WHERE id = $1", &[], &["items"]);
    }

    #[test]
    fn delete_using_reads_its_sources() {
        let sql = "DELETE FROM items i USING owners o, teams t \
                   WHERE o.id = i.owner_id AND t.id = o.team_id AND t.name = $1";
        check(sql, &["owners", "teams"], &["items"]);
    }

    #[test]
    fn delete_with_subquery_on_its_own_target_reads_it() {
        let sql = "DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY id LIMIT 10)";
        check(sql, &["items"], &["items"]);
    }

    #[test]
    fn merge_writes_target_and_reads_source() {
        let sql = "MERGE INTO stock s USING deliveries d ON s.item_id = d.item_id \
                   WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty \
                   WHEN NOT MATCHED THEN INSERT (item_id, qty) VALUES (d.item_id, d.qty)";
        check(sql, &["deliveries"], &["stock"]);
        let sql = "MERGE INTO stock s USING (SELECT * FROM deliveries WHERE day = $1) d \
                   ON s.item_id = d.item_id WHEN MATCHED THEN DELETE";
        check(sql, &["deliveries"], &["stock"]);
    }

    #[test]
    fn merge_after_with_sees_the_cte() {
        let sql = "WITH d AS (SELECT * FROM deliveries) MERGE INTO stock s USING d \
                   ON s.item_id = d.item_id WHEN MATCHED THEN DELETE";
        check(sql, &["deliveries"], &["stock"]);
    }

    #[test]
    fn copy_from_writes_and_copy_to_reads() {
        check("COPY items (id, title) FROM STDIN", &[], &["items"]);
        check("COPY items TO STDOUT", &["items"], &[]);
        check("COPY (SELECT * FROM items) TO STDOUT", &["items"], &[]);
    }

    #[test]
    fn truncate_writes() {
        check("TRUNCATE a, public.b", &[], &["a", "public.b"]);
    }

    #[test]
    fn data_modifying_ctes_write() {
        let sql = "WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved";
        check(sql, &[], &["a", "b"]);
        let sql = "WITH n AS (UPDATE counters SET n = n + 1 WHERE key = $1 RETURNING n), \
                        log AS (INSERT INTO audit (n) SELECT n FROM n RETURNING id) \
                   SELECT * FROM n, log";
        check(sql, &[], &["audit", "counters"]);
    }

    #[test]
    fn cte_in_front_of_update_and_delete() {
        let sql = "WITH r AS (SELECT id FROM stale) UPDATE items SET gone = true FROM r \
                   WHERE r.id = items.id";
        check(sql, &["stale"], &["items"]);
        let sql =
            "WITH r AS (SELECT id FROM stale) DELETE FROM items WHERE id IN (SELECT id FROM r)";
        check(sql, &["stale"], &["items"]);
    }

    #[test]
    fn unquoted_names_are_folded_to_lower_case() {
        assert_eq!(
            reads("SELECT * FROM Items JOIN USERS ON true"),
            ["items", "users"]
        );
        assert_eq!(
            writes("INSERT INTO Public.Items VALUES (1)"),
            ["public.items"]
        );
    }

    #[test]
    fn quoted_names_are_kept_verbatim() {
        assert_eq!(reads(r#"SELECT * FROM "Weird"."T""#), ["Weird.T"]);
        assert_eq!(reads(r#"SELECT * FROM public."Items""#), ["public.Items"]);
        assert_eq!(writes(r#"UPDATE "Order" SET x = 1"#), ["Order"]);
    }

    #[test]
    fn quoted_cte_names_match_like_postgres() {
        // `"Recent"` and `recent` are different names to Postgres.
        let sql = r#"WITH "Recent" AS (SELECT * FROM a) SELECT * FROM "Recent", recent"#;
        assert_eq!(reads(sql), ["a", "recent"]);
        let sql = r#"WITH recent AS (SELECT * FROM a) SELECT * FROM "recent", RECENT"#;
        assert_eq!(reads(sql), ["a"]);
    }

    #[test]
    fn three_part_names() {
        assert_eq!(reads("SELECT * FROM db.Sales.Orders"), ["db.sales.orders"]);
    }

    #[test]
    fn several_statements_give_the_union() {
        let sql = "INSERT INTO log (msg) VALUES ($1); SELECT * FROM items; DELETE FROM old;";
        check(sql, &["items"], &["log", "old"]);
    }

    #[test]
    fn statements_without_tables_give_empty_lists() {
        for sql in [
            "SELECT 1",
            "SELECT $1::int + 2",
            "",
            "-- only a comment",
            "SET search_path TO app",
            "CREATE TABLE items (id bigint PRIMARY KEY, owner_id bigint REFERENCES users (id))",
            "ALTER TABLE items ADD COLUMN title text",
            "CREATE INDEX items_owner ON items (owner_id)",
            "DROP TABLE items",
            "BEGIN; COMMIT",
            "VALUES (1, 'a'), (2, 'b')",
        ] {
            assert_eq!(analyze(sql), Ok(SqlTables::default()), "{sql}");
        }
    }

    #[test]
    fn parameters_parse() {
        check(
            "SELECT * FROM items WHERE owner_id = $1 AND id = ANY($2) LIMIT $3",
            &["items"],
            &[],
        );
    }

    #[test]
    fn parse_error_is_readable() {
        let Err(error) = analyze("SELEC * FROM items") else {
            panic!("expected a parse error");
        };
        assert!(error.contains("SELEC"), "{error}");
        assert!(!error.starts_with("sql parser error"), "{error}");
        assert!(analyze("SELECT * FROM items WHERE").is_err());
        assert!(analyze("SELECT 'unterminated").is_err());
    }

    #[test]
    fn deeply_nested_input_is_an_error_not_a_crash() {
        // Deep enough for sqlparser's recursion limit, short enough for the token limit.
        let depth = 500;
        let nested = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let subqueries = format!(
            "SELECT * FROM {}items{}",
            "(SELECT * FROM ".repeat(depth),
            ") AS x".repeat(depth)
        );
        for sql in [nested, subqueries] {
            let Err(error) = analyze(&sql) else {
                panic!("expected the recursion limit to apply");
            };
            assert_eq!(error, "the SQL is nested too deeply to be analysed");
        }
    }

    #[test]
    fn long_flat_chains_within_the_token_limit_are_analysed() {
        let terms = 4_000;
        let sum = format!("SELECT {}1 FROM items", "1 + ".repeat(terms));
        assert_eq!(reads(&sum), ["items"]);
        let unions = format!(
            "SELECT 1 FROM a{}",
            " UNION SELECT 1 FROM b".repeat(terms / 6)
        );
        assert_eq!(reads(&unions), ["a", "b"]);
    }

    #[test]
    fn sql_over_the_token_limit_is_an_error_not_a_crash() {
        // 200 000 levels of `+` would overflow the stack when the tree is dropped.
        let sum = format!("SELECT {}1", "1+".repeat(100_000));
        let Err(error) = analyze(&sum) else {
            panic!("expected the token limit to apply");
        };
        assert!(error.contains("200002 tokens"), "{error}");
        // Whitespace and comments do not count.
        let padded = format!("SELECT 1 FROM items{}", " -- note\n".repeat(20_000));
        assert_eq!(reads(&padded), ["items"]);
    }
}
