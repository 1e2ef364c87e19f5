use forge_attrs::{CronOptions, McpToolOptions, Schedule};
use insta::assert_snapshot;
use serde_json::{json, Value};

use super::{emit, tool_input_schema};
use crate::emit::typescript::tests::*;
use crate::ir::{Field, Handler, Ir, Kind, Options, Scalar, StructTag, Tagging, TypeRef, Variant};

fn renamed(rust: &str, serialize: &str, deserialize: &str, ty: TypeRef) -> Field {
    Field {
        wire: crate::ir::WireName {
            serialize: serialize.to_owned(),
            deserialize: deserialize.to_owned(),
            aliases: Vec::new(),
        },
        ..field(rust, ty)
    }
}

fn mcp_tool(name: &str, args: Vec<(&str, TypeRef)>, returns: TypeRef) -> Handler {
    Handler {
        kind: Kind::McpTool,
        options: Options::McpTool(McpToolOptions {
            name: Some(name.to_owned()),
            title: Some("Find things".to_owned()),
            read_only: true,
            rate_limit: None,
        }),
        doc: Some(" Finds things.".to_owned()),
        ..handler(Kind::Job, name, args, returns)
    }
}

/// Every shape, used in the directions that make them differ.
fn shapes() -> Ir {
    let types = vec![
        def(
            "schema::User",
            strukt(vec![
                field("id", scalar(Scalar::Uuid)),
                renamed("display_name", "displayName", "display_name", string()),
                Field {
                    skip_serializing_if: Some("Option::is_none".to_owned()),
                    ..field("email", opt(string()))
                },
                field("nickname", opt(string())),
                Field {
                    default: true,
                    doc: Some(" When the user signed up.".to_owned()),
                    ..field("created_at", scalar(Scalar::DateTime))
                },
                Field {
                    skip_serializing: true,
                    ..field("password", string())
                },
                field("role", named("schema::Role")),
            ]),
        ),
        def(
            "schema::Role",
            enumeration(
                Tagging::External,
                vec![
                    Variant {
                        wire: wire("admin"),
                        ..unit("Admin")
                    },
                    Variant {
                        wire: wire("member"),
                        ..unit("Member")
                    },
                    Variant {
                        skip_deserializing: true,
                        ..unit("Legacy")
                    },
                ],
            ),
        ),
        input(def(
            "schema::Shape",
            enumeration(
                Tagging::Internal {
                    tag: "kind".to_owned(),
                },
                vec![
                    record("Circle", vec![field("radius", scalar(Scalar::F64))]),
                    newtype("Square", named("schema::Side")),
                    Variant {
                        other: true,
                        ..unit("Unknown")
                    },
                ],
            ),
        )),
        def(
            "schema::Side",
            strukt(vec![field("len", scalar(Scalar::U32))]),
        ),
        def(
            "schema::Event",
            enumeration(
                Tagging::Adjacent {
                    tag: "t".to_owned(),
                    content: "c".to_owned(),
                },
                vec![
                    unit("Ping"),
                    newtype("Msg", string()),
                    tuple("Move", vec![int(), int()]),
                    record("Rename", vec![field("to", string())]),
                ],
            ),
        ),
        input(def(
            "schema::Loose",
            enumeration(
                Tagging::Untagged,
                vec![
                    newtype("Num", scalar(Scalar::F64)),
                    newtype("Text", string()),
                    unit("Nothing"),
                ],
            ),
        )),
        input(def(
            "schema::Ext",
            enumeration(
                Tagging::External,
                vec![
                    unit("Plain"),
                    tuple("Pair", vec![int(), string()]),
                    record("Rec", vec![field("a", int())]),
                    Variant {
                        untagged: true,
                        ..newtype("Raw", string())
                    },
                ],
            ),
        )),
        output(generic(
            def(
                "schema::Page",
                strukt(vec![
                    field("items", list(param("T"))),
                    field("next", opt(string())),
                ]),
            ),
            &["T"],
        )),
        input(def(
            "schema::Meta",
            strukt(vec![
                field("id", int()),
                flattened("side", named("schema::Side")),
                flattened("extra", map(string())),
            ]),
        )),
        input(def(
            "schema::Point",
            crate::ir::Shape::Tuple {
                items: vec![int(), int()],
            },
        )),
        input(documented(
            def("schema::Email", crate::ir::Shape::Newtype { of: string() }),
            " An address.",
        )),
        input(def("schema::Marker", crate::ir::Shape::Unit)),
        input(def(
            "schema::Tagged",
            crate::ir::Shape::Struct {
                fields: vec![field("n", scalar(Scalar::I8))],
                tag: Some(StructTag {
                    tag: "type".to_owned(),
                    value: "Tagged".to_owned(),
                }),
            },
        )),
        output(def("other::User", strukt(vec![field("name", string())]))),
        output(def("schema::Never", enumeration(Tagging::External, vec![]))),
    ];
    let mut tick = handler(Kind::Cron, "tick", vec![], scalar(Scalar::Unit));
    tick.options = Options::Cron(CronOptions {
        schedule: Schedule::EveryMs(1000),
        timezone: None,
        catch_up: 0,
        timeout_ms: None,
    });
    let handlers = vec![
        handler(
            Kind::Query,
            "list_users",
            vec![("page", opt(int())), ("role", opt(named("schema::Role")))],
            named_of("schema::Page", vec![named("schema::User")]),
        ),
        handler(
            Kind::Mutation,
            "save_user",
            vec![
                ("user", named("schema::User")),
                ("shape", named("schema::Shape")),
                ("meta", named("schema::Meta")),
            ],
            named("schema::User"),
        ),
        mcp_tool(
            "things.find",
            vec![
                ("query", string()),
                ("event", named("schema::Event")),
                ("loose", named("schema::Loose")),
                ("ext", named("schema::Ext")),
                ("point", named("schema::Point")),
                ("email", opt(named("schema::Email"))),
                ("marker", named("schema::Marker")),
                ("tagged", named("schema::Tagged")),
                ("limit", scalar(Scalar::U8)),
                ("on", scalar(Scalar::Date)),
                (
                    "ids",
                    TypeRef::Array {
                        of: Box::new(scalar(Scalar::Uuid)),
                        len: 2,
                    },
                ),
                (
                    "pair",
                    TypeRef::Tuple {
                        items: vec![string(), scalar(Scalar::Bool)],
                    },
                ),
            ],
            named_of(
                "schema::Page",
                vec![named_of("schema::Page", vec![named("other::User")])],
            ),
        ),
        handler(
            Kind::Job,
            "send",
            vec![("event", named("schema::Event"))],
            named("schema::Never"),
        ),
        tick,
    ];
    ir(types, handlers)
}

