//! `types.ts`: one declaration per IR type, exactly as serde puts it on the wire.

use std::fmt::{self, Write};
use std::sync::Arc;

use rayon::prelude::*;

use super::names::TypeNames;
use super::syntax::{write_doc, write_property, write_string, Pad};
use crate::ir::{
    Field, Ir, Scalar, Shape, StructTag, Tagging, TypeDef, TypeRef, Usage, Variant, VariantShape,
    WireName,
};

/// Arrays longer than this become `T[]`: a tuple type of hundreds of elements helps no one.
const MAX_TUPLE_ARRAY: u32 = 32;

/// One type's declaration in `types.ts`, kept between emissions (watch mode): its text is a
/// function of the definition and of the names of the types, nothing else.
pub(super) struct DeclChunk {
    def: Arc<TypeDef>,
    text: String,
}

/// Writes `types.ts`, taking the declaration of each definition that `previous` (the last
/// emission's chunks, parallel to the IR's types and named the same) holds for the very
/// same definition; returns this emission's chunks.
pub(super) fn write_types(
    out: &mut String,
    ir: &Ir,
    names: &TypeNames,
    previous: Option<Vec<DeclChunk>>,
) -> Result<Vec<DeclChunk>, fmt::Error> {
    let mut previous: Vec<Option<DeclChunk>> = match previous {
        Some(chunks) => chunks.into_iter().map(Some).collect(),
        None => Vec::new(),
    };
    previous.resize_with(ir.types.len(), || None);
    let chunks: Vec<DeclChunk> = ir
        .types
        .par_iter()
        .zip(previous)
        .enumerate()
        .map(|(index, (def, previous))| match previous {
            Some(chunk) if Arc::ptr_eq(&chunk.def, def) => Ok(chunk),
            _ => {
                let mut text = String::from("\n");
                let mut writer = TypeWriter::new(names);
                writer.params = &def.generics;
                writer.write_def(&mut text, def, names.name(index))?;
                Ok(DeclChunk {
                    def: Arc::clone(def),
                    text,
                })
            }
        })
        .collect::<Result<_, fmt::Error>>()?;
    chunks.iter().for_each(|chunk| out.push_str(&chunk.text));
    if ir.types.is_empty() {
        // Keeps the file a module, so `export * from "./types.js"` stays valid.
        out.write_str("\nexport {};\n")?;
    }
    Ok(chunks)
}

/// Which way a type crosses the wire, which decides its skipped fields and wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Only sent by clients: the server deserialises it.
    Input,
    /// Only sent by the server: it serialises it.
    Output,
    Both,
}

impl Direction {
    /// A type the IR gives no use is treated as crossing both ways, the shape that holds for
    /// either.
    fn of(usage: Usage) -> Self {
        match (usage.input, usage.output) {
            (true, false) => Direction::Input,
            (false, true) => Direction::Output,
            _ => Direction::Both,
        }
    }

    fn server_sends(self) -> bool {
        self != Direction::Input
    }

    /// Whether something skipped this way never appears in any direction the type is used in.
    fn omits(self, skip_serializing: bool, skip_deserializing: bool) -> bool {
        match self {
            Direction::Input => skip_deserializing,
            Direction::Output => skip_serializing,
            Direction::Both => skip_serializing && skip_deserializing,
        }
    }

    fn wire_name(self, wire: &WireName) -> &str {
        match self {
            Direction::Input => &wire.deserialize,
            Direction::Output | Direction::Both => &wire.serialize,
        }
    }
}

/// Writes type expressions, and records which IR types they name (for `api.ts`'s imports).
pub(super) struct TypeWriter<'a> {
    names: &'a TypeNames<'a>,
    /// The generic parameters in scope: those of the declaration being written.
    params: &'a [String],
    /// The IR types (by index) written so far, repeats included.
    used: Vec<usize>,
}

impl<'a> TypeWriter<'a> {
    pub(super) fn new(names: &'a TypeNames<'a>) -> Self {
        TypeWriter {
            names,
            params: &[],
            used: Vec::new(),
        }
    }

    /// The indices of the IR types written, ascending.
    pub(super) fn into_used(mut self) -> Vec<usize> {
        self.used.sort_unstable();
        self.used.dedup();
        self.used
    }

