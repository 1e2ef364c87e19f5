//! Change notifications for live queries: which tables need them, which the migrations
//! already give them, and the migration that closes the gap.
//!
//! Every query can be subscribed to, so every table a query reads (its literal SQL and its
//! `tables(...)` option) wants the triggers `forge_enable_reactivity` installs. What the
//! database has is read from the migration files themselves, replayed statement by statement
//! in file order, so hand-written calls count exactly like generated ones:
//!
//! - `CREATE [UNLOGGED] TABLE [IF NOT EXISTS] t …` creates `t` without notifications. Only
//!   tables the migrations create are enabled: the migration that creates a table must come
//!   first (an enable before it would fail), and what `forge_enable_reactivity` refuses
//!   (views, partitioned tables, temporary and foreign tables) or should not touch (forge's
//!   own tables, the catalogs) is never created this way.
//! - `DROP TABLE [IF EXISTS] a, b` forgets them (their triggers go with them);
//!   `ALTER TABLE [IF EXISTS] [ONLY] a RENAME TO b` and `… SET SCHEMA s` move them, state
//!   and all.
//! - A statement made only of `SELECT forge_enable_reactivity('t')` /
//!   `forge_disable_reactivity('t')` calls (comma-separated, optionally schema-qualified,
//!   the literal optionally cast `::regclass`) switches `t` on or off. Other uses of the
//!   functions (a computed argument, a `FROM` clause) are not understood and not counted.
//!
//! Names follow Postgres' rules for a `regclass` literal and for SQL: unquoted parts are
//! folded to lower case, `"quoted"` parts kept as written, and `public.t` is `t`: forge
//! assumes the default `search_path`, so the two spellings are one table (disabling one
//! must not leave the other believed enabled). Other schemas are kept.
//!
//! The wanted set minus the enabled set is enabled; tables enabled but read by no query
//! are disabled. Both lists are sorted, so the migration is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::ir::{Ir, Kind, Options};

/// The words of the migration file names generate writes (`NNNN_forge_reactivity.sql`).
pub const MIGRATION_WORDS: &str = "forge_reactivity";

/// A table as Postgres resolves its name: `schema` is `None` for `public` (or no schema),
/// both parts exactly as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Table {
    pub schema: Option<String>,
    pub name: String,
}

impl Table {
    fn new(schema: Option<String>, name: String) -> Table {
        Table {
            schema: schema.filter(|s| s != "public"),
            name,
        }
    }

    /// A name as the IR records it: parts already folded, joined with `.`.
    fn from_ir(name: &str) -> Table {
        let parts: Vec<&str> = name.split('.').collect();
        match parts.as_slice() {
            [.., schema, table] => Table::new(Some((*schema).to_owned()), (*table).to_owned()),
            _ => Table::new(None, name.to_owned()),
        }
    }

    /// A name written the way a `regclass` literal or `tables("…")` spells it:
    /// `items`, `Billing.Invoices` (folded), `"Items"`, `db.schema.table` (the database part
    /// is ignored, as Postgres ignores it when it is the current one). `None` when it is
    /// not a name (empty parts, an unclosed quote, too many parts).
    pub fn parse(text: &str) -> Option<Table> {
        let mut parts = Vec::new();
        let mut chars = text.trim().chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            part.push('"');
                        }
                        '"' => break,
                        c => part.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' || c.is_whitespace() {
                        break;
                    }
                    part.push(c.to_ascii_lowercase());
                    chars.next();
                }
            }
            if part.is_empty() {
                return None;
            }
            parts.push(part);
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                None => break,
                Some('.') => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                Some(_) => return None,
            }
        }
        let mut parts = parts.into_iter().rev();
        let name = parts.next()?;
        let schema = parts.next();
        // A third part is the database; a fourth is not a name.
        parts.next();
        if parts.next().is_some() {
            return None;
        }
        Some(Table::new(schema, name))
    }

    /// The SQL string literal that names this table as a `regclass`: `'items'`,
    /// `'"Items"'`, `'billing.invoices'`.
    pub fn literal(&self) -> String {
        format!("'{}'", self.to_string().replace('\'', "''"))
    }

    /// A part as an identifier that reads back as itself: bare when Postgres would fold it
    /// to itself, otherwise quoted.
    fn ident(part: &str, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = part
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if bare {
            out.write_str(part)
        } else {
            write!(out, "\"{}\"", part.replace('"', "\"\""))
        }
    }
}

/// The name as SQL reads it: `items`, `"Items"`, `billing.invoices`.
impl fmt::Display for Table {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            Table::ident(schema, out)?;
            out.write_str(".")?;
        }
        Table::ident(&self.name, out)
    }
}

