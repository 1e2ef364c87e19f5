//! The Rust registration glue (`src/forge_generated.rs`).
//!
//! The glue is one plain function, `pub fn register(registry: &mut forge::Registry)`, that
//! registers every handler in IR order, plus a private `mod args` of argument structs. It
//! names no user type: argument structs are generic over their field types and type
//! inference fills them in from the handler's signature, so the glue never has to resolve
//! the user's imports.
//!
//! # The runtime API the glue calls
//!
//! This is the contract for the `forge` crate; every path below is spelled exactly so in
//! the glue, and `&str` stands for `&'static str`.
//!
//! ```text
//! impl forge::Registry {
//!     pub fn query<F, Fut, T>(&mut self, def: QueryDef, handler: F)
//!     where F: Fn(forge::QueryContext, serde_json::Value) -> Fut;
//!     pub fn mutation(&mut self, def: MutationDef, handler: F)
//!     where F: Fn(forge::MutationContext, serde_json::Value) -> Fut;
//!     pub fn mcp_tool(&mut self, def: McpToolDef, handler: F)
//!     where F: Fn(forge::McpToolContext, serde_json::Value) -> Fut;
//!     pub fn job(&mut self, def: JobDef, handler: F)
//!     where F: Fn(forge::JobContext, serde_json::Value) -> Fut;
//!     pub fn workflow(&mut self, def: WorkflowDef, handler: F)
//!     where F: Fn(forge::WorkflowContext, serde_json::Value) -> Fut;
//!     pub fn webhook(&mut self, def: WebhookDef, handler: F)
//!     where F: Fn(forge::WebhookContext, serde_json::Value) -> Fut;
//!     pub fn cron(&mut self, def: CronDef, handler: F)
//!     where F: Fn(forge::CronContext) -> Fut;
//!     pub fn daemon(&mut self, def: DaemonDef, handler: F)
//!     where F: Fn(forge::DaemonContext) -> Fut;
//! }
//! // for every method:
//! //     F: Send + Sync + 'static,
//! //     Fut: Future<Output = forge::Result<T>> + Send + 'static,
//! //     T: serde::Serialize + 'static,
//! // The context is passed by value: the closure moves it into its future and lends it to
//! // the handler (`&ctx`). The `serde_json::Value` is the call's `args` object (query,
//! // mutation, MCP tool) or the payload (job input, workflow input, webhook body).
//!
//! forge::registry::decode_args<T: DeserializeOwned>(args: serde_json::Value) -> forge::Result<T>
//!     // RPC and MCP arguments; failing is a VALIDATION_ERROR.
//! forge::registry::decode_input<T: DeserializeOwned>(input: serde_json::Value) -> forge::Result<T>
//!     // A job's, workflow's or webhook's single input.
//! forge::registry::NoArgs
//!     // What handlers without arguments decode: an empty struct with
//!     // `#[serde(deny_unknown_fields)]`, so `{}` is the only valid `args`.
//! forge::serde
//!     // serde, re-exported with its `derive` feature: the argument structs derive
//!     // `forge::serde::Deserialize` with `#[serde(crate = "forge::serde")]`, so user
//!     // crates need no serde dependency of their own.
//!
//! forge::registry::QueryDef { name: &str, module: &str, public: bool, unscoped: bool,
//!     cache_ms: Option<u64>, timeout_ms: Option<u64>, tables_read: &[&str],
//!     rate_limit: Option<RateLimit> }
//! forge::registry::MutationDef { name: &str, module: &str, transactional: bool,
//!     public: bool, timeout_ms: Option<u64>, tables_written: &[&str],
//!     rate_limit: Option<RateLimit> }
//! forge::registry::McpToolDef { name: &str, module: &str, title: Option<&str>,
//!     description: Option<&str>, read_only: bool, input_schema: &str,
//!     rate_limit: Option<RateLimit> }
//! forge::registry::RateLimit { count: u32, per_ms: u64 }
//! forge::registry::JobDef { name: &str, module: &str, retry: Retry,
//!     timeout_ms: Option<u64>, queue: &str, priority: i32 }
//! forge::registry::Retry { max_attempts: u32, backoff: Backoff, base_ms: u64, max_ms: u64 }
//! forge::registry::Backoff { Exponential, Linear, Fixed }
//! forge::registry::CronDef { name: &str, module: &str, schedule: Schedule,
//!     timezone: Option<&str>, catch_up: u32, timeout_ms: Option<u64> }
//! forge::registry::Schedule { Cron(&str), EveryMs(u64), DailyAt(&str) }
//! forge::registry::WorkflowDef { name: &str, module: &str, version: &str, active: bool,
//!     timeout_ms: Option<u64>, signature: &str, steps: &[&str], waits: &[&str] }
//! forge::registry::DaemonDef { name: &str, module: &str, mode: DaemonMode, restart_ms: u64 }
//! forge::registry::DaemonMode { LeaderElected, Replicated }
//! forge::registry::WebhookDef { name: &str, module: &str, path: &str,
//!     signature: Option<WebhookSignature>, idempotency_header: Option<&str> }
//! forge::registry::WebhookSignature { HmacSha256 { header: &str, secret_env: &str },
//!     Stripe { secret_env: &str, tolerance_ms: u64 }, Github { secret_env: &str },
//!     StandardWebhooks { secret_env: &str, tolerance_ms: u64 } }
//! ```
//!
//! `name` is the name the handler is registered and called by, `module` its crate-relative
//! module path (`""` at the crate root), for logs and admin views. Durations are
//! milliseconds; a cron without a time zone runs in UTC. A workflow's `signature` is its
//! contract's 32 hex digits, `steps` and `waits` its literal step and event keys in source
//! order. An MCP tool's `description` is the handler's doc comment and its `input_schema`
//! the JSON text of a self-contained JSON Schema (draft 2020-12) of its `args` object
//! (`emit::jsonschema::tool_input_schema`): compact, with its own `$defs`.
//!
//! # What a registration looks like
//!
//! ```text
//! forge::Registry::query(
//!     registry,
//!     forge::registry::QueryDef { name: "list_items", module: "functions::items", … },
//!     |ctx, args| async move {
//!         use crate::functions::items::list_items as handler;
//!         use args::ListItems as Args;
//!         let args @ Args { .. } = forge::registry::decode_args(args)?;
//!         handler(&ctx, args.limit, args.cursor).await
//!     },
//! );
//! ```
//!
//! - Query, mutation and MCP tool handlers decode `args` into their struct in `mod args`
//!   (PascalCase of the handler name; `2`, `3`, … appended on a collision), or into
//!   `forge::registry::NoArgs` when they take no arguments. `args @ Args { .. }` names the
//!   struct without its type parameters, which the handler call then infers.
//! - Job, workflow and webhook handlers take at most one input, decoded with
//!   `decode_input`; one without an input ignores the payload (a webhook's body is the
//!   sender's to choose, a job's or workflow's payload the dispatcher's).
//! - Cron and daemon handlers take only their context.
//!
//! The registering method is called through the type (`forge::Registry::query(registry,
//! …)`, not `registry.query(…)`) and the handler is imported under a fixed name: both
//! keep the width of those lines independent of the user's names, which is part of what
//! makes prettyplease's output what rustfmt would write (see `layout`).
//!
//! A handler the glue cannot call (a name no identifier spells, an arity its kind does not
//! allow, a workflow without a contract) becomes a `compile_error!` in `register` saying
//! which handler and why, so the user's build fails there instead of calling it wrongly.