    pub(super) fn write_ty(&mut self, out: &mut String, ty: &TypeRef) -> fmt::Result {
        match ty {
            TypeRef::Scalar { scalar } => out.write_str(scalar_type(*scalar)),
            TypeRef::Option { of } => self.write_nullable(out, of),
            TypeRef::List { of } => self.write_list(out, of),
            TypeRef::Map { value, .. } => {
                out.write_str("Record<string, ")?;
                self.write_ty(out, value)?;
                out.write_char('>')
            }
            TypeRef::Tuple { items } => self.write_tuple(out, items),
            TypeRef::Array { of, len } if *len <= MAX_TUPLE_ARRAY => {
                self.write_tuple(out, std::iter::repeat_n(&**of, *len as usize))
            }
            TypeRef::Array { of, .. } => self.write_list(out, of),
            TypeRef::Named { id, args } => self.write_named(out, id, args),
            TypeRef::Param { name } if self.params.contains(name) => out.write_str(name),
            // The parser reports what it could not resolve; the client stays compilable.
            TypeRef::Param { .. } | TypeRef::Unsupported { .. } => out.write_str("unknown"),
        }
    }

    /// `ty`, parenthesised when it is a union, for `[]` and `&` operands.
    fn write_operand(&mut self, out: &mut String, ty: &TypeRef) -> fmt::Result {
        if is_union(ty) {
            out.write_char('(')?;
            self.write_ty(out, ty)?;
            out.write_char(')')
        } else {
            self.write_ty(out, ty)
        }
    }

    /// `Option<T>` as `T | null`. Nested options add nothing: serde writes both `None` and
    /// `Some(None)` as `null`.
    fn write_nullable(&mut self, out: &mut String, of: &TypeRef) -> fmt::Result {
        let inner = strip_options(of);
        if is_unit(inner) {
            return out.write_str("null");
        }
        self.write_ty(out, inner)?;
        out.write_str(" | null")
    }

    fn write_list(&mut self, out: &mut String, of: &TypeRef) -> fmt::Result {
        self.write_operand(out, of)?;
        out.write_str("[]")
    }

