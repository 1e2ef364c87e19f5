use super::{no_transaction, split, SplitError, Statement};

fn texts(sql: &str) -> Vec<&str> {
    match split(sql) {
        Ok(statements) => statements.into_iter().map(|s| s.text).collect(),
        Err(e) => panic!("{sql:?} did not split: {e}"),
    }
}

fn positions(sql: &str) -> Vec<(usize, u32, u32)> {
    match split(sql) {
        Ok(statements) => statements
            .iter()
            .map(|s| (s.offset, s.line, s.column))
            .collect(),
        Err(e) => panic!("{sql:?} did not split: {e}"),
    }
}

fn error(sql: &str) -> SplitError {
    match split(sql) {
        Ok(statements) => panic!("{sql:?} split into {statements:?}"),
        Err(e) => e,
    }
}

fn unterminated(message: &str, line: u32, column: u32) -> SplitError {
    SplitError {
        message: message.to_owned(),
        line,
        column,
    }
}

#[test]
fn semicolons_end_statements() {
    assert_eq!(texts("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
}

#[test]
fn final_statement_needs_no_semicolon() {
    assert_eq!(texts("SELECT 1;\nSELECT 2\n"), ["SELECT 1", "SELECT 2"]);
}

#[test]
fn empty_input_and_empty_statements_give_nothing() {
    assert!(texts("").is_empty());
    assert!(texts(" \n\t\r\n ").is_empty());
    assert!(texts(";;  ;\n;").is_empty());
    assert_eq!(texts(";;SELECT 1;;;SELECT 2;;"), ["SELECT 1", "SELECT 2"]);
}

#[test]
fn only_comments_give_nothing() {
    assert!(texts("-- a\n/* b; */\n-- c; d").is_empty());
    assert!(texts("-- a;\n;/* b */;").is_empty());
}

#[test]
fn semicolon_in_line_comment() {
    assert_eq!(
        texts("SELECT 1 -- no; split\n, 2;"),
        ["SELECT 1 -- no; split\n, 2"]
    );
}

#[test]
fn line_comment_ends_at_cr() {
    assert_eq!(
        texts("SELECT 1 -- c\r; SELECT 2"),
        ["SELECT 1 -- c", "SELECT 2"]
    );
}

#[test]
fn semicolon_in_block_comment() {
    assert_eq!(
        texts("SELECT /* ; */ 1; SELECT 2"),
        ["SELECT /* ; */ 1", "SELECT 2"]
    );
}

#[test]
fn block_comments_nest() {
    assert_eq!(
        texts("SELECT /* a /* b; */ c; */ 1; SELECT 2"),
        ["SELECT /* a /* b; */ c; */ 1", "SELECT 2"]
    );
    assert_eq!(
        texts("SELECT /**/ 1; SELECT /*/ ; */ 2"),
        ["SELECT /**/ 1", "SELECT /*/ ; */ 2"]
    );
}

#[test]
fn deep_nesting_is_a_counter_not_recursion() {
    let depth = 200_000;
    let sql = format!(
        "SELECT {}x{} 1; SELECT 2",
        "/*".repeat(depth),
        "*/".repeat(depth)
    );
    assert_eq!(split(&sql).map(|s| s.len()), Ok(2));
}

#[test]
fn semicolon_in_string() {
    assert_eq!(
        texts("SELECT 'a;b'; SELECT 2"),
        ["SELECT 'a;b'", "SELECT 2"]
    );
}

#[test]
fn doubled_quote_in_string() {
    assert_eq!(
        texts("SELECT 'it''s; fine'; SELECT 2"),
        ["SELECT 'it''s; fine'", "SELECT 2"]
    );
    assert_eq!(
        texts("SELECT ''; SELECT ''''"),
        ["SELECT ''", "SELECT ''''"]
    );
}

#[test]
fn standard_strings_take_backslash_literally() {
    // `'\'` is a complete string holding one backslash.
    assert_eq!(texts(r"SELECT '\'; SELECT 2"), [r"SELECT '\'", "SELECT 2"]);
}

#[test]
fn escape_strings_take_backslash_as_escape() {
    // `E'\\'` is one backslash, so the `;` after it ends the statement ...
    assert_eq!(
        texts(r"SELECT E'\\'; SELECT 2"),
        [r"SELECT E'\\'", "SELECT 2"]
    );
    // ... while in `E'\';'` the quote is escaped and the `;` is inside the string.
    assert_eq!(
        texts(r"SELECT E'\';'; SELECT 2"),
        [r"SELECT E'\';'", "SELECT 2"]
    );
    assert_eq!(
        texts(r"SELECT e'it\'s;' ; SELECT 2"),
        [r"SELECT e'it\'s;'", "SELECT 2"]
    );
    assert_eq!(
        texts(r"SELECT E'a''b;'; SELECT 2"),
        [r"SELECT E'a''b;'", "SELECT 2"]
    );
}

#[test]
fn e_inside_a_word_does_not_start_an_escape_string() {
    // `namE'\'` is the word `namE` and the standard string `'\'`.
    assert_eq!(
        texts(r"SELECT namE'\'; SELECT 2"),
        [r"SELECT namE'\'", "SELECT 2"]
    );
}

#[test]
fn unicode_strings_and_identifiers() {
    assert_eq!(
        texts(r"SELECT U&'d\0061t;a'; SELECT 2"),
        [r"SELECT U&'d\0061t;a'", "SELECT 2"]
    );
    assert_eq!(
        texts(r"SELECT u&'\'; SELECT 2"),
        [r"SELECT u&'\'", "SELECT 2"]
    );
    assert_eq!(
        texts(r#"SELECT U&"a;b"; SELECT 2"#),
        [r#"SELECT U&"a;b""#, "SELECT 2"]
    );
}

#[test]
fn other_prefixed_strings_are_standard_strings() {
    assert_eq!(texts("SELECT B'1;0', X'F;F', N'n;'; SELECT 2").len(), 2);
}

#[test]
fn semicolon_in_quoted_identifier() {
    assert_eq!(
        texts(r#"CREATE TABLE "a;b" ("x""; y" int); SELECT 2"#),
        [r#"CREATE TABLE "a;b" ("x""; y" int)"#, "SELECT 2"]
    );
}

#[test]
fn quotes_inside_other_constructs_are_text() {
    assert_eq!(
        texts("SELECT '\"', \"'\", '--', '/*', \"$$\" /* ' \" $$ */ -- ' \"\n; SELECT 2").len(),
        2
    );
}

#[test]
fn dollar_quoted_function_body() {
    let sql = "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  NEW.a := 1;\n  RETURN NEW;\nEND\n$$ LANGUAGE plpgsql;\nSELECT 2;";
    assert_eq!(
        texts(sql),
        [
            "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  NEW.a := 1;\n  RETURN NEW;\nEND\n$$ LANGUAGE plpgsql",
            "SELECT 2",
        ]
    );
}

#[test]
fn do_block() {
    assert_eq!(
        texts("DO $do$ BEGIN PERFORM 1; RAISE NOTICE 'x;'; END $do$; SELECT 2"),
        [
            "DO $do$ BEGIN PERFORM 1; RAISE NOTICE 'x;'; END $do$",
            "SELECT 2"
        ]
    );
}

#[test]
fn only_the_same_tag_closes_a_dollar_body() {
    assert_eq!(
        texts("SELECT $body$ a; $$ b; $$ $x$ c; $x$ $bod $body$; SELECT 2"),
        [
            "SELECT $body$ a; $$ b; $$ $x$ c; $x$ $bod $body$",
            "SELECT 2"
        ]
    );
    assert_eq!(
        texts("SELECT $$ a; $x$ b; $x$ $$; SELECT 2"),
        ["SELECT $$ a; $x$ b; $x$ $$", "SELECT 2"]
    );
    // Tags are case-sensitive.
    assert_eq!(texts("SELECT $A$ ; $a$ ; $A$; SELECT 2").len(), 2);
}

#[test]
fn quotes_and_comments_inside_dollar_bodies_are_text() {
    assert_eq!(texts("SELECT $$ ' \" -- /* ; $$; SELECT 2").len(), 2);
}

#[test]
fn dollar_digit_is_a_parameter_not_a_tag() {
    assert_eq!(texts("SELECT $1; SELECT $2$"), ["SELECT $1", "SELECT $2$"]);
    assert_eq!(texts("PREPARE p AS SELECT $1, $12;SELECT 2").len(), 2);
}

#[test]
fn dollar_inside_an_identifier_does_not_open_a_body() {
    assert_eq!(texts("SELECT a$$b; SELECT x$y$ ; SELECT 3").len(), 3);
}

#[test]
fn a_lone_dollar_is_a_character() {
    assert_eq!(
        texts("SELECT $ ; SELECT $a ; SELECT $_b1"),
        ["SELECT $", "SELECT $a", "SELECT $_b1"]
    );
}

#[test]
fn number_then_dollar_body() {
    assert_eq!(
        texts("SELECT 1$$;$$; SELECT 2"),
        ["SELECT 1$$;$$", "SELECT 2"]
    );
}

#[test]
fn leading_comments_are_dropped_and_inner_ones_kept() {
    let sql = "-- create users\n/* a; b */ CREATE TABLE users (id int /* pk */) -- done\n;\n-- next\nSELECT 1 /* tail */ ;";
    assert_eq!(
        texts(sql),
        [
            "CREATE TABLE users (id int /* pk */) -- done",
            "SELECT 1 /* tail */"
        ]
    );
}

#[test]
fn statement_positions() {
    let sql = "SELECT 1;\n  SELECT 2; SELECT 3;\n\n\tSELECT 4";
    assert_eq!(
        positions(sql),
        [(0, 1, 1), (12, 2, 3), (22, 2, 13), (34, 4, 2)]
    );
}

#[test]
fn positions_after_multi_line_strings_and_comments() {
    let sql = "SELECT 'a\nb\nc'; /* x\ny */ SELECT $$\n;\n$$;\n-- z\n  SELECT 3";
    let got = positions(sql);
    assert_eq!(
        got.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>(),
        [(1, 1), (4, 6), (8, 3)]
    );
    assert_eq!(&sql[got[1].0..got[1].0 + 6], "SELECT");
}

#[test]
fn crlf_is_one_line_break() {
    let sql = "SELECT 1;\r\nSELECT 'a\r\nb';\r\n\r\n  SELECT 3;\rSELECT 4";
    assert_eq!(
        positions(sql)
            .iter()
            .map(|p| (p.1, p.2))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 1), (5, 3), (6, 1)]
    );
    assert_eq!(texts(sql)[1], "SELECT 'a\r\nb'");
}

#[test]
fn columns_count_characters() {
    let sql = "SELECT 'é€😀'; SELECT 2; ünïcode";
    assert_eq!(
        positions(sql)
            .iter()
            .map(|p| (p.1, p.2))
            .collect::<Vec<_>>(),
        [(1, 1), (1, 15), (1, 25)]
    );
    assert_eq!(texts(sql)[2], "ünïcode");
}

#[test]
fn byte_order_mark_is_skipped() {
    let sql = "\u{feff}SELECT 1;\nSELECT 2";
    assert_eq!(texts(sql), ["SELECT 1", "SELECT 2"]);
    assert_eq!(positions(sql), [(3, 1, 1), (13, 2, 1)]);
}

#[test]
fn unterminated_constructs_report_where_they_started() {
    let cases = [
        (
            "SELECT 1;\nSELECT 'abc;\n",
            "unterminated string literal",
            2,
            8,
        ),
        ("SELECT 'it''s", "unterminated string literal", 1, 8),
        (
            "SELECT\n  E'it\\'s",
            "unterminated escape string literal",
            2,
            3,
        ),
        ("SELECT E'\\", "unterminated escape string literal", 1, 8),
        ("SELECT U&'x", "unterminated Unicode string literal", 1, 8),
        ("SELECT \"a;b", "unterminated quoted identifier", 1, 8),
        (
            "SELECT U&\"a",
            "unterminated Unicode quoted identifier",
            1,
            8,
        ),
        (
            "SELECT 1; /* a /* b */ c",
            "unterminated block comment",
            1,
            11,
        ),
        ("SELECT\r\n /* x", "unterminated block comment", 2, 2),
        (
            "DO $body$ BEGIN; $$ END $$",
            "unterminated dollar-quoted string $body$",
            1,
            4,
        ),
        (
            "SELECT 'é', $$ x",
            "unterminated dollar-quoted string $$",
            1,
            13,
        ),
    ];
    for (sql, message, line, column) in cases {
        assert_eq!(error(sql), unterminated(message, line, column), "{sql:?}");
    }
}

#[test]
fn error_display_names_the_position() {
    assert_eq!(
        error("SELECT 'x").to_string(),
        "unterminated string literal at line 1, column 8"
    );
}

#[test]
fn statements_borrow_from_the_input() {
    let sql = String::from("SELECT 1");
    let statements = split(&sql);
    assert_eq!(
        statements,
        Ok(vec![Statement {
            text: "SELECT 1",
            offset: 0,
            line: 1,
            column: 1
        }])
    );
}

#[test]
fn no_transaction_directive_in_the_leading_block() {
    assert!(no_transaction(
        "-- forge:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"
    ));
    assert!(no_transaction(
        "-- Build the index without locking writes.\n\n/* see docs */\n-- forge:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"
    ));
    assert!(no_transaction(
        "\u{feff}-- forge:no-transaction\r\nSELECT 1"
    ));
    assert!(no_transaction("--forge:no-transaction\nSELECT 1"));
    assert!(no_transaction(
        "--   forge:no-transaction   because CONCURRENTLY\nSELECT 1"
    ));
    assert!(no_transaction("-- forge:no-transaction"));
}

#[test]
fn no_transaction_needs_the_exact_directive_before_the_first_statement() {
    assert!(!no_transaction(""));
    assert!(!no_transaction(
        "SELECT 1;\n-- forge:no-transaction\nSELECT 2;"
    ));
    assert!(!no_transaction("SELECT 1 -- forge:no-transaction\n;"));
    assert!(!no_transaction("/* -- forge:no-transaction */\nSELECT 1"));
    assert!(!no_transaction("-- forge:no-transactions\nSELECT 1"));
    assert!(!no_transaction("-- forge:no-transaction.\nSELECT 1"));
    assert!(!no_transaction("-- FORGE:NO-TRANSACTION\nSELECT 1"));
    assert!(!no_transaction("-- not forge:no-transaction\nSELECT 1"));
    assert!(!no_transaction("/* unterminated\n-- forge:no-transaction"));
}

#[test]
fn trailing_whitespace_of_a_final_line_comment_is_trimmed() {
    assert_eq!(texts("SELECT 1 -- note \t"), ["SELECT 1 -- note"]);
}