mod layout;
mod names;

use std::sync::Arc;

use forge_attrs::{
    Backoff, CronOptions, DaemonMode, DaemonOptions, Idempotency, JobOptions, McpToolOptions,
    MutationOptions, Options, QueryOptions, RateLimit, Schedule, WebhookOptions, WebhookSignature,
    WorkflowOptions,
};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};
use rayon::prelude::*;

use self::layout::{Leaf, Leaves};
use super::GENERATED_HEADER;
use crate::ir::{Handler, Ir, WorkflowContract};

/// The contents of the user's `src/forge_generated.rs`.
pub fn emit(ir: &Ir) -> String {
    emit_with(ir, None)
}

/// [`emit`], reusing the formatted chunks of handlers whose inputs are the same as in the
/// emission that last filled `cache`, and leaving this emission's chunks in it. Watch mode
/// calls this: formatting is most of the glue's cost, and a save changes a handler or two.
pub fn emit_cached(ir: &Ir, cache: &mut Cache) -> String {
    emit_with(ir, Some(cache))
}

fn emit_with(ir: &Ir, cache: Option<&mut Cache>) -> String {
    let targets = targets(ir);
    let with_structs = with_arg_structs(&targets);
    let old = cache.as_deref();
    // Which cached entry (if any) each target reuses, found once for its registration and
    // its argument struct.
    let reused: Vec<Option<usize>> = match old {
        Some(old) => targets.par_iter().map(|t| old.reusable(t)).collect(),
        None => vec![None; targets.len()],
    };
    let entry = |at: Option<usize>| old?.entries.get(&at?);
    // `with_structs` follows the targets that have an argument struct, in order.
    let struct_reused: Vec<Option<usize>> = targets
        .iter()
        .zip(&reused)
        .filter(|(t, _)| t.as_ref().is_ok_and(|t| t.arg_struct.is_some()))
        .map(|(_, &at)| at)
        .collect();
    // Each chunk is formatted on its own, in parallel: prettyplease lays out the
    // statements of a block and the items of a module independently of one another, so
    // the result is the same as formatting the whole file at once (a test checks it).
    // That is also why a chunk can be reused: its text depends on its handler alone.
    // Only chunks the cache does not hold are formatted; the file is assembled from both
    // without copying the cached ones first.
    let registrations: Vec<Option<String>> = targets
        .par_iter()
        .zip(&reused)
        .enumerate()
        .map(|(i, (target, &at))| {
            entry(at)
                .is_none()
                .then(|| format_chunk(Place::Register, i, registration(i, target)))
        })
        .collect();
    let arg_structs: Vec<Option<String>> = with_structs
        .par_iter()
        .zip(&struct_reused)
        .map(|(&(i, target, name), &at)| {
            entry(at)
                .and_then(|e| e.arg_struct_text.as_ref())
                .is_none()
                .then(|| format_chunk(Place::Args, i, arg_struct(i, target, name)))
        })
        .collect();
    let registration_texts: Vec<&str> = registrations
        .iter()
        .zip(&reused)
        .filter_map(|(fresh, &at)| {
            fresh
                .as_deref()
                .or_else(|| entry(at).map(|e| e.registration.as_str()))
        })
        .collect();
    let arg_struct_texts: Vec<&str> = arg_structs
        .iter()
        .zip(&struct_reused)
        .filter_map(|(fresh, &at)| {
            fresh
                .as_deref()
                .or_else(|| entry(at).and_then(|e| e.arg_struct_text.as_deref()))
        })
        .collect();
    let out = frame(&registration_texts, &arg_struct_texts);
    if let Some(cache) = cache {
        cache.refill(&targets, &reused, registrations, arg_structs);
    }
    out
}