    fn write_tuple<'t>(
        &mut self,
        out: &mut String,
        items: impl IntoIterator<Item = &'t TypeRef>,
    ) -> fmt::Result {
        out.write_char('[')?;
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.write_str(", ")?;
            }
            self.write_ty(out, item)?;
        }
        out.write_char(']')
    }

    fn write_named(&mut self, out: &mut String, id: &str, args: &[TypeRef]) -> fmt::Result {
        let Some(index) = self.names.index(id) else {
            // A dangling id is a parser bug; `unknown` keeps the output compiling.
            return out.write_str("unknown");
        };
        self.used.push(index);
        out.write_str(self.names.name(index))?;
        if !args.is_empty() {
            out.write_char('<')?;
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                self.write_ty(out, arg)?;
            }
            out.write_char('>')?;
        }
        Ok(())
    }

    fn write_def(&mut self, out: &mut String, def: &TypeDef, name: &str) -> fmt::Result {
        write_doc(out, def.doc.as_deref(), 0)?;
        let dir = Direction::of(def.usage);
        match &def.shape {
            Shape::Struct { fields, tag } => {
                let object = Object::new(tag.as_ref().map(struct_tag), fields, dir);
                if object.is_interface() {
                    write_head(out, "interface", name, &def.generics)?;
                    out.write_char(' ')?;
                    self.write_members(out, &object, Layout::Block(0))?;
                    return out.write_char('\n');
                }
                write_head(out, "type", name, &def.generics)?;
                out.write_str(" = ")?;
                self.write_object(out, &object, Layout::Block(0))?;
            }
            Shape::Tuple { items } => {
                write_head(out, "type", name, &def.generics)?;
                out.write_str(" = ")?;
                self.write_tuple(out, items)?;
            }
            Shape::Newtype { of } => {
                write_head(out, "type", name, &def.generics)?;
                out.write_str(" = ")?;
                self.write_ty(out, of)?;
            }
            Shape::Unit => {
                write_head(out, "type", name, &def.generics)?;
                out.write_str(" = null")?;
            }
            Shape::Enum { tagging, variants } => {
                write_head(out, "type", name, &def.generics)?;
                out.write_str(" =")?;
                self.write_variants(out, tagging, variants, dir)?;
            }
        }
        out.write_str(";\n")
    }

    /// The union of an enum's variants, one per line, `never` when all are skipped.
    fn write_variants(
        &mut self,
        out: &mut String,
        tagging: &Tagging,
        variants: &[Variant],
        dir: Direction,
    ) -> fmt::Result {
        let mut any = false;
        for variant in variants {
            let tagging = if variant.untagged {
                &Tagging::Untagged
            } else {
                tagging
            };
            // serde rejects tuple variants in internally tagged enums at compile time.
            let impossible = matches!(
                (tagging, &variant.shape),
                (Tagging::Internal { .. }, VariantShape::Tuple { .. })
            );
            if impossible || dir.omits(variant.skip_serializing, variant.skip_deserializing) {
                continue;
            }
            any = true;
            out.write_char('\n')?;
            write_doc(out, variant.doc.as_deref(), 2)?;
            out.write_str("  | ")?;
            self.write_variant(
                out,
                tagging,
                dir.wire_name(&variant.wire),
                &variant.shape,
                dir,
            )?;
        }
        if !any {
            out.write_str(" never")?;
        }
        Ok(())
    }

    fn write_variant(
        &mut self,
        out: &mut String,
        tagging: &Tagging,
        name: &str,
        shape: &VariantShape,
        dir: Direction,
    ) -> fmt::Result {
        match (tagging, shape) {
            (Tagging::External, VariantShape::Unit) => write_string(out, name),
            (Tagging::External, payload) => {
                out.write_str("{ ")?;
                write_property(out, name)?;
                out.write_str(": ")?;
                self.write_payload(out, payload, dir)?;
                out.write_str(" }")
            }
            (Tagging::Internal { tag }, VariantShape::Unit) => write_tag_object(out, tag, name),
            (Tagging::Internal { tag }, VariantShape::Struct { fields }) => {
                let object = Object::new(Some((tag, name)), fields, dir);
                self.write_object(out, &object, Layout::for_variant(&object))
            }
            (Tagging::Internal { tag }, VariantShape::Newtype { of }) => {
                write_tag_object(out, tag, name)?;
                out.write_str(" & ")?;
                self.write_operand(out, of)
            }
            // Left out by `write_variants`; serde cannot write it.
            (Tagging::Internal { .. }, VariantShape::Tuple { .. }) => out.write_str("never"),
            (Tagging::Adjacent { tag, .. }, VariantShape::Unit) => write_tag_object(out, tag, name),
            (Tagging::Adjacent { tag, content }, payload) => {
                out.write_str("{ ")?;
                write_property(out, tag)?;
                out.write_str(": ")?;
                write_string(out, name)?;
                out.write_str("; ")?;
                write_property(out, content)?;
                out.write_str(": ")?;
                self.write_payload(out, payload, dir)?;
                out.write_str(" }")
            }
            (Tagging::Untagged, VariantShape::Unit) => out.write_str("null"),
            (Tagging::Untagged, payload) => self.write_payload(out, payload, dir),
        }
    }

    /// A variant's data without its tag; unit variants carry none and never reach here.
    fn write_payload(
        &mut self,
        out: &mut String,
        shape: &VariantShape,
        dir: Direction,
    ) -> fmt::Result {
        match shape {
            VariantShape::Unit => out.write_str("null"),
            VariantShape::Newtype { of } => self.write_ty(out, of),
            VariantShape::Tuple { items } => self.write_tuple(out, items),
            VariantShape::Struct { fields } => {
                let object = Object::new(None, fields, dir);
                self.write_object(out, &object, Layout::for_variant(&object))
            }
        }
    }

    /// An object type expression: `{ members } & Merged & …`, `Record<string, never>` when
    /// the object can hold nothing.
    fn write_object(&mut self, out: &mut String, object: &Object, layout: Layout) -> fmt::Result {
        if object.is_empty() {
            return out.write_str("Record<string, never>");
        }
        let mut first = true;
        if object.has_members() {
            self.write_members(out, object, layout)?;
            first = false;
        }
        for merged in &object.merged {
            if !first {
                out.write_str(" & ")?;
            }
            first = false;
            self.write_merged(out, merged)?;
        }
        Ok(())
    }

    fn write_merged(&mut self, out: &mut String, merged: &Merged) -> fmt::Result {
        if merged.partial {
            out.write_str("Partial<")?;
            self.write_ty(out, merged.ty)?;
            out.write_char('>')
        } else {
            self.write_operand(out, merged.ty)
        }
    }

    /// `{ tag; fields; index signature }`.
    fn write_members(&mut self, out: &mut String, object: &Object, layout: Layout) -> fmt::Result {
        out.write_char('{')?;
        for (tag, value) in &object.tags {
            layout.open_member(out)?;
            write_property(out, tag)?;
            out.write_str(": ")?;
            write_string(out, value)?;
            out.write_char(';')?;
        }
        for field in &object.fields {
            if let Layout::Block(indent) = layout {
                out.write_char('\n')?;
                write_doc(out, field.field.doc.as_deref(), indent + 2)?;
                write!(out, "{}", Pad(indent + 2))?;
            } else {
                out.write_char(' ')?;
            }
            write_property(out, field.name)?;
            out.write_str(if field.optional { "?: " } else { ": " })?;
            self.write_ty(out, field.ty)?;
            out.write_char(';')?;
        }
        if let Some(index) = &object.index {
            layout.open_member(out)?;
            out.write_str("[key: string]: ")?;
            self.write_index_value(out, object, index)?;
            out.write_char(';')?;
        }
        layout.close_object(out)
    }

    /// The value type of the index signature a flattened map adds. It must also admit
    /// every declared member, or TypeScript rejects the declaration.
    fn write_index_value(
        &mut self,
        out: &mut String,
        object: &Object,
        index: &Index,
    ) -> fmt::Result {
        let Index::Values(values) = index else {
            return out.write_str("unknown");
        };
        let mut parts: Vec<String> = Vec::new();
        let mut push = |part: String| {
            if !parts.contains(&part) {
                parts.push(part);
            }
        };
        for ty in values {
            push(self.render(ty)?);
        }
        for (_, value) in &object.tags {
            let mut literal = String::new();
            write_string(&mut literal, value)?;
            push(literal);
        }
        for field in &object.fields {
            push(self.render(field.ty)?);
        }
        for merged in &object.merged {
            let inner = self.render_operand(merged.ty)?;
            push(format!("{inner}[keyof {inner}]"));
        }
        // Optional members hold `undefined` unless `exactOptionalPropertyTypes` is on.
        let optional = object.fields.iter().any(|field| field.optional);
        if optional || object.merged.iter().any(|merged| merged.partial) {
            push("undefined".to_owned());
        }
        out.write_str(&parts.join(" | "))
    }

    pub(super) fn render(&mut self, ty: &TypeRef) -> Result<String, fmt::Error> {
        let mut out = String::new();
        self.write_ty(&mut out, ty)?;
        Ok(out)
    }

    fn render_operand(&mut self, ty: &TypeRef) -> Result<String, fmt::Error> {
        let mut out = String::new();
        self.write_operand(&mut out, ty)?;
        Ok(out)
    }
}

