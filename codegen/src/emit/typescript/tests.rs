use std::time::Instant;

use forge_attrs::{JobOptions, MutationOptions, QueryOptions};
use insta::assert_snapshot;

use super::emit;
use crate::ir::{
    Arg, Field, Handler, Ir, Kind, Options, Scalar, Shape, Span, StructTag, Tagging, TypeDef,
    TypeRef, Usage, Variant, VariantShape, WireName,
};

// ---- IR builders -------------------------------------------------------------------------

pub(crate) fn ir(types: Vec<TypeDef>, handlers: Vec<Handler>) -> Ir {
    Ir::new(types, handlers)
}

/// A type used in both directions; `id` is its path (`billing::Status`).
pub(crate) fn def(id: &str, shape: Shape) -> TypeDef {
    let (module, name) = id.rsplit_once("::").unwrap_or(("", id));
    TypeDef {
        id: id.to_owned(),
        name: name.to_owned(),
        module: module.to_owned(),
        generics: Vec::new(),
        doc: None,
        model: None,
        usage: Usage {
            input: true,
            output: true,
        },
        shape,
        span: Span::default(),
    }
}

pub(crate) fn input(def: TypeDef) -> TypeDef {
    TypeDef {
        usage: Usage {
            input: true,
            output: false,
        },
        ..def
    }
}

pub(crate) fn output(def: TypeDef) -> TypeDef {
    TypeDef {
        usage: Usage {
            input: false,
            output: true,
        },
        ..def
    }
}

pub(crate) fn generic(def: TypeDef, params: &[&str]) -> TypeDef {
    TypeDef {
        generics: params.iter().map(|p| (*p).to_owned()).collect(),
        ..def
    }
}

pub(crate) fn documented(def: TypeDef, doc: &str) -> TypeDef {
    TypeDef {
        doc: Some(doc.to_owned()),
        ..def
    }
}

pub(crate) fn strukt(fields: Vec<Field>) -> Shape {
    Shape::Struct { fields, tag: None }
}

pub(crate) fn enumeration(tagging: Tagging, variants: Vec<Variant>) -> Shape {
    Shape::Enum { tagging, variants }
}

pub(crate) fn wire(name: &str) -> WireName {
    WireName {
        serialize: name.to_owned(),
        deserialize: name.to_owned(),
        aliases: Vec::new(),
    }
}

pub(crate) fn field(name: &str, ty: TypeRef) -> Field {
    Field {
        rust_name: name.to_owned(),
        wire: wire(name),
        ty,
        doc: None,
        skip_serializing: false,
        skip_deserializing: false,
        skip_serializing_if: None,
        default: false,
        flatten: false,
        span: Span::default(),
    }
}

pub(crate) fn flattened(name: &str, ty: TypeRef) -> Field {
    Field {
        flatten: true,
        ..field(name, ty)
    }
}

pub(crate) fn variant(name: &str, shape: VariantShape) -> Variant {
    Variant {
        rust_name: name.to_owned(),
        wire: wire(name),
        doc: None,
        skip_serializing: false,
        skip_deserializing: false,
        other: false,
        untagged: false,
        shape,
        span: Span::default(),
    }
}

pub(crate) fn unit(name: &str) -> Variant {
    variant(name, VariantShape::Unit)
}

pub(crate) fn newtype(name: &str, of: TypeRef) -> Variant {
    variant(name, VariantShape::Newtype { of })
}

pub(crate) fn tuple(name: &str, items: Vec<TypeRef>) -> Variant {
    variant(name, VariantShape::Tuple { items })
}

pub(crate) fn record(name: &str, fields: Vec<Field>) -> Variant {
    variant(name, VariantShape::Struct { fields })
}

pub(crate) fn scalar(scalar: Scalar) -> TypeRef {
    TypeRef::Scalar { scalar }
}

pub(crate) fn string() -> TypeRef {
    scalar(Scalar::String)
}

pub(crate) fn int() -> TypeRef {
    scalar(Scalar::I32)
}

pub(crate) fn opt(of: TypeRef) -> TypeRef {
    TypeRef::Option { of: Box::new(of) }
}

