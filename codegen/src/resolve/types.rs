//! Type expressions → [`TypeRef`]s, and raw type definitions → [`TypeDef`]s with their wire
//! names computed the way serde computes them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::index::{Index, Target};
use super::known::{classify, Known};
use crate::ir::{
    Diagnostic, Field, Scalar, Shape, Span, StructTag, Tagging, TypeDef, TypeRef, Usage, Variant,
    VariantShape, WireName,
};
use crate::parse::syntax::{
    ContainerAttrs, Directional, PathSegment, RawBody, RawField, RawType, RawVariant, TypeExpr,
};
use crate::serde_case::RenameRule;

/// How deep type aliases may expand into one another.
const MAX_ALIAS_DEPTH: u32 = 32;

/// How many parts one written type may resolve into. Aliases expand in place, so a line of
/// source can describe an exponentially large type: `type A = (A, A);` doubles at each of
/// the `MAX_ALIAS_DEPTH` levels, `type P<T> = (T, T);` doubles at each `P<…>` in
/// `P<P<P<…>>>`. Past this bound the type is reported rather than built, which bounds the
/// work each written type costs.
const MAX_TYPE_PARTS: usize = 10_000;

pub struct Types<'a> {
    pub index: Index<'a>,
    pub diagnostics: Vec<Diagnostic>,
    pub defs: BTreeMap<String, Arc<TypeDef>>,
    queued: foldhash::HashSet<String>,
    queue: Vec<String>,
    /// How deep `type_ref` is in its own recursion; 0 between written types.
    nesting: u32,
    /// What is left of `MAX_TYPE_PARTS` for the written type being resolved.
    parts_left: usize,
    /// The written type being resolved, until it is reported as too large.
    unreported: Option<Span>,
    /// Every id `type_ref` named, repeats included, when an incremental build records what
    /// each item uses (`None` otherwise).
    pub uses: Option<Vec<String>>,
}

/// Generic parameters in scope, and what alias parameters stand for.
#[derive(Default, Clone, Copy)]
pub struct Env<'e> {
    pub generics: &'e [String],
    pub substitutions: Option<&'e HashMap<String, TypeRef>>,
    depth: u32,
}

impl<'e> Env<'e> {
    pub fn with_generics(generics: &'e [String]) -> Self {
        Env {
            generics,
            substitutions: None,
            depth: 0,
        }
    }
}

fn render(segments: &[PathSegment]) -> String {
    segments
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join("::")
}

impl<'a> Types<'a> {
    pub fn new(index: Index<'a>) -> Self {
        Types {
            index,
            diagnostics: Vec::new(),
            defs: BTreeMap::new(),
            queued: foldhash::HashSet::default(),
            queue: Vec::new(),
            nesting: 0,
            parts_left: MAX_TYPE_PARTS,
            unreported: None,
            uses: None,
        }
    }

    fn unsupported(&mut self, rust: String, span: &Span, message: String, help: &str) -> TypeRef {
        self.diagnostics.push(
            Diagnostic::error("FG503", message, Some(span.clone()))
                .with_label("cannot cross the wire")
                .with_help(help),
        );
        TypeRef::Unsupported { rust }
    }

    /// Resolves a type expression written in `module`.
    pub fn type_ref(&mut self, module: &str, env: Env, expr: &TypeExpr) -> TypeRef {
        if self.nesting == 0 {
            self.parts_left = MAX_TYPE_PARTS;
            self.unreported = Some(expr.span().clone());
        }
        if !self.spend(1) {
            return self.too_large();
        }
        self.nesting += 1;
        let resolved = self.resolve(module, env, expr);
        self.nesting -= 1;
        resolved
    }

    fn spend(&mut self, parts: usize) -> bool {
        match self.parts_left.checked_sub(parts) {
            Some(left) => {
                self.parts_left = left;
                true
            }
            None => {
                self.parts_left = 0;
                false
            }
        }
    }

