//! JSON Schema (draft 2020-12) for a project's API, exactly as serde puts it on the wire.
//!
//! Two products:
//!
//! - [`emit`]: one document (`forge generate --target jsonschema`) with a `$defs` entry for
//!   every type reachable from a handler signature and, under `handlers`, each handler's
//!   `input` and `output` schema, grouped by kind:
//!   `{"$schema", "title", "handlers": {"query": {"list_items": {"description", "input",
//!   "output"}}, "workflow": {"onboard@2": …}}, "$defs": {…}}`. Queries, mutations and MCP
//!   tools take an object of their arguments by name (required unless an `Option`, no
//!   others: the glue denies unknown fields); jobs, workflows and webhooks their single
//!   input; crons and daemons nothing. The schemas point into the document's own `$defs`
//!   (`#/$defs/…`), so a validator loads the whole document and validates against
//!   `#/handlers/<kind>/<name>/input`.
//! - [`tool_input_schema`]: one MCP tool's argument object as a self-contained compact
//!   schema (its own `$defs`), which the glue carries to the runtime's `tools/list`.
//!
//! # Direction
//!
//! serde reads and writes a type differently: deserialize names and `default`/`Option`
//! fields a client may leave out on the way in, serialize names and `skip_serializing_if`
//! fields the server may leave out on the way out (the TypeScript emitter's rules). Every
//! schema here has one direction: inputs reference input definitions, outputs output
//! ones. A type used both ways has one definition when both directions give the same
//! schema, and two (`Name.input`, `Name.output`) when they differ.
//!
//! # Generics
//!
//! JSON Schema has none, so each instantiation is its own definition (`Page<User>` is
//! `Page_User`, titled `Page<User>`).
//!
//! # Names
//!
//! A definition's key is the type's name, or its module path with `.` separators when two
//! types share the name, with generic arguments appended; a key that is still taken gets
//! `_2`, `_3`, …. References percent-encode everything but `[A-Za-z0-9._~-]`.
//!
//! Output depends only on the IR, walked in its sorted order: same IR, same bytes.

pub(crate) mod json;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use self::json::render;
pub(crate) use self::json::Json;
use crate::ir::{
    Field, Handler, Ir, Kind, Scalar, Shape, Tagging, TypeDef, TypeRef, Variant, VariantShape,
    WireName,
};

/// The dialect every schema is written in.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Generic arguments nest at most this deep; deeper ones (only polymorphic recursion gets
/// there, which serde cannot derive for anyway) are left unconstrained.
const MAX_DEPTH: usize = 8;
/// A bound on definitions, against the same.
const MAX_DEFS: usize = 20_000;

/// The API document, pretty-printed with a trailing newline.
pub fn emit(ir: &Ir) -> String {
    let mut builder = Builder::new(ir);
    let mut groups: BTreeMap<&'static str, Vec<(String, Json)>> = BTreeMap::new();
    for handler in &ir.handlers {
        let Some(group) = group(handler.kind) else {
            continue;
        };
        let key = match (&handler.workflow, handler.kind) {
            (Some(contract), Kind::Workflow) => format!("{}@{}", handler.name, contract.version),
            _ => handler.name.clone(),
        };
        let entries = groups.entry(group).or_default();
        if entries.iter().any(|(k, _)| *k == key) {
            // Two handlers of one kind share a name: FG502 reports it; keep the first.
            continue;
        }
        let mut entry = Vec::new();
        if let Some(doc) = &handler.doc {
            entry.push(("description".to_owned(), Json::str(doc.trim())));
        }
        if let Some(input) = builder.handler_input(handler) {
            entry.push(("input".to_owned(), input));
        }
        let output = builder.ty(&handler.returns, &Subst::new(), Dir::Output);
        entry.push(("output".to_owned(), output));
        entries.push((key, Json::Obj(entry)));
    }
    let handlers = Json::obj(
        groups
            .into_iter()
            .map(|(group, entries)| (group, Json::Obj(entries))),
    );
    let defs = builder.finish();
    let document = Json::obj([
        ("$schema", Json::str(DIALECT)),
        ("title", Json::str("forge API")),
        ("handlers", handlers),
    ]);
    let mut out = defs.render(document, Some(0));
    out.push('\n');
    out
}

