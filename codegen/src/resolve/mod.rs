//! Builds the [`Ir`] from every file's [`ParsedFile`]: resolves names across modules,
//! collects the types reachable from handler signatures, computes workflow contracts.

mod index;
mod known;
mod types;

use std::collections::BTreeSet;
use std::sync::Arc;

// A fast hash: watch mode looks every file and type up at every regeneration.
use foldhash::{HashMap, HashMapExt, HashSet};
use forge_attrs::Options;
use rayon::prelude::*;

use crate::ir::{
    Arg, Diagnostic, Handler, Ir, Scalar, TypeDef, TypeIndex, TypeRef, Usage, WaitKey,
    WorkflowContract,
};
use crate::parse::syntax::{ParsedFile, RawHandler, RawType, TypeExpr};
use index::{join, Index, Target};
use types::{Env, Types};

/// The label of an FG503 for a type that is not found (rather than one that cannot cross
/// the wire), which a check of a single item must ignore.
pub const UNRESOLVED_LABEL: &str = "not found in this crate";

/// The IR of a crate and every diagnostic found on the way.
pub struct Resolved {
    pub ir: Ir,
    pub diagnostics: Vec<Diagnostic>,
}

/// Builds the IR. `files` must be sorted by path so that the result does not depend on
/// the order the files were read in.
pub fn build(files: &[ParsedFile]) -> Resolved {
    let mut diagnostics: Vec<Diagnostic> = files
        .iter()
        .flat_map(|f| f.diagnostics.iter().cloned())
        .collect();
    let mut types = Types::new(Index::new(files));
    let handlers: Vec<Arc<Handler>> = files
        .iter()
        .flat_map(|f| f.handlers.iter())
        .map(|raw| Arc::new(handler(&mut types, raw)))
        .collect();
    add_models(&mut types, files);
    types.build_queued();
    diagnostics.append(&mut types.diagnostics);
    finish(handlers, types, diagnostics).0
}