/// Every table some query reads, from its literal SQL and its `tables(...)` option.
pub fn queried_tables(ir: &Ir) -> BTreeSet<Table> {
    let mut tables = BTreeSet::new();
    for handler in ir.handlers.iter().filter(|h| h.kind == Kind::Query) {
        for call in &handler.sql {
            tables.extend(call.tables_read.iter().map(|name| Table::from_ir(name)));
        }
        if let Options::Query(query) = &handler.options {
            tables.extend(query.tables.iter().filter_map(|name| Table::parse(name)));
        }
    }
    tables
}

/// The tables the migrations replayed so far leave behind, and whether each has
/// notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    tables: BTreeMap<Table, TableState>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TableState {
    /// A migration created it (and none dropped it since).
    created: bool,
    /// Notifications are on.
    enabled: bool,
}

/// What a migration must change so that exactly the queried tables have notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Sorted.
    pub enable: Vec<Table>,
    /// Sorted.
    pub disable: Vec<Table>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.enable.is_empty() && self.disable.is_empty()
    }
}

impl Replay {
    /// Applies one statement of a migration file (as the splitter cut it, without `;`).
    /// Statements it does not understand change nothing.
    pub fn statement(&mut self, sql: &str) {
        // Only these statements matter; the check spares tokenizing bulk INSERTs and the like.
        // The splitter cuts comments before a statement off; text that still starts with one
        // is tokenized.
        let sql = sql.trim_start();
        let first = sql
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("");
        if !sql.starts_with(['-', '/'])
            && !["create", "drop", "alter", "select"]
                .iter()
                .any(|word| first.eq_ignore_ascii_case(word))
        {
            return;
        }
        let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
            return;
        };
        // Comments are whitespace to the tokenizer.
        let tokens: Vec<Token> = tokens
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon | Token::EOF))
            .collect();
        let mut at = Cursor {
            tokens: &tokens,
            at: 0,
        };
        if at.keyword("create") {
            self.create(at);
        } else if at.keyword("drop") {
            if at.keyword("table") {
                at.if_exists();
                while let Some(table) = at.name() {
                    self.tables.remove(&table);
                    if !at.next_is(&Token::Comma) {
                        break;
                    }
                }
            }
        } else if at.keyword("alter") {
            self.alter(at);
        } else if at.keyword("select") {
            self.calls(at);
        }
    }

    fn create(&mut self, mut at: Cursor) {
        at.keyword("global");
        at.keyword("local");
        if at.keyword("temporary") || at.keyword("temp") {
            return;
        }
        at.keyword("unlogged");
        if !at.keyword("table") {
            return;
        }
        let if_not_exists = at.keyword("if") && at.keyword("not") && at.keyword("exists");
        let Some(table) = at.name() else { return };
        if at.partitioned() {
            return;
        }
        if if_not_exists && self.tables.get(&table).is_some_and(|s| s.created) {
            return;
        }
        self.tables.insert(
            table,
            TableState {
                created: true,
                enabled: false,
            },
        );
    }

    fn alter(&mut self, mut at: Cursor) {
        if !at.keyword("table") {
            return;
        }
        at.if_exists();
        at.keyword("only");
        let Some(from) = at.name() else { return };
        let to = if at.keyword("rename") && at.keyword("to") {
            match at.ident() {
                Some(name) => Table::new(from.schema.clone(), name),
                None => return,
            }
        } else if at.keyword("set") && at.keyword("schema") {
            match at.ident() {
                Some(schema) => Table::new(Some(schema), from.name.clone()),
                None => return,
            }
        } else {
            return;
        };
        if let Some(state) = self.tables.remove(&from) {
            self.tables.insert(to, state);
        }
    }

    /// `SELECT f('t'), f('u')` with every `f` one of the two functions; anything else is
    /// left alone as a whole.
    fn calls(&mut self, mut at: Cursor) {
        let mut calls = Vec::new();
        loop {
            let Some(call) = at.call() else { return };
            calls.push(call);
            if !at.next_is(&Token::Comma) {
                break;
            }
        }
        if !at.done() {
            return;
        }
        for (enable, table) in calls {
            self.tables.entry(table).or_default().enabled = enable;
        }
    }

    /// What must change so that exactly the created tables some query reads have
    /// notifications.
    pub fn change(&self, queried: &BTreeSet<Table>) -> Change {
        let mut change = Change::default();
        for (table, state) in &self.tables {
            let wanted = queried.contains(table);
            if wanted && state.created && !state.enabled {
                change.enable.push(table.clone());
            } else if !wanted && state.enabled {
                change.disable.push(table.clone());
            }
        }
        change
    }
}

