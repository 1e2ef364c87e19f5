//! `api.ts`: a typed function per query and mutation, the argument object each one sends,
//! and the `Queries` / `Mutations` maps from handler name to arguments and result.

use std::collections::BTreeSet;
use std::fmt::{self, Write};
use std::sync::Arc;

use rayon::prelude::*;

use super::names::{callable, CallNames, Naming, TypeNames};
use super::syntax::{write_doc, write_property, write_string};
use super::types::TypeWriter;
use crate::ir::{Handler, Ir, Kind, TypeRef};

/// One callable handler's part of `api.ts`, kept between emissions (watch mode): its text
/// is a function of the handler and of the names, nothing else.
pub(super) struct CallChunk {
    handler: Arc<Handler>,
    /// Its arguments interface and its function.
    function: String,
    /// Its entry in the `Queries` or `Mutations` map.
    entry: String,
    /// The IR types (by index) its text names.
    used: Vec<usize>,
}

/// Writes `api.ts`, taking the chunk of each handler that `previous` (the last emission's
/// chunks, parallel to the callable handlers and named the same) holds for the very same
/// handler; returns this emission's chunks.
pub(super) fn write_api(
    out: &mut String,
    ir: &Ir,
    naming: &Naming,
    names: &TypeNames,
    previous: Option<Vec<CallChunk>>,
) -> Result<Vec<CallChunk>, fmt::Error> {
    let handlers: Vec<&Arc<Handler>> = callable(ir).collect();
    let mut previous: Vec<Option<CallChunk>> = match previous {
        Some(chunks) => chunks.into_iter().map(Some).collect(),
        None => Vec::new(),
    };
    previous.resize_with(handlers.len(), || None);
    let chunks: Vec<CallChunk> = handlers
        .par_iter()
        .zip(&naming.calls)
        .zip(previous)
        .map(|((handler, call_names), previous)| match previous {
            Some(chunk) if Arc::ptr_eq(&chunk.handler, handler) => Ok(chunk),
            _ => call_chunk(handler, call_names, names),
        })
        .collect::<Result<_, fmt::Error>>()?;

    let mut used: Vec<usize> = chunks.iter().flat_map(|c| c.used.iter().copied()).collect();
    used.sort_unstable();
    used.dedup();
    write_imports(out, &used, names, !chunks.is_empty(), naming.live.is_some())?;
    chunks.iter().for_each(|c| out.push_str(&c.function));
    for (name, kind, of) in [
        ("Queries", "query", Kind::Query),
        ("Mutations", "mutation", Kind::Mutation),
    ] {
        let entries: String = chunks
            .iter()
            .filter(|c| c.handler.kind == of)
            .map(|c| c.entry.as_str())
            .collect();
        write_map(out, name, kind, &entries)?;
    }
    if let Some((subscribe, live)) = &naming.live {
        write_live(out, subscribe, live)?;
    }
    Ok(chunks)
}

fn call_chunk(
    handler: &Arc<Handler>,
    call_names: &CallNames,
    names: &TypeNames,
) -> Result<CallChunk, fmt::Error> {
    let mut writer = TypeWriter::new(names);
    let result = writer.render(&handler.returns)?;
    let call = Call {
        handler,
        function: &call_names.function,
        args: call_names.args.as_deref(),
        result: &result,
    };
    let mut function = String::new();
    call.write_function(&mut function, &mut writer)?;
    let mut entry = String::new();
    call.write_map_entry(&mut entry)?;
    Ok(CallChunk {
        handler: Arc::clone(handler),
        function,
        entry,
        used: writer.into_used(),
    })
}

