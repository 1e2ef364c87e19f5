//! FG801–FG804, the API contract over time: what in the current IR breaks clients built
//! against an earlier one (`forge check --against <git-ref | ir.json>`).
//!
//! Only what clients call is compared: queries and mutations (one RPC namespace) and MCP
//! tools. Types are compared by their wire shape, never by Rust name or path, so renaming
//! or moving a type, or renaming a field while `#[serde(rename)]` keeps its wire name,
//! changes nothing. Each direction has its own rule of compatibility:
//!
//! - **Input** (arguments, and the types they reach): the new server must accept every
//!   value an old client sends. Widening (`i32` → `i64`, `T` → `Option<T>`, a new field
//!   with a default) is fine; narrowing, a new required field or argument, a removed
//!   argument (the glue refuses unknown arguments) breaks (FG802).
//! - **Output** (results): an old client must understand every value the new server
//!   sends. A removed field, one that may now be left out or be `null`, a changed type
//!   breaks (FG803).
//!
//! An enum variant removed and a change of tagging (an internal tag renamed) are FG803 in
//! either direction. A flattened field is compared with the flattened field of the same
//! Rust name, as a whole. Additions are never reported. Every finding points into the
//! current source: the field, argument, variant, type or handler that changed; a
//! handler that is gone has no place there, so its message says where it was.

use std::collections::{HashMap, HashSet};

use forge_attrs::{Kind, Options};

use super::Rule;
use crate::ir::{
    Diagnostic, Field, Handler, Ir, Scalar, Severity, Shape, Span, Tagging, TypeDef, TypeRef,
    Variant, VariantShape,
};

