use forge_attrs::QueryOptions;
use serde_json::Value;

use super::emit;
use crate::emit::typescript::tests::*;
use crate::ir::{Field, Handler, Ir, Kind, Options, Scalar};

fn document(ir: &Ir) -> Value {
    let files = emit(ir);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, "openapi.json");
    serde_json::from_str(&files[0].contents).expect("the document is JSON")
}

fn public_query(name: &str) -> Handler {
    Handler {
        options: Options::Query(QueryOptions {
            public: true,
            ..QueryOptions::default()
        }),
        ..handler(Kind::Query, name, Vec::new(), string())
    }
}

/// A type read with one shape and written with another.
fn user() -> crate::ir::TypeDef {
    def(
        "functions::User",
        strukt(vec![
            field("id", scalar(Scalar::Uuid)),
            Field {
                skip_serializing_if: Some("Option::is_none".to_owned()),
                ..field("email", opt(string()))
            },
        ]),
    )
}

#[test]
fn rpc_handlers_only_each_at_its_own_path() {
    let ir = ir(
        vec![user()],
        vec![
            handler(
                Kind::Query,
                "get_user",
                vec![("id", scalar(Scalar::Uuid))],
                named("functions::User"),
            ),
            handler(
                Kind::Mutation,
                "save_user",
                vec![("user", named("functions::User"))],
                named("functions::User"),
            ),
            handler(
                Kind::Job,
                "send_mail",
                vec![("to", string())],
                scalar(Scalar::Unit),
            ),
            public_query("status"),
        ],
    );
    let doc = document(&ir);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/_api/rpc/get_user",
            "/_api/rpc/save_user",
            "/_api/rpc/status"
        ]
    );
    // Direction-aware components: the mutation's argument and its result differ.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("User.input"), "{schemas:?}");
    assert!(schemas.contains_key("User.output"), "{schemas:?}");
    let save = &doc["paths"]["/_api/rpc/save_user"]["post"];
    let request = &save["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        request["properties"]["args"]["properties"]["user"]["$ref"],
        "#/components/schemas/User.input"
    );
    assert_eq!(request["required"], serde_json::json!(["args"]));
    let data =
        &save["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"];
    assert_eq!(data["$ref"], "#/components/schemas/User.output");
    assert_eq!(save["tags"], serde_json::json!(["mutation"]));
}

#[test]
fn public_handlers_make_the_token_optional_and_are_marked() {
    let ir = ir(
        Vec::new(),
        vec![
            public_query("status"),
            handler(Kind::Query, "me", Vec::new(), string()),
        ],
    );
    let doc = document(&ir);
    let status = &doc["paths"]["/_api/rpc/status"]["post"];
    assert_eq!(status["security"], serde_json::json!([{}, {"bearer": []}]));
    assert_eq!(status["x-forge-public"], true);
    // No arguments: the body may be `{}`.
    let request = &status["requestBody"]["content"]["application/json"]["schema"];
    assert!(request.get("required").is_none());
    let me = &doc["paths"]["/_api/rpc/me"]["post"];
    assert_eq!(me["security"], serde_json::json!([{"bearer": []}]));
    assert!(me.get("x-forge-public").is_none());
    for status in ["400", "401", "403", "404", "429", "500", "504"] {
        assert!(me["responses"][status]["$ref"].is_string(), "{status}");
    }
}

#[test]
fn a_user_type_never_takes_the_envelope_key() {
    let ir = ir(
        vec![
            def("forge::ErrorEnvelope", strukt(vec![field("x", int())])),
            def("other::ErrorEnvelope", strukt(vec![field("y", int())])),
        ],
        vec![
            handler(Kind::Query, "a", Vec::new(), named("forge::ErrorEnvelope")),
            handler(Kind::Query, "b", Vec::new(), named("other::ErrorEnvelope")),
        ],
    );
    let doc = document(&ir);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["forge.ErrorEnvelope"]["title"],
        "forge error envelope"
    );
    assert_eq!(
        doc["paths"]["/_api/rpc/a"]["post"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["properties"]["data"]["$ref"],
        "#/components/schemas/forge.ErrorEnvelope_2"
    );
}

#[test]
fn the_same_ir_gives_the_same_bytes() {
    let build = || {
        ir(
            vec![user()],
            vec![handler(
                Kind::Mutation,
                "save_user",
                vec![("user", named("functions::User"))],
                named("functions::User"),
            )],
        )
    };
    assert_eq!(emit(&build()), emit(&build()));
}