/// `export interface Name<T>` / `export type Name<T>`.
fn write_head(out: &mut String, keyword: &str, name: &str, generics: &[String]) -> fmt::Result {
    write!(out, "export {keyword} {name}")?;
    if !generics.is_empty() {
        write!(out, "<{}>", generics.join(", "))?;
    }
    Ok(())
}

/// `{ tag: "Name" }`.
fn write_tag_object(out: &mut String, tag: &str, name: &str) -> fmt::Result {
    out.write_str("{ ")?;
    write_property(out, tag)?;
    out.write_str(": ")?;
    write_string(out, name)?;
    out.write_str(" }")
}

fn struct_tag(tag: &StructTag) -> (&str, &str) {
    (&tag.tag, &tag.value)
}

pub(super) fn scalar_type(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Bool => "boolean",
        Scalar::Char
        | Scalar::String
        | Scalar::Uuid
        | Scalar::DateTime
        | Scalar::NaiveDateTime
        | Scalar::Date
        | Scalar::Time
        | Scalar::Decimal
        | Scalar::OtherString => "string",
        Scalar::I8
        | Scalar::I16
        | Scalar::I32
        | Scalar::I64
        | Scalar::U8
        | Scalar::U16
        | Scalar::U32
        | Scalar::F32
        | Scalar::F64 => "number",
        Scalar::Unit => "null",
        Scalar::Json => "unknown",
        Scalar::JsonObject => "Record<string, unknown>",
        Scalar::Duration => "{ secs: number; nanos: number }",
    }
}

fn strip_options(mut ty: &TypeRef) -> &TypeRef {
    while let TypeRef::Option { of } = ty {
        ty = of;
    }
    ty
}

fn is_unit(ty: &TypeRef) -> bool {
    matches!(
        ty,
        TypeRef::Scalar {
            scalar: Scalar::Unit
        }
    )
}

/// Whether `ty` is written as a union (`T | null`), which `[]` and `&` bind tighter than.
fn is_union(ty: &TypeRef) -> bool {
    matches!(ty, TypeRef::Option { of } if !is_unit(strip_options(of)))
}

/// How an object's members are laid out.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// One member per line, the closing brace indented this far.
    Block(usize),
    /// `{ a: A; b: B }`.
    Inline,
}

