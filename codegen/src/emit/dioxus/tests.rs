//! Snapshots of the Dioxus client, and what holds for every IR: the module parses, the
//! real rustfmt leaves it unchanged (with its skip attribute taken out), and emitting again
//! gives the same bytes. `tests/tests/dioxus.rs` compiles it against the real crates.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use forge_attrs::{JobOptions, MutationOptions, QueryOptions};
use insta::assert_snapshot;

use super::{emit, CLIENT_RS, MODULE_FILE};
use crate::ir::{
    Arg, Field, Handler, Ir, Kind, Options, Scalar, Shape, Span, StructTag, Tagging, TypeDef,
    TypeRef, Usage, Variant, VariantShape, WireName,
};

// ---- IR builders -------------------------------------------------------------------------

fn ir(types: Vec<TypeDef>, handlers: Vec<Handler>) -> Ir {
    Ir::new(types, handlers)
}

/// A type used in both directions; `id` is its path (`billing::Status`).
fn def(id: &str, shape: Shape) -> TypeDef {
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

fn input(def: TypeDef) -> TypeDef {
    TypeDef {
        usage: Usage {
            input: true,
            output: false,
        },
        ..def
    }
}

fn output(def: TypeDef) -> TypeDef {
    TypeDef {
        usage: Usage {
            input: false,
            output: true,
        },
        ..def
    }
}

fn generic(def: TypeDef, params: &[&str]) -> TypeDef {
    TypeDef {
        generics: params.iter().map(|p| (*p).to_owned()).collect(),
        ..def
    }
}

fn documented(def: TypeDef, doc: &str) -> TypeDef {
    TypeDef {
        doc: Some(doc.to_owned()),
        ..def
    }
}

fn strukt(fields: Vec<Field>) -> Shape {
    Shape::Struct { fields, tag: None }
}

fn enumeration(tagging: Tagging, variants: Vec<Variant>) -> Shape {
    Shape::Enum { tagging, variants }
}

fn wire(name: &str) -> WireName {
    WireName {
        serialize: name.to_owned(),
        deserialize: name.to_owned(),
        aliases: Vec::new(),
    }
}

fn field(name: &str, ty: TypeRef) -> Field {
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

fn flattened(name: &str, ty: TypeRef) -> Field {
    Field {
        flatten: true,
        ..field(name, ty)
    }
}

fn variant(name: &str, shape: VariantShape) -> Variant {
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

fn unit(name: &str) -> Variant {
    variant(name, VariantShape::Unit)
}

fn newtype(name: &str, of: TypeRef) -> Variant {
    variant(name, VariantShape::Newtype { of })
}

fn tuple(name: &str, items: Vec<TypeRef>) -> Variant {
    variant(name, VariantShape::Tuple { items })
}

fn record(name: &str, fields: Vec<Field>) -> Variant {
    variant(name, VariantShape::Struct { fields })
}

fn scalar(scalar: Scalar) -> TypeRef {
    TypeRef::Scalar { scalar }
}

fn string() -> TypeRef {
    scalar(Scalar::String)
}

fn int() -> TypeRef {
    scalar(Scalar::I32)
}

fn opt(of: TypeRef) -> TypeRef {
    TypeRef::Option { of: Box::new(of) }
}

fn list(of: TypeRef) -> TypeRef {
    TypeRef::List { of: Box::new(of) }
}

fn map(value: TypeRef) -> TypeRef {
    TypeRef::Map {
        key: Box::new(string()),
        value: Box::new(value),
    }
}

fn named(id: &str) -> TypeRef {
    named_of(id, Vec::new())
}

fn named_of(id: &str, args: Vec<TypeRef>) -> TypeRef {
    TypeRef::Named {
        id: id.to_owned(),
        args,
    }
}

fn param(name: &str) -> TypeRef {
    TypeRef::Param {
        name: name.to_owned(),
    }
}

fn handler(kind: Kind, name: &str, args: Vec<(&str, TypeRef)>, returns: TypeRef) -> Handler {
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

/// The module for `ir`, after checking what holds for every IR.
fn module(ir: &Ir) -> String {
    let files = emit(ir);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, MODULE_FILE);
    let out = files[0].contents.clone();
    assert!(out.starts_with("// @generated by forge — do not edit\n"));
    if let Err(error) = syn::parse_file(&out) {
        panic!("the module does not parse: {error}\n{out}");
    }
    assert_rustfmt_clean(&out);
    assert_eq!(emit(&ir.clone())[0].contents, out, "emitting twice differs");
    out
}

/// The generated part of the module: what follows the hand-written client.
fn generated(ir: &Ir) -> String {
    let out = module(ir);
    let (_, rest) = out
        .split_once(CLIENT_RS)
        .expect("the hand-written client is in the module verbatim");
    rest.to_owned()
}

fn types_rs(types: Vec<TypeDef>) -> String {
    generated(&ir(types, Vec::new()))
}

const SKIP: &str = "#![cfg_attr(rustfmt, rustfmt::skip)]\n";

/// Runs `rustfmt --check` with rustfmt's default configuration on `source` without its skip
/// attribute: the module is what rustfmt would write, the attribute only keeps a project's
/// own rustfmt.toml from rewriting it.
fn assert_rustfmt_clean(source: &str) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    assert!(source.contains(SKIP), "the module tells rustfmt to skip it");
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("forge-dioxus-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    std::fs::write(dir.join("rustfmt.toml"), "").expect("write an empty rustfmt.toml");
    let file: PathBuf = dir.join("mod.rs");
    std::fs::write(&file, source.replacen(SKIP, "", 1)).expect("write the module");
    let output = Command::new("rustfmt")
        .args(["--edition", "2021", "--check"])
        .arg(&file)
        .output()
        .expect("run rustfmt (it comes with the Rust toolchain)");
    // Keep the file when rustfmt disagrees, so the failure can be reproduced.
    if output.status.success() {
        std::fs::remove_dir_all(&dir).expect("remove the temporary directory");
    }
    assert!(
        output.status.success(),
        "rustfmt would reformat {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

// ---- types -------------------------------------------------------------------------------

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
    assert_snapshot!(types_rs(vec![def("Scalars", strukt(fields))]));
}

#[test]
fn containers() {
    let fields = vec![
        field("maybe", opt(string())),
        field("maybe_maybe", opt(opt(int()))),
        field("list", list(int())),
        field("map", map(opt(int()))),
        field(
            "by_id",
            TypeRef::Map {
                key: Box::new(scalar(Scalar::I64)),
                value: Box::new(string()),
            },
        ),
        field(
            "by_status",
            TypeRef::Map {
                key: Box::new(named("Item")),
                value: Box::new(int()),
            },
        ),
        field(
            "pair",
            TypeRef::Tuple {
                items: vec![string(), opt(int())],
            },
        ),
        field(
            "single",
            TypeRef::Tuple {
                items: vec![string()],
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
    assert_snapshot!(types_rs(vec![
        def("Containers", strukt(fields)),
        page,
        item
    ]));
}

/// One struct per direction with the same fields: which are left out, defaulted, skipped.
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
                skip_serializing_if: Some("Vec::is_empty".to_owned()),
                default: true,
                ..field("omitted_when_empty_and_defaulted", list(string()))
            },
            Field {
                skip_serializing_if: Some("is_zero".to_owned()),
                ..field("maybe_omitted", opt(int()))
            },
            Field {
                skip_serializing_if: Some("Label::is_blank".to_owned()),
                ..field("label", named("Label"))
            },
            Field {
                default: true,
                ..field("defaulted", int())
            },
        ]
    };
    assert_snapshot!(types_rs(vec![
        input(def("InputOnly", strukt(fields()))),
        output(def("OutputOnly", strukt(fields()))),
        def("Both", strukt(fields())),
        def("Label", strukt(vec![field("text", string())])),
    ]));
}

#[test]
fn wire_names_follow_direction() {
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
                wire: wire("say \"hi\"\n"),
                ..field("quote", string())
            },
            field("r#type", int()),
            field("self", int()),
        ]
    };
    assert_snapshot!(types_rs(vec![
        input(def("Incoming", strukt(fields()))),
        output(def("Outgoing", strukt(fields()))),
        def("Both", strukt(fields())),
    ]));
}