/// The schema of an MCP tool's (or any query's or mutation's) `args` object: compact,
/// self-contained, with only the definitions it needs.
pub fn tool_input_schema(ir: &Ir, handler: &Handler) -> String {
    let mut builder = Builder::new(ir);
    let schema = builder.args_object(handler);
    let defs = builder.finish();
    defs.render(schema, None)
}

/// The same definitions for another document (the OpenAPI emitter's `components`): one
/// wire-shape source, so both documents describe a type identically.
pub(crate) struct Schemas<'a>(Builder<'a>);

impl<'a> Schemas<'a> {
    pub(crate) fn new(ir: &'a Ir) -> Self {
        Schemas(Builder::new(ir))
    }

    /// A query's or mutation's `args` object (input direction).
    pub(crate) fn args(&mut self, handler: &Handler) -> Json {
        self.0.args_object(handler)
    }

    /// What the server sends for `ty` (output direction).
    pub(crate) fn output(&mut self, ty: &TypeRef) -> Json {
        self.0.ty(ty, &Subst::new(), Dir::Output)
    }

    /// The definitions used so far, keyed so that none takes a key in `reserved`.
    pub(crate) fn finish(self, reserved: &[&str]) -> Definitions {
        Definitions(self.0.finish_reserving(reserved))
    }
}

/// Definitions to place in a document of the caller's making.
pub(crate) struct Definitions(Defs);

impl Definitions {
    /// The definitions, by key, sorted; references in them still to be resolved by
    /// [`Definitions::render`].
    pub(crate) fn take(&mut self) -> Vec<(String, Json)> {
        std::mem::take(&mut self.0.defs)
    }

    /// `root` rendered with every reference pointing at `prefix` + key
    /// (`#/components/schemas/`).
    pub(crate) fn render(self, root: &Json, indent: Option<usize>, prefix: &str) -> String {
        let keys = self.0.keys;
        render(root, indent, &|n| format!("{prefix}{}", fragment(&keys[n])))
    }
}

/// The group a handler's schemas go under in the document.
fn group(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Query => "query",
        Kind::Mutation => "mutation",
        Kind::McpTool => "mcp_tool",
        Kind::Job => "job",
        Kind::Cron => "cron",
        Kind::Workflow => "workflow",
        Kind::Daemon => "daemon",
        Kind::Webhook => "webhook",
        Kind::Model => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Dir {
    /// Sent by clients: the server deserialises it.
    Input,
    /// Sent by the server: it serialises it.
    Output,
}

impl Dir {
    fn wire_name(self, wire: &WireName) -> &str {
        match self {
            Dir::Input => &wire.deserialize,
            Dir::Output => &wire.serialize,
        }
    }

    fn omits(self, skip_serializing: bool, skip_deserializing: bool) -> bool {
        match self {
            Dir::Input => skip_deserializing,
            Dir::Output => skip_serializing,
        }
    }
}

/// Generic parameter → the (closed) type it stands for.
type Subst = HashMap<String, TypeRef>;

/// One definition: a type with closed generic arguments, in one direction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Instance {
    id: String,
    args: Vec<TypeRef>,
    dir: Dir,
}

struct Builder<'a> {
    ir: &'a Ir,
    /// The key base of each type id: its name, or its path when names clash.
    names: HashMap<&'a str, String>,
    instances: Vec<Instance>,
    index: HashMap<Instance, usize>,
    bodies: Vec<Json>,
    /// Definitions whose bodies are still to be built.
    pending: Vec<usize>,
}