/// [`build`] for a crate that changes a file or two at a time (watch mode), giving the same
/// result. `versions[i]` identifies the content of `files[i]` (a hash of its source).
///
/// A handler's IR entry and a type's definition depend on their own item and on name
/// resolution (every file's scopes, declared type names and aliases), nothing else. While
/// the changed files declare the same names and imports as before (an edit inside a body,
/// a doc, a field, an attribute), the entries of unchanged files are taken from `cache`,
/// each with the diagnostics and the types it named when it was built, so reachability,
/// usage and workflow signatures are computed over the same data. Any other change (a
/// file added or removed, an import, a type renamed) rebuilds everything.
///
/// Reused entries are the very allocations of the last IR (the cache keeps each item as
/// the IR finally holds it, usage and signature included), so an item that did not change
/// is pointer-equal to its predecessor and emitters' caches recognise it without comparing.
pub fn build_cached(files: &[ParsedFile], versions: &[&str], cache: &mut Cache) -> Resolved {
    let reusable = cache.reusable(files, versions);
    let changed: HashSet<&str> = files
        .iter()
        .zip(versions)
        .filter(|(file, version)| {
            !reusable
                || cache
                    .files
                    .get(&file.file)
                    .is_none_or(|e| e.version != **version)
        })
        .map(|(file, _)| file.file.as_str())
        .collect();
    let changed_types: HashSet<*const RawType> = files
        .iter()
        .filter(|file| changed.contains(file.file.as_str()))
        .flat_map(|file| file.types.iter().map(std::ptr::from_ref))
        .collect();

    let mut diagnostics: Vec<Diagnostic> = files
        .iter()
        .flat_map(|f| f.diagnostics.iter().cloned())
        .collect();
    let mut types = Types::new(Index::new(files));
    types.uses = Some(Vec::new());
    let mut handlers: Vec<Arc<Handler>> = Vec::new();
    let mut entries: HashMap<String, FileEntry> = HashMap::with_capacity(files.len());
    let mut old = std::mem::take(&mut cache.files);
    for (file, version) in files.iter().zip(versions) {
        let (kept, predecessor) = match old.remove(&file.file) {
            Some(entry) if !changed.contains(file.file.as_str()) => (Some(entry), None),
            other => (None, other),
        };
        // A rebuilt handler equal to the one it replaces stays that allocation.
        let predecessors: HashMap<&str, &Arc<Handler>> = predecessor
            .iter()
            .flat_map(|entry| &entry.handlers)
            .map(|item| (item.value.function.as_str(), &item.value))
            .collect();
        let entry = match kept {
            Some(entry) => {
                for item in &entry.handlers {
                    handlers.push(Arc::clone(&item.value));
                    types.diagnostics.extend(item.diagnostics.iter().cloned());
                    item.uses.iter().for_each(|used| types.enqueue_reused(used));
                }
                entry
            }
            None => FileEntry {
                version: (*version).to_owned(),
                interface: Interface::of(file),
                handlers: file
                    .handlers
                    .iter()
                    .map(|raw| {
                        let (diagnostics, uses) = (types.diagnostics.len(), types.uses_len());
                        let built = handler(&mut types, raw);
                        let value = match predecessors.get(built.function.as_str()) {
                            Some(&old) if **old == built => Arc::clone(old),
                            _ => Arc::new(built),
                        };
                        handlers.push(Arc::clone(&value));
                        Item {
                            value,
                            diagnostics: types.diagnostics[diagnostics..].to_vec(),
                            uses: types.uses_since(uses).into(),
                        }
                    })
                    .collect(),
            },
        };
        entries.insert(file.file.clone(), entry);
    }
    cache.files = entries;
    cache.order = files.iter().map(|f| f.file.clone()).collect();

    add_models(&mut types, files);
    let mut old_types = if reusable {
        std::mem::take(&mut cache.types)
    } else {
        cache.types.clear();
        HashMap::new()
    };
    let mut kept: Vec<String> = Vec::new();
    let mut new_types: HashMap<String, Item<Arc<TypeDef>>> = HashMap::new();
    types.build_queued_with(
        |id, raw| {
            if changed_types.contains(&std::ptr::from_ref(raw)) {
                return None;
            }
            let item = old_types.get(id)?;
            kept.push(id.to_owned());
            Some((
                Arc::clone(&item.value),
                item.diagnostics.clone(),
                Arc::clone(&item.uses),
            ))
        },
        |mut def, diagnostics, uses| {
            // A rebuilt type equal to the one it replaces stays that allocation; the usage
            // is `finish`'s to set.
            let value = match old_types.get(&def.id) {
                Some(old) => {
                    def.usage = old.value.usage;
                    if *old.value == def {
                        Arc::clone(&old.value)
                    } else {
                        Arc::new(def)
                    }
                }
                None => Arc::new(def),
            };
            new_types.insert(
                value.id.clone(),
                Item {
                    value: Arc::clone(&value),
                    diagnostics: diagnostics.to_vec(),
                    uses: uses.into(),
                },
            );
            value
        },
    );
    new_types.extend(
        kept.into_iter()
            .filter_map(|id| old_types.remove_entry(&id)),
    );
    cache.types = new_types;
    diagnostics.append(&mut types.diagnostics);
    let (resolved, replaced) = finish(handlers, types, diagnostics);
    cache.keep(replaced);
    resolved
}

/// What [`build_cached`] keeps between builds.
#[derive(Default)]
pub struct Cache {
    /// The files of the last build, in order.
    order: Vec<String>,
    files: HashMap<String, FileEntry>,
    /// Every type definition the last build made, by id.
    types: HashMap<String, Item<Arc<TypeDef>>>,
}

struct FileEntry {
    version: String,
    interface: Interface,
    /// One per raw handler of the file, in order.
    handlers: Vec<Item<Arc<Handler>>>,
}

/// A built entry with what building it reported and the type ids it named.
struct Item<T> {
    value: T,
    diagnostics: Vec<Diagnostic>,
    /// Shared: a reused type hands them to the build without copying them.
    uses: Arc<[String]>,
}

/// What a file contributes to name resolution.
#[derive(PartialEq)]
struct Interface {
    module: String,
    scopes: Vec<crate::parse::syntax::Scope>,
    types: Vec<(String, String)>,
    aliases: Vec<crate::parse::syntax::RawAlias>,
}

