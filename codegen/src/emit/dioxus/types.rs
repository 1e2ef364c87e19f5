//! One Rust declaration per IR type, whose serde attributes give exactly the server's wire
//! shape in each direction the type crosses the wire.
//!
//! The client's `Serialize` is what the server's `Deserialize` reads, and the client's
//! `Deserialize` reads what the server's `Serialize` writes. A type only the server sends
//! keeps the server's serialised form both ways (so a value survives a round trip through
//! the client's own serde), and one only clients send keeps the server's deserialised form.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use super::names::{ident_or_escaped, to_identifier};
use super::{doc_attrs, ClientNames};
use crate::ir::{
    Field, Scalar, Shape, Tagging, TypeDef, TypeRef, Usage, Variant, VariantShape, WireName,
};

/// serde implements its traits for arrays up to this length; longer ones become `Vec`s.
pub(super) const MAX_SERDE_ARRAY: u32 = 32;

/// Which way a type crosses the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// Only sent by clients: the server deserialises it.
    Input,
    /// Only sent by the server: it serialises it.
    Output,
    Both,
}

impl Direction {
    /// A type the IR gives no use is treated as crossing both ways, the shape that holds for
    /// either (as in the TypeScript client).
    pub(super) fn of(usage: Usage) -> Self {
        match (usage.input, usage.output) {
            (true, false) => Direction::Input,
            (false, true) => Direction::Output,
            _ => Direction::Both,
        }
    }

    fn client_sends(self) -> bool {
        self != Direction::Output
    }

    fn server_sends(self) -> bool {
        self != Direction::Input
    }

    /// Whether something skipped this way never appears in any direction the type is used in.
    pub(super) fn omits(self, skip_serializing: bool, skip_deserializing: bool) -> bool {
        match self {
            Direction::Input => skip_deserializing,
            Direction::Output => skip_serializing,
            Direction::Both => skip_serializing && skip_deserializing,
        }
    }

    /// The names the client writes and reads: what the server reads when clients send the
    /// type, what it writes when it sends it.
    fn names(self, wire: &WireName) -> (&str, &str) {
        let server_reads = wire.deserialize.as_str();
        let server_writes = wire.serialize.as_str();
        match self {
            Direction::Input => (server_reads, server_reads),
            Direction::Output => (server_writes, server_writes),
            Direction::Both => (server_reads, server_writes),
        }
    }
}

/// Writes Rust type expressions for IR types.
pub(super) struct TypeWriter<'a> {
    pub(super) names: &'a ClientNames<'a>,
    /// The generic parameters in scope (those the declaration being written keeps).
    pub(super) params: Vec<&'a str>,
    /// The index of the type being declared: what it holds inline in its own component
    /// gets a `Box`.
    pub(super) holder: Option<usize>,
}