/// The typed entry points of live queries: `subscribe(client, "name", args, onData,
/// onError)` and the store `live(client, "name", args)`.
fn write_live(out: &mut String, subscribe: &str, live: &str) -> fmt::Result {
    const LIVE: &str = r#"
/**
 * Keeps a query's result current: `onData` receives the first result and then every
 * changed one. Returns the function that ends the subscription.
 */
export function SUBSCRIBE<K extends keyof Queries>(
  client: ForgeClient,
  query: K,
  args: Queries[K]["args"],
  onData: (data: Queries[K]["result"]) => void,
  onError?: (error: ForgeError) => void,
): Unsubscribe {
  return client.subscribe<Queries[K]["result"]>(query, args, onData, onError);
}

/** A query's live result as a store (Svelte's `$store` reads it). */
export function LIVE<K extends keyof Queries>(
  client: ForgeClient,
  query: K,
  args: Queries[K]["args"],
): Readable<LiveState<Queries[K]["result"]>> {
  return client.live<Queries[K]["result"]>(query, args);
}
"#;
    out.write_str(
        &LIVE
            .replace("SUBSCRIBE<", &format!("{subscribe}<"))
            .replace("LIVE<", &format!("{live}<")),
    )
}

/// Only what is used: unused imports fail builds with `noUnusedLocals`.
fn write_imports(
    out: &mut String,
    used: &[usize],
    names: &TypeNames,
    any_function: bool,
    any_query: bool,
) -> fmt::Result {
    if any_query {
        out.write_str(
            "import type {\n  CallOptions,\n  ForgeClient,\n  ForgeError,\n  LiveState,\n  Readable,\n  Unsubscribe,\n} from \"./client.js\";\n",
        )?;
    } else if any_function {
        out.write_str("import type { CallOptions, ForgeClient } from \"./client.js\";\n")?;
    }
    let used: BTreeSet<&str> = used.iter().map(|&index| names.name(index)).collect();
    if !used.is_empty() {
        out.write_str("import type {\n")?;
        for name in used {
            writeln!(out, "  {name},")?;
        }
        out.write_str("} from \"./types.js\";\n")?;
    }
    Ok(())
}

fn write_map(out: &mut String, name: &str, kind: &str, entries: &str) -> fmt::Result {
    write!(
        out,
        "\n/** Every {kind} by the name it is called by: its arguments and its result. */\n\
         export interface {name} {{\n{entries}}}\n"
    )
}

/// One callable handler and the names generated for it.
struct Call<'a> {
    handler: &'a Handler,
    function: &'a str,
    /// The argument interface's name; `None` when the handler takes no arguments.
    args: Option<&'a str>,
    result: &'a str,
}

impl Call<'_> {
    fn write_function(&self, out: &mut String, writer: &mut TypeWriter) -> fmt::Result {
        if let Some(args) = self.args {
            self.write_args(out, writer, args)?;
        }
        out.write_char('\n')?;
        write_doc(out, self.handler.doc.as_deref(), 0)?;
        let (param, value) = match self.args {
            Some(args) => (format!("  args: {args},\n"), "args"),
            None => (String::new(), "{}"),
        };
        write!(
            out,
            "export function {function}(\n  client: ForgeClient,\n{param}  options?: CallOptions,\n\
             ): Promise<{result}> {{\n  return client.call<{result}>(",
            function = self.function,
            result = self.result,
        )?;
        write_string(out, &self.handler.name)?;
        writeln!(out, ", {value}, options);\n}}")
    }

    /// The `args` object: each parameter by name; an `Option` may be left out.
    fn write_args(&self, out: &mut String, writer: &mut TypeWriter, name: &str) -> fmt::Result {
        write!(out, "\nexport interface {name} {{\n")?;
        for arg in &self.handler.args {
            out.write_str("  ")?;
            write_property(out, &arg.name)?;
            let optional = matches!(arg.ty, TypeRef::Option { .. });
            out.write_str(if optional { "?: " } else { ": " })?;
            writer.write_ty(out, &arg.ty)?;
            out.write_str(";\n")?;
        }
        out.write_str("}\n")
    }

    fn write_map_entry(&self, out: &mut String) -> fmt::Result {
        out.write_str("  ")?;
        write_property(out, &self.handler.name)?;
        let args = self.args.unwrap_or("Record<string, never>");
        writeln!(out, ": {{ args: {args}; result: {} }};", self.result)
    }
}
