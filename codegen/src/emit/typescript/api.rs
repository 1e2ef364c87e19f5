//! `api.ts`: a typed function per query and mutation, the argument object each one sends,
//! and the `Queries` / `Mutations` maps from handler name to arguments and result.

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use super::names::{camel_case, pascal_case, to_identifier, Namer, TypeNames};
use super::syntax::{write_doc, write_property, write_string};
use super::types::TypeWriter;
use crate::ir::{Handler, Ir, Kind, TypeRef};

pub(super) fn write_api(
    out: &mut String,
    ir: &Ir,
    names: &TypeNames,
    namer: &mut Namer,
) -> fmt::Result {
    let mut writer = TypeWriter::new(names);
    let mut functions = String::new();
    let mut queries = String::new();
    let mut mutations = String::new();
    for handler in &ir.handlers {
        // Other kinds run inside the server and cannot be called over RPC.
        let map = match handler.kind {
            Kind::Query => &mut queries,
            Kind::Mutation => &mut mutations,
            _ => continue,
        };
        let function = namer.claim(to_identifier(&camel_case(&handler.name)));
        let args = (!handler.args.is_empty())
            .then(|| namer.claim(to_identifier(&pascal_case(&handler.name)) + "Args"));
        let result = writer.render(&handler.returns)?;
        let call = Call {
            handler,
            function: &function,
            args: args.as_deref(),
            result: &result,
        };
        call.write_function(&mut functions, &mut writer)?;
        call.write_map_entry(map)?;
    }
    let any_query = !queries.is_empty();
    write_imports(out, &writer, names, !functions.is_empty(), any_query)?;
    out.write_str(&functions)?;
    write_map(out, "Queries", "query", &queries)?;
    write_map(out, "Mutations", "mutation", &mutations)?;
    if any_query {
        // Claimed after the handlers, so a query named `subscribe` keeps its name.
        let subscribe = namer.claim("subscribe".to_owned());
        let live = namer.claim("live".to_owned());
        write_live(out, &subscribe, &live)?;
    }
    Ok(())
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
    writer: &TypeWriter,
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
    let used: BTreeSet<&str> = writer.used().map(|index| names.name(index)).collect();
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