fn document() -> Value {
    serde_json::from_str(&emit(&shapes())).expect("the document is JSON")
}

/// A validator for `schema` with the document's `$defs` beside it.
fn validator(schema: &Value, defs: &Value) -> jsonschema::Validator {
    let mut schema = schema.clone();
    schema["$defs"] = defs.clone();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema compiles: {e}\n{schema:#}"))
}

fn handler_schema(doc: &Value, kind: &str, name: &str, part: &str) -> jsonschema::Validator {
    let schema = &doc["handlers"][kind][name][part];
    assert!(!schema.is_null(), "no {part} for {kind} {name}");
    validator(schema, &doc["$defs"])
}

#[track_caller]
fn admits(validator: &jsonschema::Validator, value: Value) {
    if let Err(error) = validator.validate(&value) {
        panic!("{value} should be valid: {error}");
    }
}

#[track_caller]
fn refuses(validator: &jsonschema::Validator, value: Value) {
    assert!(!validator.is_valid(&value), "{value} should be invalid");
}

#[test]
fn the_document() {
    assert_snapshot!(emit(&shapes()));
}

#[test]
fn the_document_is_deterministic_and_a_valid_schema() {
    let ir = shapes();
    assert_eq!(emit(&ir), emit(&ir));
    let doc = document();
    assert!(
        jsonschema::meta::is_valid(&doc),
        "not a valid 2020-12 schema"
    );
    for (_, handlers) in doc["handlers"].as_object().unwrap() {
        for (_, entry) in handlers.as_object().unwrap() {
            for part in ["input", "output"] {
                if !entry[part].is_null() {
                    validator(&entry[part], &doc["$defs"]);
                }
            }
        }
    }
}

#[test]
fn an_mcp_tool_schema_is_self_contained() {
    let ir = shapes();
    let tool = ir.handler("things.find").unwrap();
    let text = tool_input_schema(&ir, tool);
    assert_snapshot!(text);
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert!(jsonschema::meta::is_valid(&schema));
    let tool = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("compiles on its own");
    let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let valid = json!({
        "query": "q",
        "event": {"t": "Move", "c": [1, 2]},
        "loose": null,
        "ext": {"Pair": [1, "x"]},
        "point": [1, 2],
        "marker": null,
        "tagged": {"type": "Tagged", "n": -3},
        "limit": 255,
        "on": "2026-03-01",
        "ids": [uuid, uuid],
        "pair": ["a", true],
    });
    admits(&tool, valid.clone());
    let with = |key: &str, value: Value| {
        let mut v = valid.clone();
        v[key] = value;
        v
    };
    admits(&tool, with("email", json!("a@b.c")));
    admits(&tool, with("email", Value::Null));
    admits(&tool, with("event", json!({"t": "Ping"})));
    admits(
        &tool,
        with("event", json!({"t": "Rename", "c": {"to": "x"}})),
    );
    admits(&tool, with("ext", json!("Plain")));
    admits(&tool, with("ext", json!({"Rec": {"a": 1}})));
    admits(&tool, with("ext", json!("raw text, untagged")));
    admits(&tool, with("loose", json!(1.5)));
    refuses(&tool, with("limit", json!(256)));
    refuses(&tool, with("limit", json!(1.5)));
    refuses(&tool, with("ids", json!([uuid])));
    refuses(&tool, with("ids", json!([uuid, "not-a-uuid"])));
    refuses(&tool, with("pair", json!(["a", true, 1])));
    refuses(&tool, with("point", json!([1])));
    refuses(&tool, with("event", json!({"t": "Msg"})));
    refuses(&tool, with("event", json!({"t": "Nope", "c": 1})));
    refuses(&tool, with("ext", json!({"Plain": null, "Rec": {"a": 1}})));
    refuses(&tool, with("tagged", json!({"type": "Other", "n": 1})));
    refuses(&tool, with("tagged", json!({"type": "Tagged", "n": 128})));
    refuses(&tool, with("on", json!("yesterday")));
    refuses(&tool, with("unknown_argument", json!(1)));
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("query");
    refuses(&tool, missing);
}

#[test]
fn inputs_follow_deserialize_rules() {
    let doc = document();
    let save = handler_schema(&doc, "mutation", "save_user", "input");
    let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let user = json!({"id": uuid, "display_name": "Ada", "password": "pw", "role": "admin"});
    let valid = json!({
        "user": user,
        "shape": {"kind": "Circle", "radius": 1.5},
        "meta": {"id": 1, "len": 3, "colour": "red"},
    });
    admits(&save, valid.clone());
    let with = |path: &[&str], value: Value| {
        let mut v = valid.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut v;
        for key in parents {
            at = &mut at[*key];
        }
        at[*last] = value;
        v
    };
    // `Option` and `default` fields may be left out; `null` is an `Option`'s `None`.
    admits(&save, with(&["user", "nickname"], Value::Null));
    admits(&save, with(&["user", "email"], Value::Null));
    admits(&save, with(&["shape"], json!({"kind": "Square", "len": 2})));
    // `#[serde(other)]` takes any tag on the way in.
    admits(&save, with(&["shape"], json!({"kind": "Triangle"})));
    refuses(&save, with(&["user", "role"], json!("Legacy")));
    refuses(&save, with(&["user", "role"], json!("boss")));
    refuses(&save, with(&["user", "id"], json!(7)));
    refuses(
        &save,
        with(&["shape"], json!({"kind": "Circle", "radius": "big"})),
    );
    refuses(&save, with(&["shape"], json!({"kind": "Square"})));
    refuses(&save, with(&["meta", "colour"], json!(3)));
    refuses(&save, with(&["meta", "len"], json!(-1)));
    refuses(&save, with(&["extra"], json!(1)));
    let mut no_id = valid.clone();
    no_id["user"].as_object_mut().unwrap().remove("id");
    refuses(&save, no_id);

    let list = handler_schema(&doc, "query", "list_users", "input");
    admits(&list, json!({}));
    admits(&list, json!({"page": 2, "role": "member"}));
    refuses(&list, json!({"page": "2"}));

    let send = handler_schema(&doc, "job", "send", "input");
    admits(&send, json!({"t": "Msg", "c": "hello"}));
    refuses(&send, json!({"t": "Msg", "c": 1}));
    assert!(doc["handlers"]["cron"]["tick"]["input"].is_null());
}

#[test]
fn outputs_follow_serialize_rules() {
    let doc = document();
    let save = handler_schema(&doc, "mutation", "save_user", "output");
    let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let user = json!({
        "id": uuid,
        "displayName": "Ada",
        "nickname": null,
        "created_at": "2026-01-01T00:00:00Z",
        "role": "Legacy",
    });
    admits(&save, user.clone());
    let with = |key: &str, value: Value| {
        let mut v = user.clone();
        v[key] = value;
        v
    };
    admits(&save, with("email", json!("a@b.c")));
    // Left out when `None`, so never `null`.
    refuses(&save, with("email", Value::Null));
    refuses(&save, with("created_at", json!("not a time")));
    let mut no_nickname = user.clone();
    no_nickname.as_object_mut().unwrap().remove("nickname");
    refuses(&save, no_nickname);

    let list = handler_schema(&doc, "query", "list_users", "output");
    admits(&list, json!({"items": [user], "next": null}));
    refuses(&list, json!({"items": [{"name": "x"}], "next": null}));
    let find = handler_schema(&doc, "mcp_tool", "things.find", "output");
    admits(
        &find,
        json!({"items": [{"items": [{"name": "x"}], "next": null}], "next": "c"}),
    );
    refuses(
        &find,
        json!({"items": [{"items": [user], "next": null}], "next": "c"}),
    );
    let send = handler_schema(&doc, "job", "send", "output");
    refuses(&send, json!(null));
}

#[test]
fn types_used_both_ways_split_only_when_they_differ() {
    let doc = document();
    let defs = doc["$defs"].as_object().unwrap();
    let keys: Vec<&str> = defs.keys().map(String::as_str).collect();
    // User has direction-specific names and optional fields; Role skips a variant one way.
    for split in [
        "schema.User.input",
        "schema.User.output",
        "Role.input",
        "Role.output",
    ] {
        assert!(keys.contains(&split), "{keys:?}");
    }
    // Side and Event read and write alike.
    assert!(
        keys.contains(&"Side") && keys.contains(&"Event"),
        "{keys:?}"
    );
    // Clashing names get their module path; generic instances their arguments.
    assert!(keys.contains(&"other.User"), "{keys:?}");
    assert!(keys.contains(&"Page_schema.User"), "{keys:?}");
    assert_eq!(defs["Page_Page_other.User"]["title"], "Page<Page<User>>");
}

#[test]
fn references_are_valid_uri_fragments() {
    assert_eq!(super::fragment("Page_schema.User"), "Page_schema.User");
    assert_eq!(super::fragment("café/x~"), "caf%C3%A9~1x~0");
    assert_eq!(super::fragment("a b"), "a%20b");
}

#[test]
fn polymorphic_recursion_ends() {
    // `struct Nest<T> { inner: Option<Box<Nest<Vec<T>>>> }`
    let types = vec![generic(
        def(
            "Nest",
            strukt(vec![field(
                "inner",
                opt(named_of("Nest", vec![list(param("T"))])),
            )]),
        ),
        &["T"],
    )];
    let handlers = vec![handler(
        Kind::Query,
        "nest",
        vec![],
        named_of("Nest", vec![int()]),
    )];
    let text = emit(&ir(types, handlers));
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["$defs"].as_object().unwrap().len() <= super::MAX_DEPTH + 1);
}