impl<'a> Builder<'a> {
    fn new(ir: &'a Ir) -> Self {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for def in &ir.types {
            *count.entry(def.name.as_str()).or_default() += 1;
        }
        let names = ir
            .types
            .iter()
            .map(|def| {
                let name = if count[def.name.as_str()] > 1 {
                    def.id.replace("::", ".")
                } else {
                    def.name.clone()
                };
                (def.id.as_str(), name)
            })
            .collect();
        Builder {
            ir,
            names,
            instances: Vec::new(),
            index: HashMap::new(),
            bodies: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// What a handler receives: its `args` object, its single input, or nothing.
    fn handler_input(&mut self, handler: &Handler) -> Option<Json> {
        match handler.kind {
            Kind::Query | Kind::Mutation | Kind::McpTool => Some(self.args_object(handler)),
            Kind::Job | Kind::Workflow | Kind::Webhook => match handler.args.as_slice() {
                [arg] => Some(self.ty(&arg.ty, &Subst::new(), Dir::Input)),
                _ => None,
            },
            Kind::Cron | Kind::Daemon | Kind::Model => None,
        }
    }

    /// `{"type": "object", "properties": {arg: …}, "required": […],
    /// "additionalProperties": false}`: the glue's argument structs deny unknown fields,
    /// and serde lets an `Option` argument be left out.
    fn args_object(&mut self, handler: &Handler) -> Json {
        let mut properties = Vec::new();
        let mut required = Vec::new();
        for arg in &handler.args {
            let schema = self.ty(&arg.ty, &Subst::new(), Dir::Input);
            properties.push((arg.name.clone(), schema));
            if !matches!(arg.ty, TypeRef::Option { .. }) {
                required.push(Json::str(&arg.name));
            }
        }
        let mut members = vec![("type", Json::str("object"))];
        members.push(("properties", Json::Obj(properties)));
        if !required.is_empty() {
            members.push(("required", Json::Arr(required)));
        }
        members.push(("additionalProperties", Json::Bool(false)));
        Json::obj(members)
    }

    /// The schema of `ty` in direction `dir`, with `subst` closing its parameters.
    fn ty(&mut self, ty: &TypeRef, subst: &Subst, dir: Dir) -> Json {
        match ty {
            TypeRef::Scalar { scalar } => scalar_schema(*scalar),
            TypeRef::Option { of } => {
                let inner = strip_options(of);
                if matches!(
                    inner,
                    TypeRef::Scalar {
                        scalar: Scalar::Unit
                    }
                ) {
                    return Json::typed("null");
                }
                let inner = self.ty(inner, subst, dir);
                Json::obj([("anyOf", Json::Arr(vec![inner, Json::typed("null")]))])
            }
            TypeRef::List { of } => Json::typed("array").with("items", self.ty(of, subst, dir)),
            TypeRef::Map { value, .. } => {
                Json::typed("object").with("additionalProperties", self.ty(value, subst, dir))
            }
            TypeRef::Tuple { items } => self.tuple(items, subst, dir),
            TypeRef::Array { of, len } => Json::typed("array")
                .with("items", self.ty(of, subst, dir))
                .with("minItems", Json::Int(i64::from(*len)))
                .with("maxItems", Json::Int(i64::from(*len))),
            TypeRef::Named { id, args } => {
                let args: Vec<TypeRef> = args.iter().map(|arg| arg.substituted(subst)).collect();
                self.reference(id, args, dir)
            }
            TypeRef::Param { name } => match subst.get(name) {
                Some(closed) => {
                    let closed = closed.clone();
                    self.ty(&closed, &Subst::new(), dir)
                }
                // A parameter nothing closes: the parser reported it; anything goes.
                None => Json::Obj(Vec::new()),
            },
            // FG503 reported it; the schema stays valid and admits anything.
            TypeRef::Unsupported { .. } => Json::Obj(Vec::new()),
        }
    }

    fn tuple(&mut self, items: &[TypeRef], subst: &Subst, dir: Dir) -> Json {
        let items: Vec<Json> = items.iter().map(|item| self.ty(item, subst, dir)).collect();
        let len = Json::Int(items.len() as i64);
        Json::typed("array")
            .with("prefixItems", Json::Arr(items))
            .with("items", Json::Bool(false))
            .with("minItems", len)
    }

    /// `{"$ref": …}` to the definition of `id<args>` in `dir`, made on first use.
    fn reference(&mut self, id: &str, args: Vec<TypeRef>, dir: Dir) -> Json {
        let Ok(position) = self.ir.types.binary_search_by(|d| d.id.as_str().cmp(id)) else {
            // A dangling id is a parser bug; stay valid.
            return Json::Obj(Vec::new());
        };
        let def = &self.ir.types[position];
        let instance = Instance {
            id: def.id.clone(),
            args,
            dir,
        };
        if let Some(&n) = self.index.get(&instance) {
            return Json::obj([("$ref", Json::Ref(n))]);
        }
        if self.instances.len() >= MAX_DEFS
            || instance.args.iter().any(|arg| nesting(arg) > MAX_DEPTH)
        {
            return Json::Obj(Vec::new());
        }
        let n = self.instances.len();
        self.instances.push(instance.clone());
        self.index.insert(instance.clone(), n);
        self.bodies.push(Json::Null);
        self.pending.push(n);
        Json::obj([("$ref", Json::Ref(n))])
    }

    /// Builds the body of every definition referenced so far, and of those they reference.
    /// A work list rather than recursion, so long chains of types need no deep stack.
    fn drain(&mut self) {
        while let Some(n) = self.pending.pop() {
            let instance = self.instances[n].clone();
            let Some(def) = self.ir.type_def(&instance.id) else {
                continue;
            };
            let subst: Subst = def
                .generics
                .iter()
                .cloned()
                .zip(instance.args.iter().cloned())
                .collect();
            self.bodies[n] = self.definition(def, &instance.args, &subst, instance.dir);
        }
    }

    fn definition(&mut self, def: &TypeDef, args: &[TypeRef], subst: &Subst, dir: Dir) -> Json {
        let mut head = vec![("title".to_owned(), Json::str(display(self.ir, def, args)))];
        if let Some(doc) = &def.doc {
            head.push(("description".to_owned(), Json::str(doc.trim())));
        }
        let body = match &def.shape {
            Shape::Struct { fields, tag } => {
                let tag = tag
                    .as_ref()
                    .map(|t| (t.tag.as_str(), Json::obj([("const", Json::str(&t.value))])));
                self.object(tag, fields, subst, dir)
            }
            Shape::Tuple { items } => self.tuple(items, subst, dir),
            Shape::Newtype { of } => self.ty(of, subst, dir),
            Shape::Unit => Json::typed("null"),
            Shape::Enum { tagging, variants } => self.variants(tagging, variants, subst, dir),
        };
        match body {
            Json::Obj(members) => {
                head.extend(members);
                Json::Obj(head)
            }
            other => {
                head.push(("allOf".to_owned(), Json::Arr(vec![other])));
                Json::Obj(head)
            }
        }
    }

    /// A struct's (or struct variant's) object, with its tag member first.
    fn object(
        &mut self,
        tag: Option<(&str, Json)>,
        fields: &[Field],
        subst: &Subst,
        dir: Dir,
    ) -> Json {
        let mut properties = Vec::new();
        let mut required = Vec::new();
        let mut merged = Vec::new();
        let mut rest: Option<Json> = None;
        if let Some((tag, schema)) = tag {
            properties.push((tag.to_owned(), schema));
            required.push(Json::str(tag));
        }
        for field in fields {
            if dir.omits(field.skip_serializing, field.skip_deserializing) {
                continue;
            }
            if field.flatten {
                self.flatten(&field.ty, subst, dir, &mut merged, &mut rest);
                continue;
            }
            let name = dir.wire_name(&field.wire);
            let (optional, ty) = optionality(field, dir);
            let mut schema = self.ty(ty, subst, dir);
            if let Some(doc) = &field.doc {
                schema = schema.with("description", Json::str(doc.trim()));
            }
            if !optional {
                required.push(Json::str(name));
            }
            properties.push((name.to_owned(), schema));
        }
        let mut members = vec![("type", Json::str("object"))];
        if !properties.is_empty() {
            members.push(("properties", Json::Obj(properties)));
        }
        if !required.is_empty() {
            members.push(("required", Json::Arr(required)));
        }
        if !merged.is_empty() {
            members.push(("allOf", Json::Arr(merged)));
        }
        if let Some(rest) = rest {
            // Unlike `additionalProperties`, this sees the members `allOf` brings in.
            members.push(("unevaluatedProperties", rest));
        }
        Json::obj(members)
    }

    /// A flattened field: a struct or enum's members are merged (`allOf`), a map's entries
    /// are every other member (`unevaluatedProperties`), `Option<T>` all of `T` or none of
    /// it, which constrains nothing.
    fn flatten(
        &mut self,
        ty: &TypeRef,
        subst: &Subst,
        dir: Dir,
        merged: &mut Vec<Json>,
        rest: &mut Option<Json>,
    ) {
        match ty {
            TypeRef::Option { .. } | TypeRef::Unsupported { .. } => {}
            TypeRef::Scalar {
                scalar: Scalar::Json | Scalar::JsonObject,
            } => *rest = Some(Json::Obj(Vec::new())),
            TypeRef::Map { value, .. } => {
                let value = self.ty(value, subst, dir);
                *rest = match rest.take() {
                    // Two flattened maps: an entry is read into the first that takes it.
                    Some(other) if other != value => {
                        Some(Json::obj([("anyOf", Json::Arr(vec![other, value]))]))
                    }
                    _ => Some(value),
                };
            }
            TypeRef::Param { name } => {
                if let Some(closed) = subst.get(name).cloned() {
                    self.flatten(&closed, &Subst::new(), dir, merged, rest);
                }
            }
            _ => merged.push(self.ty(ty, subst, dir)),
        }
    }

    fn variants(
        &mut self,
        tagging: &Tagging,
        variants: &[Variant],
        subst: &Subst,
        dir: Dir,
    ) -> Json {
        let mut units = Vec::new();
        let mut others = Vec::new();
        for variant in variants {
            let tagging = if variant.untagged {
                &Tagging::Untagged
            } else {
                tagging
            };
            let impossible = matches!(
                (tagging, &variant.shape),
                (Tagging::Internal { .. }, VariantShape::Tuple { .. })
            );
            if impossible || dir.omits(variant.skip_serializing, variant.skip_deserializing) {
                continue;
            }
            let name = dir.wire_name(&variant.wire);
            let tag_value = if dir == Dir::Input && variant.other {
                // On the way in, `#[serde(other)]` takes every tag no other variant has.
                Json::typed("string").with(
                    "not",
                    Json::obj([("enum", Json::Arr(input_tags(variants)))]),
                )
            } else if dir == Dir::Input && !variant.wire.aliases.is_empty() {
                let mut names = vec![Json::str(name)];
                names.extend(variant.wire.aliases.iter().map(Json::str));
                Json::obj([("enum", Json::Arr(names))])
            } else {
                Json::obj([("const", Json::str(name))])
            };
            let mut schema = match (tagging, &variant.shape) {
                (Tagging::External, VariantShape::Unit) => {
                    units.push(Json::str(name));
                    if dir == Dir::Input {
                        units.extend(variant.wire.aliases.iter().map(Json::str));
                    }
                    continue;
                }
                (Tagging::External, payload) => {
                    let payload = self.payload(payload, subst, dir);
                    Json::typed("object")
                        .with("properties", Json::obj([(name, payload)]))
                        .with("required", Json::Arr(vec![Json::str(name)]))
                        .with("additionalProperties", Json::Bool(false))
                }
                (Tagging::Internal { tag }, VariantShape::Unit)
                | (Tagging::Adjacent { tag, .. }, VariantShape::Unit) => Json::typed("object")
                    .with("properties", Json::obj([(tag.as_str(), tag_value)]))
                    .with("required", Json::Arr(vec![Json::str(tag)])),
                (Tagging::Internal { tag }, VariantShape::Struct { fields }) => {
                    self.object(Some((tag, tag_value)), fields, subst, dir)
                }
                (Tagging::Internal { tag }, VariantShape::Newtype { of }) => {
                    let tagged = Json::typed("object")
                        .with("properties", Json::obj([(tag.as_str(), tag_value)]))
                        .with("required", Json::Arr(vec![Json::str(tag)]));
                    let payload = self.ty(of, subst, dir);
                    Json::obj([("allOf", Json::Arr(vec![tagged, payload]))])
                }
                (Tagging::Internal { .. }, VariantShape::Tuple { .. }) => continue,
                (Tagging::Adjacent { tag, content }, payload) => {
                    let payload = self.payload(payload, subst, dir);
                    Json::typed("object")
                        .with(
                            "properties",
                            Json::obj([(tag.as_str(), tag_value), (content.as_str(), payload)]),
                        )
                        .with(
                            "required",
                            Json::Arr(vec![Json::str(tag), Json::str(content)]),
                        )
                }
                (Tagging::Untagged, VariantShape::Unit) => Json::typed("null"),
                (Tagging::Untagged, payload) => self.payload(payload, subst, dir),
            };
            if let Some(doc) = &variant.doc {
                schema = schema.with("description", Json::str(doc.trim()));
            }
            others.push(schema);
        }
        let units = match units.len() {
            0 => None,
            _ => Some(Json::typed("string").with("enum", Json::Arr(units))),
        };
        match (units, others.len()) {
            (None, 0) => Json::obj([("not", Json::Obj(Vec::new()))]),
            (Some(units), 0) => units,
            (None, 1) => others.pop().unwrap_or(Json::Null),
            (units, _) => {
                let mut all: Vec<Json> = units.into_iter().collect();
                all.extend(others);
                Json::obj([("anyOf", Json::Arr(all))])
            }
        }
    }

    /// A variant's data without its tag.
    fn payload(&mut self, shape: &VariantShape, subst: &Subst, dir: Dir) -> Json {
        match shape {
            VariantShape::Unit => Json::typed("null"),
            VariantShape::Newtype { of } => self.ty(of, subst, dir),
            VariantShape::Tuple { items } => self.tuple(items, subst, dir),
            VariantShape::Struct { fields } => self.object(None, fields, subst, dir),
        }
    }

    /// Decides which types used both ways need a definition per direction, and names
    /// every definition.
    fn finish(self) -> Defs {
        self.finish_reserving(&[])
    }

    /// [`Builder::finish`], leaving the keys in `reserved` to the caller's own definitions.
    fn finish_reserving(mut self, reserved: &[&str]) -> Defs {
        self.drain();
        let n = self.instances.len();
        let twin: Vec<Option<usize>> = self
            .instances
            .iter()
            .map(|instance| {
                let other = Instance {
                    dir: match instance.dir {
                        Dir::Input => Dir::Output,
                        Dir::Output => Dir::Input,
                    },
                    ..instance.clone()
                };
                self.index.get(&other).copied()
            })
            .collect();
        // Twins start merged; a pair splits when its bodies differ, counting references to
        // merged twins as equal. Splitting only ever grows, so this ends.
        let mut split = vec![false; n];
        loop {
            let mut changed = false;
            for i in 0..n {
                let Some(j) = twin[i] else { continue };
                if split[i] || i > j {
                    continue;
                }
                if !same(&self.bodies[i], &self.bodies[j], &twin, &split) {
                    split[i] = true;
                    split[j] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Keys, in first-use order. A merged pair shares one key and one body.
        let mut taken: BTreeSet<String> = reserved.iter().map(|&key| key.to_owned()).collect();
        let mut keys: Vec<String> = vec![String::new(); n];
        let mut emitted = Vec::new();
        for i in 0..n {
            if let Some(j) = twin[i] {
                if !split[i] && j < i {
                    keys[i] = keys[j].clone();
                    continue;
                }
            }
            let instance = &self.instances[i];
            let mut base = self.key_base(&instance.id, &instance.args);
            if split[i] {
                base.push_str(match instance.dir {
                    Dir::Input => ".input",
                    Dir::Output => ".output",
                });
            }
            let mut key = base.clone();
            let mut k = 2;
            while taken.contains(&key) {
                key = format!("{base}_{k}");
                k += 1;
            }
            taken.insert(key.clone());
            keys[i] = key;
            emitted.push(i);
        }
        // `$defs` sorted by key, so the document reads like an index.
        emitted.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
        let mut bodies: Vec<Option<Json>> = self.bodies.into_iter().map(Some).collect();
        let defs = emitted
            .into_iter()
            .map(|i| (keys[i].clone(), bodies[i].take().unwrap_or(Json::Null)))
            .collect();
        Defs { keys, defs }
    }

    fn key_base(&self, id: &str, args: &[TypeRef]) -> String {
        let mut key = self
            .names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.replace("::", "."));
        for arg in args {
            key.push('_');
            key.push_str(&self.arg_key(arg));
        }
        key
    }

    /// A generic argument as part of a key: `Vec_User`, `Option_String`, `Map_String_i32`.
    fn arg_key(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Scalar { scalar } => scalar_key(*scalar).to_owned(),
            TypeRef::Option { of } => format!("Option_{}", self.arg_key(of)),
            TypeRef::List { of } => format!("Vec_{}", self.arg_key(of)),
            TypeRef::Map { key, value } => {
                format!("Map_{}_{}", self.arg_key(key), self.arg_key(value))
            }
            TypeRef::Tuple { items } => {
                let mut key = format!("Tuple{}", items.len());
                for item in items {
                    key.push('_');
                    key.push_str(&self.arg_key(item));
                }
                key
            }
            TypeRef::Array { of, len } => format!("Array{len}_{}", self.arg_key(of)),
            TypeRef::Named { id, args } => self.key_base(id, args),
            TypeRef::Param { name } => name.clone(),
            TypeRef::Unsupported { .. } => "unknown".to_owned(),
        }
    }
}

/// The named definitions and the key of every instance, ready to render.
struct Defs {
    keys: Vec<String>,
    defs: Vec<(String, Json)>,
}

impl Defs {
    /// `root` with `$defs` appended (when there are any) and every reference resolved.
    fn render(self, root: Json, indent: Option<usize>) -> String {
        let root = if self.defs.is_empty() {
            root
        } else {
            root.with("$defs", Json::Obj(self.defs))
        };
        let keys = self.keys;
        render(&root, indent, &|n| {
            format!("#/$defs/{}", fragment(&keys[n]))
        })
    }
}

/// The tags the tagged variants of an enum read (names and aliases), for the tag
/// values a `#[serde(other)]` variant takes.
fn input_tags(variants: &[Variant]) -> Vec<Json> {
    let mut tags = Vec::new();
    for variant in variants {
        if variant.other || variant.untagged || variant.skip_deserializing {
            continue;
        }
        tags.push(Json::str(&variant.wire.deserialize));
        tags.extend(variant.wire.aliases.iter().map(Json::str));
    }
    tags
}

/// Whether two bodies are the same schema, with a reference to `i` equal to one to `j`
/// when they are the same definition or merged twins.
fn same(a: &Json, b: &Json, twin: &[Option<usize>], split: &[bool]) -> bool {
    match (a, b) {
        (Json::Ref(i), Json::Ref(j)) => i == j || (twin[*i] == Some(*j) && !split[*i]),
        (Json::Arr(x), Json::Arr(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b, twin, split))
        }
        (Json::Obj(x), Json::Obj(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b, twin, split))
        }
        _ => a == b,
    }
}