impl Interface {
    fn of(file: &ParsedFile) -> Self {
        Interface {
            module: file.module.clone(),
            scopes: file.scopes.clone(),
            types: file
                .types
                .iter()
                .map(|t| (t.module.clone(), t.name.clone()))
                .collect(),
            aliases: file.aliases.clone(),
        }
    }
}

impl Cache {
    /// Puts the items [`finish`] replaced in place of their predecessors, so that the next
    /// build starts from the IR's own allocations.
    fn keep(&mut self, replaced: Replaced) {
        for def in replaced.types {
            if let Some(item) = self.types.get_mut(&def.id) {
                item.value = def;
            }
        }
        for (old, new) in replaced.handlers {
            let Some(entry) = self.files.get_mut(&new.span.file) else {
                continue;
            };
            if let Some(item) = entry
                .handlers
                .iter_mut()
                .find(|item| std::ptr::eq(Arc::as_ptr(&item.value), old))
            {
                item.value = new;
            }
        }
    }

    /// Whether the last build's entries can serve this one: the same files, and every file
    /// whose content changed resolves names as it did.
    fn reusable(&self, files: &[ParsedFile], versions: &[&str]) -> bool {
        self.order.len() == files.len()
            && files.len() == versions.len()
            && self
                .order
                .iter()
                .zip(files)
                .all(|(path, file)| *path == file.file)
            && files.iter().zip(versions).all(|(file, version)| {
                self.files.get(&file.file).is_some_and(|entry| {
                    entry.version == *version || entry.interface == Interface::of(file)
                })
            })
    }
}

fn add_models(types: &mut Types, files: &[ParsedFile]) {
    for def in files
        .iter()
        .flat_map(|f| f.types.iter())
        .filter(|t| t.model.is_some())
    {
        types.add(&join(&def.module, &def.name));
    }
}

/// The items [`finish`] had to copy to change them: each type whose usage changed, and each
/// workflow handler whose signature did (with the address of the handler it replaced).
#[derive(Default)]
struct Replaced {
    types: Vec<Arc<TypeDef>>,
    handlers: Vec<(*const Handler, Arc<Handler>)>,
}

/// Usage, workflow signatures and the IR's order, over everything built. Items whose usage
/// or signature is already right are left as they are (shared, not copied).
fn finish(
    mut handlers: Vec<Arc<Handler>>,
    mut types: Types,
    mut diagnostics: Vec<Diagnostic>,
) -> (Resolved, Replaced) {
    let mut replaced = Replaced::default();
    let mut defs: Vec<Arc<TypeDef>> = std::mem::take(&mut types.defs).into_values().collect();
    let index = TypeIndex::new(&defs);
    let usages = usage(&index, &handlers);
    // Signatures do not read usage, so both are computed before either is written.
    let signatures: Vec<(usize, String, String)> = handlers
        .par_iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let contract = h.workflow.as_ref()?;
            let signature = crate::signature::signature(contract, &index);
            let types_digest = crate::signature::types_digest(contract, &index);
            let same = contract.signature == signature && contract.types_digest == types_digest;
            (!same).then_some((i, signature, types_digest))
        })
        .collect();
    drop(index);
    for (def, usage) in usages {
        Arc::make_mut(&mut defs[def]).usage = usage;
        replaced.types.push(Arc::clone(&defs[def]));
    }
    for (i, signature, types_digest) in signatures {
        let old = Arc::as_ptr(&handlers[i]);
        if let Some(contract) = &mut Arc::make_mut(&mut handlers[i]).workflow {
            contract.signature = signature;
            contract.types_digest = types_digest;
        }
        replaced.handlers.push((old, Arc::clone(&handlers[i])));
    }
    diagnostics.sort_by(|a, b| (&a.span, &a.code, &a.message).cmp(&(&b.span, &b.code, &b.message)));
    diagnostics.dedup();
    let resolved = Resolved {
        ir: Ir::new(defs, handlers),
        diagnostics,
    };
    (resolved, replaced)
}