/// The contents of the migration that makes `change`.
pub fn render(file: &str, change: &Change) -> String {
    let mut out = format!(
        "-- {file}\n\
         -- @generated by `forge generate`: change notifications for the tables queries read,\n\
         -- so that live queries re-run when they change. Like every migration, never edit it\n\
         -- once applied; forge writes the next one when the tables change.\n"
    );
    for table in &change.enable {
        out.push_str(&format!(
            "SELECT forge_enable_reactivity({});\n",
            table.literal()
        ));
    }
    for table in &change.disable {
        out.push_str(&format!(
            "SELECT forge_disable_reactivity({});\n",
            table.literal()
        ));
    }
    out
}

/// A position in a statement's significant tokens.
struct Cursor<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn done(&self) -> bool {
        self.at == self.tokens.len()
    }

    fn next_is(&mut self, token: &Token) -> bool {
        let matches = self.peek() == Some(token);
        if matches {
            self.at += 1;
        }
        matches
    }

    /// Consumes the next token when it is the unquoted word `word` (any letter case).
    fn keyword(&mut self, word: &str) -> bool {
        let matches = matches!(self.peek(), Some(Token::Word(w))
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
        if matches {
            self.at += 1;
        }
        matches
    }

    fn if_exists(&mut self) {
        let start = self.at;
        if !(self.keyword("if") && self.keyword("exists")) {
            self.at = start;
        }
    }

    /// One identifier, folded unless quoted.
    fn ident(&mut self) -> Option<String> {
        let Some(Token::Word(word)) = self.peek() else {
            return None;
        };
        let part = match word.quote_style {
            Some('"') => word.value.clone(),
            Some(_) => return None,
            None => word.value.to_ascii_lowercase(),
        };
        self.at += 1;
        Some(part)
    }

    /// `a`, `s.a` or `db.s.a`.
    fn name(&mut self) -> Option<Table> {
        let mut parts = vec![self.ident()?];
        while self.next_is(&Token::Period) {
            parts.push(self.ident()?);
        }
        let name = parts.pop()?;
        let schema = parts.pop();
        parts.pop();
        parts.is_empty().then(|| Table::new(schema, name))
    }

    /// `[schema.]forge_enable_reactivity('t'[::regclass])`, and whether it enables.
    fn call(&mut self) -> Option<(bool, Table)> {
        let mut function = self.ident()?;
        if self.next_is(&Token::Period) {
            function = self.ident()?;
        }
        let enable = match function.as_str() {
            "forge_enable_reactivity" => true,
            "forge_disable_reactivity" => false,
            _ => return None,
        };
        if !self.next_is(&Token::LParen) {
            return None;
        }
        let Some(Token::SingleQuotedString(literal)) = self.peek() else {
            return None;
        };
        let table = Table::parse(literal)?;
        self.at += 1;
        if self.next_is(&Token::DoubleColon) && !self.keyword("regclass") {
            return None;
        }
        self.next_is(&Token::RParen).then_some((enable, table))
    }

    /// Whether the rest of a `CREATE TABLE` says `PARTITION BY` outside parentheses (a
    /// window's `PARTITION BY` in `CREATE TABLE … AS SELECT` is inside `OVER (…)`).
    fn partitioned(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            let opens = token == &Token::LParen;
            let closes = token == &Token::RParen;
            if depth == 0 && self.keyword("partition") {
                if self.keyword("by") {
                    return true;
                }
                continue;
            }
            if opens {
                depth += 1;
            } else if closes {
                depth = depth.saturating_sub(1);
            }
            self.at += 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Table {
        Table::parse(name).unwrap_or_else(|| panic!("{name} is a name"))
    }

    fn ir(source: &str) -> Ir {
        let parsed = crate::parse::parse_file("src/lib.rs", "", source);
        crate::resolve::build(&[parsed]).ir
    }

    fn replay(statements: &[&str]) -> Replay {
        let mut replay = Replay::default();
        for statement in statements {
            replay.statement(statement);
        }
        replay
    }

    fn names(tables: &[Table]) -> Vec<String> {
        tables.iter().map(Table::to_string).collect()
    }

    fn queried(names: &[&str]) -> BTreeSet<Table> {
        names.iter().map(|n| table(n)).collect()
    }

    #[test]
    fn names_fold_like_postgres() {
        assert_eq!(table("Items"), table("items"));
        assert_eq!(table(" items "), table("items"));
        assert_eq!(table("public.items"), table("items"));
        assert_eq!(table("PUBLIC . Items"), table("items"));
        assert_eq!(table("mydb.public.items"), table("items"));
        assert_eq!(table("\"Items\"").name, "Items");
        assert_eq!(table("\"a\"\"b\"").name, "a\"b");
        assert_eq!(table("\"a.b\"").name, "a.b");
        assert_eq!(
            table("Billing.Invoices"),
            Table {
                schema: Some("billing".into()),
                name: "invoices".into()
            }
        );
        for bad in ["", ".", "a.", ".a", "\"open", "a b", "a.b.c.d", "\"\""] {
            assert_eq!(Table::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn literals_read_back_as_the_same_table() {
        for (name, literal) in [
            ("items", "'items'"),
            ("\"Items\"", "'\"Items\"'"),
            ("billing.invoices", "'billing.invoices'"),
            ("\"it's\"", "'\"it''s\"'"),
            ("\"a.b\"", "'\"a.b\"'"),
            ("\"1st\"", "'\"1st\"'"),
        ] {
            let parsed = table(name);
            assert_eq!(parsed.literal(), literal);
            let inner = literal[1..literal.len() - 1].replace("''", "'");
            assert_eq!(table(&inner), parsed, "{literal}");
        }
    }

    #[test]
    fn queries_read_from_sql_and_the_tables_option_but_other_kinds_do_not_count() {
        let ir = ir(r#"
use forge::prelude::*;

#[forge::query]
pub async fn list(ctx: &QueryContext) -> Result<Vec<i64>> {
    let rows = sqlx::query_scalar("WITH recent AS (SELECT id FROM Orders) SELECT r.id FROM recent r JOIN public.users u ON true WHERE EXISTS (SELECT 1 FROM billing.\"Invoices\") AND u.id = $1")
        .bind(ctx.user_id()?)
        .fetch_all(ctx.db())
        .await?;
    Ok(rows)
}

#[forge::query(public, unscoped, tables("Tags", "\"Labels\""))]
pub async fn dynamic(ctx: &QueryContext, sql: String) -> Result<i64> {
    Ok(sqlx::query_scalar(&sql).fetch_one(ctx.db()).await?)
}

#[forge::mutation]
pub async fn touch(ctx: &MutationContext) -> Result<()> {
    sqlx::query("UPDATE audit SET at = now() FROM settings").execute(ctx.tx()).await?;
    Ok(())
}
"#);
        let tables: Vec<String> = queried_tables(&ir).iter().map(Table::to_string).collect();
        assert_eq!(
            tables,
            [
                "\"Labels\"",
                "orders",
                "tags",
                "users",
                "billing.\"Invoices\""
            ]
        );
    }

    #[test]
    fn created_tables_that_queries_read_are_enabled() {
        let replay = replay(&[
            "CREATE TABLE items (id int PRIMARY KEY)",
            "create unlogged table IF NOT EXISTS \"Tags\" (id int)",
            "CREATE TABLE billing.invoices (id int)",
            "CREATE TABLE unread (id int)",
        ]);
        let change = replay.change(&queried(&[
            "items",
            "\"Tags\"",
            "billing.invoices",
            "never_created",
        ]));
        assert_eq!(
            names(&change.enable),
            ["\"Tags\"", "items", "billing.invoices"]
        );
        assert!(change.disable.is_empty());
    }

    #[test]
    fn what_is_not_an_ordinary_table_is_never_enabled() {
        let replay = replay(&[
            "CREATE TEMP TABLE scratch (id int)",
            "CREATE GLOBAL TEMPORARY TABLE g (id int)",
            "CREATE TABLE events (at timestamptz) PARTITION BY RANGE (at)",
            "CREATE VIEW recent AS SELECT * FROM events",
            "CREATE MATERIALIZED VIEW stats AS SELECT 1",
            "CREATE FOREIGN TABLE remote (id int) SERVER s",
            // A window's PARTITION BY does not make a partitioned table.
            "CREATE TABLE ranked AS SELECT rank() OVER (PARTITION BY a ORDER BY b) FROM t",
        ]);
        let change = replay.change(&queried(&[
            "scratch", "g", "events", "recent", "stats", "remote", "ranked",
        ]));
        assert_eq!(names(&change.enable), ["ranked"]);
    }

    #[test]
    fn existing_calls_are_recognised_in_every_spelling() {
        let replay = replay(&[
            "CREATE TABLE a (id int)",
            "CREATE TABLE \"B\" (id int)",
            "CREATE TABLE s.c (id int)",
            "CREATE TABLE d (id int)",
            "CREATE TABLE e (id int)",
            "SELECT forge_enable_reactivity('a')",
            "select public.FORGE_ENABLE_REACTIVITY('\"B\"'::regclass), forge_enable_reactivity('S.C');",
            "SELECT forge_enable_reactivity('public.d') -- trailing comment",
            "/* leading */ SELECT forge_enable_reactivity('e')",
        ]);
        let change = replay.change(&queried(&["a", "\"B\"", "s.c", "d", "e"]));
        assert_eq!(change, Change::default());
    }

    #[test]
    fn calls_forge_cannot_read_are_not_counted() {
        let replay = replay(&[
            "CREATE TABLE a (id int)",
            "SELECT forge_enable_reactivity(t) FROM unnest(ARRAY['a']) t",
            "SELECT forge_enable_reactivity('a'), now()",
            "SELECT forge_enable_reactivity('a'::text)",
            "SELECT forge_enable_reactivity(E'a')",
            "SELECT other('a')",
        ]);
        assert_eq!(names(&replay.change(&queried(&["a"])).enable), ["a"]);
    }

    #[test]
    fn tables_no_query_reads_are_disabled_and_the_last_call_wins() {
        let replay = replay(&[
            "CREATE TABLE a (id int); ",
            "CREATE TABLE b (id int)",
            "CREATE TABLE c (id int)",
            "SELECT forge_enable_reactivity('a'), forge_enable_reactivity('b')",
            "SELECT forge_enable_reactivity('c')",
            "SELECT forge_disable_reactivity('c')",
            // Enabled by hand on a table no migration created: still generate's to keep.
            "SELECT forge_enable_reactivity('legacy')",
        ]);
        let change = replay.change(&queried(&["a"]));
        assert!(change.enable.is_empty());
        assert_eq!(names(&change.disable), ["b", "legacy"]);
    }

    #[test]
    fn drops_and_renames_follow_the_table() {
        let replay = replay(&[
            "CREATE TABLE a (id int)",
            "CREATE TABLE b (id int)",
            "CREATE TABLE c (id int)",
            "SELECT forge_enable_reactivity('a'), forge_enable_reactivity('b'), forge_enable_reactivity('c')",
            "DROP TABLE IF EXISTS a, public.b CASCADE",
            "ALTER TABLE IF EXISTS ONLY c RENAME TO d",
            "CREATE TABLE b (id int)",
            "CREATE TABLE e (id int)",
            "ALTER TABLE e SET SCHEMA archive",
            "ALTER TABLE d ADD COLUMN x int",
        ]);
        // `a` is gone with its triggers; `b` was created again without them; `c` lives on
        // as `d`, still enabled; `e` moved.
        let change = replay.change(&queried(&["a", "b", "d", "archive.e"]));
        assert_eq!(names(&change.enable), ["b", "archive.e"]);
        assert!(change.disable.is_empty());
        let change = replay.change(&queried(&[]));
        assert_eq!(names(&change.disable), ["d"]);
    }

    #[test]
    fn create_if_not_exists_keeps_an_enabled_table_enabled() {
        let replay = replay(&[
            "CREATE TABLE a (id int)",
            "SELECT forge_enable_reactivity('a')",
            "CREATE TABLE IF NOT EXISTS a (id int)",
        ]);
        assert!(replay.change(&queried(&["a"])).is_empty());
    }

    #[test]
    fn statements_that_do_not_lex_change_nothing() {
        let replay = replay(&[
            "CREATE TABLE a (id int)",
            "SELECT forge_enable_reactivity('a",
            "INSERT INTO a VALUES (1)",
            "DO $$ BEGIN PERFORM forge_enable_reactivity('a'); END $$",
        ]);
        assert_eq!(names(&replay.change(&queried(&["a"])).enable), ["a"]);
    }

    #[test]
    fn the_migration_enables_then_disables_in_name_order() {
        let change = Change {
            enable: vec![table("\"A\""), table("b")],
            disable: vec![table("old")],
        };
        insta::assert_snapshot!(render("0002_forge_reactivity.sql", &change), @r#"
        -- 0002_forge_reactivity.sql
        -- @generated by `forge generate`: change notifications for the tables queries read,
        -- so that live queries re-run when they change. Like every migration, never edit it
        -- once applied; forge writes the next one when the tables change.
        SELECT forge_enable_reactivity('"A"');
        SELECT forge_enable_reactivity('b');
        SELECT forge_disable_reactivity('old');
        "#);
    }
}
