//! Property tests: statements built from every quoting form split back into exactly
//! themselves, the pieces of runnable files run on a real server and return the values
//! their literals spell, and no input makes the splitter panic.

use forge_db::testing::TestDatabase;
use forge_migrate::split::{no_transaction, split};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{FileFailurePersistence, TestRunner};
use sqlx::{Connection, PgConnection, Row};

/// Text that is hard to quote: every delimiter the splitter knows, and multi-byte characters.
const TRICKY: &[&str] = &[
    "a", "Z9", " ", "\n", "\r\n", "\t", ";", ";;", "'", "''", "\"", "--", "/*", "*/", "$$", "$x$",
    "$body$", "$1", "\\", "E'", "é", "😀",
];

/// Like `TRICKY` without line breaks, for the inside of `--` comments.
const ONE_LINE: &[&str] = &[
    "a", " ", ";", "'", "\"", "--", "/*", "*/", "$$", "$x$", "\\", "é",
];

/// Like `TRICKY` without `*` and `/`, for the inside of block comments, whose nesting the
/// generator builds itself.
const IN_BLOCK: &[&str] = &[
    "a", " ", "\n", ";", "'", "\"", "--", "$$", "$x$", "\\", "E'", "é",
];

const SPACE: &[&str] = &[" ", "  ", "\n", "\t", "\r\n", "\n\n"];

fn concat(atoms: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(select(atoms), 0..8).prop_map(|v| v.concat())
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_$]{0,6}"
}

fn standard_string() -> impl Strategy<Value = String> {
    concat(TRICKY).prop_map(|c| format!("'{}'", c.replace('\'', "''")))
}

fn escape_string() -> impl Strategy<Value = String> {
    concat(TRICKY).prop_map(|c| format!("E'{}'", c.replace('\\', r"\\").replace('\'', r"\'")))
}

fn quoted_identifier() -> impl Strategy<Value = String> {
    concat(TRICKY).prop_map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
}

fn dollar_body() -> impl Strategy<Value = String> {
    (select(&["", "x", "body", "_t1", "é"][..]), concat(TRICKY))
        .prop_map(|(tag, body)| (format!("${tag}$"), body))
        // Only bodies that do not close early: the first `$tag$` must be the closing one.
        .prop_filter("body holds its own closing tag", |(tag, body)| {
            format!("{body}{tag}").find(tag.as_str()) == Some(body.len())
        })
        .prop_map(|(tag, body)| format!("{tag}{body}{tag}"))
}

fn line_comment() -> impl Strategy<Value = String> {
    concat(ONE_LINE).prop_map(|c| format!("--{c}\n"))
}

fn block_comment() -> impl Strategy<Value = String> {
    prop::collection::vec((concat(IN_BLOCK), concat(IN_BLOCK)), 1..4).prop_map(|levels| {
        levels
            .into_iter()
            .fold(String::new(), |inner, (before, after)| {
                format!("/*{before}{inner}{after}*/")
            })
    })
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        word(),
        "[0-9]{1,4}",
        "\\$[1-9]",
        select(&["(", ")", ",", "=", "::", "+", "-", "*", "/", "<>"][..]).prop_map(String::from),
        standard_string(),
        escape_string(),
        quoted_identifier(),
        dollar_body(),
        line_comment(),
        block_comment(),
    ]
}

/// A statement without its `;`: a word, then pieces separated by whitespace.
fn statement() -> impl Strategy<Value = String> {
    (
        word(),
        prop::collection::vec((select(SPACE), piece()), 0..8),
    )
        .prop_map(|(first, rest)| {
            rest.into_iter()
                .fold(first, |s, (space, piece)| s + space + &piece)
        })
}

/// What may stand between statements: whitespace, comments and empty statements.
fn filler() -> impl Strategy<Value = String> {
    let item = prop_oneof![
        select(SPACE).prop_map(String::from),
        line_comment(),
        block_comment(),
        Just(";".to_owned()),
    ];
    prop::collection::vec(item, 0..4).prop_map(|v| v.concat())
}

/// A file made of statements, and the statements as the splitter should return them.
fn file() -> impl Strategy<Value = (String, Vec<String>)> {
    let entry = (filler(), statement(), select(&["", " ", "\n"][..]));
    (
        prop::collection::vec(entry, 1..=20),
        any::<bool>(),
        select(SPACE),
    )
        .prop_map(|(entries, final_semicolon, trailing)| {
            let mut sql = String::new();
            let mut expected = Vec::new();
            for (i, (filler, statement, before_semicolon)) in entries.iter().enumerate() {
                if i > 0 {
                    sql.push(';');
                }
                sql += filler;
                sql += statement;
                sql += before_semicolon;
                expected.push(statement.trim_end_matches(is_space).to_owned());
            }
            if final_semicolon {
                sql.push(';');
            }
            sql += trailing;
            (sql, expected)
        })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Line and column of `offset`, the slow and obvious way.
fn line_column(sql: &str, offset: usize) -> (u32, u32) {
    let before = &sql[..offset];
    let before = before.strip_prefix('\u{feff}').unwrap_or(before);
    let before = before.replace("\r\n", "\n").replace('\r', "\n");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line as u32, column as u32)
}

