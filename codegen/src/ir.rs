//! The intermediate representation of a user's API: one serde value that every rule and
//! emitter reads.
//!
//! Invariants: every list is sorted (handlers by name then module, types by id, lists inside
//! in source order where order is meaningful), maps are `BTreeMap`s, and nothing depends on
//! the machine or the time, so the same source gives byte-identical JSON.

pub use forge_attrs::{Kind, Options};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Bumped whenever the JSON form changes incompatibly.
pub const IR_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ir {
    pub ir_version: u32,
    /// Every handler, sorted by `(name, module)`.
    ///
    /// Items are shared: watch mode keeps the IR's items between regenerations, so an
    /// unchanged item is the same allocation in the next IR and emitters' caches recognise it
    /// by pointer.
    pub handlers: Vec<Arc<Handler>>,
    /// Every type reachable from a handler signature plus every `#[forge::model]`, sorted by id.
    pub types: Vec<Arc<TypeDef>>,
}

impl Ir {
    /// The IR of these items, in its order: handlers by `(name, module, function)`, types by
    /// id.
    pub fn new<T, H>(
        types: impl IntoIterator<Item = T>,
        handlers: impl IntoIterator<Item = H>,
    ) -> Ir
    where
        T: Into<Arc<TypeDef>>,
        H: Into<Arc<Handler>>,
    {
        let mut types: Vec<Arc<TypeDef>> = types.into_iter().map(Into::into).collect();
        let mut handlers: Vec<Arc<Handler>> = handlers.into_iter().map(Into::into).collect();
        types.sort_by(|a, b| a.id.cmp(&b.id));
        handlers.sort_by(|a, b| {
            (&a.name, &a.module, &a.function).cmp(&(&b.name, &b.module, &b.function))
        });
        Ir {
            ir_version: IR_VERSION,
            handlers,
            types,
        }
    }

    pub fn handler(&self, name: &str) -> Option<&Handler> {
        self.handlers
            .iter()
            .find(|h| h.name == name)
            .map(Arc::as_ref)
    }

    /// The type with this id (binary search: `types` is sorted by id).
    pub fn type_def(&self, id: &str) -> Option<&TypeDef> {
        self.types
            .binary_search_by(|t| t.id.as_str().cmp(id))
            .ok()
            .map(|i| &*self.types[i])
    }
}

/// A place in the user's source. `file` is relative to the project root with `/`
/// separators; lines and columns are 1-based, columns count characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handler {
    /// The name the handler is registered and called by (RPC name, job name, the
    /// workflow's or MCP tool's `name` option when given).
    pub name: String,
    /// The Rust function's name.
    pub function: String,
    /// Crate-relative module path, `::`-separated; empty for the crate root.
    pub module: String,
    pub kind: Kind,
    pub options: Options,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub doc: Option<String>,
    pub is_async: bool,
    /// The first parameter's type name as written (`QueryContext`), if it looks like a context.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub context: Option<String>,
    /// The parameters after the context, in order.
    pub args: Vec<Arg>,
    /// `T` of the handler's `Result<T>`.
    pub returns: TypeRef,
    /// Every table the handler reads: from its SQL and its `tables(...)` option; sorted.
    pub tables_read: Vec<String>,
    /// Every table the handler's SQL writes; sorted.
    pub tables_written: Vec<String>,
    /// SQL calls in the body, in source order.
    pub sql: Vec<SqlCall>,
    /// `dispatch_job` / `start_workflow` calls in the body, in source order.
    pub dispatches: Vec<Dispatch>,
    /// `tokio::time::sleep` / `std::thread::sleep` calls in the body.
    pub blocking_sleeps: Vec<Span>,
    /// Present for workflows.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workflow: Option<WorkflowContract>,
    /// The function name's span.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arg {
    pub name: String,
    pub ty: TypeRef,
    pub span: Span,
}