pub const RULES: &[Rule] = &[
    Rule {
        code: "FG801",
        title: "a handler that deployed clients call was removed or renamed",
        explanation: "Clients call queries and mutations by name (`POST /_api/rpc/{name}`) and MCP tools by tool name. A client built against the earlier version keeps calling the old name, which now answers NOT_FOUND. Keep the old handler (it may call the new one) until no deployed client uses it. A rename (a new handler that is the same function under another name, or the only new one with the same signature) is reported at the new handler.",
        example: r#"// before
#[forge::query]
pub async fn list_items(ctx: &QueryContext) -> Result<Vec<Item>> { … }

// refused: renamed
#[forge::query]
pub async fn items(ctx: &QueryContext) -> Result<Vec<Item>> { … }

// accepted: the new name, and the old one kept
#[forge::query]
pub async fn list_items(ctx: &QueryContext) -> Result<Vec<Item>> { items(ctx).await }"#,
    },
    Rule {
        code: "FG802",
        title: "a handler's input was narrowed: deployed clients' calls would be refused",
        explanation: "A server must accept every call the earlier version accepted, because deployed clients keep sending them. A new argument without a default (anything but `Option`), a removed argument (the generated glue refuses unknown arguments), a new required field in an argument's type, a field that lost its default, or a type that accepts less than before (`i64` → `i32`, `String` → `Uuid`, `Option<T>` → `T`) would make those calls fail with VALIDATION_ERROR. Make the new argument or field an `Option` or give it `#[serde(default)]`; widen, never narrow.",
        example: r#"// before
#[forge::mutation]
pub async fn rename(ctx: &MutationContext, id: Uuid) -> Result<()> { … }

// refused: deployed clients do not send `title`
pub async fn rename(ctx: &MutationContext, id: Uuid, title: String) -> Result<()> { … }

// accepted
pub async fn rename(ctx: &MutationContext, id: Uuid, title: Option<String>) -> Result<()> { … }"#,
    },
    Rule {
        code: "FG803",
        title: "a handler's output changed incompatibly: deployed clients would misread it",
        explanation: "A deployed client decodes results with the types it was built with. A field removed from a result, a field that may now be left out (`skip_serializing_if`) or be `null`, an enum variant removed, an enum's tagging changed (an internally tagged enum's tag renamed), or a value of another type breaks that decoding: the generated TypeScript reads `undefined` where its type promises a value, a Dioxus client fails to deserialise. Add new fields and variants instead of changing old ones, and remove a field only once no deployed client reads it.",
        example: r#"// before
pub struct Item { pub id: Uuid, pub title: String }

// refused: `title` is gone, and `#[serde(tag)]` renamed
pub struct Item { pub id: Uuid }

// accepted: renamed in Rust, same on the wire
pub struct Item { pub id: Uuid, #[serde(rename = "title")] pub name: String }"#,
    },
    Rule {
        code: "FG804",
        title: "a handler became stricter about who may call it",
        explanation: "A handler that was public and is not any more answers UNAUTHORIZED to the anonymous callers deployed clients make. That may be intended (closing a hole), so this is a warning: check that no deployed client calls it without a token, or fail the build with `--deny warnings`.",
        example: r#"// before
#[forge::query(public)]
pub async fn prices(ctx: &QueryContext) -> Result<Vec<Price>> { … }

// warned: anonymous callers now get 401
#[forge::query]
pub async fn prices(ctx: &QueryContext) -> Result<Vec<Price>> { … }"#,
    },
];

/// Newtypes unwrap to their content; a chain longer than this is left as it is.
const MAX_UNWRAP: usize = 32;

/// What `new` (the current source) breaks for clients of `old`, sorted like every rule's
/// findings.
pub fn compare(old: &Ir, new: &Ir) -> Vec<Diagnostic> {
    let mut compare = Compare {
        old,
        new,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    let old_handlers = callable(old);
    let new_handlers = callable(new);
    for (key, before) in &old_handlers {
        match new_handlers.get(key) {
            Some(after) => compare.handler(before, after),
            None => compare
                .out
                .push(removed(before, &old_handlers, &new_handlers)),
        }
    }
    let mut out = compare.out;
    out.sort_by(|a, b| (&a.span, &a.code, &a.message).cmp(&(&b.span, &b.code, &b.message)));
    out.dedup();
    out
}

/// The handlers clients call, by namespace and name (the first of a duplicate: FG502).
fn callable(ir: &Ir) -> HashMap<(&'static str, &str), &Handler> {
    let mut handlers = HashMap::new();
    for handler in &ir.handlers {
        let namespace = match handler.kind {
            Kind::Query | Kind::Mutation => "rpc",
            Kind::McpTool => "mcp",
            _ => continue,
        };
        handlers
            .entry((namespace, handler.name.as_str()))
            .or_insert(&**handler);
    }
    handlers
}

/// FG801 for a handler of `old` that `new` does not have: at its successor when a new
/// handler is the same function under another name, or has the same signature.
fn removed(
    before: &Handler,
    old: &HashMap<(&'static str, &str), &Handler>,
    new: &HashMap<(&'static str, &str), &Handler>,
) -> Diagnostic {
    let what = describe_kind(before.kind);
    let added = || {
        new.iter()
            .filter(|((namespace, name), after)| {
                !old.contains_key(&(*namespace, *name)) && after.kind == before.kind
            })
            .map(|(_, after)| *after)
    };
    let same_function =
        |after: &&Handler| after.module == before.module && after.function == before.function;
    let same_signature = |after: &&Handler| {
        after.returns == before.returns
            && after.args.len() == before.args.len()
            && after
                .args
                .iter()
                .zip(&before.args)
                .all(|(a, b)| a.name == b.name && a.ty == b.ty)
    };
    let mut renamed: Vec<&Handler> = added().filter(same_function).collect();
    if renamed.is_empty() {
        renamed = added().filter(same_signature).collect();
    }
    renamed.sort_by(|a, b| a.name.cmp(&b.name));
    match renamed.as_slice() {
        [after] => Diagnostic::error(
            "FG801",
            format!(
                "{what} `{}` was renamed to `{}`: deployed clients still call `{}`",
                before.name, after.name, before.name
            ),
            Some(after.span.clone()),
        )
        .with_label("renamed here")
        .with_help(format!(
            "keep a handler named `{}` (it may call this one) until no deployed client uses it",
            before.name
        )),
        _ => Diagnostic::error(
            "FG801",
            format!(
                "{what} `{}` was removed (it was `{}` at {}:{}): deployed clients still call it",
                before.name,
                path(&before.module, &before.function),
                before.span.file,
                before.span.line
            ),
            None,
        )
        .with_help(format!(
            "restore `{}` until no deployed client calls it",
            before.name
        )),
    }
}

fn describe_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::McpTool => "MCP tool",
        _ => "handler",
    }
}

fn path(module: &str, function: &str) -> String {
    if module.is_empty() {
        function.to_owned()
    } else {
        format!("{module}::{function}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dir {
    /// Sent by clients.
    Input,
    /// Sent by the server.
    Output,
}

impl Dir {
    fn code(self) -> &'static str {
        match self {
            Dir::Input => "FG802",
            Dir::Output => "FG803",
        }
    }
}

struct Compare<'a> {
    old: &'a Ir,
    new: &'a Ir,
    /// Pairs of closed named types already compared (or being compared) in a direction:
    /// each is reported once, and recursive types end.
    seen: HashSet<(TypeRef, TypeRef, Dir)>,
    out: Vec<Diagnostic>,
}

impl Compare<'_> {
    fn handler(&mut self, before: &Handler, after: &Handler) {
        let name = &after.name;
        for arg in &after.args {
            match before.args.iter().find(|a| a.name == arg.name) {
                Some(old) => {
                    let at = format!("argument `{}` of `{name}`", arg.name);
                    self.ty(&old.ty, &arg.ty, Dir::Input, &arg.span, &at);
                }
                None if !matches!(arg.ty, TypeRef::Option { .. }) => self.out.push(
                    Diagnostic::error(
                        "FG802",
                        format!(
                            "`{name}` has a new argument `{}` that deployed clients do not send",
                            arg.name
                        ),
                        Some(arg.span.clone()),
                    )
                    .with_label("new required argument")
                    .with_help("make it an `Option` so that calls without it still work"),
                ),
                None => {}
            }
        }
        for arg in &before.args {
            if !after.args.iter().any(|a| a.name == arg.name) {
                self.out.push(
                    Diagnostic::error(
                        "FG802",
                        format!(
                            "argument `{}` of `{name}` was removed: the server refuses unknown arguments, so deployed clients that send it fail",
                            arg.name
                        ),
                        Some(after.span.clone()),
                    )
                    .with_help(format!(
                        "keep `{}` as an `Option` argument the handler ignores",
                        arg.name
                    )),
                );
            }
        }
        let at = format!("the result of `{name}`");
        self.ty(
            &before.returns,
            &after.returns,
            Dir::Output,
            &after.span,
            &at,
        );
        if is_public(&before.options) && !is_public(&after.options) {
            self.out.push(Diagnostic {
                severity: Severity::Warning,
                ..Diagnostic::error(
                    "FG804",
                    format!("`{name}` is no longer public: anonymous callers now get 401"),
                    Some(after.span.clone()),
                )
                .with_help("check that no deployed client calls it without a token")
            });
        }
    }

    fn breaks(&mut self, code: &str, message: String, span: &Span, help: &str) {
        self.out
            .push(Diagnostic::error(code, message, Some(span.clone())).with_help(help));
    }

    /// Compares one type, `at` describing where it sits and `span` where to report.
    fn ty(&mut self, old: &TypeRef, new: &TypeRef, dir: Dir, span: &Span, at: &str) {
        let old = unwrap_newtypes(self.old, old);
        let new = unwrap_newtypes(self.new, new);
        // Whatever accepts any JSON value accepts the other side's values.
        let any = |ty: &TypeRef| {
            matches!(
                ty,
                TypeRef::Scalar {
                    scalar: Scalar::Json
                } | TypeRef::Unsupported { .. }
            )
        };
        let (accepting, _) = match dir {
            Dir::Input => (&new, &old),
            Dir::Output => (&old, &new),
        };
        if any(accepting) || matches!(old, TypeRef::Unsupported { .. }) {
            return;
        }
        match (&old, &new) {
            (TypeRef::Option { of: a }, TypeRef::Option { of: b }) => self.ty(a, b, dir, span, at),
            (a, TypeRef::Option { of: b }) => {
                if dir == Dir::Output {
                    self.breaks(
                        "FG803",
                        format!("{at} may now be `null`; deployed clients expect a value"),
                        span,
                        "keep the type non-optional, or add a new optional field beside it",
                    );
                }
                self.ty(a, b, dir, span, at)
            }
            (TypeRef::Option { of: a }, b) => {
                if dir == Dir::Input {
                    self.breaks(
                        "FG802",
                        format!("{at} no longer accepts `null`, which deployed clients may send"),
                        span,
                        "keep it an `Option`",
                    );
                }
                self.ty(a, b, dir, span, at)
            }
            (TypeRef::Scalar { scalar: a }, TypeRef::Scalar { scalar: b }) => {
                let fits = match dir {
                    Dir::Input => accepts(*b, *a),
                    Dir::Output => accepts(*a, *b),
                };
                if !fits {
                    self.changed(dir, at, &old, &new, span);
                }
            }
            (TypeRef::List { of: a }, TypeRef::List { of: b }) => {
                self.ty(a, b, dir, span, &format!("the items of {at}"))
            }
            (TypeRef::Map { value: a, .. }, TypeRef::Map { value: b, .. }) => {
                self.ty(a, b, dir, span, &format!("the values of {at}"))
            }
            (TypeRef::Array { of: a, len: m }, TypeRef::Array { of: b, len: n }) if m == n => {
                self.ty(a, b, dir, span, &format!("the items of {at}"))
            }
            (TypeRef::Tuple { items: a }, TypeRef::Tuple { items: b }) if a.len() == b.len() => {
                for (i, (a, b)) in a.iter().zip(b).enumerate() {
                    self.ty(a, b, dir, span, &format!("item {i} of {at}"));
                }
            }
            (TypeRef::Named { .. }, TypeRef::Named { .. }) => self.named(&old, &new, dir, span, at),
            _ => self.changed(dir, at, &old, &new, span),
        }
    }

    fn changed(&mut self, dir: Dir, at: &str, old: &TypeRef, new: &TypeRef, span: &Span) {
        let (verb, help) = match dir {
            Dir::Input => (
                "was narrowed",
                "accept at least what the earlier type accepted (widen, never narrow)",
            ),
            Dir::Output => (
                "changed",
                "keep the earlier type, and add a new field or handler for the new one",
            ),
        };
        self.breaks(
            dir.code(),
            format!(
                "{at} {verb} from `{}` to `{}`",
                describe(self.old, old),
                describe(self.new, new)
            ),
            span,
            help,
        );
    }

    fn named(&mut self, old: &TypeRef, new: &TypeRef, dir: Dir, span: &Span, at: &str) {
        if !self.seen.insert((old.clone(), new.clone(), dir)) {
            return;
        }
        let (Some((old_def, old_subst)), Some((new_def, new_subst))) =
            (instance(self.old, old), instance(self.new, new))
        else {
            return;
        };
        let name = &new_def.name;
        match (&old_def.shape, &new_def.shape) {
            (
                Shape::Struct {
                    fields: a,
                    tag: tag_a,
                },
                Shape::Struct {
                    fields: b,
                    tag: tag_b,
                },
            ) => {
                if tag_a != tag_b {
                    self.breaks(
                        dir.code(),
                        format!("the `#[serde(tag)]` of `{name}` changed"),
                        &new_def.span,
                        "keep the tag and its value",
                    );
                }
                self.fields(a, &old_subst, b, &new_subst, dir, new_def, name);
            }
            (Shape::Tuple { items: a }, Shape::Tuple { items: b }) if a.len() == b.len() => {
                for (i, (a, b)) in a.iter().zip(b).enumerate() {
                    let (a, b) = (a.substituted(&old_subst), b.substituted(&new_subst));
                    self.ty(&a, &b, dir, &new_def.span, &format!("item {i} of `{name}`"));
                }
            }
            (Shape::Unit, Shape::Unit) => {}
            (
                Shape::Enum {
                    tagging: a,
                    variants: va,
                },
                Shape::Enum {
                    tagging: b,
                    variants: vb,
                },
            ) => {
                if a != b {
                    self.breaks(
                        "FG803",
                        format!(
                            "the tagging of enum `{name}` changed from {} to {}",
                            describe_tagging(a),
                            describe_tagging(b)
                        ),
                        &new_def.span,
                        "keep the enum's tagging: deployed clients read and write the earlier one",
                    );
                    return;
                }
                self.variants(va, &old_subst, vb, &new_subst, dir, new_def);
            }
            _ => self.changed(dir, at, old, new, span),
        }
    }

    #[allow(clippy::too_many_arguments, reason = "two sides of one comparison")]
    fn fields(
        &mut self,
        old: &[Field],
        old_subst: &Subst,
        new: &[Field],
        new_subst: &Subst,
        dir: Dir,
        def: &TypeDef,
        name: &str,
    ) {
        // Flattened fields are compared as a whole, by Rust name.
        for field in new.iter().filter(|f| f.flatten) {
            if let Some(before) = old
                .iter()
                .find(|f| f.flatten && f.rust_name == field.rust_name)
            {
                let (a, b) = (
                    before.ty.substituted(old_subst),
                    field.ty.substituted(new_subst),
                );
                let at = format!("flattened field `{}` of `{name}`", field.rust_name);
                self.ty(&a, &b, dir, &field.span, &at);
            }
        }
        match dir {
            Dir::Input => {
                for field in new.iter().filter(|f| !f.flatten && !f.skip_deserializing) {
                    let wire = &field.wire.deserialize;
                    let before = old.iter().find(|f| {
                        !f.flatten
                            && !f.skip_deserializing
                            && (f.wire.deserialize == *wire
                                || field.wire.aliases.contains(&f.wire.deserialize))
                    });
                    let optional = |f: &Field| f.default || matches!(f.ty, TypeRef::Option { .. });
                    match before {
                        None if !optional(field) => self.breaks(
                            "FG802",
                            format!(
                                "field `{wire}` of `{name}` is new and required: deployed clients do not send it"
                            ),
                            &field.span,
                            "make it an `Option` or give it `#[serde(default)]`",
                        ),
                        None => {}
                        Some(before) => {
                            if before.default && !field.default && !matches!(field.ty, TypeRef::Option { .. }) {
                                self.breaks(
                                    "FG802",
                                    format!("field `{wire}` of `{name}` lost its default: deployed clients may leave it out"),
                                    &field.span,
                                    "keep `#[serde(default)]`",
                                );
                            }
                            let (a, b) = (before.ty.substituted(old_subst), field.ty.substituted(new_subst));
                            let at = format!("field `{wire}` of `{name}`");
                            self.ty(&a, &b, dir, &field.span, &at);
                        }
                    }
                }
            }
            Dir::Output => {
                for before in old.iter().filter(|f| !f.flatten && !f.skip_serializing) {
                    let wire = &before.wire.serialize;
                    let after = new
                        .iter()
                        .find(|f| !f.flatten && !f.skip_serializing && f.wire.serialize == *wire);
                    let Some(after) = after else {
                        self.breaks(
                            "FG803",
                            format!(
                                "field `{wire}` of `{name}` was removed: deployed clients read it"
                            ),
                            &def.span,
                            "keep the field until no deployed client reads it",
                        );
                        continue;
                    };
                    if before.skip_serializing_if.is_none() && after.skip_serializing_if.is_some() {
                        self.breaks(
                            "FG803",
                            format!("field `{wire}` of `{name}` may now be left out (`skip_serializing_if`): deployed clients expect it"),
                            &after.span,
                            "always send it",
                        );
                    }
                    let (a, b) = (
                        before.ty.substituted(old_subst),
                        after.ty.substituted(new_subst),
                    );
                    let at = format!("field `{wire}` of `{name}`");
                    self.ty(&a, &b, dir, &after.span, &at);
                }
            }
        }
    }

    fn variants(
        &mut self,
        old: &[Variant],
        old_subst: &Subst,
        new: &[Variant],
        new_subst: &Subst,
        dir: Dir,
        def: &TypeDef,
    ) {
        let name = &def.name;
        for before in old {
            let (skipped, wire) = match dir {
                Dir::Input => (before.skip_deserializing, &before.wire.deserialize),
                Dir::Output => (before.skip_serializing, &before.wire.serialize),
            };
            if skipped {
                continue;
            }
            let after = new.iter().find(|v| match dir {
                Dir::Input => {
                    !v.skip_deserializing
                        && (v.wire.deserialize == *wire || v.wire.aliases.contains(wire))
                }
                Dir::Output => !v.skip_serializing && v.wire.serialize == *wire,
            });
            let Some(after) = after else {
                self.breaks(
                    "FG803",
                    format!(
                        "variant `{wire}` of enum `{name}` was removed: deployed clients use it"
                    ),
                    &def.span,
                    "keep the variant until no deployed client uses it",
                );
                continue;
            };
            let at = format!("variant `{wire}` of `{name}`");
            match (&before.shape, &after.shape) {
                (VariantShape::Unit, VariantShape::Unit) => {}
                (VariantShape::Newtype { of: a }, VariantShape::Newtype { of: b }) => {
                    let (a, b) = (a.substituted(old_subst), b.substituted(new_subst));
                    self.ty(&a, &b, dir, &after.span, &at);
                }
                (VariantShape::Tuple { items: a }, VariantShape::Tuple { items: b })
                    if a.len() == b.len() =>
                {
                    for (i, (a, b)) in a.iter().zip(b).enumerate() {
                        let (a, b) = (a.substituted(old_subst), b.substituted(new_subst));
                        self.ty(&a, &b, dir, &after.span, &format!("item {i} of {at}"));
                    }
                }
                (VariantShape::Struct { fields: a }, VariantShape::Struct { fields: b }) => {
                    self.fields(
                        a,
                        old_subst,
                        b,
                        new_subst,
                        dir,
                        def,
                        &format!("{name}::{wire}"),
                    );
                }
                _ => self.breaks(
                    dir.code(),
                    format!("{at} changed its shape"),
                    &after.span,
                    "keep the variant's payload, and add a new variant for the new one",
                ),
            }
        }
    }
}

type Subst = HashMap<String, TypeRef>;

fn is_public(options: &Options) -> bool {
    match options {
        Options::Query(options) => options.public,
        Options::Mutation(options) => options.public,
        _ => false,
    }
}

/// A named type's definition and the substitution of its generic parameters.
fn instance<'a>(ir: &'a Ir, ty: &TypeRef) -> Option<(&'a TypeDef, Subst)> {
    let TypeRef::Named { id, args } = ty else {
        return None;
    };
    let def = ir.type_def(id)?;
    let subst = def
        .generics
        .iter()
        .cloned()
        .zip(args.iter().cloned())
        .collect();
    Some((def, subst))
}

