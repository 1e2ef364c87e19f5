//! Large inputs split in linear time: a quadratic step would take minutes here, not
//! milliseconds.

use std::time::{Duration, Instant};

use forge_migrate::split::split;

const FIVE_MB: usize = 5 * 1024 * 1024;

/// Generous so that a loaded CI machine passes, yet far below what quadratic work would need.
const LIMIT: Duration = Duration::from_secs(5);

fn timed_split(sql: &str) -> usize {
    let started = Instant::now();
    let count = split(sql).map(|s| s.len());
    let elapsed = started.elapsed();
    eprintln!("split {} bytes in {elapsed:?}", sql.len());
    assert!(elapsed < LIMIT, "{} bytes took {elapsed:?}", sql.len());
    count.unwrap_or_else(|e| panic!("did not split: {e}"))
}

#[test]
fn five_megabytes_of_statements() {
    let chunk = "-- users\r\nCREATE TABLE \"user;s\" (id bigint PRIMARY KEY, name text DEFAULT 'a;''b');\r\n\
        INSERT INTO t VALUES (E'it\\'s;', $1, /* c /* d; */ */ 2);\n\
        CREATE FUNCTION f() RETURNS int AS $body$ BEGIN PERFORM 1; RETURN $$;$$; END $body$ LANGUAGE plpgsql;\n";
    let repeats = FIVE_MB / chunk.len() + 1;
    assert_eq!(timed_split(&chunk.repeat(repeats)), 3 * repeats);
}

#[test]
fn five_megabytes_of_adversarial_dollars() {
    // A long tag over a body full of near-miss tags defeats a naive closing-tag search.
    let tag = format!("${}$", "t".repeat(1000));
    let near_miss = format!("${}", "t".repeat(999));
    let body = near_miss.repeat(FIVE_MB / near_miss.len());
    assert_eq!(
        timed_split(&format!("SELECT {tag}{body}{tag}; SELECT 2")),
        2
    );
}

#[test]
fn five_megabytes_of_nesting() {
    let depth = FIVE_MB / 4;
    let sql = format!(
        "SELECT {}{} 1; SELECT 2",
        "/*".repeat(depth),
        "*/".repeat(depth)
    );
    assert_eq!(timed_split(&sql), 2);
}

#[test]
fn five_megabytes_in_one_line() {
    let sql = format!("SELECT '{}'; SELECT 2", "é;".repeat(FIVE_MB / 3));
    assert_eq!(timed_split(&sql), 2);
}
