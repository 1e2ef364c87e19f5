use std::collections::BTreeMap;

use super::rows::Scope;
use super::*;
use crate::config::CheckConfig;
use crate::ir::{Bind, Span};
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
    let statements =
        Parser::parse_sql(&PostgreSqlDialect {}, "SELECT $18446744073709551615").expect("parses");
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