/// `ty` with newtype structs (and `#[serde(transparent)]` ones) replaced by their content,
/// which is what is on the wire.
fn unwrap_newtypes(ir: &Ir, ty: &TypeRef) -> TypeRef {
    let mut ty = ty.clone();
    for _ in 0..MAX_UNWRAP {
        let Some((def, subst)) = instance(ir, &ty) else {
            break;
        };
        let Shape::Newtype { of } = &def.shape else {
            break;
        };
        ty = of.substituted(&subst);
    }
    ty
}

/// Whether every value of `sub` is a value of `sup` on the wire.
fn accepts(sup: Scalar, sub: Scalar) -> bool {
    use Scalar::*;
    if sup == sub {
        return true;
    }
    match sup {
        Json => true,
        String | OtherString => matches!(
            sub,
            Char | String | OtherString | Uuid | DateTime | NaiveDateTime | Date | Time | Decimal
        ),
        F32 | F64 => matches!(sub, F32 | F64) || integer_range(sub).is_some(),
        _ => match (integer_range(sup), integer_range(sub)) {
            (Some((a, b)), Some((c, d))) => a <= c && d <= b,
            _ => false,
        },
    }
}

fn integer_range(scalar: Scalar) -> Option<(i64, i64)> {
    Some(match scalar {
        Scalar::I8 => (i8::MIN.into(), i8::MAX.into()),
        Scalar::I16 => (i16::MIN.into(), i16::MAX.into()),
        Scalar::I32 => (i32::MIN.into(), i32::MAX.into()),
        Scalar::I64 => (i64::MIN, i64::MAX),
        Scalar::U8 => (0, u8::MAX.into()),
        Scalar::U16 => (0, u16::MAX.into()),
        Scalar::U32 => (0, u32::MAX.into()),
        _ => return None,
    })
}

