//! Property tests: statements built from every quoting form split back into exactly
//! themselves, and no input makes the splitter panic.

use forge_migrate::split::{no_transaction, split};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;

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