/// One `sqlx::query…` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlCall {
    /// The macro or function used: `query!`, `query_as!`, `query_scalar!`, `query`,
    /// `query_as`, `query_scalar`.
    pub via: String,
    /// The SQL text when it is a literal; `None` when built at run time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sql: Option<String>,
    /// Bind arguments in parameter order (`$1`, `$2`, …).
    pub binds: Vec<Bind>,
    pub tables_read: Vec<String>,
    pub tables_written: Vec<String>,
    /// Why the SQL could not be parsed (by sqlparser, Postgres dialect).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parse_error: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bind {
    /// The argument expression as written, token-spaced (`& input . title`).
    pub expr: String,
    pub origin: Origin,
    pub span: Span,
}

/// Where a bound value comes from, followed through `let`, `?`, `.clone()`, references,
/// casts and field access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Origin {
    /// The auth context: `ctx.user_id()`, `ctx.tenant_id()`, `ctx.auth()…`.
    Auth { method: String },
    /// A handler argument, possibly through a field (`input.owner_id`).
    Argument { name: String },
    /// Anything else (literals, computations, calls).
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    pub target_kind: DispatchKind,
    /// The literal name, or `None` when the name is not a string literal.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchKind {
    Job,
    Workflow,
}

/// What a running workflow depends on: changing any of it needs a version bump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowContract {
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout_ms: Option<u64>,
    /// The workflow's input argument type, if it takes one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub input: Option<TypeRef>,
    pub output: TypeRef,
    /// Literal step keys in source order.
    pub steps: Vec<String>,
    /// Literal event keys in source order, with the awaited type when written.
    pub waits: Vec<WaitKey>,
    /// Step or event keys that are not string literals (FG402).
    pub dynamic_keys: Vec<Span>,
    /// 32 hex digits: the first 128 bits of blake3 over the canonical encoding
    /// (see `signature.rs`).
    pub signature: String,
    /// The same hash over the contract's types alone (see `signature::types_digest`).
    pub types_digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitKey {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ty: Option<TypeRef>,
}

/// A type as used in a signature or a field, after name resolution.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeRef {
    /// A language primitive or a well-known library type with a fixed wire form.
    Scalar { scalar: Scalar },
    /// `Option<T>`: `null` on the wire when absent.
    Option { of: Box<TypeRef> },
    /// `Vec<T>`, `VecDeque<T>`, `HashSet<T>`, `BTreeSet<T>`, `[T]`: a JSON array.
    List { of: Box<TypeRef> },
    /// `HashMap<K, V>`, `BTreeMap<K, V>`, `IndexMap<K, V>`: a JSON object with string keys.
    Map {
        key: Box<TypeRef>,
        value: Box<TypeRef>,
    },
    /// `(A, B, …)`: a JSON array of fixed length. `()` is `Scalar::Unit`.
    Tuple { items: Vec<TypeRef> },
    /// `[T; N]`: a JSON array of exactly `len` elements.
    Array { of: Box<TypeRef>, len: u32 },
    /// A user type, by [`TypeDef::id`], with its generic arguments.
    Named { id: String, args: Vec<TypeRef> },
    /// A generic parameter of the enclosing type definition.
    Param { name: String },
    /// Could not be resolved or cannot cross the wire; a diagnostic explains why.
    Unsupported { rust: String },
}

impl TypeRef {
    /// This type with every generic parameter `subst` knows replaced.
    pub fn substituted(&self, subst: &std::collections::HashMap<String, TypeRef>) -> TypeRef {
        let boxed = |of: &TypeRef| Box::new(of.substituted(subst));
        match self {
            TypeRef::Param { name } => subst.get(name).cloned().unwrap_or_else(|| self.clone()),
            TypeRef::Option { of } => TypeRef::Option { of: boxed(of) },
            TypeRef::List { of } => TypeRef::List { of: boxed(of) },
            TypeRef::Map { key, value } => TypeRef::Map {
                key: boxed(key),
                value: boxed(value),
            },
            TypeRef::Tuple { items } => TypeRef::Tuple {
                items: items.iter().map(|item| item.substituted(subst)).collect(),
            },
            TypeRef::Array { of, len } => TypeRef::Array {
                of: boxed(of),
                len: *len,
            },
            TypeRef::Named { id, args } => TypeRef::Named {
                id: id.clone(),
                args: args.iter().map(|arg| arg.substituted(subst)).collect(),
            },
            TypeRef::Scalar { .. } | TypeRef::Unsupported { .. } => self.clone(),
        }
    }
}