/// Whether a client or the server may leave `field` out, and the type it has when present.
/// The server leaves out what it may skip; a client may leave out a `default` or `Option`
/// field. A field the server leaves out when it is `None` is never `null`.
fn optionality(field: &Field, dir: Dir) -> (bool, &TypeRef) {
    match dir {
        Dir::Output => {
            let ty = match &field.ty {
                TypeRef::Option { of }
                    if field
                        .skip_serializing_if
                        .as_deref()
                        .is_some_and(is_none_predicate) =>
                {
                    &**of
                }
                ty => ty,
            };
            (field.skip_serializing_if.is_some(), ty)
        }
        Dir::Input => (
            field.default || matches!(field.ty, TypeRef::Option { .. }),
            &field.ty,
        ),
    }
}

/// `Option::is_none`, however it is spelled.
fn is_none_predicate(path: &str) -> bool {
    let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(
        path.as_str(),
        "Option::is_none" | "std::option::Option::is_none" | "core::option::Option::is_none"
    )
}

fn strip_options(mut ty: &TypeRef) -> &TypeRef {
    while let TypeRef::Option { of } = ty {
        ty = of;
    }
    ty
}

/// How deeply `ty` nests.
fn nesting(ty: &TypeRef) -> usize {
    1 + match ty {
        TypeRef::Option { of } | TypeRef::List { of } | TypeRef::Array { of, .. } => nesting(of),
        TypeRef::Map { key, value } => nesting(key).max(nesting(value)),
        TypeRef::Tuple { items: args } | TypeRef::Named { args, .. } => {
            args.iter().map(nesting).max().unwrap_or(0)
        }
        TypeRef::Scalar { .. } | TypeRef::Param { .. } | TypeRef::Unsupported { .. } => 0,
    }
}