pub(crate) fn list(of: TypeRef) -> TypeRef {
    TypeRef::List { of: Box::new(of) }
}

pub(crate) fn map(value: TypeRef) -> TypeRef {
    TypeRef::Map {
        key: Box::new(string()),
        value: Box::new(value),
    }
}

pub(crate) fn named(id: &str) -> TypeRef {
    named_of(id, Vec::new())
}

pub(crate) fn named_of(id: &str, args: Vec<TypeRef>) -> TypeRef {
    TypeRef::Named {
        id: id.to_owned(),
        args,
    }
}

pub(crate) fn param(name: &str) -> TypeRef {
    TypeRef::Param {
        name: name.to_owned(),
    }
}

pub(crate) fn handler(
    kind: Kind,
    name: &str,
    args: Vec<(&str, TypeRef)>,
    returns: TypeRef,
) -> Handler {
    let options = match kind {
        Kind::Query => Options::Query(QueryOptions::default()),
        Kind::Mutation => Options::Mutation(MutationOptions::default()),
        _ => Options::Job(JobOptions::default()),
    };
    Handler {
        name: name.to_owned(),
        function: name.to_owned(),
        module: "functions".to_owned(),
        kind,
        options,
        doc: None,
        is_async: true,
        context: None,
        args: args
            .into_iter()
            .map(|(name, ty)| Arg {
                name: name.to_owned(),
                ty,
                span: Span::default(),
            })
            .collect(),
        returns,
        tables_read: Vec::new(),
        tables_written: Vec::new(),
        sql: Vec::new(),
        dispatches: Vec::new(),
        blocking_sleeps: Vec::new(),
        workflow: None,
        span: Span::default(),
    }
}

fn file(ir: &Ir, path: &str) -> String {
    emit(ir)
        .into_iter()
        .find(|file| file.path == path)
        .map(|file| file.contents)
        .unwrap_or_default()
}

fn types_ts(types: Vec<TypeDef>) -> String {
    file(&ir(types, Vec::new()), "types.ts")
}

// ---- types.ts ----------------------------------------------------------------------------

#[test]
fn scalars() {
    let all = [
        Scalar::Bool,
        Scalar::Char,
        Scalar::String,
        Scalar::I8,
        Scalar::I16,
        Scalar::I32,
        Scalar::I64,
        Scalar::U8,
        Scalar::U16,
        Scalar::U32,
        Scalar::F32,
        Scalar::F64,
        Scalar::Unit,
        Scalar::Uuid,
        Scalar::DateTime,
        Scalar::NaiveDateTime,
        Scalar::Date,
        Scalar::Time,
        Scalar::Decimal,
        Scalar::Json,
        Scalar::JsonObject,
        Scalar::Duration,
        Scalar::OtherString,
    ];
    let fields = all
        .iter()
        .map(|s| field(&format!("{s:?}").to_lowercase(), scalar(*s)))
        .collect();
    assert_snapshot!(types_ts(vec![def("Scalars", strukt(fields))]));
}

#[test]
fn containers() {
    let fields = vec![
        field("maybe", opt(string())),
        field("maybe_maybe", opt(opt(int()))),
        field("maybe_unit", opt(scalar(Scalar::Unit))),
        field("list", list(int())),
        field("list_of_maybe", list(opt(string()))),
        field("nested", list(list(opt(int())))),
        field("map", map(opt(int()))),
        field(
            "pair",
            TypeRef::Tuple {
                items: vec![string(), opt(int())],
            },
        ),
        field(
            "rgb",
            TypeRef::Array {
                of: Box::new(scalar(Scalar::U8)),
                len: 3,
            },
        ),
        field(
            "none",
            TypeRef::Array {
                of: Box::new(scalar(Scalar::U8)),
                len: 0,
            },
        ),
        field(
            "digest",
            TypeRef::Array {
                of: Box::new(scalar(Scalar::U8)),
                len: 64,
            },
        ),
        field("page", named_of("Page", vec![named("Item")])),
        field("pages", list(opt(named_of("Page", vec![int()])))),
        field(
            "unsupported",
            TypeRef::Unsupported {
                rust: "*const u8".to_owned(),
            },
        ),
        field("stray_param", param("X")),
        field("dangling", named("nowhere::Gone")),
    ];
    let page = generic(
        def(
            "Page",
            strukt(vec![
                field("items", list(param("T"))),
                field("total", int()),
            ]),
        ),
        &["T"],
    );
    let item = def("Item", strukt(vec![field("id", scalar(Scalar::Uuid))]));
    assert_snapshot!(types_ts(vec![
        def("Containers", strukt(fields)),
        page,
        item
    ]));
}