    /// Reported once per written type: every part after the first that does not fit would
    /// otherwise add its own diagnostic.
    fn too_large(&mut self) -> TypeRef {
        if let Some(span) = self.unreported.take() {
            self.diagnostics.push(
                Diagnostic::error(
                    "FG503",
                    format!(
                        "this type expands through its type aliases into more than {MAX_TYPE_PARTS} parts"
                    ),
                    Some(span),
                )
                .with_label("too large to describe")
                .with_help("look for a cycle between the type aliases (`type A = (A, A);`), or write the type out"),
            );
        }
        TypeRef::Unsupported {
            rust: "type too large".to_owned(),
        }
    }

    fn resolve(&mut self, module: &str, env: Env, expr: &TypeExpr) -> TypeRef {
        match expr {
            TypeExpr::Path { segments, span } => self.path(module, env, segments, span),
            TypeExpr::Tuple { items, .. } if items.is_empty() => TypeRef::Scalar {
                scalar: Scalar::Unit,
            },
            TypeExpr::Tuple { items, .. } => TypeRef::Tuple {
                items: items
                    .iter()
                    .map(|i| self.type_ref(module, env, i))
                    .collect(),
            },
            TypeExpr::Array { of, len, .. } => {
                let of = Box::new(self.type_ref(module, env, of));
                match len {
                    Some(len) => TypeRef::Array { of, len: *len },
                    None => TypeRef::List { of },
                }
            }
            TypeExpr::Slice { of, .. } => TypeRef::List {
                of: Box::new(self.type_ref(module, env, of)),
            },
            TypeExpr::Reference { of, .. } => self.type_ref(module, env, of),
            TypeExpr::Other { text, span } => self.unsupported(
                text.clone(),
                span,
                format!("`{text}` cannot cross the wire"),
                "use a plain data type (struct, enum, String, number, Vec, Option, map)",
            ),
        }
    }

    fn path(&mut self, module: &str, env: Env, segments: &[PathSegment], span: &Span) -> TypeRef {
        let names: Vec<String> = segments.iter().map(|s| s.name.clone()).collect();
        let args: &[TypeExpr] = segments.last().map_or(&[], |s| &s.args);
        if let [name] = names.as_slice() {
            if let Some(bound) = env.substitutions.and_then(|s| s.get(name)) {
                if !self.spend(parts(bound, self.parts_left + 1)) {
                    return self.too_large();
                }
                return bound.clone();
            }
            if env.generics.contains(name) {
                return TypeRef::Param { name: name.clone() };
            }
        }
        match self.index.lookup(module, &names) {
            Some(Target::Type { id, .. }) => {
                let args = args.iter().map(|a| self.type_ref(module, env, a)).collect();
                self.enqueue(&id);
                TypeRef::Named { id, args }
            }
            Some(Target::Alias { def }) => {
                if env.depth >= MAX_ALIAS_DEPTH {
                    return self.unsupported(
                        render(segments),
                        span,
                        format!("type alias `{}` expands into itself", render(segments)),
                        "break the cycle between the type aliases",
                    );
                }
                let substitutions: HashMap<String, TypeRef> = def
                    .generics
                    .iter()
                    .zip(args)
                    .map(|(param, arg)| (param.clone(), self.type_ref(module, env, arg)))
                    .collect();
                let inner = Env {
                    generics: &[],
                    substitutions: Some(&substitutions),
                    depth: env.depth + 1,
                };
                self.type_ref(&def.module.clone(), inner, &def.target.clone())
            }
            Some(Target::External(path)) => self.external(module, env, &path, args, span),
            None => self.unresolved(&render(segments), span),
        }
    }

    fn unresolved(&mut self, rendered: &str, span: &Span) -> TypeRef {
        self.diagnostics.push(
            Diagnostic::error("FG503", format!("cannot resolve type `{rendered}`"), Some(span.clone()))
                .with_label(super::UNRESOLVED_LABEL)
                .with_help("define the type in this crate or import it with `use`; forge reads only this crate's source, so types from other crates must be ones it knows (std, chrono, time, uuid, serde_json, rust_decimal)"),
        );
        TypeRef::Unsupported {
            rust: rendered.to_owned(),
        }
    }

