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

#[test]
fn kitchen_sink_openapi() {
    let ir = support::build_fixture("kitchen_sink").ir;
    let files = forge_codegen::emit::openapi::emit(&ir);
    let [file] = files.as_slice() else {
        panic!("one file, got {}", files.len());
    };
    assert_eq!(file.path, "openapi.json");
    let document: serde_json::Value =
        serde_json::from_str(&file.contents).expect("the document is JSON");
    // Its component schemas are the JSON Schema document's definitions (of the types
    // queries and mutations use; the other kinds are not served over RPC).
    let schema: serde_json::Value =
        serde_json::from_str(&forge_codegen::emit::jsonschema::emit(&ir)).expect("JSON");
    let components = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    assert!(components.len() > 5, "{components:?}");
    for (key, component) in components {
        if key.starts_with("forge.") {
            continue;
        }
        let definition = serde_json::to_string(&schema["$defs"][key])
            .unwrap()
            .replace("#/$defs/", "#/components/schemas/");
        assert_eq!(
            serde_json::to_string(component).unwrap(),
            definition,
            "{key}"
        );
    }
    insta::assert_snapshot!(file.contents);
}
