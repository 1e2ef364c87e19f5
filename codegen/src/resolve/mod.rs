//! Builds the [`Ir`] from every file's [`ParsedFile`]: resolves names across modules,
//! collects the types reachable from handler signatures, computes workflow contracts.

mod index;
mod known;
mod types;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use forge_attrs::Options;

use crate::ir::{
    reachable_types, Arg, Diagnostic, Handler, Ir, Scalar, TypeDef, TypeRef, WaitKey,
    WorkflowContract, IR_VERSION,
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
    let handlers: Vec<Handler> = files
        .iter()
        .flat_map(|f| f.handlers.iter())
        .map(|raw| handler(&mut types, raw))
        .collect();
    add_models(&mut types, files);
    types.build_queued();
    diagnostics.append(&mut types.diagnostics);
    finish(handlers, types, diagnostics)
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
    let mut handlers: Vec<Handler> = Vec::new();
    let mut entries: HashMap<String, FileEntry> = HashMap::with_capacity(files.len());
    let mut old = std::mem::take(&mut cache.files);
    for (file, version) in files.iter().zip(versions) {
        let kept = old
            .remove(&file.file)
            .filter(|_| !changed.contains(file.file.as_str()));
        let entry = match kept {
            Some(entry) => {
                for item in &entry.handlers {
                    handlers.push(item.value.clone());
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
                        let value = handler(&mut types, raw);
                        handlers.push(value.clone());
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
    let mut kept: Vec<(String, Item<TypeDef>)> = Vec::new();
    let mut new_types: HashMap<String, Item<TypeDef>> = HashMap::new();
    types.build_queued_with(
        |id, raw| {
            if changed_types.contains(&std::ptr::from_ref(raw)) {
                return None;
            }
            let item = old_types.remove(id)?;
            let reused = (
                item.value.clone(),
                item.diagnostics.clone(),
                Arc::clone(&item.uses),
            );
            kept.push((id.to_owned(), item));
            Some(reused)
        },
        |def, diagnostics, uses| {
            new_types.insert(
                def.id.clone(),
                Item {
                    value: def.clone(),
                    diagnostics: diagnostics.to_vec(),
                    uses: uses.into(),
                },
            );
        },
    );
    new_types.extend(kept);
    cache.types = new_types;
    diagnostics.append(&mut types.diagnostics);
    finish(handlers, types, diagnostics)
}

/// What [`build_cached`] keeps between builds.
#[derive(Default)]
pub struct Cache {
    /// The files of the last build, in order.
    order: Vec<String>,
    files: HashMap<String, FileEntry>,
    /// Every type definition the last build made, by id.
    types: HashMap<String, Item<TypeDef>>,
}

struct FileEntry {
    version: String,
    interface: Interface,
    /// One per raw handler of the file, in order.
    handlers: Vec<Item<Handler>>,
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

/// Usage, workflow signatures and the IR's order, over everything built.
fn finish(
    mut handlers: Vec<Handler>,
    mut types: Types,
    mut diagnostics: Vec<Diagnostic>,
) -> Resolved {
    let mut defs: Vec<TypeDef> = std::mem::take(&mut types.defs).into_values().collect();
    mark_usage(&mut defs, &handlers);
    for h in &mut handlers {
        if let Some(contract) = &mut h.workflow {
            contract.signature = crate::signature::signature(contract, &defs);
            contract.types_digest = crate::signature::types_digest(contract, &defs);
        }
    }
    handlers
        .sort_by(|a, b| (&a.name, &a.module, &a.function).cmp(&(&b.name, &b.module, &b.function)));
    diagnostics.sort_by(|a, b| (&a.span, &a.code, &a.message).cmp(&(&b.span, &b.code, &b.message)));
    diagnostics.dedup();
    Resolved {
        ir: Ir {
            ir_version: IR_VERSION,
            handlers,
            types: defs,
        },
        diagnostics,
    }
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

/// Marks which directions each type crosses the wire in.
fn mark_usage(defs: &mut [TypeDef], handlers: &[Handler]) {
    let mut inputs: Vec<&TypeRef> = Vec::new();
    let mut outputs: Vec<&TypeRef> = Vec::new();
    for h in handlers {
        inputs.extend(h.args.iter().map(|a| &a.ty));
        outputs.push(&h.returns);
        if let Some(contract) = &h.workflow {
            inputs.extend(contract.waits.iter().filter_map(|w| w.ty.as_ref()));
        }
    }
    let models: Vec<TypeRef> = defs
        .iter()
        .filter(|d| d.model.is_some())
        .map(|d| TypeRef::Named {
            id: d.id.clone(),
            args: Vec::new(),
        })
        .collect();
    outputs.extend(models.iter());
    let input_ids: HashSet<String> = reachable_types(defs, inputs)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let output_ids: HashSet<String> = reachable_types(defs, outputs)
        .into_iter()
        .map(str::to_owned)
        .collect();
    for def in defs.iter_mut() {
        def.usage.input = input_ids.contains(&def.id);
        def.usage.output = output_ids.contains(&def.id);
    }
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
            let parsed: Vec<ParsedFile> = files
                .iter()
                .map(|(rel, text)| {
                    let module = parse::module_path(rel).expect("a module");
                    parse::parse_file(rel, &module, text)
                })
                .collect();
            let versions: Vec<String> = files
                .iter()
                .map(|(_, text)| blake3::hash(text.as_bytes()).to_hex().to_string())
                .collect();
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
        }
    }
}