    fn external(
        &mut self,
        module: &str,
        env: Env,
        path: &[String],
        args: &[TypeExpr],
        span: &Span,
    ) -> TypeRef {
        let rendered = path.join("::");
        let Some(known) = classify(path) else {
            return self.unresolved(&rendered, span);
        };
        let arg = |types: &mut Self, i: usize| match args.get(i) {
            Some(a) => types.type_ref(module, env, a),
            None => types.unsupported(
                rendered.clone(),
                span,
                format!("`{rendered}` needs {} type argument(s)", i + 1),
                "write the type arguments out",
            ),
        };
        match known {
            Known::Scalar(scalar) => TypeRef::Scalar { scalar },
            Known::Option => TypeRef::Option {
                of: Box::new(arg(self, 0)),
            },
            Known::List => TypeRef::List {
                of: Box::new(arg(self, 0)),
            },
            Known::Map => TypeRef::Map {
                key: Box::new(arg(self, 0)),
                value: Box::new(arg(self, 1)),
            },
            Known::Transparent => arg(self, 0),
            Known::Result => self.unsupported(
                rendered.clone(),
                span,
                format!("`{rendered}` cannot be a field or argument type"),
                "send the error as a data type of your own (for example an enum with a variant per outcome)",
            ),
            Known::Refused(reason) => self.unsupported(
                rendered.clone(),
                span,
                format!("`{rendered}` cannot cross the wire: {reason}"),
                "use i64 or i32 for counts and ids, or a String for exact large numbers",
            ),
        }
    }

    pub fn enqueue(&mut self, id: &str) {
        if let Some(uses) = &mut self.uses {
            uses.push(id.to_owned());
        }
        self.enqueue_reused(id);
    }

    /// [`Self::enqueue`] for a type named by an entry taken from a cache, whose uses are
    /// already recorded with it.
    pub fn enqueue_reused(&mut self, id: &str) {
        // Most ids are named many times: only the first one is copied.
        if !self.queued.contains(id) {
            self.queued.insert(id.to_owned());
            self.queue.push(id.to_owned());
        }
    }

    /// Adds a type by id (models are added this way) and builds everything queued.
    pub fn add(&mut self, id: &str) {
        self.enqueue(id);
    }

    pub fn build_queued(&mut self) {
        self.build_queued_with(|_, _| None, |def, _, _| Arc::new(def));
    }

    /// [`Self::build_queued`], taking each type from `reuse` when it has it (a definition
    /// with the diagnostics and uses building it gave) and handing each type it built to
    /// `built`, with the diagnostics and uses recorded in [`Self::uses`], to be shared.
    pub fn build_queued_with(
        &mut self,
        mut reuse: impl FnMut(&str, &RawType) -> Option<(Arc<TypeDef>, Vec<Diagnostic>, Arc<[String]>)>,
        mut built: impl FnMut(TypeDef, &[Diagnostic], &[String]) -> Arc<TypeDef>,
    ) {
        while let Some(id) = self.queue.pop() {
            let Some(raw) = self.index.type_def(&id) else {
                continue;
            };
            if let Some((def, diagnostics, uses)) = reuse(&id, raw) {
                self.diagnostics.extend(diagnostics);
                uses.iter().for_each(|used| self.enqueue_reused(used));
                self.defs.insert(id, def);
                continue;
            }
            let (diagnostics, uses) = (self.diagnostics.len(), self.uses_len());
            let def = self.type_def(&id, raw);
            let def = built(def, &self.diagnostics[diagnostics..], self.uses_since(uses));
            self.defs.insert(id, def);
        }
    }

    pub fn uses_len(&self) -> usize {
        self.uses.as_ref().map_or(0, Vec::len)
    }

    pub fn uses_since(&self, start: usize) -> &[String] {
        self.uses.as_ref().map_or(&[], |uses| &uses[start..])
    }