/// The formatted chunks of the glue's last emission, by handler.
///
/// A handler's chunks (its registration and its argument struct) are a function of the
/// handler's IR entry, its argument struct's name (numbered across the crate on
/// collisions) and, for an MCP tool, its input schema (which reaches into the types): an
/// entry is reused only when all three are those it was formatted from, so reusing never
/// changes a byte. IR entries are shared between the IRs of successive builds
/// (`resolve::build_cached`), so "the same entry" is "the same allocation": no handler is
/// compared field by field.
#[derive(Default)]
pub struct Cache {
    /// By [`address`] of the handler each entry was formatted from. The entry holds that
    /// handler, so no other handler can have its address while the entry exists.
    entries: foldhash::HashMap<usize, Entry>,
}

struct Entry {
    handler: Arc<Handler>,
    arg_struct: Option<String>,
    input_schema: Option<String>,
    registration: String,
    arg_struct_text: Option<String>,
}

fn address(handler: &Arc<Handler>) -> usize {
    Arc::as_ptr(handler) as usize
}

impl Cache {
    /// The entry formatted from exactly what `target` holds. A handler the glue cannot call
    /// is a one-line `compile_error!`: not worth keeping.
    fn reusable(&self, target: &Result<Target, String>) -> Option<usize> {
        let target = target.as_ref().ok()?;
        let at = address(target.handler);
        self.entries.get(&at)?.formats(target).then_some(at)
    }

    /// Keeps exactly this emission's chunks, moving entries that were reused rather than
    /// copying their handlers again.
    fn refill(
        &mut self,
        targets: &[Result<Target, String>],
        reused: &[Option<usize>],
        registrations: Vec<Option<String>>,
        arg_structs: Vec<Option<String>>,
    ) {
        let mut old = std::mem::take(self).entries;
        // `arg_structs` follows the targets that have one, in order.
        let mut struct_texts = arg_structs.into_iter();
        for ((target, registration), &at) in targets.iter().zip(registrations).zip(reused) {
            let Ok(target) = target else {
                continue;
            };
            let arg_struct_text = match target.arg_struct {
                Some(_) => struct_texts.next().flatten(),
                None => None,
            };
            let entry = match (at.and_then(|at| old.remove(&at)), registration) {
                (Some(reused), _) => reused,
                (None, registration) => Entry {
                    handler: Arc::clone(target.handler),
                    arg_struct: target.arg_struct.clone(),
                    input_schema: target.input_schema.clone(),
                    registration: registration.unwrap_or_default(),
                    arg_struct_text,
                },
            };
            self.entries.insert(address(&entry.handler), entry);
        }
    }
}

