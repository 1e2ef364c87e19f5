//! What the parser extracts from one file, before names are resolved across files.
//!
//! A [`ParsedFile`] depends on nothing but the file's path and text, so it can be cached by
//! content hash and rebuilt for a single changed file.

use forge_attrs::{ModelOptions, Options};
use serde::{Deserialize, Serialize};

use crate::ir::{Diagnostic, Dispatch, Span, SqlCall};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedFile {
    /// Path relative to the project root, `/`-separated.
    pub file: String,
    /// The module the file is (`functions::users`; empty for `src/main.rs` / `src/lib.rs`).
    pub module: String,
    /// One scope per module the file defines: the file's own and each inline `mod`.
    pub scopes: Vec<Scope>,
    pub types: Vec<RawType>,
    pub aliases: Vec<RawAlias>,
    pub handlers: Vec<RawHandler>,
    pub diagnostics: Vec<Diagnostic>,
}

/// The names a module brings into scope with `use` and the modules it declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub module: String,
    /// `use a::b::C as D;` → `D` ↦ `a::b::C`, with `crate`/`self`/`super` made absolute
    /// (`crate::…`); other paths are left as written (an extern crate or a child module).
    pub imports: Vec<Import>,
    /// `use a::b::*;` paths, normalised like imports.
    pub globs: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    pub name: String,
    pub path: Vec<String>,
}

/// A type expression as written, with its span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeExpr {
    Path {
        segments: Vec<PathSegment>,
        span: Span,
    },
    Tuple {
        items: Vec<TypeExpr>,
        span: Span,
    },
    /// `[T; N]`; `len` is `None` when `N` is not an integer literal.
    Array {
        of: Box<TypeExpr>,
        len: Option<u32>,
        span: Span,
    },
    Slice {
        of: Box<TypeExpr>,
        span: Span,
    },
    Reference {
        of: Box<TypeExpr>,
        span: Span,
    },
    /// Anything that cannot cross the wire: pointers, `fn`, `impl Trait`, `dyn Trait`, macros.
    Other {
        text: String,
        span: Span,
    },
}

impl TypeExpr {
    pub fn span(&self) -> &Span {
        match self {
            TypeExpr::Path { span, .. }
            | TypeExpr::Tuple { span, .. }
            | TypeExpr::Array { span, .. }
            | TypeExpr::Slice { span, .. }
            | TypeExpr::Reference { span, .. }
            | TypeExpr::Other { span, .. } => span,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSegment {
    pub name: String,
    /// Generic type arguments (lifetimes and const arguments are dropped).
    pub args: Vec<TypeExpr>,
}

/// Serde's `rename(serialize = …, deserialize = …)` style pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directional {
    pub serialize: Option<String>,
    pub deserialize: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerAttrs {
    pub rename: Directional,
    pub rename_all: Directional,
    pub rename_all_fields: Directional,
    pub tag: Option<String>,
    pub content: Option<String>,
    pub untagged: bool,
    pub transparent: bool,
    pub default: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldAttrs {
    pub rename: Directional,
    pub aliases: Vec<String>,
    pub skip_serializing: bool,
    pub skip_deserializing: bool,
    pub skip_serializing_if: Option<String>,
    pub default: bool,
    pub flatten: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantAttrs {
    pub rename: Directional,
    pub aliases: Vec<String>,
    pub rename_all: Directional,
    pub skip_serializing: bool,
    pub skip_deserializing: bool,
    pub other: bool,
    pub untagged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawType {
    pub module: String,
    pub name: String,
    pub generics: Vec<String>,
    pub doc: Option<String>,
    pub model: Option<ModelOptions>,
    pub serde: ContainerAttrs,
    /// `#[serde(with/from/into/…)]` on the container: the wire shape is unknowable.
    pub opaque: bool,
    pub body: RawBody,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RawBody {
    Named { fields: Vec<RawField> },
    Tuple { fields: Vec<RawField> },
    Unit,
    Enum { variants: Vec<RawVariant> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawField {
    /// The field name with `r#` stripped; the index for tuple fields.
    pub name: String,
    pub ty: TypeExpr,
    pub serde: FieldAttrs,
    /// `#[serde(with = …)]` and friends: the wire shape is unknowable.
    pub opaque: bool,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawVariant {
    pub name: String,
    pub serde: VariantAttrs,
    pub doc: Option<String>,
    pub body: RawBody,
    pub span: Span,
}

/// `type Name<T> = Target;`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawAlias {
    pub module: String,
    pub name: String,
    pub generics: Vec<String>,
    pub target: TypeExpr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawHandler {
    pub module: String,
    pub function: String,
    pub options: Options,
    pub doc: Option<String>,
    pub is_async: bool,
    /// The first parameter's type name when it is a `…Context`.
    pub context: Option<String>,
    /// Parameters after the context.
    pub params: Vec<RawParam>,
    /// The declared return type; `None` for `()`.
    pub returns: Option<TypeExpr>,
    pub body: BodyFacts,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawParam {
    pub name: String,
    pub ty: TypeExpr,
    pub span: Span,
}

/// What the handler's body does that the IR records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BodyFacts {
    pub sql: Vec<SqlCall>,
    pub dispatches: Vec<Dispatch>,
    pub blocking_sleeps: Vec<Span>,
    /// Workflow step keys in source order.
    pub steps: Vec<String>,
    /// Workflow event keys in source order, with the awaited type when written.
    pub waits: Vec<(String, Option<TypeExpr>)>,
    pub dynamic_keys: Vec<Span>,
}