/// One struct per direction with the same fields: which are omitted, optional, nullable.
#[test]
fn field_optionality_follows_direction() {
    let fields = || {
        vec![
            field("plain", string()),
            field("maybe", opt(string())),
            Field {
                skip_serializing: true,
                skip_deserializing: true,
                ..field("skipped", string())
            },
            Field {
                skip_serializing: true,
                ..field("write_only", string())
            },
            Field {
                skip_deserializing: true,
                ..field("read_only", string())
            },
            Field {
                skip_serializing_if: Some("Option::is_none".to_owned()),
                ..field("omitted_when_none", opt(string()))
            },
            Field {
                skip_serializing_if: Some("std :: option :: Option :: is_none".to_owned()),
                ..field("omitted_when_none_long_path", opt(int()))
            },
            Field {
                skip_serializing_if: Some("Vec::is_empty".to_owned()),
                ..field("omitted_when_empty", list(string()))
            },
            Field {
                skip_serializing_if: Some("is_zero".to_owned()),
                ..field("maybe_omitted", opt(int()))
            },
            Field {
                default: true,
                ..field("defaulted", int())
            },
        ]
    };
    assert_snapshot!(types_ts(vec![
        input(def("InputOnly", strukt(fields()))),
        output(def("OutputOnly", strukt(fields()))),
        def("Both", strukt(fields())),
    ]));
}

#[test]
fn wire_names_follow_direction_and_are_quoted_when_needed() {
    let fields = || {
        vec![
            Field {
                wire: WireName {
                    serialize: "firstName".to_owned(),
                    deserialize: "first_name".to_owned(),
                    aliases: vec!["given".to_owned()],
                },
                ..field("first_name", string())
            },
            Field {
                wire: wire("last-name"),
                ..field("last_name", string())
            },
            Field {
                wire: wire("$ref"),
                ..field("reference", string())
            },
            Field {
                wire: wire("2fa"),
                ..field("two_fa", scalar(Scalar::Bool))
            },
            Field {
                wire: wire("say \"hi\"\n"),
                ..field("quote", string())
            },
            field("default", int()),
        ]
    };
    assert_snapshot!(types_ts(vec![
        input(def("Incoming", strukt(fields()))),
        output(def("Outgoing", strukt(fields()))),
    ]));
}

#[test]
fn struct_forms() {
    assert_snapshot!(types_ts(vec![
        documented(
            def(
                "Tagged",
                Shape::Struct {
                    fields: vec![field("id", int())],
                    tag: Some(StructTag {
                        tag: "type".to_owned(),
                        value: "tagged".to_owned(),
                    }),
                },
            ),
            " A struct with `#[serde(tag = \"type\")]`.",
        ),
        def("Marker", Shape::Unit),
        def(
            "Point",
            Shape::Tuple {
                items: vec![scalar(Scalar::F64), scalar(Scalar::F64)],
            },
        ),
        def(
            "UserId",
            Shape::Newtype {
                of: scalar(Scalar::Uuid)
            }
        ),
        generic(
            def(
                "Wrapper",
                Shape::Newtype {
                    of: opt(param("T"))
                }
            ),
            &["T"],
        ),
        def("Empty", strukt(Vec::new())),
        output(def(
            "AllSkipped",
            strukt(vec![Field {
                skip_serializing: true,
                ..field("secret", string())
            }]),
        )),
        generic(
            def(
                "Page",
                strukt(vec![
                    field("items", list(param("T"))),
                    field("total", int()),
                ]),
            ),
            &["T"],
        ),
        generic(
            def(
                "Pair",
                Shape::Tuple {
                    items: vec![param("A"), param("B")],
                },
            ),
            &["A", "B"],
        ),
    ]));
}