#[test]
fn struct_forms() {
    assert_snapshot!(types_rs(vec![
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
                "Pair",
                Shape::Tuple {
                    items: vec![param("A"), param("B")],
                },
            ),
            &["A", "B"],
        ),
        // `T` only reaches skipped fields, so the client has no `T`, and `Uses` names
        // `Hidden` without an argument.
        generic(
            output(def(
                "Hidden",
                strukt(vec![
                    field("id", int()),
                    Field {
                        skip_serializing: true,
                        ..field("secret", param("T"))
                    },
                ]),
            )),
            &["T"],
        ),
        generic(
            output(def(
                "Passes",
                strukt(vec![field("inner", named_of("Hidden", vec![param("U")]))])
            )),
            &["U"],
        ),
        def(
            "Uses",
            strukt(vec![field("hidden", named_of("Passes", vec![string()]))])
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
    assert_snapshot!(types_rs(vec![
        base,
        audit,
        def(
            "Everything",
            Shape::Struct {
                fields: vec![
                    field("name", string()),
                    flattened("base", named("Base")),
                    flattened("audit", opt(named("Audit"))),
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
        record("Rect", vec![field("w", int()), field("h", opt(int()))]),
        tuple("Impossible", vec![int(), int()]),
    ];
    assert_snapshot!(types_rs(vec![
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
                other: true,
                ..unit("Unknown")
            },
            Variant {
                untagged: true,
                ..newtype("Raw", string())
            },
        ]
    };
    let tagged = || Tagging::Internal {
        tag: "state".to_owned(),
    };
    assert_snapshot!(types_rs(vec![
        input(def("InputState", enumeration(tagged(), variants()))),
        output(def("OutputState", enumeration(tagged(), variants()))),
        def("BothState", enumeration(tagged(), variants())),
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
    ]));
}

#[test]
fn docs() {
    assert_snapshot!(types_rs(vec![
        documented(def("One", Shape::Unit), " One line."),
        documented(
            def(
                "Many",
                strukt(vec![Field {
                    doc: Some(
                        "\n   Indented:\n\n       code();\n   Closing */ here.  \n".to_owned()
                    ),
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
    assert_snapshot!(types_rs(vec![
        status("functions::billing::Status"),
        status("schema::Status"),
        status("Status"),
        def("FunctionsBillingStatus", Shape::Unit),
        def("schema::Option", Shape::Unit),
        def("schema::Client", Shape::Unit),
        def("schema::u32", Shape::Unit),
        def(
            "Uses",
            strukt(vec![
                field("a", named("functions::billing::Status")),
                field("b", named("schema::Status")),
                field("c", named("Status")),
                field("d", opt(named("schema::Option"))),
                field("e", named("schema::Client")),
                field("f", named("schema::u32")),
            ]),
        ),
    ]));
}

#[test]
fn empty_ir() {
    let ir = ir(Vec::new(), Vec::new());
    assert_eq!(generated(&ir), "");
    let out = module(&ir);
    assert_snapshot!(
        "empty_ir_head",
        out.split_once(CLIENT_RS).expect("client").0
    );
}

// ---- functions and hooks -----------------------------------------------------------------

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
        // Arguments named like the client parameter, a keyword, and locals (the live hook's
        // among them).
        handler(
            Kind::Query,
            "awkward",
            vec![
                ("client", int()),
                ("r#type", string()),
                ("args", int()),
                ("state", int()),
                ("subscription", int()),
            ],
            scalar(Scalar::Bool),
        ),
        // Not callable over RPC: no function, no hook.
        handler(
            Kind::Job,
            "send_digest",
            vec![("user", named("schema::User"))],
            scalar(Scalar::Unit),
        ),
    ];
    let user = def("schema::User", strukt(vec![field("id", int())]));
    assert_snapshot!(generated(&ir(vec![item, filter, page, user], handlers)));
}

#[test]
fn generated_names_never_clash() {
    let types = vec![
        def("Args", strukt(vec![field("limit", int())])),
        def(
            "ListItems",
            Shape::Tuple {
                items: vec![int(), int()],
            },
        ),
        def("list_items", Shape::Unit),
    ];
    let handlers = vec![
        handler(
            Kind::Query,
            "list_items",
            vec![("args", named("Args"))],
            named("ListItems"),
        ),
        handler(Kind::Query, "use_list_items", vec![("n", int())], int()),
        handler(Kind::Query, "use_client", Vec::new(), int()),
        handler(
            Kind::Mutation,
            "r#type",
            vec![("id", int())],
            scalar(Scalar::Unit),
        ),
        handler(Kind::Query, "2fa_status", Vec::new(), scalar(Scalar::Bool)),
    ];
    assert_snapshot!(generated(&ir(types, handlers)));
}

#[test]
fn client_is_emitted_verbatim_after_the_head() {
    let out = module(&ir(Vec::new(), Vec::new()));
    assert!(out.ends_with(CLIENT_RS), "{out}");
}

/// An IR of the size of a large application: 6,000 types of every shape, 5,000 handlers.
#[test]
fn large_ir_is_deterministic() {
    let mut types = Vec::new();
    for i in 0..6_000 {
        let id = if i % 10 == 0 {
            format!("other::Type{}", i + 1)
        } else {
            format!("schema::Type{i}")
        };
        let shape = match i % 4 {
            0 => strukt(vec![
                field("id", scalar(Scalar::Uuid)),
                field("tags", list(string())),
                Field {
                    skip_serializing_if: Some("Option::is_none".to_owned()),
                    ..field("note", opt(string()))
                },
            ]),
            1 => enumeration(Tagging::External, vec![unit("A"), unit("B")]),
            2 => enumeration(
                Tagging::Internal {
                    tag: "type".to_owned(),
                },
                vec![record("X", vec![field("x", int())])],
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
                vec![("id", scalar(Scalar::Uuid))],
                list(named("schema::Type8")),
            )
        })
        .collect();
    let ir = ir(types, handlers);
    let start = std::time::Instant::now();
    let first = emit(&ir);
    eprintln!(
        "emitted the Dioxus client of a 6,000-type, 5,000-handler IR in {:?}",
        start.elapsed()
    );
    assert_eq!(first, emit(&ir));
    assert!(first[0].contents.len() > 1_000_000);
}

/// The server boxes what holds itself (`Option<Box<User>>`); the IR does not say so, and
/// the client boxes exactly the references that close a cycle of inline holding.
#[test]
fn recursive_types_are_boxed() {
    assert_snapshot!(types_rs(vec![
        def(
            "User",
            strukt(vec![
                field("manager", opt(named("User"))),
                field("reports", list(named("User"))),
                field("team", opt(named("Team"))),
                field("home", named("Address")),
            ]),
        ),
        def("Team", strukt(vec![field("lead", named("User"))])),
        def("Address", strukt(vec![field("city", string())])),
        def(
            "Tree",
            enumeration(
                Tagging::External,
                vec![
                    unit("Leaf"),
                    tuple("Node", vec![named("Tree"), named("Tree")]),
                    newtype("Many", map(named("Tree"))),
                ],
            ),
        ),
    ]));
}