/// `Page<User>`: the title of an instantiation.
fn display(ir: &Ir, def: &TypeDef, args: &[TypeRef]) -> String {
    let mut out = def.name.clone();
    if !args.is_empty() {
        out.push('<');
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&display_ty(ir, arg));
        }
        out.push('>');
    }
    out
}

fn display_ty(ir: &Ir, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Scalar { scalar } => scalar_key(*scalar).to_owned(),
        TypeRef::Option { of } => format!("Option<{}>", display_ty(ir, of)),
        TypeRef::List { of } => format!("Vec<{}>", display_ty(ir, of)),
        TypeRef::Map { key, value } => {
            format!("Map<{}, {}>", display_ty(ir, key), display_ty(ir, value))
        }
        TypeRef::Tuple { items } => {
            let items: Vec<String> = items.iter().map(|item| display_ty(ir, item)).collect();
            format!("({})", items.join(", "))
        }
        TypeRef::Array { of, len } => format!("[{}; {len}]", display_ty(ir, of)),
        TypeRef::Named { id, args } => match ir.type_def(id) {
            Some(def) => display(ir, def, args),
            None => id.clone(),
        },
        TypeRef::Param { name } => name.clone(),
        TypeRef::Unsupported { rust } => rust.clone(),
    }
}

/// A key as a URI fragment segment: JSON Pointer escapes, then everything but
/// `[A-Za-z0-9._~-]` percent-encoded.
fn fragment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let escaped = key.replace('~', "~0").replace('/', "~1");
    for byte in escaped.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn scalar_key(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Bool => "bool",
        Scalar::Char => "char",
        Scalar::String => "String",
        Scalar::I8 => "i8",
        Scalar::I16 => "i16",
        Scalar::I32 => "i32",
        Scalar::I64 => "i64",
        Scalar::U8 => "u8",
        Scalar::U16 => "u16",
        Scalar::U32 => "u32",
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
        Scalar::Unit => "unit",
        Scalar::Uuid => "Uuid",
        Scalar::DateTime => "DateTime",
        Scalar::NaiveDateTime => "NaiveDateTime",
        Scalar::Date => "NaiveDate",
        Scalar::Time => "NaiveTime",
        Scalar::Decimal => "Decimal",
        Scalar::Json => "Value",
        Scalar::JsonObject => "Object",
        Scalar::Duration => "Duration",
        Scalar::OtherString => "String",
    }
}