/// Failing cases are kept beside this file: the default looks for them under `src/`, which
/// an integration test does not have.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn check_statements(sql: &str) -> Result<Vec<String>, TestCaseError> {
    let Ok(statements) = split(sql) else {
        return Err(TestCaseError::fail(format!("{sql:?} did not split")));
    };
    for s in &statements {
        prop_assert!(!s.text.is_empty());
        prop_assert!(!s.text.starts_with(is_space) && !s.text.ends_with(is_space));
        prop_assert!(sql[s.offset..].starts_with(s.text));
        prop_assert_eq!((s.line, s.column), line_column(sql, s.offset));
    }
    Ok(statements.iter().map(|s| s.text.to_owned()).collect())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn generated_statements_split_back((sql, expected) in file()) {
        prop_assert_eq!(check_statements(&sql)?, expected);
    }
}

fn biased() -> impl Strategy<Value = String> {
    let atoms = &[
        "'", "\"", "$", ";", "-", "/", "*", "\\", "E", "e", "U&", "a", "_", "1", " ", "\n", "\r",
        "é", "$$", "$a$", "--", "/*", "*/", "''",
    ][..];
    prop::collection::vec(select(atoms), 0..64).prop_map(|v| v.concat())
}

fn never_panics(sql: &str) -> Result<(), TestCaseError> {
    no_transaction(sql);
    match split(sql) {
        Ok(_) => check_statements(sql).map(drop),
        Err(e) => {
            prop_assert!(e.message.starts_with("unterminated "));
            prop_assert!(e.line >= 1 && e.column >= 1);
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn arbitrary_strings_never_panic(sql in any::<String>()) {
        never_panics(&sql)?;
    }

    #[test]
    fn delimiter_soup_never_panics(sql in biased()) {
        never_panics(&sql)?;
    }
}

// ---- Runnable files: every piece runs on a real server ----

/// A literal as written in SQL, and the text Postgres reads from it.
type Literal = (String, String);

fn standard_literal() -> impl Strategy<Value = Literal> {
    concat(TRICKY).prop_map(|value| (format!("'{}'", value.replace('\'', "''")), value))
}

fn escape_literal() -> impl Strategy<Value = Literal> {
    concat(TRICKY).prop_map(|value| {
        let escaped = value.replace('\\', r"\\").replace('\'', r"\'");
        (format!("E'{escaped}'"), value)
    })
}

const TAGS: &[&str] = &["", "x", "body", "_t1", "é"];

/// `body` between `$tag$`s, the tag drawn from `TAGS` starting at `start` and skipping any
/// the body would close early (the first `$tag$` after the opening one must close it).
fn dollar_quote(start: usize, body: &str) -> String {
    let fits = |tag: &&str| {
        let tag = format!("${tag}$");
        format!("{body}{tag}").find(&tag) == Some(body.len())
    };
    let tag = (0..TAGS.len())
        .map(|i| TAGS[(start + i) % TAGS.len()])
        .find(fits)
        // No TRICKY atom spells this tag, so it always fits.
        .unwrap_or("forge_z");
    format!("${tag}${body}${tag}$")
}

fn dollar_literal() -> impl Strategy<Value = Literal> {
    (0..TAGS.len(), concat(TRICKY)).prop_map(|(start, value)| (dollar_quote(start, &value), value))
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![standard_literal(), escape_literal(), dollar_literal()]
}

/// A quoted identifier that starts with `prefix` (never empty: `""` is refused).
fn identifier(prefix: &'static str) -> impl Strategy<Value = String> {
    concat(TRICKY).prop_map(move |c| format!("\"{prefix}{}\"", c.replace('"', "\"\"")))
}

/// What separates two tokens: whitespace or a comment, each of which Postgres skips.
fn sep() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(SPACE).prop_map(String::from),
        1 => line_comment(),
        1 => block_comment().prop_map(|c| format!(" {c} ")),
    ]
}

/// A statement Postgres runs, and the row it returns when it is a `SELECT`.
type Runnable = (String, Option<Vec<String>>);