fn handler(types: &mut Types, raw: &RawHandler) -> Handler {
    let module = raw.module.as_str();
    let env = Env::default();
    let args: Vec<Arg> = raw
        .params
        .iter()
        .map(|p| Arg {
            name: p.name.clone(),
            ty: match &p.ty {
                TypeExpr::Reference { span, .. } => {
                    types.diagnostics.push(
                        Diagnostic::error(
                            "FG503",
                            format!("argument `{}` is a reference; arguments are decoded from the request and owned by the handler", p.name),
                            Some(span.clone()),
                        )
                        .with_label("cannot cross the wire")
                        .with_help("take the argument by value (`String` rather than `&str`)"),
                    );
                    TypeRef::Unsupported {
                        rust: "reference".to_owned(),
                    }
                }
                ty => types.type_ref(module, env, ty),
            },
            span: p.span.clone(),
        })
        .collect();
    let returns = return_type(types, raw);
    let mut tables_read: BTreeSet<String> = raw
        .body
        .sql
        .iter()
        .flat_map(|s| s.tables_read.iter().cloned())
        .collect();
    if let Options::Query(query) = &raw.options {
        tables_read.extend(query.tables.iter().cloned());
    }
    let tables_written: BTreeSet<String> = raw
        .body
        .sql
        .iter()
        .flat_map(|s| s.tables_written.iter().cloned())
        .collect();
    let name = match &raw.options {
        Options::Workflow(w) => w.name.clone(),
        Options::McpTool(m) => m.name.clone(),
        _ => None,
    }
    .unwrap_or_else(|| raw.function.clone());
    let workflow = match &raw.options {
        Options::Workflow(options) => Some(WorkflowContract {
            name: name.clone(),
            version: options.version.clone(),
            timeout_ms: options.timeout_ms,
            input: args.first().map(|a| a.ty.clone()),
            output: returns.clone(),
            steps: raw.body.steps.clone(),
            waits: raw
                .body
                .waits
                .iter()
                .map(|(key, ty)| WaitKey {
                    key: key.clone(),
                    ty: ty.as_ref().map(|t| types.type_ref(module, env, t)),
                })
                .collect(),
            dynamic_keys: raw.body.dynamic_keys.clone(),
            signature: String::new(),
            types_digest: String::new(),
        }),
        _ => None,
    };
    Handler {
        name,
        function: raw.function.clone(),
        module: raw.module.clone(),
        kind: raw.options.kind(),
        options: raw.options.clone(),
        doc: raw.doc.clone(),
        is_async: raw.is_async,
        context: raw.context.clone(),
        args,
        returns,
        tables_read: tables_read.into_iter().collect(),
        tables_written: tables_written.into_iter().collect(),
        sql: raw.body.sql.clone(),
        dispatches: raw.body.dispatches.clone(),
        blocking_sleeps: raw.body.blocking_sleeps.clone(),
        workflow,
        span: raw.span.clone(),
    }
}

/// `T` of `Result<T>` / `forge::Result<T>` / `Result<T, E>`.
fn return_type(types: &mut Types, raw: &RawHandler) -> TypeRef {
    let module = raw.module.as_str();
    let not_result = |types: &mut Types, span: Option<&crate::ir::Span>| {
        types.diagnostics.push(
            Diagnostic::error(
                "FG501",
                format!("handler `{}` must return `forge::Result<T>`", raw.function),
                Some(span.cloned().unwrap_or_else(|| raw.span.clone())),
            )
            .with_label("not a `Result`")
            .with_help("return `Result<T>` from `forge::prelude` (use `Result<()>` for no value)"),
        );
    };
    let Some(ty) = &raw.returns else {
        not_result(types, None);
        return TypeRef::Scalar {
            scalar: Scalar::Unit,
        };
    };
    if let TypeExpr::Path { segments, span } = ty {
        let names: Vec<String> = segments.iter().map(|s| s.name.clone()).collect();
        let is_result = match types.index.lookup(module, &names) {
            Some(Target::External(path)) => path.last().map(String::as_str) == Some("Result"),
            _ => false,
        };
        if is_result {
            return match segments.last().and_then(|s| s.args.first()) {
                Some(ok) => types.type_ref(module, Env::default(), ok),
                None => {
                    not_result(types, Some(span));
                    TypeRef::Unsupported {
                        rust: "Result".to_owned(),
                    }
                }
            };
        }
    }
    not_result(types, Some(ty.span()));
    types.type_ref(module, Env::default(), ty)
}