/// Types whose wire form is fixed by their serde implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalar {
    Bool,
    Char,
    String,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    F32,
    F64,
    /// `()`: `null`.
    Unit,
    /// `uuid::Uuid`: a hyphenated string.
    Uuid,
    /// `chrono::DateTime<Tz>`, `time::OffsetDateTime`: an RFC 3339 string.
    DateTime,
    /// `chrono::NaiveDateTime`, `time::PrimitiveDateTime`: an ISO 8601 string without offset.
    NaiveDateTime,
    /// `chrono::NaiveDate`, `time::Date`: `YYYY-MM-DD`.
    Date,
    /// `chrono::NaiveTime`, `time::Time`: `HH:MM:SS[.fff]`.
    Time,
    /// `rust_decimal::Decimal`, `bigdecimal::BigDecimal`: a string.
    Decimal,
    /// `serde_json::Value`: any JSON value.
    Json,
    /// `serde_json::Map<String, Value>`: a JSON object.
    JsonObject,
    /// `std::time::Duration`: `{ "secs": u64, "nanos": u32 }`.
    Duration,
    /// `std::net::IpAddr` and friends, `url::Url`, `PathBuf`: strings.
    OtherString,
}

/// Which directions a type crosses the wire in, from the handler signatures that reach it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Sent by clients (reachable from a handler argument).
    pub input: bool,
    /// Sent by the server (reachable from a handler result), or a model.
    pub output: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeDef {
    /// Crate-relative path, `::`-separated: `functions::users::User`.
    pub id: String,
    /// The Rust name.
    pub name: String,
    pub module: String,
    /// Generic type parameters in declaration order.
    pub generics: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub doc: Option<String>,
    /// Present when the type is marked `#[forge::model]`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model: Option<forge_attrs::ModelOptions>,
    pub usage: Usage,
    pub shape: Shape,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// A struct with named fields. `tag` is serde's `#[serde(tag = "…")]` on a struct,
    /// which adds a field holding the struct's (renamed) name.
    Struct {
        fields: Vec<Field>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        tag: Option<StructTag>,
    },
    /// A tuple struct with two or more fields: a JSON array.
    Tuple { items: Vec<TypeRef> },
    /// A newtype struct, or a struct marked `#[serde(transparent)]`: the inner value.
    Newtype { of: TypeRef },
    /// A unit struct: `null`.
    Unit,
    Enum {
        tagging: Tagging,
        variants: Vec<Variant>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructTag {
    pub tag: String,
    pub value: String,
}

/// How an enum's variants are told apart on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum Tagging {
    /// `{"Variant": payload}`, unit variants as `"Variant"`.
    External,
    /// `{"<tag>": "Variant", …fields}`.
    Internal { tag: String },
    /// `{"<tag>": "Variant", "<content>": payload}`.
    Adjacent { tag: String, content: String },
    /// The payload alone.
    Untagged,
}

/// Wire names after `rename`, `rename_all` and `rename_all_fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireName {
    /// The name written when the server serialises.
    pub serialize: String,
    /// The name read when the server deserialises (aliases are also accepted).
    pub deserialize: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The Rust field name (`r#` stripped).
    pub rust_name: String,
    pub wire: WireName,
    pub ty: TypeRef,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub doc: Option<String>,
    /// `skip_serializing`, or `skip`: never sent by the server.
    pub skip_serializing: bool,
    /// `skip_deserializing`, or `skip`: never read from clients.
    pub skip_deserializing: bool,
    /// The `skip_serializing_if` predicate: the server may leave the field out.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skip_serializing_if: Option<String>,
    /// `default` on the field or the container: clients may leave the field out.
    pub default: bool,
    /// `flatten`: the field's own fields (or map entries) are inlined.
    pub flatten: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub rust_name: String,
    pub wire: WireName,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub doc: Option<String>,
    pub skip_serializing: bool,
    pub skip_deserializing: bool,
    /// `#[serde(other)]`: the catch-all for unknown tags when deserialising.
    pub other: bool,
    /// `#[serde(untagged)]` on the variant: matched by shape after the tagged ones.
    pub untagged: bool,
    pub shape: VariantShape,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VariantShape {
    Unit,
    Newtype { of: TypeRef },
    Tuple { items: Vec<TypeRef> },
    Struct { fields: Vec<Field> },
}

/// Severity of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// A problem found in the user's project, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Diagnostic {
    /// `FG001`…
    pub code: String,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub span: Option<Span>,
    /// What the label under the span says.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>, span: Option<Span>) -> Self {
        Diagnostic {
            code: code.to_owned(),
            severity: Severity::Error,
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl Shape {
    /// The types this shape's fields, items and variant payloads use.
    pub fn type_refs(&self) -> Vec<&TypeRef> {
        fn fields(fields: &[Field]) -> Vec<&TypeRef> {
            fields.iter().map(|f| &f.ty).collect()
        }
        match self {
            Shape::Struct { fields: f, .. } => fields(f),
            Shape::Tuple { items } => items.iter().collect(),
            Shape::Newtype { of } => vec![of],
            Shape::Unit => Vec::new(),
            Shape::Enum { variants, .. } => variants
                .iter()
                .flat_map(|variant| match &variant.shape {
                    VariantShape::Unit => Vec::new(),
                    VariantShape::Newtype { of } => vec![of],
                    VariantShape::Tuple { items } => items.iter().collect(),
                    VariantShape::Struct { fields: f } => fields(f),
                })
                .collect(),
        }
    }
}

/// The IR's types by id, for walking from type references to the definitions they name.
pub struct TypeIndex<'a> {
    types: &'a [Arc<TypeDef>],
    position: foldhash::HashMap<&'a str, usize>,
}

impl<'a> TypeIndex<'a> {
    pub fn new(types: &'a [Arc<TypeDef>]) -> Self {
        TypeIndex {
            types,
            position: types
                .iter()
                .enumerate()
                .map(|(i, def)| (def.id.as_str(), i))
                .collect(),
        }
    }

    pub fn types(&self) -> &'a [Arc<TypeDef>] {
        self.types
    }

    /// The positions in `types` of every definition reachable from `roots` through fields,
    /// variants and generic arguments, in order (so by id when `types` is the IR's).
    pub fn reachable(&self, roots: impl IntoIterator<Item = &'a TypeRef>) -> Vec<usize> {
        let mut seen = vec![false; self.types.len()];
        let mut reached = Vec::new();
        let mut stack: Vec<&'a TypeRef> = roots.into_iter().collect();
        while let Some(ty) = stack.pop() {
            match ty {
                TypeRef::Named { id, args } => {
                    stack.extend(args.iter());
                    let Some(&i) = self.position.get(id.as_str()) else {
                        continue;
                    };
                    if !std::mem::replace(&mut seen[i], true) {
                        reached.push(i);
                        stack.extend(self.types[i].shape.type_refs());
                    }
                }
                TypeRef::Option { of } | TypeRef::List { of } | TypeRef::Array { of, .. } => {
                    stack.push(of)
                }
                TypeRef::Map { key, value } => stack.extend([&**key, &**value]),
                TypeRef::Tuple { items } => stack.extend(items.iter()),
                TypeRef::Scalar { .. } | TypeRef::Param { .. } | TypeRef::Unsupported { .. } => {}
            }
        }
        reached.sort_unstable();
        reached
    }
}