fn integer(min: i64, max: i64) -> Json {
    Json::typed("integer")
        .with("minimum", Json::Int(min))
        .with("maximum", Json::Int(max))
}

fn string_format(format: &str) -> Json {
    Json::typed("string").with("format", Json::str(format))
}

fn scalar_schema(scalar: Scalar) -> Json {
    match scalar {
        Scalar::Bool => Json::typed("boolean"),
        Scalar::Char => Json::typed("string")
            .with("minLength", Json::Int(1))
            .with("maxLength", Json::Int(1)),
        Scalar::String | Scalar::OtherString | Scalar::Decimal => Json::typed("string"),
        Scalar::I8 => integer(i8::MIN.into(), i8::MAX.into()),
        Scalar::I16 => integer(i16::MIN.into(), i16::MAX.into()),
        Scalar::I32 => integer(i32::MIN.into(), i32::MAX.into()),
        Scalar::I64 => integer(i64::MIN, i64::MAX),
        Scalar::U8 => integer(0, u8::MAX.into()),
        Scalar::U16 => integer(0, u16::MAX.into()),
        Scalar::U32 => integer(0, u32::MAX.into()),
        Scalar::F32 | Scalar::F64 => Json::typed("number"),
        Scalar::Unit => Json::typed("null"),
        Scalar::Uuid => string_format("uuid"),
        // RFC 3339 `date-time` and `date`; the naive forms have no offset, which the
        // `date-time` and `time` formats require.
        Scalar::DateTime => string_format("date-time"),
        Scalar::Date => string_format("date"),
        Scalar::NaiveDateTime | Scalar::Time => Json::typed("string"),
        Scalar::Json => Json::Obj(Vec::new()),
        Scalar::JsonObject => Json::typed("object"),
        Scalar::Duration => Json::typed("object")
            .with(
                "properties",
                Json::obj([
                    ("secs", integer(0, i64::MAX)),
                    ("nanos", integer(0, 999_999_999)),
                ]),
            )
            .with(
                "required",
                Json::Arr(vec![Json::str("secs"), Json::str("nanos")]),
            )
            .with("additionalProperties", Json::Bool(false)),
    }
}
