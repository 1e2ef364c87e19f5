//! Compact constructors for hand-built IR values.

use forge_codegen::ir::{
    Arg, Field, Handler, Ir, Kind, Options, Scalar, Shape, Span, Tagging, TypeDef, TypeRef, Usage,
    Variant, VariantShape, WireName, IR_VERSION,
};

/// An IR with its lists sorted the way the parser sorts them.
pub fn ir(mut types: Vec<TypeDef>, mut handlers: Vec<Handler>) -> Ir {
    types.sort_by(|a, b| a.id.cmp(&b.id));
    handlers.sort_by(|a, b| (&a.name, &a.module).cmp(&(&b.name, &b.module)));
    Ir {
        ir_version: IR_VERSION,
        handlers,
        types,
    }
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