impl TypeWriter<'_> {
    pub(super) fn ty(&self, ty: &TypeRef) -> TokenStream {
        self.ty_in(ty, true)
    }

    /// `inline`: whether the declared type would hold this value itself (not behind a `Vec`
    /// or map).
    fn ty_in(&self, ty: &TypeRef, inline: bool) -> TokenStream {
        match ty {
            TypeRef::Scalar { scalar } => scalar_type(*scalar),
            TypeRef::Option { of } => {
                let of = self.ty_in(of, inline);
                quote!(Option<#of>)
            }
            TypeRef::List { of } => self.vec(of),
            TypeRef::Map { key, value } => {
                let key = map_key(key);
                let value = self.ty_in(value, false);
                quote!(std::collections::BTreeMap<#key, #value>)
            }
            TypeRef::Tuple { items } => self.tuple(items, inline),
            TypeRef::Array { of, len } if *len <= MAX_SERDE_ARRAY => {
                let of = self.ty_in(of, inline);
                let len = Literal::u32_unsuffixed(*len);
                quote!([#of; #len])
            }
            TypeRef::Array { of, .. } => self.vec(of),
            TypeRef::Named { id, args } => {
                let named = self.named(id, args);
                let held = self.names.index(id);
                match (self.holder, held) {
                    (Some(holder), Some(held)) if inline && self.names.needs_box(holder, held) => {
                        quote!(Box<#named>)
                    }
                    _ => named,
                }
            }
            TypeRef::Param { name } if self.params.contains(&name.as_str()) => {
                let name = ident_or_escaped(name);
                quote!(#name)
            }
            // The parser reports what it could not resolve (FG503); any JSON value keeps the
            // client compiling and the value readable.
            TypeRef::Param { .. } | TypeRef::Unsupported { .. } => quote!(serde_json::Value),
        }
    }

    fn vec(&self, of: &TypeRef) -> TokenStream {
        let of = self.ty_in(of, false);
        quote!(Vec<#of>)
    }

    fn tuple(&self, items: &[TypeRef], inline: bool) -> TokenStream {
        let items: Vec<TokenStream> = items.iter().map(|item| self.ty_in(item, inline)).collect();
        if items.len() == 1 {
            // `(A)` would be `A` in parentheses.
            let item = &items[0];
            quote!((#item,))
        } else {
            quote!((#(#items),*))
        }
    }

    fn named(&self, id: &str, args: &[TypeRef]) -> TokenStream {
        let Some(index) = self.names.index(id) else {
            // A dangling id is a parser bug; any JSON value keeps the client compiling.
            return quote!(serde_json::Value);
        };
        let name = format_ident!("{}", self.names.type_name(index));
        let kept = &self.names.kept_params[index];
        let args: Vec<TokenStream> = args
            .iter()
            .zip(kept)
            .filter(|(_, kept)| **kept)
            // Generic arguments are not followed for boxing: where a type holds its argument
            // is the other type's business.
            .map(|(arg, _)| self.ty_in(arg, false))
            .collect();
        if args.is_empty() {
            quote!(#name)
        } else {
            quote!(#name<#(#args),*>)
        }
    }

    /// The declaration of `def`, named `name`.
    pub(super) fn def(&self, def: &TypeDef, name: &str) -> TokenStream {
        let dir = Direction::of(def.usage);
        let docs = doc_attrs(def.doc.as_deref());
        let name = format_ident!("{name}");
        let generics = if self.params.is_empty() {
            quote!()
        } else {
            let params = self.params.iter().map(|p| ident_or_escaped(p));
            quote!(<#(#params),*>)
        };
        let derive = quote! {
            #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        };
        match &def.shape {
            Shape::Struct { fields, tag } => {
                let tag = tag.as_ref().map(|tag| {
                    let (key, value) = (&tag.tag, &tag.value);
                    // The tag's value is the server's struct name, which this one may not be.
                    quote!(#[serde(tag = #key, rename = #value)])
                });
                let fields = self.fields(fields, dir, true);
                quote! {
                    #docs
                    #derive
                    #tag
                    pub struct #name #generics { #(#fields)* }
                }
            }
            Shape::Tuple { items } => {
                let items = items.iter().map(|item| self.ty(item));
                quote! {
                    #docs
                    #derive
                    pub struct #name #generics (#(pub #items),*);
                }
            }
            Shape::Newtype { of } => {
                let of = self.ty(of);
                quote! {
                    #docs
                    #derive
                    pub struct #name #generics (pub #of);
                }
            }
            Shape::Unit => quote! {
                #docs
                #derive
                pub struct #name;
            },
            Shape::Enum { tagging, variants } => {
                let tagging = match tagging {
                    Tagging::External => None,
                    Tagging::Internal { tag } => Some(quote!(#[serde(tag = #tag)])),
                    Tagging::Adjacent { tag, content } => {
                        Some(quote!(#[serde(tag = #tag, content = #content)]))
                    }
                    Tagging::Untagged => Some(quote!(#[serde(untagged)])),
                };
                let internal = matches!(
                    def.shape,
                    Shape::Enum {
                        tagging: Tagging::Internal { .. },
                        ..
                    }
                );
                let variants = variants
                    .iter()
                    .filter_map(|variant| self.variant(variant, dir, internal));
                quote! {
                    #docs
                    #derive
                    #tagging
                    pub enum #name #generics { #(#variants)* }
                }
            }
        }
    }

    fn variant(&self, variant: &Variant, dir: Direction, internal: bool) -> Option<TokenStream> {
        // serde rejects tuple variants in internally tagged enums at compile time, so the
        // server cannot have one; the IR can.
        let impossible = internal && matches!(variant.shape, VariantShape::Tuple { .. });
        if impossible || dir.omits(variant.skip_serializing, variant.skip_deserializing) {
            return None;
        }
        let docs = doc_attrs(variant.doc.as_deref());
        let ident = ident_or_escaped(&to_identifier(&variant.rust_name));
        let mut serde = Vec::new();
        serde.extend(rename(&ident, dir.names(&variant.wire)));
        if dir == Direction::Both {
            // What the server never writes, the client never reads, and the other way round.
            if variant.skip_serializing {
                serde.push(quote!(skip_deserializing));
            }
            if variant.skip_deserializing {
                serde.push(quote!(skip_serializing));
            }
        }
        if variant.other && matches!(variant.shape, VariantShape::Unit) {
            serde.push(quote!(other));
        }
        if variant.untagged {
            serde.push(quote!(untagged));
        }
        let serde = serde_attr(serde);
        let payload = match &variant.shape {
            VariantShape::Unit => quote!(),
            VariantShape::Newtype { of } => {
                let of = self.ty(of);
                quote!((#of))
            }
            VariantShape::Tuple { items } => {
                let items = items.iter().map(|item| self.ty(item));
                quote!((#(#items),*))
            }
            VariantShape::Struct { fields } => {
                let fields = self.fields(fields, dir, false);
                quote!({ #(#fields)* })
            }
        };
        Some(quote! {
            #docs
            #serde
            #ident #payload,
        })
    }

    /// The fields of a struct or struct variant (`public`: with `pub`), without those that
    /// never cross the wire in `dir`.
    fn fields(&self, fields: &[Field], dir: Direction, public: bool) -> Vec<TokenStream> {
        let visibility = if public { quote!(pub) } else { quote!() };
        fields
            .iter()
            .enumerate()
            .filter(|(_, field)| !dir.omits(field.skip_serializing, field.skip_deserializing))
            .map(|(i, field)| {
                let docs = doc_attrs(field.doc.as_deref());
                let ident = field_ident(&field.rust_name, i);
                let (ty, serde) = self.field(field, dir, &ident);
                let serde = serde_attr(serde);
                quote! {
                    #docs
                    #serde
                    #visibility #ident: #ty,
                }
            })
            .collect()
    }

    /// A field's type and serde options.
    fn field(
        &self,
        field: &Field,
        dir: Direction,
        ident: &Ident,
    ) -> (TokenStream, Vec<TokenStream>) {
        let mut serde = Vec::new();
        serde.extend(rename(ident, dir.names(&field.wire)));
        if field.flatten {
            serde.push(quote!(flatten));
        }
        let ty = self.ty(&field.ty);
        // The server never writes it but reads it: the client must accept its absence.
        let never_sent = dir == Direction::Both && field.skip_serializing;
        let may_be_omitted =
            dir.server_sends() && (never_sent || field.skip_serializing_if.is_some());
        if dir == Direction::Both && field.skip_deserializing {
            // The server never reads it: sending it could only fail against
            // `deny_unknown_fields`.
            serde.push(quote!(skip_serializing));
        }
        if !may_be_omitted || field.flatten {
            return (ty, serde);
        }
        let predicate = field.skip_serializing_if.as_deref().map(compact);
        // Leaving a field out is what the server's own output does, so the client may too
        // when it only mirrors that output, or when the server reads the absence back.
        let mirror = !dir.client_sends() || field.default;
        match &field.ty {
            TypeRef::Option { .. } => {
                serde.push(quote!(default));
                // serde reads a missing `Option` as `None` in any case.
                if predicate.as_deref().is_some_and(is_none_predicate) {
                    serde.push(quote!(skip_serializing_if = "Option::is_none"));
                }
                (ty, serde)
            }
            ty_ref if !never_sent && has_default(ty_ref) => {
                serde.push(quote!(default));
                if mirror {
                    if let Some(own) = predicate
                        .as_deref()
                        .and_then(|p| is_empty_predicate(p, ty_ref))
                    {
                        serde.push(quote!(skip_serializing_if = #own));
                    }
                }
                (ty, serde)
            }
            _ => {
                // No default to fall back on: absent is `None`, and `None` is not sent.
                serde.push(quote!(default, skip_serializing_if = "Option::is_none"));
                (quote!(Option<#ty>), serde)
            }
        }
    }
}

/// `rename` when the client's names differ from the identifier serde would use.
fn rename(ident: &Ident, (writes, reads): (&str, &str)) -> Option<TokenStream> {
    let own = ident.to_string();
    let own = own.strip_prefix("r#").unwrap_or(&own);
    if writes == reads {
        (writes != own).then(|| quote!(rename = #writes))
    } else {
        Some(quote!(rename(serialize = #writes, deserialize = #reads)))
    }
}

fn serde_attr(options: Vec<TokenStream>) -> Option<TokenStream> {
    (!options.is_empty()).then(|| quote!(#[serde(#(#options),*)]))
}

/// The field's Rust name, or `field<i>` when no identifier spells it (a broken IR).
fn field_ident(rust_name: &str, index: usize) -> Ident {
    let name = rust_name.strip_prefix("r#").unwrap_or(rust_name);
    super::names::ident(name)
        .filter(|_| name != "_")
        .unwrap_or_else(|| format_ident!("field{index}"))
}

/// A map key's Rust type: JSON keys are strings, which serde_json also reads into integers;
/// every other key reads as the string it is on the wire.
fn map_key(key: &TypeRef) -> TokenStream {
    match key {
        TypeRef::Scalar {
            scalar:
                scalar @ (Scalar::I8
                | Scalar::I16
                | Scalar::I32
                | Scalar::I64
                | Scalar::U8
                | Scalar::U16
                | Scalar::U32),
        } => scalar_type(*scalar),
        _ => quote!(String),
    }
}

/// Uuids, dates, times and decimals stay the strings they are on the wire: the client then
/// needs no uuid, chrono or decimal crate, and a value is written back byte for byte as the
/// server wrote it.
pub(super) fn scalar_type(scalar: Scalar) -> TokenStream {
    match scalar {
        Scalar::Bool => quote!(bool),
        Scalar::Char => quote!(char),
        Scalar::String
        | Scalar::Uuid
        | Scalar::DateTime
        | Scalar::NaiveDateTime
        | Scalar::Date
        | Scalar::Time
        | Scalar::Decimal
        | Scalar::OtherString => quote!(String),
        Scalar::I8 => quote!(i8),
        Scalar::I16 => quote!(i16),
        Scalar::I32 => quote!(i32),
        Scalar::I64 => quote!(i64),
        Scalar::U8 => quote!(u8),
        Scalar::U16 => quote!(u16),
        Scalar::U32 => quote!(u32),
        Scalar::F32 => quote!(f32),
        Scalar::F64 => quote!(f64),
        Scalar::Unit => quote!(()),
        Scalar::Json => quote!(serde_json::Value),
        Scalar::JsonObject => quote!(serde_json::Map<String, serde_json::Value>),
        // serde writes `std::time::Duration` as `{"secs", "nanos"}` on both sides.
        Scalar::Duration => quote!(std::time::Duration),
    }
}

/// Whether the client type of `ty` implements `Default` whatever the user's types are.
fn has_default(ty: &TypeRef) -> bool {
    match ty {
        TypeRef::Scalar { .. }
        | TypeRef::Option { .. }
        | TypeRef::List { .. }
        | TypeRef::Map { .. }
        | TypeRef::Unsupported { .. } => true,
        TypeRef::Tuple { items } => items.len() <= 12 && items.iter().all(has_default),
        // Arrays longer than 32 are `Vec`s; std implements `Default` for `[T; 0..=32]`.
        TypeRef::Array { of, .. } => has_default(of),
        TypeRef::Named { .. } | TypeRef::Param { .. } => false,
    }
}

fn compact(path: &str) -> String {
    path.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `Option::is_none`, however it is spelled.
fn is_none_predicate(path: &str) -> bool {
    matches!(
        path,
        "Option::is_none" | "std::option::Option::is_none" | "core::option::Option::is_none"
    )
}

/// The client's spelling of an `…::is_empty` predicate on a string, list or map field.
fn is_empty_predicate(path: &str, ty: &TypeRef) -> Option<&'static str> {
    if !path.ends_with("::is_empty") {
        return None;
    }
    match ty {
        TypeRef::Scalar {
            scalar: Scalar::String,
        } => Some("String::is_empty"),
        TypeRef::List { .. } => Some("Vec::is_empty"),
        TypeRef::Map { .. } => Some("std::collections::BTreeMap::is_empty"),
        _ => None,
    }
}
