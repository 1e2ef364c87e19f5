//! FG801–FG804 on fixture versions of one API: `contract_before` is what deployed clients
//! were built against; `contract_after_pass` changes it compatibly (a field renamed in Rust
//! with its wire name kept, new `Option` arguments, new fields with defaults, a new
//! variant, a type renamed and wrapped in a transparent newtype), `contract_after_fail`
//! breaks it once per finding below.

mod support;

use forge_codegen::check::{self, compare_contracts};
use forge_codegen::ir::{Diagnostic, Severity};

fn compare(after: &str) -> Vec<Diagnostic> {
    let before = support::build_fixture("contract_before");
    let after = support::build_fixture(after);
    assert_eq!(before.diagnostics, [], "the fixtures are clean");
    compare_contracts(&before.ir, &after.ir)
}

#[test]
fn compatible_changes_are_not_reported() {
    assert_eq!(compare("contract_after_pass"), []);
    let same = support::build_fixture("contract_before").ir;
    assert_eq!(compare_contracts(&same, &same), []);
}

#[test]
fn each_break_is_reported_in_the_current_source() {
    let found = compare("contract_after_fail");
    let places: Vec<(&str, Option<u32>, &str)> = found
        .iter()
        .map(|d| {
            let line = d.span.as_ref().map(|s| {
                assert_eq!(s.file, "src/lib.rs");
                s.line
            });
            (d.code.as_str(), line, d.message.as_str())
        })
        .collect();
    let expected: &[(&str, Option<u32>, &str)] = &[
        ("FG801", None, "handler `delete_item` was removed (it was `delete_item` at src/lib.rs:66): deployed clients still call it"),
        ("FG803", Some(8), "field `title` of `Item` was removed: deployed clients read it"),
        ("FG803", Some(10), "field `count` of `Item` changed from `i32` to `i64`"),
        ("FG803", Some(12), "field `note` of `Item` may now be left out (`skip_serializing_if`): deployed clients expect it"),
        ("FG803", Some(16), "variant `Archived` of enum `Status` was removed: deployed clients use it"),
        ("FG803", Some(23), "the tagging of enum `Event` changed from internal (tag `type`) to internal (tag `kind`)"),
        ("FG802", Some(31), "field `count` of `NewItem` was narrowed from `i64` to `i32`"),
        ("FG802", Some(32), "field `owner` of `NewItem` is new and required: deployed clients do not send it"),
        ("FG804", Some(36), "`get_item` is no longer public: anonymous callers now get 401"),
        ("FG802", Some(36), "`get_item` has a new argument `version` that deployed clients do not send"),
        ("FG801", Some(41), "handler `list_items` was renamed to `all_items`: deployed clients still call `list_items`"),
        ("FG803", Some(46), "the result of `item_status` may now be `null`; deployed clients expect a value"),
        ("FG802", Some(61), "argument `id` of `set_status` was removed: the server refuses unknown arguments, so deployed clients that send it fail"),
    ];
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort_by_key(|(code, line, message)| (*line, *code, *message));
    let mut sorted_found = places.clone();
    sorted_found.sort_by_key(|(code, line, message)| (*line, *code, *message));
    assert_eq!(sorted_found, sorted_expected, "{found:#?}");
    let warnings: Vec<&str> = found
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(warnings, ["FG804"]);
}

#[test]
fn every_contract_rule_explains_itself() {
    for code in ["FG801", "FG802", "FG803", "FG804"] {
        let rule = check::explain(code).expect("documented");
        assert!(rule.explanation.len() > 100, "{code}");
        assert!(rule.example.contains("before"), "{code}");
    }
}