impl Entry {
    /// Whether this entry was formatted from exactly what `target` holds.
    fn formats(&self, target: &Target) -> bool {
        Arc::ptr_eq(&self.handler, target.handler)
            && self.arg_struct == target.arg_struct
            && self.input_schema == target.input_schema
    }
}

/// The file around the chunks, as prettyplease prints it.
fn frame(registrations: &[&str], arg_structs: &[&str]) -> String {
    let chunks: usize = registrations
        .iter()
        .chain(arg_structs)
        .map(|c| c.len())
        .sum();
    let mut out = String::with_capacity(chunks + 1024);
    out.push_str(&format!(
        "{GENERATED_HEADER}\n//! {FILE_DOC}\n/// {REGISTER_DOC}\n"
    ));
    if registrations.is_empty() {
        // `_registry`, so that an empty `register` does not warn in the user's build.
        out.push_str("pub fn register(_registry: &mut forge::Registry) {}\n");
    } else {
        out.push_str("pub fn register(registry: &mut forge::Registry) {\n");
        registrations.iter().for_each(|r| out.push_str(r));
        out.push_str("}\n");
    }
    if !arg_structs.is_empty() {
        for line in ARGS_DOC {
            out.push_str(&format!("/// {line}\n"));
        }
        out.push_str("mod args {\n");
        arg_structs.iter().for_each(|s| out.push_str(s));
        out.push_str("}\n");
    }
    out
}

const FILE_DOC: &str =
    "Registers this crate's forge handlers with the runtime; `forge generate` rewrites it.";
const REGISTER_DOC: &str = "Registers every handler with `registry`.";
const ARGS_DOC: [&str; 2] = [
    "The arguments of each query, mutation and MCP tool, as the `args` object names them.",
    "Generic, so that each handler's signature picks the types.",
];

/// Where a chunk goes in the file.
#[derive(Clone, Copy)]
enum Place {
    /// A statement of `register`.
    Register,
    /// An item of `mod args`.
    Args,
}

/// A statement or item of the glue, with the leaves its placeholders stand for.
struct Chunk {
    tokens: TokenStream,
    leaves: Vec<Leaf>,
}