/// The directions each type crosses the wire in, for the types (by position) whose
/// recorded usage is not that.
fn usage(index: &TypeIndex, handlers: &[Arc<Handler>]) -> Vec<(usize, Usage)> {
    let defs = index.types();
    let mut inputs: Vec<&TypeRef> = Vec::new();
    let mut outputs: Vec<&TypeRef> = Vec::new();
    for h in handlers {
        inputs.extend(h.args.iter().map(|a| &a.ty));
        outputs.push(&h.returns);
        if let Some(contract) = &h.workflow {
            inputs.extend(contract.waits.iter().filter_map(|w| w.ty.as_ref()));
        }
    }
    // Models are output, and so is what they reach.
    outputs.extend(
        defs.iter()
            .filter(|d| d.model.is_some())
            .flat_map(|d| d.shape.type_refs()),
    );
    let flags = |roots| {
        let mut flags = vec![false; defs.len()];
        index
            .reachable(roots)
            .into_iter()
            .for_each(|i| flags[i] = true);
        flags
    };
    let (input, mut output) = (flags(inputs), flags(outputs));
    for (i, def) in defs.iter().enumerate() {
        output[i] |= def.model.is_some();
    }
    defs.iter()
        .enumerate()
        .filter_map(|(i, def)| {
            let usage = Usage {
                input: input[i],
                output: output[i],
            };
            (def.usage != usage).then_some((i, usage))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    /// The kitchen sink's files as `(path, text)`, sorted.
    fn kitchen_sink() -> Vec<(String, String)> {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kitchen_sink");
        let mut files = Vec::new();
        let mut dirs = vec![root.join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).expect("fixture") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let rel = path.strip_prefix(&root).expect("inside").to_string_lossy();
                    let text = std::fs::read_to_string(&path).expect("read");
                    files.push((rel.replace('\\', "/"), text));
                }
            }
        }
        files.sort();
        files
    }

    /// Every file parsed, and the version `build_cached` is given for each.
    fn parse_all(files: &[(String, String)]) -> (Vec<ParsedFile>, Vec<String>) {
        let parsed = files
            .iter()
            .map(|(rel, text)| {
                parse::parse_file(rel, &parse::module_path(rel).expect("a module"), text)
            })
            .collect();
        let versions = files
            .iter()
            .map(|(_, text)| blake3::hash(text.as_bytes()).to_hex().to_string())
            .collect();
        (parsed, versions)
    }

    fn edit(files: &mut [(String, String)], rel: &str, from: &str, to: &str) {
        let (_, text) = files.iter_mut().find(|(r, _)| r == rel).expect("file");
        assert!(text.contains(from), "{rel} holds {from:?}");
        *text = text.replacen(from, to, 1);
    }

    const MISC: &str = "src/functions/misc.rs";
    const WORKFLOWS: &str = "src/functions/workflows.rs";
    const JOBS: &str = "src/functions/jobs.rs";

    /// After every edit, the incremental build equals a full one, diagnostics included, and
    /// so does the glue emitted from it with the glue's cache.
    #[test]
    fn cached_builds_equal_full_builds_across_edits() {
        let mut files = kitchen_sink();
        let mut cache = Cache::default();
        let mut glue = crate::emit::rust::Cache::default();
        let mut typescript = crate::emit::typescript::Cache::default();
        type Edit = fn(&mut Vec<(String, String)>);
        let edits: Vec<(&str, Edit)> = vec![
            ("nothing", |_| {}),
            ("a doc", |f| {
                edit(f, MISC, "A ticket as MCP", "A ticket, as MCP")
            }),
            ("an argument", |f| {
                edit(
                    f,
                    MISC,
                    "status: Option<String>)",
                    "status: Option<String>, n: i32)",
                )
            }),
            ("a field of a workflow's event type", |f| {
                edit(
                    f,
                    WORKFLOWS,
                    "pub reviewer: String,",
                    "pub reviewer: String,\n    pub note: Option<String>,",
                )
            }),
            ("a field of a type another file imports", |f| {
                edit(
                    f,
                    JOBS,
                    "pub user_id: Uuid,",
                    "pub user_id: Uuid,\n    pub retries: i32,",
                )
            }),
            ("a type that cannot cross the wire", |f| {
                edit(f, JOBS, "pub retries: i32,", "pub retries: u64,")
            }),
            ("an import", |f| {
                edit(
                    f,
                    MISC,
                    "use forge::prelude::*;",
                    "use forge::prelude::*;\nuse std::collections::HashMap;",
                )
            }),
            ("a half-typed handler", |f| {
                edit(
                    f,
                    MISC,
                    "/// Stripe calls this.",
                    "pub async fn half(ctx: &Qu\n/// Stripe calls this.",
                )
            }),
            ("the handler finished", |f| {
                edit(f, MISC, "pub async fn half(ctx: &Qu\n", "")
            }),
            ("a new file", |f| {
                f.push((
                    "src/functions/zz.rs".to_owned(),
                    "use forge::prelude::*;\n#[forge::query(public)]\npub async fn zz(ctx: &QueryContext) -> Result<i32> { Ok(1) }\n".to_owned(),
                ));
            }),
            ("the new file gone", |f| {
                f.pop();
            }),
            ("a renamed type", |f| {
                edit(f, WORKFLOWS, "pub struct Approval", "pub struct Approved")
            }),
        ];
        for (what, apply) in edits {
            apply(&mut files);
            let (parsed, versions) = parse_all(&files);
            let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
            let full = build(&parsed);
            let cached = build_cached(&parsed, &versions, &mut cache);
            assert!(cached.ir == full.ir, "after {what}: the IR differs");
            assert_eq!(cached.diagnostics, full.diagnostics, "after {what}");
            // The glue's cache, fed the same sequence of IRs, gives the cold glue too.
            assert_eq!(
                crate::emit::rust::emit_cached(&cached.ir, &mut glue),
                crate::emit::rust::emit(&full.ir),
                "after {what}: the glue differs"
            );
            assert_eq!(
                crate::emit::typescript::emit_cached(&cached.ir, &mut typescript),
                crate::emit::typescript::emit(&full.ir),
                "after {what}: the TypeScript client differs"
            );
        }
    }

    /// What the emitters' caches rely on: an edit inside one file leaves every other
    /// file's handlers and every type it does not touch the same allocations.
    #[test]
    fn cached_builds_share_what_did_not_change() {
        let mut files = kitchen_sink();
        let mut cache = Cache::default();
        let build = |files: &[(String, String)], cache: &mut Cache| {
            let (parsed, versions) = parse_all(files);
            let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
            build_cached(&parsed, &versions, cache).ir
        };
        let mut before = build(&files, &mut cache);
        // (edit, the handler it changes, the type it changes)
        let edits = [
            (
                "A ticket as MCP",
                "A ticket, as MCP",
                None,
                Some("functions::misc::Ticket"),
            ),
            (
                "/// Stripe calls this.",
                "/// Stripe calls it.",
                Some("stripe"),
                None,
            ),
        ];
        for (from, to, handler, ty) in edits {
            edit(&mut files, MISC, from, to);
            let after = build(&files, &mut cache);
            assert_eq!(before.handlers.len(), after.handlers.len());
            for (old, new) in before.handlers.iter().zip(&after.handlers) {
                let rebuilt = Some(new.name.as_str()) == handler;
                assert_eq!(
                    !Arc::ptr_eq(old, new),
                    rebuilt,
                    "handler `{}` after {to:?}",
                    new.name
                );
            }
            assert_eq!(before.types.len(), after.types.len());
            for (old, new) in before.types.iter().zip(&after.types) {
                let rebuilt = Some(new.id.as_str()) == ty;
                assert_eq!(
                    !Arc::ptr_eq(old, new),
                    rebuilt,
                    "type `{}` after {to:?}",
                    new.id
                );
            }
            before = after;
        }
    }
}
