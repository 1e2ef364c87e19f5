//! Compact constructors for hand-built IR values.

use forge_codegen::ir::{
    Arg, Field, Handler, Ir, Kind, Options, Scalar, Shape, Span, StructTag, Tagging, TypeDef,
    TypeRef, Usage, Variant, VariantShape, WireName, IR_VERSION,
};

/// An IR with its lists sorted the way the parser sorts them.
pub fn ir(types: Vec<TypeDef>, handlers: Vec<Handler>) -> Ir {
    Ir::new(types, handlers)
}

/// A type used in both directions; `id` is its path (`billing::Status`).
pub fn def(id: &str, shape: Shape) -> TypeDef {
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

/// Only sent by clients.
pub fn input(def: TypeDef) -> TypeDef {
    TypeDef {
        usage: Usage {
            input: true,
            output: false,
        },
        ..def
    }
}

/// Only sent by the server.
pub fn output(def: TypeDef) -> TypeDef {
    TypeDef {
        usage: Usage {
            input: false,
            output: true,
        },
        ..def
    }
}

pub fn generic(def: TypeDef, params: &[&str]) -> TypeDef {
    TypeDef {
        generics: params.iter().map(|p| (*p).to_owned()).collect(),
        ..def
    }
}

pub fn strukt(fields: Vec<Field>) -> Shape {
    Shape::Struct { fields, tag: None }
}

pub fn enumeration(tagging: Tagging, variants: Vec<Variant>) -> Shape {
    Shape::Enum { tagging, variants }
}

pub fn wire(name: &str) -> WireName {
    WireName {
        serialize: name.to_owned(),
        deserialize: name.to_owned(),
        aliases: Vec::new(),
    }
}

pub fn field(name: &str, ty: TypeRef) -> Field {
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

/// A field whose wire name differs from its Rust name (`rename`, `rename_all`).
pub fn renamed(rust: &str, wire_name: &str, ty: TypeRef) -> Field {
    Field {
        wire: wire(wire_name),
        ..field(rust, ty)
    }
}

pub fn flattened(name: &str, ty: TypeRef) -> Field {
    Field {
        flatten: true,
        ..field(name, ty)
    }
}

pub fn variant(name: &str, shape: VariantShape) -> Variant {
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

pub fn unit(name: &str) -> Variant {
    variant(name, VariantShape::Unit)
}

pub fn newtype(name: &str, of: TypeRef) -> Variant {
    variant(name, VariantShape::Newtype { of })
}

pub fn tuple(name: &str, items: Vec<TypeRef>) -> Variant {
    variant(name, VariantShape::Tuple { items })
}

pub fn record(name: &str, fields: Vec<Field>) -> Variant {
    variant(name, VariantShape::Struct { fields })
}

pub fn scalar(scalar: Scalar) -> TypeRef {
    TypeRef::Scalar { scalar }
}

pub fn string() -> TypeRef {
    scalar(Scalar::String)
}

pub fn int() -> TypeRef {
    scalar(Scalar::I32)
}

pub fn opt(of: TypeRef) -> TypeRef {
    TypeRef::Option { of: Box::new(of) }
}

pub fn list(of: TypeRef) -> TypeRef {
    TypeRef::List { of: Box::new(of) }
}

pub fn map(value: TypeRef) -> TypeRef {
    TypeRef::Map {
        key: Box::new(string()),
        value: Box::new(value),
    }
}

pub fn named(id: &str) -> TypeRef {
    named_of(id, Vec::new())
}

pub fn named_of(id: &str, args: Vec<TypeRef>) -> TypeRef {
    TypeRef::Named {
        id: id.to_owned(),
        args,
    }
}

pub fn param(name: &str) -> TypeRef {
    TypeRef::Param {
        name: name.to_owned(),
    }
}

/// A query, mutation or job in module `functions`, with default options.
pub fn handler(kind: Kind, name: &str, args: Vec<(&str, TypeRef)>, returns: TypeRef) -> Handler {
    let options = match kind {
        Kind::Query => Options::Query(Default::default()),
        Kind::Mutation => Options::Mutation(Default::default()),
        Kind::Job => Options::Job(Default::default()),
        other => panic!("the test IR builder has no options for {other:?} handlers"),
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

/// One IR with every shape the emitters handle; `typescript/wire.ts` and `dioxus/wire.rs`
/// name each type.
pub fn all_shapes() -> Ir {
    let types = vec![
        // Output-only: serialize names, server-omitted fields, a skipped field and variant.
        output(def(
            "schema::User",
            strukt(vec![
                field("id", named("schema::UserId")),
                renamed("display_name", "displayName", string()),
                Field {
                    skip_serializing_if: Some("Option::is_none".to_owned()),
                    ..field("email", opt(string()))
                },
                field("avatar", opt(string())),
                Field {
                    skip_serializing: true,
                    skip_deserializing: true,
                    ..field("password_hash", string())
                },
                renamed("created_at", "createdAt", scalar(Scalar::DateTime)),
                field("tags", list(string())),
                field("role", named("schema::Role")),
            ]),
        )),
        output(def(
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
                        skip_serializing: true,
                        ..unit("Root")
                    },
                ],
            ),
        )),
        def(
            "schema::UserId",
            Shape::Newtype {
                of: scalar(Scalar::Uuid),
            },
        ),
        // Input-only: deserialize names, client-omittable fields, a skipped field.
        input(def(
            "functions::NewUser",
            strukt(vec![
                Field {
                    wire: WireName {
                        serialize: "DisplayName".to_owned(),
                        deserialize: "displayName".to_owned(),
                        aliases: Vec::new(),
                    },
                    ..field("display_name", string())
                },
                field("email", opt(string())),
                Field {
                    default: true,
                    ..field("age", scalar(Scalar::U8))
                },
                Field {
                    skip_deserializing: true,
                    ..field("internal_note", string())
                },
                renamed("first_name", "first-name", string()),
            ]),
        )),
        // Both ways: only what is skipped both ways disappears.
        def(
            "schema::Settings",
            strukt(vec![
                field("theme", string()),
                Field {
                    skip_serializing: true,
                    ..field("new_password", string())
                },
            ]),
        ),
        def(
            "schema::Shape",
            enumeration(
                Tagging::Internal {
                    tag: "type".to_owned(),
                },
                vec![
                    record("Circle", vec![field("radius", scalar(Scalar::F64))]),
                    record("Rect", vec![field("w", int()), field("h", int())]),
                    unit("Empty"),
                    newtype("Labelled", named("schema::Label")),
                    Variant {
                        untagged: true,
                        ..newtype("Points", list(scalar(Scalar::F64)))
                    },
                ],
            ),
        ),
        def("schema::Label", strukt(vec![field("text", string())])),
        def(
            "schema::Event",
            enumeration(
                Tagging::Adjacent {
                    tag: "t".to_owned(),
                    content: "c".to_owned(),
                },
                vec![
                    unit("Ping"),
                    newtype("Message", string()),
                    tuple("Move", vec![int(), int()]),
                    record("Resize", vec![field("w", int()), field("h", int())]),
                ],
            ),
        ),
        def(
            "schema::Value",
            enumeration(
                Tagging::Untagged,
                vec![
                    unit("Nothing"),
                    newtype("Number", scalar(Scalar::F64)),
                    newtype("Text", string()),
                    tuple("Pair", vec![int(), int()]),
                    record("Object", vec![field("key", string())]),
                ],
            ),
        ),
        def(
            "schema::Command",
            enumeration(
                Tagging::External,
                vec![
                    unit("Stop"),
                    newtype("Go", scalar(Scalar::U32)),
                    tuple("Move", vec![int(), int()]),
                    record("Say", vec![field("text", string())]),
                ],
            ),
        ),
        generic(
            output(def(
                "schema::Page",
                strukt(vec![
                    field("items", list(param("T"))),
                    field("total", scalar(Scalar::U32)),
                    field("next", opt(string())),
                ]),
            )),
            &["T"],
        ),
        def(
            "schema::Tagged",
            Shape::Struct {
                fields: vec![field("id", int())],
                tag: Some(StructTag {
                    tag: "kind".to_owned(),
                    value: "tagged".to_owned(),
                }),
            },
        ),
        def(
            "schema::Audited",
            strukt(vec![
                field("name", string()),
                flattened("audit", named("schema::Audit")),
                flattened("extra", map(scalar(Scalar::Bool))),
            ]),
        ),
        def(
            "schema::Audit",
            strukt(vec![
                field("by", string()),
                field("at", scalar(Scalar::DateTime)),
            ]),
        ),
        def(
            "schema::Point",
            Shape::Tuple {
                items: vec![scalar(Scalar::F64), scalar(Scalar::F64)],
            },
        ),
        def("schema::Marker", Shape::Unit),
        def(
            "schema::Rgb",
            Shape::Newtype {
                of: TypeRef::Array {
                    of: Box::new(scalar(Scalar::U8)),
                    len: 3,
                },
            },
        ),
        def(
            "schema::Timing",
            strukt(vec![
                field("took", scalar(Scalar::Duration)),
                field("meta", scalar(Scalar::JsonObject)),
                field("blob", scalar(Scalar::Json)),
                field("unit", scalar(Scalar::Unit)),
                field("scores", list(opt(int()))),
                field("lookup", map(opt(int()))),
            ]),
        ),
        // Two types named `Status`.
        def(
            "functions::billing::Status",
            enumeration(Tagging::External, vec![unit("Paid"), unit("Due")]),
        ),
        def(
            "schema::Status",
            enumeration(Tagging::External, vec![unit("Open"), unit("Closed")]),
        ),
        // The user's own `GetUserArgs`: the generated one must yield.
        input(def(
            "functions::GetUserArgs",
            strukt(vec![field("id", named("schema::UserId"))]),
        )),
    ];
    let handlers = vec![
        handler(
            Kind::Query,
            "list_users",
            vec![("limit", scalar(Scalar::U32)), ("cursor", opt(string()))],
            named_of("schema::Page", vec![named("schema::User")]),
        ),
        handler(
            Kind::Query,
            "get_user",
            vec![("args", named("functions::GetUserArgs"))],
            opt(named("schema::User")),
        ),
        handler(
            Kind::Mutation,
            "create_user",
            vec![("input", named("functions::NewUser"))],
            named("schema::User"),
        ),
        handler(Kind::Query, "ping", Vec::new(), string()),
        handler(Kind::Mutation, "reset", Vec::new(), scalar(Scalar::Unit)),
        handler(
            Kind::Query,
            "statuses",
            Vec::new(),
            TypeRef::Tuple {
                items: vec![named("functions::billing::Status"), named("schema::Status")],
            },
        ),
        handler(
            Kind::Job,
            "send_welcome_email",
            vec![("user", named("schema::User"))],
            scalar(Scalar::Unit),
        ),
    ];
    ir(types, handlers)
}