#[test]
fn flatten() {
    let base = def(
        "Base",
        strukt(vec![
            field("id", int()),
            field("created", scalar(Scalar::DateTime)),
        ]),
    );
    let audit = def("Audit", strukt(vec![field("by", string())]));
    assert_snapshot!(types_ts(vec![
        base,
        audit,
        def(
            "WithBase",
            strukt(vec![
                field("name", string()),
                flattened("base", named("Base"))
            ]),
        ),
        def(
            "OnlyFlattened",
            strukt(vec![
                flattened("base", named("Base")),
                flattened("audit", opt(named("Audit"))),
            ]),
        ),
        output(def(
            "WithExtra",
            strukt(vec![
                field("name", string()),
                Field {
                    skip_serializing_if: Some("Option::is_none".to_owned()),
                    ..field("note", opt(string()))
                },
                flattened("extra", map(scalar(Scalar::Bool))),
            ]),
        )),
        def(
            "WithEverything",
            Shape::Struct {
                fields: vec![
                    field("name", string()),
                    flattened("base", named("Base")),
                    flattened("extra", map(int())),
                ],
                tag: Some(StructTag {
                    tag: "kind".to_owned(),
                    value: "everything".to_owned(),
                }),
            },
        ),
        def(
            "WithJson",
            strukt(vec![
                field("name", string()),
                flattened("rest", scalar(Scalar::JsonObject)),
            ]),
        ),
        generic(
            def(
                "Envelope",
                strukt(vec![field("version", int()), flattened("body", param("T"))]),
            ),
            &["T"],
        ),
    ]));
}

fn payload_variants() -> Vec<Variant> {
    vec![
        unit("Empty"),
        newtype("Circle", scalar(Scalar::F64)),
        newtype("Labelled", named("Label")),
        tuple("Line", vec![int(), int()]),
        record("Rect", vec![field("w", int()), field("h", opt(int()))]),
        record("Nothing", Vec::new()),
    ]
}

#[test]
fn enum_taggings() {
    let label = def("Label", strukt(vec![field("text", string())]));
    let internal = vec![
        unit("Empty"),
        newtype("Labelled", named("Label")),
        newtype("Maybe", opt(named("Label"))),
        record("Rect", vec![field("w", int()), field("h", opt(int()))]),
        record("Nothing", Vec::new()),
        tuple("Impossible", vec![int(), int()]),
    ];
    assert_snapshot!(types_ts(vec![
        label,
        def(
            "External",
            enumeration(Tagging::External, payload_variants())
        ),
        def(
            "Internal",
            enumeration(
                Tagging::Internal {
                    tag: "type".to_owned(),
                },
                internal,
            ),
        ),
        def(
            "Adjacent",
            enumeration(
                Tagging::Adjacent {
                    tag: "t".to_owned(),
                    content: "c".to_owned(),
                },
                payload_variants(),
            ),
        ),
        def(
            "Untagged",
            enumeration(Tagging::Untagged, payload_variants())
        ),
        def(
            "Status",
            enumeration(Tagging::External, vec![unit("Active"), unit("Archived")]),
        ),
    ]));
}

#[test]
fn enum_variant_details() {
    let renamed = Variant {
        wire: WireName {
            serialize: "in-progress".to_owned(),
            deserialize: "in_progress".to_owned(),
            aliases: Vec::new(),
        },
        ..unit("InProgress")
    };
    let variants = || {
        vec![
            Variant {
                doc: Some(" Waiting to start.\n\n Nothing has run yet.".to_owned()),
                ..unit("Pending")
            },
            renamed.clone(),
            Variant {
                skip_serializing: true,
                ..unit("ClientOnly")
            },
            Variant {
                skip_deserializing: true,
                ..unit("ServerOnly")
            },
            Variant {
                skip_serializing: true,
                skip_deserializing: true,
                ..unit("Never")
            },
            Variant {
                untagged: true,
                ..newtype("Raw", string())
            },
            Variant {
                other: true,
                ..unit("Unknown")
            },
        ]
    };
    let tagged = || Tagging::Internal {
        tag: "state".to_owned(),
    };
    assert_snapshot!(types_ts(vec![
        input(def("InputState", enumeration(tagged(), variants()))),
        output(def("OutputState", enumeration(tagged(), variants()))),
        def("BothState", enumeration(Tagging::External, variants())),
        def(
            "Nothing",
            enumeration(
                Tagging::External,
                vec![Variant {
                    skip_serializing: true,
                    skip_deserializing: true,
                    ..unit("Gone")
                }],
            ),
        ),
        def(
            "Documented",
            enumeration(
                Tagging::Adjacent {
                    tag: "kind".to_owned(),
                    content: "data".to_owned(),
                },
                vec![record(
                    "Move",
                    vec![Field {
                        doc: Some(" Metres.".to_owned()),
                        ..field("distance", int())
                    }],
                )],
            ),
        ),
    ]));
}