    fn type_def(&mut self, id: &str, raw: &RawType) -> TypeDef {
        let env = Env::with_generics(&raw.generics);
        let shape = if raw.opaque {
            Shape::Newtype {
                of: TypeRef::Unsupported {
                    rust: raw.name.clone(),
                },
            }
        } else {
            self.shape(raw, env)
        };
        TypeDef {
            id: id.to_owned(),
            name: raw.name.clone(),
            module: raw.module.clone(),
            generics: raw.generics.clone(),
            doc: raw.doc.clone(),
            model: raw.model.clone(),
            usage: Usage::default(),
            shape,
            span: raw.span.clone(),
        }
    }

    fn rules(&mut self, rename_all: &Directional, span: &Span) -> Rules {
        let mut parse = |name: &Option<String>| {
            let name = name.as_ref()?;
            let rule = RenameRule::from_serde(name);
            if rule.is_none() {
                self.diagnostics.push(
                    Diagnostic::error(
                        "FG503",
                        format!("unknown serde case `{name}`"),
                        Some(span.clone()),
                    )
                    .with_help(format!(
                        "valid values: {}",
                        RenameRule::SERDE_NAMES.join(", ")
                    )),
                );
            }
            rule
        };
        Rules {
            serialize: parse(&rename_all.serialize),
            deserialize: parse(&rename_all.deserialize),
        }
    }

    fn shape(&mut self, raw: &RawType, env: Env) -> Shape {
        let module = raw.module.as_str();
        let serde = &raw.serde;
        match &raw.body {
            RawBody::Named { fields } => {
                let rules = self.rules(&serde.rename_all, &raw.span);
                let fields: Vec<Field> = fields
                    .iter()
                    .map(|f| self.field(module, env, f, rules, serde.default))
                    .collect();
                if serde.transparent {
                    if let Some(inner) = fields.iter().find(|f| !f.skip_serializing) {
                        return Shape::Newtype {
                            of: inner.ty.clone(),
                        };
                    }
                }
                Shape::Struct {
                    fields,
                    tag: serde.tag.as_ref().map(|tag| StructTag {
                        tag: tag.clone(),
                        value: serde
                            .rename
                            .serialize
                            .clone()
                            .unwrap_or_else(|| raw.name.clone()),
                    }),
                }
            }
            RawBody::Tuple { fields } => {
                let items: Vec<TypeRef> = fields
                    .iter()
                    .map(|f| self.field_type(module, env, f))
                    .collect();
                match <[TypeRef; 1]>::try_from(items) {
                    Ok([of]) => Shape::Newtype { of },
                    Err(items) if serde.transparent && !items.is_empty() => Shape::Newtype {
                        of: items[0].clone(),
                    },
                    Err(items) => Shape::Tuple { items },
                }
            }
            RawBody::Unit => Shape::Unit,
            RawBody::Enum { variants } => {
                let rules = self.rules(&serde.rename_all, &raw.span);
                let field_rules = self.rules(&serde.rename_all_fields, &raw.span);
                Shape::Enum {
                    tagging: tagging(serde),
                    variants: variants
                        .iter()
                        .map(|v| self.variant(module, env, v, rules, field_rules))
                        .collect(),
                }
            }
        }
    }

    fn field_type(&mut self, module: &str, env: Env, raw: &RawField) -> TypeRef {
        if raw.opaque {
            TypeRef::Unsupported {
                rust: "custom serde representation".to_owned(),
            }
        } else {
            self.type_ref(module, env, &raw.ty)
        }
    }

    fn field(
        &mut self,
        module: &str,
        env: Env,
        raw: &RawField,
        rules: Rules,
        container_default: bool,
    ) -> Field {
        let attrs = &raw.serde;
        Field {
            rust_name: raw.name.clone(),
            wire: wire_name(
                &raw.name,
                &attrs.rename,
                &attrs.aliases,
                rules,
                RenameRule::apply_to_field,
            ),
            ty: self.field_type(module, env, raw),
            doc: raw.doc.clone(),
            skip_serializing: attrs.skip_serializing,
            skip_deserializing: attrs.skip_deserializing,
            skip_serializing_if: attrs.skip_serializing_if.clone(),
            default: attrs.default || container_default,
            flatten: attrs.flatten,
            span: raw.span.clone(),
        }
    }

