//! What the emitters produce for the fixture crates, as snapshots.

mod support;

use forge_codegen::emit::typescript;

#[test]
fn kitchen_sink_typescript() {
    let ir = support::build_fixture("kitchen_sink").ir;
    for file in typescript::emit(&ir) {
        if file.path == "client.ts" {
            continue; // verbatim; covered by the emitter's own tests
        }
        insta::assert_snapshot!(format!("kitchen_sink_{}", file.path), file.contents);
    }
}

#[test]
fn kitchen_sink_rust_glue() {
    let ir = support::build_fixture("kitchen_sink").ir;
    insta::assert_snapshot!(forge_codegen::emit::rust::emit(&ir));
}

#[test]
fn kitchen_sink_jsonschema() {
    let ir = support::build_fixture("kitchen_sink").ir;
    let text = forge_codegen::emit::jsonschema::emit(&ir);
    let document: serde_json::Value = serde_json::from_str(&text).expect("the document is JSON");
    assert!(
        jsonschema::meta::is_valid(&document),
        "not a valid 2020-12 schema"
    );
    insta::assert_snapshot!(text);
}