#[test]
fn docs() {
    assert_snapshot!(types_ts(vec![
        documented(def("One", Shape::Unit), " One line."),
        documented(
            def(
                "Many",
                strukt(vec![Field {
                    doc: Some("\n   Indented:\n\n       code();\n   Closing */ here.\n".to_owned()),
                    ..field("x", int())
                }]),
            ),
            " First.\n\n Second.",
        ),
        documented(def("Blank", Shape::Unit), "  \n "),
    ]));
}

#[test]
fn clashing_type_names_get_their_module_path() {
    let status = |id: &str| def(id, enumeration(Tagging::External, vec![unit("A")]));
    assert_snapshot!(types_ts(vec![
        status("functions::billing::Status"),
        status("schema::Status"),
        status("Status"),
        // Would take `FunctionsBillingStatus` from the prefixed one if it were handed out later.
        def("FunctionsBillingStatus", Shape::Unit),
        def("schema::Record", Shape::Unit),
        def("schema::Promise", Shape::Unit),
        def("schema::ForgeClient", Shape::Unit),
        def(
            "Uses",
            strukt(vec![
                field("a", named("functions::billing::Status")),
                field("b", named("schema::Status")),
                field("c", named("Status")),
                field("d", map(named("schema::Record"))),
            ]),
        ),
    ]));
}

#[test]
fn empty_ir() {
    let ir = ir(Vec::new(), Vec::new());
    let files = emit(&ir);
    let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(paths, ["api.ts", "client.ts", "index.ts", "types.ts"]);
    for file in &files {
        assert!(file
            .contents
            .starts_with("// @generated by forge — do not edit\n"));
    }
    assert_snapshot!("empty_ir_types", file(&ir, "types.ts"));
    assert_snapshot!("empty_ir_api", file(&ir, "api.ts"));
    assert_snapshot!("empty_ir_index", file(&ir, "index.ts"));
}

#[test]
fn client_is_emitted_verbatim() {
    let client = file(&ir(Vec::new(), Vec::new()), "client.ts");
    assert_eq!(
        client.strip_prefix("// @generated by forge — do not edit\n\n"),
        Some(super::CLIENT_TS)
    );
}

// ---- api.ts ------------------------------------------------------------------------------

#[test]
fn api() {
    let item = output(def(
        "schema::Item",
        strukt(vec![field("id", int()), field("title", string())]),
    ));
    let filter = input(def("functions::Filter", strukt(vec![field("q", string())])));
    let page = generic(
        output(def(
            "Page",
            strukt(vec![
                field("items", list(param("T"))),
                field("total", int()),
            ]),
        )),
        &["T"],
    );
    let list_items = Handler {
        doc: Some(" Lists the caller's items, newest first.".to_owned()),
        ..handler(
            Kind::Query,
            "list_items",
            vec![
                ("limit", int()),
                ("filter", opt(named("functions::Filter"))),
            ],
            named_of("Page", vec![named("schema::Item")]),
        )
    };
    let handlers = vec![
        list_items,
        handler(Kind::Query, "ping", Vec::new(), string()),
        handler(
            Kind::Mutation,
            "create_item",
            vec![("title", string()), ("tags", list(string()))],
            named("schema::Item"),
        ),
        handler(Kind::Mutation, "reset", Vec::new(), scalar(Scalar::Unit)),
        handler(
            Kind::Query,
            "generic_leak",
            vec![("x", param("T"))],
            TypeRef::Unsupported {
                rust: "impl Trait".to_owned(),
            },
        ),
        // Not callable over RPC: no function, and its types are not imported.
        handler(
            Kind::Job,
            "send_digest",
            vec![("user", named("schema::User"))],
            scalar(Scalar::Unit),
        ),
    ];
    let user = def("schema::User", strukt(vec![field("id", int())]));
    assert_snapshot!(file(
        &ir(vec![item, filter, page, user], handlers),
        "api.ts"
    ));
}