    fn variant(
        &mut self,
        module: &str,
        env: Env,
        raw: &RawVariant,
        rules: Rules,
        field_rules: Rules,
    ) -> Variant {
        let attrs = &raw.serde;
        let own_rules = self.rules(&attrs.rename_all, &raw.span);
        let field_rules = Rules {
            serialize: own_rules.serialize.or(field_rules.serialize),
            deserialize: own_rules.deserialize.or(field_rules.deserialize),
        };
        let shape = match &raw.body {
            RawBody::Unit => VariantShape::Unit,
            RawBody::Tuple { fields } if fields.len() == 1 => VariantShape::Newtype {
                of: self.field_type(module, env, &fields[0]),
            },
            RawBody::Tuple { fields } => VariantShape::Tuple {
                items: fields
                    .iter()
                    .map(|f| self.field_type(module, env, f))
                    .collect(),
            },
            RawBody::Named { fields } => VariantShape::Struct {
                fields: fields
                    .iter()
                    .map(|f| self.field(module, env, f, field_rules, false))
                    .collect(),
            },
            RawBody::Enum { .. } => VariantShape::Unit,
        };
        Variant {
            rust_name: raw.name.clone(),
            wire: wire_name(
                &raw.name,
                &attrs.rename,
                &attrs.aliases,
                rules,
                RenameRule::apply_to_variant,
            ),
            doc: raw.doc.clone(),
            skip_serializing: attrs.skip_serializing,
            skip_deserializing: attrs.skip_deserializing,
            other: attrs.other,
            untagged: attrs.untagged,
            shape,
            span: raw.span.clone(),
        }
    }
}

/// The number of nodes in `ty`, counted up to `limit`.
fn parts(ty: &TypeRef, limit: usize) -> usize {
    let mut count = 0;
    let mut stack = vec![ty];
    while let Some(ty) = stack.pop() {
        count += 1;
        if count >= limit {
            break;
        }
        match ty {
            TypeRef::Option { of } | TypeRef::List { of } | TypeRef::Array { of, .. } => {
                stack.push(of)
            }
            TypeRef::Map { key, value } => stack.extend([&**key, &**value]),
            TypeRef::Tuple { items } | TypeRef::Named { args: items, .. } => stack.extend(items),
            TypeRef::Scalar { .. } | TypeRef::Param { .. } | TypeRef::Unsupported { .. } => {}
        }
    }
    count
}

#[derive(Clone, Copy)]
struct Rules {
    serialize: Option<RenameRule>,
    deserialize: Option<RenameRule>,
}

fn wire_name(
    name: &str,
    rename: &Directional,
    aliases: &[String],
    rules: Rules,
    apply: fn(RenameRule, &str) -> String,
) -> WireName {
    let pick = |explicit: &Option<String>, rule: Option<RenameRule>| {
        explicit
            .clone()
            .or_else(|| rule.map(|r| apply(r, name)))
            .unwrap_or_else(|| name.to_owned())
    };
    WireName {
        serialize: pick(&rename.serialize, rules.serialize),
        deserialize: pick(&rename.deserialize, rules.deserialize),
        aliases: aliases.to_vec(),
    }
}

fn tagging(serde: &ContainerAttrs) -> Tagging {
    match (&serde.tag, &serde.content, serde.untagged) {
        (_, _, true) => Tagging::Untagged,
        (Some(tag), Some(content), false) => Tagging::Adjacent {
            tag: tag.clone(),
            content: content.clone(),
        },
        (Some(tag), None, false) => Tagging::Internal { tag: tag.clone() },
        (None, _, false) => Tagging::External,
    }
}