fn select_statement() -> impl Strategy<Value = Runnable> {
    let column = (sep(), literal(), sep(), sep(), identifier("c"));
    (sep(), prop::collection::vec(column, 1..4)).prop_map(|(first, columns)| {
        let mut sql = format!("SELECT{first}");
        let mut row = Vec::new();
        for (i, (before, (literal, value), s1, s2, alias)) in columns.into_iter().enumerate() {
            if i > 0 {
                sql += ",";
            }
            sql += &format!("{before}{literal}{s1}AS{s2}{alias}");
            row.push(value);
        }
        (sql, Some(row))
    })
}

/// A temporary table named with any characters, filled from a literal. Two in a file may
/// get one name, hence `IF NOT EXISTS` (and `OR REPLACE` for functions).
fn create_table_statement() -> impl Strategy<Value = Runnable> {
    (identifier("t"), sep(), literal(), identifier("c")).prop_map(
        |(table, s, (literal, _), column)| {
            (
                format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {table}{s}AS SELECT {literal} AS {column}"
                ),
                None,
            )
        },
    )
}

/// A PL/pgSQL body in dollar quotes, with `;` and a literal of any kind inside.
fn do_statement() -> impl Strategy<Value = Runnable> {
    (0..TAGS.len(), sep(), literal(), sep()).prop_map(|(start, s1, (literal, _), s2)| {
        let body = format!("BEGIN{s1}PERFORM {literal};{s2}END;");
        (format!("DO {}", dollar_quote(start, &body)), None)
    })
}

/// A function whose dollar-quoted body returns a literal, then a call that checks it.
fn function_statements() -> impl Strategy<Value = Vec<Runnable>> {
    (identifier("f"), 0..TAGS.len(), literal(), sep()).prop_map(
        |(name, start, (literal, value), s)| {
            let body = format!("BEGIN RETURN {literal};{s}END");
            vec![
                (
                    format!(
                        "CREATE OR REPLACE FUNCTION pg_temp.{name}() RETURNS text LANGUAGE plpgsql \
                         AS {}",
                        dollar_quote(start, &body)
                    ),
                    None,
                ),
                (format!("SELECT pg_temp.{name}()"), Some(vec![value])),
            ]
        },
    )
}

fn runnable() -> impl Strategy<Value = Vec<Runnable>> {
    prop_oneof![
        3 => select_statement().prop_map(|s| vec![s]),
        1 => create_table_statement().prop_map(|s| vec![s]),
        1 => do_statement().prop_map(|s| vec![s]),
        1 => function_statements(),
    ]
}

/// A file of runnable statements between comments, blank lines and empty statements.
fn runnable_file() -> impl Strategy<Value = (String, Vec<Runnable>)> {
    (
        prop::collection::vec((filler(), runnable()), 1..6),
        any::<bool>(),
    )
        .prop_map(|(groups, final_semicolon)| {
            let mut sql = String::new();
            let mut statements = Vec::new();
            for (filler, group) in groups {
                for statement in group {
                    if !statements.is_empty() {
                        sql.push(';');
                    }
                    sql += &filler;
                    sql += &statement.0;
                    statements.push(statement);
                }
            }
            if final_semicolon {
                sql.push(';');
            }
            (sql, statements)
        })
}

/// Sends each piece as the runner does (the simple query protocol, one statement at a
/// time) inside a transaction rolled back afterwards, so names never clash across cases.
async fn run_pieces(
    conn: &mut PgConnection,
    sql: &str,
    expected: &[Runnable],
) -> Result<(), TestCaseError> {
    let texts = check_statements(sql)?;
    let wanted: Vec<&str> = expected.iter().map(|(text, _)| text.as_str()).collect();
    prop_assert_eq!(&texts, &wanted, "split of {:?}", sql);
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (text, row) in expected {
        let rows = sqlx::raw_sql(text)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| TestCaseError::fail(format!("{text:?} failed: {e}")))?;
        if let Some(row) = row {
            prop_assert_eq!(rows.len(), 1, "{:?}", text);
            let got: Vec<String> = (0..row.len())
                .map(|i| rows[0].try_get::<String, _>(i))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(&got, row, "{:?}", text);
        }
    }
    tx.rollback()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(())
}

/// 256 files of up to ten statements: about two thousand statements, a second or two.
#[test]
fn generated_pieces_run_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = runtime.block_on(TestDatabase::new());
    let conn = runtime
        .block_on(PgConnection::connect(db.url()))
        .expect("connect");
    // The runner takes a `Fn`; the cases run one after the other.
    let conn = std::cell::RefCell::new(conn);
    // No regression file: the runner is not the `proptest!` macro and knows no source file.
    let mut runner = TestRunner::new(ProptestConfig {
        failure_persistence: None,
        ..config(256)
    });
    let result = runner.run(&runnable_file(), |(sql, expected)| {
        runtime.block_on(run_pieces(&mut conn.borrow_mut(), &sql, &expected))
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