#[test]
fn generated_names_never_clash() {
    let types = vec![
        // The user's type keeps its name; the generated argument type yields.
        def("ListItemsArgs", strukt(vec![field("limit", int())])),
        def("listItems", Shape::Unit),
        def("Queries", Shape::Unit),
    ];
    let handlers = vec![
        handler(
            Kind::Query,
            "list_items",
            vec![("args", named("ListItemsArgs"))],
            named("listItems"),
        ),
        // Same camelCase name as `list_items`.
        handler(Kind::Query, "listItems", vec![("n", int())], int()),
        handler(
            Kind::Mutation,
            "delete",
            vec![("id", int())],
            scalar(Scalar::Unit),
        ),
        handler(
            Kind::Mutation,
            "create_client",
            Vec::new(),
            scalar(Scalar::Unit),
        ),
        handler(Kind::Query, "2fa_status", Vec::new(), scalar(Scalar::Bool)),
        // The handler keeps the name; the generic live-query entry point yields.
        handler(Kind::Query, "subscribe", Vec::new(), scalar(Scalar::Bool)),
    ];
    let ir = ir(types, handlers);
    assert_snapshot!(format!(
        "{}\n{}",
        file(&ir, "types.ts"),
        file(&ir, "api.ts")
    ));
}

// ---- scale -------------------------------------------------------------------------------

/// An IR of the size of a large application: 6,000 types of every shape, 5,000 handlers.
fn large_ir() -> Ir {
    let mut types = Vec::new();
    for i in 0..6_000 {
        // Every tenth name repeats in another module, which exercises the disambiguation.
        let id = if i % 10 == 0 {
            format!("other::Type{}", i + 1)
        } else {
            format!("schema::Type{i}")
        };
        let shape = match i % 4 {
            0 => strukt(vec![
                field("id", scalar(Scalar::Uuid)),
                field("name", string()),
                field("tags", list(string())),
                field("parent", opt(named("schema::Type1"))),
                Field {
                    skip_serializing_if: Some("Option::is_none".to_owned()),
                    ..field("note", opt(string()))
                },
            ]),
            1 => enumeration(Tagging::External, vec![unit("A"), unit("B"), unit("C")]),
            2 => enumeration(
                Tagging::Internal {
                    tag: "type".to_owned(),
                },
                vec![
                    record("X", vec![field("x", int())]),
                    newtype("Y", named("schema::Type1")),
                ],
            ),
            _ => Shape::Newtype {
                of: map(list(int())),
            },
        };
        types.push(def(&id, shape));
    }
    let handlers = (0..5_000)
        .map(|i| {
            let kind = if i % 3 == 0 {
                Kind::Mutation
            } else {
                Kind::Query
            };
            handler(
                kind,
                &format!("handler_number_{i}"),
                vec![
                    ("id", scalar(Scalar::Uuid)),
                    ("input", named("schema::Type4")),
                ],
                list(named("schema::Type8")),
            )
        })
        .collect();
    ir(types, handlers)
}

#[test]
fn large_ir_is_deterministic_and_fast() {
    let ir = large_ir();
    let start = Instant::now();
    let first = emit(&ir);
    let elapsed = start.elapsed();
    let bytes: usize = first.iter().map(|file| file.contents.len()).sum();
    // `cargo test --release -p forge-codegen large_ir -- --nocapture` shows the real figure.
    eprintln!("emitted a 6,000-type, 5,000-handler IR ({bytes} bytes) in {elapsed:?}");
    assert_eq!(first, emit(&ir));
    assert!(bytes > 1_000_000, "{bytes} bytes");
}