fn describe_tagging(tagging: &Tagging) -> String {
    match tagging {
        Tagging::External => "external".to_owned(),
        Tagging::Internal { tag } => format!("internal (tag `{tag}`)"),
        Tagging::Adjacent { tag, content } => {
            format!("adjacent (tag `{tag}`, content `{content}`)")
        }
        Tagging::Untagged => "untagged".to_owned(),
    }
}

/// A type as a reader knows it: `Option<Uuid>`, `Vec<User>`.
fn describe(ir: &Ir, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Scalar { scalar } => serde_json::to_value(scalar)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        TypeRef::Option { of } => format!("Option<{}>", describe(ir, of)),
        TypeRef::List { of } => format!("Vec<{}>", describe(ir, of)),
        TypeRef::Map { key, value } => {
            format!("Map<{}, {}>", describe(ir, key), describe(ir, value))
        }
        TypeRef::Tuple { items } => {
            let items: Vec<String> = items.iter().map(|item| describe(ir, item)).collect();
            format!("({})", items.join(", "))
        }
        TypeRef::Array { of, len } => format!("[{}; {len}]", describe(ir, of)),
        TypeRef::Named { id, .. } => ir
            .type_def(id)
            .map_or_else(|| id.clone(), |def| def.name.clone()),
        TypeRef::Param { name } => name.clone(),
        TypeRef::Unsupported { rust } => rust.clone(),
    }
}