/// Chunk `index` formatted in its place: prettyplease's rendering with the leaves laid out.
fn format_chunk(place: Place, index: usize, chunk: Chunk) -> String {
    let tokens = chunk.tokens;
    let wrapped = match place {
        Place::Register => quote!(fn register() { #tokens }),
        Place::Args => quote!(mod args { #tokens }),
    };
    let text = unparse(wrapped);
    // Keep the lines inside the wrapper, which are indented as in the file.
    let inside = text
        .split_once('\n')
        .and_then(|(_, rest)| rest.strip_suffix("}\n"))
        .expect("prettyplease prints a non-empty function or module over several lines");
    layout::fill(inside, |c, i| chunk.leaves.get(i).filter(|_| c == index))
}

fn unparse(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect(
        "the glue parses by construction: every name in it was checked to be an identifier",
    );
    prettyplease::unparse(&file)
}

/// A handler the glue can call: every name in it spells as a Rust identifier and its
/// arity suits its kind. Plain data, so that chunks can be built on any thread.
struct Target<'a> {
    handler: &'a Arc<Handler>,
    def: Def<'a>,
    /// Module path segments then the function, spelled as identifiers.
    path: Vec<String>,
    /// For query, mutation and MCP tool handlers, the parameter names spelled as
    /// identifiers (a payload is decoded whole, so other kinds' names are not needed).
    args: Vec<String>,
    /// Its struct in `mod args`, for query, mutation and MCP tool handlers with arguments.
    arg_struct: Option<String>,
    /// For MCP tools, the JSON Schema of the `args` object.
    input_schema: Option<String>,
}

/// A handler's options and, for a workflow, its contract: everything its definition
/// literal is built from.
#[derive(Clone, Copy)]
enum Def<'a> {
    Query(&'a QueryOptions),
    Mutation(&'a MutationOptions),
    McpTool(&'a McpToolOptions),
    Job(&'a JobOptions),
    Workflow(&'a WorkflowOptions, &'a WorkflowContract),
    Webhook(&'a WebhookOptions),
    Cron(&'a CronOptions),
    Daemon(&'a DaemonOptions),
}

impl<'a> Def<'a> {
    fn of(handler: &'a Handler) -> Result<Self, &'static str> {
        Ok(match &handler.options {
            Options::Query(o) => Def::Query(o),
            Options::Mutation(o) => Def::Mutation(o),
            Options::McpTool(o) => Def::McpTool(o),
            Options::Job(o) => Def::Job(o),
            Options::Workflow(o) => match &handler.workflow {
                Some(contract) => Def::Workflow(o, contract),
                // Its signature is what keeps old runs from resuming on changed code.
                None => return Err("the IR holds no contract for this workflow"),
            },
            Options::Webhook(o) => Def::Webhook(o),
            Options::Cron(o) => Def::Cron(o),
            Options::Daemon(o) => Def::Daemon(o),
            Options::Model(_) => return Err("a model is a type, not a handler"),
        })
    }

    /// The `Registry` method that registers it.
    fn method(self) -> &'static str {
        match self {
            Def::Query(_) => "query",
            Def::Mutation(_) => "mutation",
            Def::McpTool(_) => "mcp_tool",
            Def::Job(_) => "job",
            Def::Workflow(..) => "workflow",
            Def::Webhook(_) => "webhook",
            Def::Cron(_) => "cron",
            Def::Daemon(_) => "daemon",
        }
    }

    fn input(self) -> Input {
        match self {
            Def::Query(_) | Def::Mutation(_) | Def::McpTool(_) => Input::Args,
            Def::Job(_) | Def::Workflow(..) | Def::Webhook(_) => Input::Payload,
            Def::Cron(_) | Def::Daemon(_) => Input::None,
        }
    }
}

/// What a handler's closure receives besides its context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// An `args` object keyed by parameter name.
    Args,
    /// A payload that is the handler's single input, if it has one.
    Payload,
    /// Nothing.
    None,
}

/// Every handler as a [`Target`], or the message of the `compile_error!` replacing it.
fn targets(ir: &Ir) -> Vec<Result<Target<'_>, String>> {
    let mut targets: Vec<_> = ir
        .handlers
        .par_iter()
        .map_init(names::Speller::default, |speller, h| target(ir, h, speller))
        .collect();
    let mut with_structs: Vec<&mut Target> = targets
        .iter_mut()
        .flatten()
        .filter(|t| !t.args.is_empty())
        .collect();
    let names = names::struct_names(with_structs.iter().map(|t| t.handler.name.as_str()));
    for (target, name) in with_structs.iter_mut().zip(names) {
        target.arg_struct = Some(name);
    }
    targets
}

/// The targets with an argument struct, with the struct's name and the chunk number it
/// gets: after every registration's, so that placeholders are unique across the file.
fn with_arg_structs<'t, 'a>(
    targets: &'t [Result<Target<'a>, String>],
) -> Vec<(usize, &'t Target<'a>, &'t str)> {
    targets
        .iter()
        .flatten()
        .filter_map(|t| Some((t, t.arg_struct.as_deref()?)))
        .enumerate()
        .map(|(i, (t, name))| (targets.len() + i, t, name))
        .collect()
}

fn target<'a>(
    ir: &Ir,
    handler: &'a Arc<Handler>,
    speller: &mut names::Speller,
) -> Result<Target<'a>, String> {
    let fail = |why: String| {
        let place = &handler.span;
        format!(
            "forge cannot register `{}` ({}:{}): {why}",
            handler.name, place.file, place.line
        )
    };
    let def = Def::of(handler).map_err(|why| fail(why.to_owned()))?;
    let most = match def.input() {
        Input::Args => usize::MAX,
        Input::Payload => 1,
        Input::None => 0,
    };
    if handler.args.len() > most {
        let kind = handler.options.kind().attribute_name();
        let count = handler.args.len();
        return Err(fail(match most {
            0 => format!(
                "a {kind} takes only its context, but this one takes {count} more parameters"
            ),
            _ => format!(
                "a {kind} takes one input besides its context; put these {count} in a struct"
            ),
        }));
    }
    let mut spell = |name: &str| {
        speller
            .spell(name)
            .ok_or_else(|| fail(format!("`{name}` is not a Rust identifier")))
    };
    let path = handler
        .module
        .split("::")
        .filter(|segment| !segment.is_empty())
        .chain([handler.function.as_str()])
        .map(&mut spell)
        .collect::<Result<_, _>>()?;
    let args = match def.input() {
        Input::Args => handler
            .args
            .iter()
            .map(|arg| spell(&arg.name))
            .collect::<Result<_, _>>()?,
        Input::Payload | Input::None => Vec::new(),
    };
    let input_schema =
        matches!(def, Def::McpTool(_)).then(|| super::jsonschema::tool_input_schema(ir, handler));
    Ok(Target {
        handler,
        def,
        path,
        args,
        arg_struct: None,
        input_schema,
    })
}

/// The identifier [`names::spelling`] spelled.
fn ident(spelled: &str) -> Ident {
    match spelled.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(spelled, Span::call_site()),
    }
}

/// The statement registering target `index` (or the `compile_error!` replacing it).
fn registration(index: usize, target: &Result<Target, String>) -> Chunk {
    let target = match target {
        Ok(target) => target,
        Err(message) => {
            // Braces, not parentheses: rustfmt leaves a braced macro call as written, so
            // however long the message, no line break of prettyplease's can disagree.
            return Chunk {
                tokens: quote!(compile_error! { #message }),
                leaves: Vec::new(),
            };
        }
    };
    let mut leaves = Leaves::new(index);
    let def = definition(target, &mut leaves);
    let closure = closure(target, &mut leaves);
    let method = format_ident!("{}", target.def.method());
    Chunk {
        tokens: quote!(forge::Registry::#method(registry, #def, #closure);),
        leaves: leaves.into_vec(),
    }
}

fn closure(target: &Target, leaves: &mut Leaves) -> TokenStream {
    let path = target.path.iter().map(|segment| ident(segment));
    let import = quote!(use crate #(:: #path)* as handler;);
    match (target.def.input(), &target.arg_struct) {
        (Input::Args, Some(name)) => {
            let name = ident(name);
            let args = std::iter::once("&ctx".to_owned())
                .chain(target.args.iter().map(|arg| format!("args.{arg}")))
                .collect();
            let call = leaves.push(Leaf::HandlerCall(args));
            quote! {
                |ctx, args| async move {
                    #import
                    use args::#name as Args;
                    let args @ Args { .. } = forge::registry::decode_args(args)?;
                    #call
                }
            }
        }
        (Input::Args, None) => quote! {
            |ctx, args| async move {
                #import
                forge::registry::decode_args::<forge::registry::NoArgs>(args)?;
                handler(&ctx).await
            }
        },
        (Input::Payload, _) if !target.handler.args.is_empty() => quote! {
            |ctx, input| async move {
                #import
                let input = forge::registry::decode_input(input)?;
                handler(&ctx, input).await
            }
        },
        (Input::Payload, _) => quote!(|ctx, _input| async move {
            #import
            handler(&ctx).await
        }),
        (Input::None, _) => quote!(|ctx| async move {
            #import
            handler(&ctx).await
        }),
    }
}

/// The argument struct `name` of `target`, an item of `mod args`, as chunk `index`.
fn arg_struct(index: usize, target: &Target, name: &str) -> Chunk {
    let mut leaves = Leaves::new(index);
    let params: Vec<String> = (0..target.args.len()).map(|i| format!("A{i}")).collect();
    let header = leaves.push(Leaf::Generics {
        name: name.to_owned(),
        params: params.clone(),
    });
    let fields = target.args.iter().map(|field| ident(field));
    let types: Vec<Ident> = params
        .into_iter()
        .map(|param| leaves.push(Leaf::FieldType(param)))
        .collect();
    Chunk {
        tokens: quote! {
            #[derive(forge::serde::Deserialize)]
            #[serde(crate = "forge::serde", deny_unknown_fields)]
            pub(super) struct #header {
                #(pub(super) #fields: #types,)*
            }
        },
        leaves: leaves.into_vec(),
    }
}

/// The handler's `forge::registry::…Def` literal.
fn definition(target: &Target, leaves: &mut Leaves) -> TokenStream {
    let handler = target.handler;
    let name = leaves.str(&handler.name);
    let module = leaves.str(&handler.module);
    let common = quote!(name: #name, module: #module,);
    match target.def {
        Def::Query(options) => query_def(common, handler, options, leaves),
        Def::Mutation(options) => mutation_def(common, handler, options, leaves),
        Def::McpTool(options) => mcp_tool_def(common, target, options, leaves),
        Def::Job(options) => job_def(common, options, leaves),
        Def::Workflow(options, contract) => workflow_def(common, options, contract, leaves),
        Def::Webhook(options) => webhook_def(common, options, leaves),
        Def::Cron(options) => cron_def(common, options, leaves),
        Def::Daemon(options) => daemon_def(common, options),
    }
}

fn query_def(
    common: TokenStream,
    handler: &Handler,
    options: &QueryOptions,
    leaves: &mut Leaves,
) -> TokenStream {
    let QueryOptions {
        public, unscoped, ..
    } = options;
    let cache_ms = opt_int(options.cache_ms);
    let timeout_ms = opt_int(options.timeout_ms);
    let tables_read = leaves.strs(handler.tables_read.iter().map(String::as_str));
    let rate_limit = rate_limit(options.rate_limit);
    quote! {
        forge::registry::QueryDef {
            #common
            public: #public,
            unscoped: #unscoped,
            cache_ms: #cache_ms,
            timeout_ms: #timeout_ms,
            tables_read: #tables_read,
            rate_limit: #rate_limit,
        }
    }
}

fn mutation_def(
    common: TokenStream,
    handler: &Handler,
    options: &MutationOptions,
    leaves: &mut Leaves,
) -> TokenStream {
    let MutationOptions {
        transactional,
        public,
        ..
    } = options;
    let timeout_ms = opt_int(options.timeout_ms);
    let tables_written = leaves.strs(handler.tables_written.iter().map(String::as_str));
    let rate_limit = rate_limit(options.rate_limit);
    quote! {
        forge::registry::MutationDef {
            #common
            transactional: #transactional,
            public: #public,
            timeout_ms: #timeout_ms,
            tables_written: #tables_written,
            rate_limit: #rate_limit,
        }
    }
}

fn mcp_tool_def(
    common: TokenStream,
    target: &Target,
    options: &McpToolOptions,
    leaves: &mut Leaves,
) -> TokenStream {
    let title = opt_str(options.title.as_deref(), leaves);
    let description = opt_str(target.handler.doc.as_deref(), leaves);
    let read_only = options.read_only;
    let input_schema = leaves.str(target.input_schema.as_deref().unwrap_or("{}"));
    let rate_limit = rate_limit(options.rate_limit);
    quote! {
        forge::registry::McpToolDef {
            #common
            title: #title,
            description: #description,
            read_only: #read_only,
            input_schema: #input_schema,
            rate_limit: #rate_limit,
        }
    }
}

fn job_def(common: TokenStream, options: &JobOptions, leaves: &mut Leaves) -> TokenStream {
    let retry = &options.retry;
    let max_attempts = int(retry.max_attempts.into());
    let backoff = match retry.backoff {
        Backoff::Exponential => quote!(Exponential),
        Backoff::Linear => quote!(Linear),
        Backoff::Fixed => quote!(Fixed),
    };
    let base_ms = int(retry.base_ms);
    let max_ms = int(retry.max_ms);
    let timeout_ms = opt_int(options.timeout_ms);
    let queue = leaves.str(&options.queue);
    let priority = signed(options.priority);
    quote! {
        forge::registry::JobDef {
            #common
            retry: forge::registry::Retry {
                max_attempts: #max_attempts,
                backoff: forge::registry::Backoff::#backoff,
                base_ms: #base_ms,
                max_ms: #max_ms,
            },
            timeout_ms: #timeout_ms,
            queue: #queue,
            priority: #priority,
        }
    }
}

fn workflow_def(
    common: TokenStream,
    options: &WorkflowOptions,
    contract: &WorkflowContract,
    leaves: &mut Leaves,
) -> TokenStream {
    let active = options.active;
    let version = leaves.str(&options.version);
    let timeout_ms = opt_int(options.timeout_ms);
    let signature = leaves.str(&contract.signature);
    let steps = leaves.strs(contract.steps.iter().map(String::as_str));
    let waits = leaves.strs(contract.waits.iter().map(|wait| wait.key.as_str()));
    quote! {
        forge::registry::WorkflowDef {
            #common
            version: #version,
            active: #active,
            timeout_ms: #timeout_ms,
            signature: #signature,
            steps: #steps,
            waits: #waits,
        }
    }
}

fn webhook_def(common: TokenStream, options: &WebhookOptions, leaves: &mut Leaves) -> TokenStream {
    let path = leaves.str(&options.path);
    let signature = match &options.signature {
        Some(WebhookSignature::HmacSha256 { header, secret_env }) => {
            let header = leaves.str(header);
            let secret_env = leaves.str(secret_env);
            quote! {
                Some(forge::registry::WebhookSignature::HmacSha256 {
                    header: #header,
                    secret_env: #secret_env,
                })
            }
        }
        Some(WebhookSignature::Stripe {
            secret_env,
            tolerance_ms,
        }) => {
            let secret_env = leaves.str(secret_env);
            let tolerance_ms = int(*tolerance_ms);
            quote! {
                Some(forge::registry::WebhookSignature::Stripe {
                    secret_env: #secret_env,
                    tolerance_ms: #tolerance_ms,
                })
            }
        }
        Some(WebhookSignature::Github { secret_env }) => {
            let secret_env = leaves.str(secret_env);
            quote! {
                Some(forge::registry::WebhookSignature::Github {
                    secret_env: #secret_env,
                })
            }
        }
        Some(WebhookSignature::StandardWebhooks {
            secret_env,
            tolerance_ms,
        }) => {
            let secret_env = leaves.str(secret_env);
            let tolerance_ms = int(*tolerance_ms);
            quote! {
                Some(forge::registry::WebhookSignature::StandardWebhooks {
                    secret_env: #secret_env,
                    tolerance_ms: #tolerance_ms,
                })
            }
        }
        None => quote!(None),
    };
    let idempotency_header = options
        .idempotency
        .as_ref()
        .map(|idempotency| match idempotency {
            Idempotency::Header { name } => name.as_str(),
        });
    let idempotency_header = opt_str(idempotency_header, leaves);
    quote! {
        forge::registry::WebhookDef {
            #common
            path: #path,
            signature: #signature,
            idempotency_header: #idempotency_header,
        }
    }
}

fn cron_def(common: TokenStream, options: &CronOptions, leaves: &mut Leaves) -> TokenStream {
    let schedule = match &options.schedule {
        Schedule::Cron(expression) => leaves.call(
            "forge::registry::Schedule::Cron",
            layout::string_literal(expression),
        ),
        Schedule::EveryMs(ms) => leaves.call("forge::registry::Schedule::EveryMs", ms.to_string()),
        Schedule::DailyAt(time) => leaves.call(
            "forge::registry::Schedule::DailyAt",
            layout::string_literal(time),
        ),
    };
    let timezone = opt_str(options.timezone.as_deref(), leaves);
    let catch_up = int(options.catch_up.into());
    let timeout_ms = opt_int(options.timeout_ms);
    quote! {
        forge::registry::CronDef {
            #common
            schedule: #schedule,
            timezone: #timezone,
            catch_up: #catch_up,
            timeout_ms: #timeout_ms,
        }
    }
}

fn daemon_def(common: TokenStream, options: &DaemonOptions) -> TokenStream {
    let mode = match options.mode {
        DaemonMode::LeaderElected => quote!(LeaderElected),
        DaemonMode::Replicated => quote!(Replicated),
    };
    let restart_ms = int(options.restart_ms);
    quote! {
        forge::registry::DaemonDef {
            #common
            mode: forge::registry::DaemonMode::#mode,
            restart_ms: #restart_ms,
        }
    }
}

/// An integer without a type suffix (`quote` would write `30000u64`): the field's type
/// fixes it.
fn int(value: u64) -> Literal {
    Literal::u64_unsuffixed(value)
}

fn signed(value: i32) -> TokenStream {
    let magnitude = int(value.unsigned_abs().into());
    if value < 0 {
        quote!(-#magnitude)
    } else {
        quote!(#magnitude)
    }
}

fn rate_limit(value: Option<RateLimit>) -> TokenStream {
    match value {
        Some(RateLimit { count, per_ms }) => {
            let count = int(count.into());
            let per_ms = int(per_ms);
            quote!(Some(forge::registry::RateLimit { count: #count, per_ms: #per_ms }))
        }
        None => quote!(None),
    }
}

fn opt_int(value: Option<u64>) -> TokenStream {
    match value.map(int) {
        Some(value) => quote!(Some(#value)),
        None => quote!(None),
    }
}

fn opt_str(value: Option<&str>, leaves: &mut Leaves) -> TokenStream {
    match value {
        Some(value) => {
            let value = leaves.some_str(value);
            quote!(#value)
        }
        None => quote!(None),
    }
}

#[cfg(test)]
mod tests;