impl Layout {
    /// Variant payloads stay on the enum's line unless a field has docs to show.
    fn for_variant(object: &Object) -> Layout {
        if object.fields.iter().any(|field| field.field.doc.is_some()) {
            Layout::Block(4)
        } else {
            Layout::Inline
        }
    }

    fn open_member(self, out: &mut String) -> fmt::Result {
        match self {
            Layout::Block(indent) => write!(out, "\n{}", Pad(indent + 2)),
            Layout::Inline => out.write_char(' '),
        }
    }

    fn close_object(self, out: &mut String) -> fmt::Result {
        match self {
            Layout::Block(indent) => write!(out, "\n{}}}", Pad(indent)),
            // Every member ends in `;`; inline, the last one reads better without.
            Layout::Inline => {
                if out.ends_with(';') {
                    out.pop();
                }
                out.write_str(" }")
            }
        }
    }
}

/// An object on the wire: a struct's, or a struct variant's with its tag.
struct Object<'a> {
    /// Constant string members serde adds before the fields (`tag`s).
    tags: Vec<(&'a str, &'a str)>,
    fields: Vec<ObjectField<'a>>,
    /// Flattened structs (and type parameters): intersected with the members.
    merged: Vec<Merged<'a>>,
    /// Present when a map is flattened: its entries become an index signature.
    index: Option<Index<'a>>,
}

struct ObjectField<'a> {
    field: &'a Field,
    name: &'a str,
    optional: bool,
    ty: &'a TypeRef,
}

struct Merged<'a> {
    ty: &'a TypeRef,
    /// A flattened `Option<Struct>`: all of its fields or none.
    partial: bool,
}

enum Index<'a> {
    /// A flattened `serde_json` object or value: anything goes.
    Unknown,
    /// The value types of the flattened maps.
    Values(Vec<&'a TypeRef>),
}

impl<'a> Object<'a> {
    fn new(tag: Option<(&'a str, &'a str)>, fields: &'a [Field], dir: Direction) -> Self {
        let mut object = Object {
            tags: tag.into_iter().collect(),
            fields: Vec::with_capacity(fields.len()),
            merged: Vec::new(),
            index: None,
        };
        for field in fields {
            if dir.omits(field.skip_serializing, field.skip_deserializing) {
                continue;
            }
            if field.flatten {
                object.flatten(&field.ty, false);
            } else {
                object.fields.push(ObjectField::new(field, dir));
            }
        }
        object
    }

    fn flatten(&mut self, ty: &'a TypeRef, partial: bool) {
        match ty {
            TypeRef::Option { of } => self.flatten(of, true),
            TypeRef::Map { value, .. } => match &mut self.index {
                Some(Index::Values(values)) => values.push(value),
                Some(Index::Unknown) => {}
                None => self.index = Some(Index::Values(vec![value])),
            },
            TypeRef::Scalar {
                scalar: Scalar::Json | Scalar::JsonObject,
            } => self.index = Some(Index::Unknown),
            _ => self.merged.push(Merged { ty, partial }),
        }
    }

    fn has_members(&self) -> bool {
        !self.tags.is_empty() || !self.fields.is_empty() || self.index.is_some()
    }

    fn is_empty(&self) -> bool {
        !self.has_members() && self.merged.is_empty()
    }

    /// Intersections need a type alias; everything else reads best as an interface.
    fn is_interface(&self) -> bool {
        self.merged.is_empty() && !self.is_empty()
    }
}

impl<'a> ObjectField<'a> {
    /// The server may omit a field it skips or may skip; a client may omit a field of an
    /// input-only type that has a default or is an `Option`. A field the server leaves out
    /// when it is `None` is never `null`.
    fn new(field: &'a Field, dir: Direction) -> Self {
        let server_may_omit =
            dir.server_sends() && (field.skip_serializing || field.skip_serializing_if.is_some());
        let client_may_omit = dir == Direction::Input
            && (field.default || matches!(field.ty, TypeRef::Option { .. }));
        let ty = match &field.ty {
            TypeRef::Option { of }
                if dir.server_sends()
                    && field
                        .skip_serializing_if
                        .as_deref()
                        .is_some_and(is_none_predicate) =>
            {
                &**of
            }
            ty => ty,
        };
        ObjectField {
            field,
            name: dir.wire_name(&field.wire),
            optional: server_may_omit || client_may_omit,
            ty,
        }
    }
}

/// `Option::is_none`, however it is spelled (`std::option::Option::is_none`, with spaces).
fn is_none_predicate(path: &str) -> bool {
    let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(
        path.as_str(),
        "Option::is_none" | "std::option::Option::is_none" | "core::option::Option::is_none"
    )
}
