//! The IR of the fixture crates, as JSON snapshots.

mod support;

#[test]
fn kitchen_sink_ir() {
    let resolved = support::build_fixture("kitchen_sink");
    assert_eq!(resolved.diagnostics, [], "the kitchen sink is clean");
    insta::assert_json_snapshot!(resolved.ir);
}

#[test]
fn ir_is_deterministic() {
    let first = serde_json::to_string(&support::build_fixture("kitchen_sink").ir).unwrap();
    // Parse the files in reverse order: the IR must not depend on it beyond the sort.
    let mut files = support::parse_fixture("kitchen_sink");
    files.reverse();
    files.sort_by(|a, b| a.file.cmp(&b.file));
    let second = serde_json::to_string(&forge_codegen::resolve::build(&files).ir).unwrap();
    assert_eq!(first, second);
}
