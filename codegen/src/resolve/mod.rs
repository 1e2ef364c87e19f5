//! Builds the [`Ir`] from every file's [`ParsedFile`]: resolves names across modules,
//! collects the types reachable from handler signatures, computes workflow contracts.

mod index;
mod known;
mod types;

use std::collections::{BTreeSet, HashSet};

use forge_attrs::Options;

use crate::ir::{
    reachable_types, Arg, Diagnostic, Handler, Ir, Scalar, TypeDef, TypeRef, WaitKey,
    WorkflowContract, IR_VERSION,
};
use crate::parse::syntax::{ParsedFile, RawHandler, TypeExpr};
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
    let mut handlers: Vec<Handler> = files
        .iter()
        .flat_map(|f| f.handlers.iter())
        .map(|raw| handler(&mut types, raw))
        .collect();
    for def in files
        .iter()
        .flat_map(|f| f.types.iter())
        .filter(|t| t.model.is_some())
    {
        types.add(&join(&def.module, &def.name));
    }
    types.build_queued();
    diagnostics.append(&mut types.diagnostics);

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
