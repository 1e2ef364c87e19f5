//! The Dioxus client: one Rust module, `mod.rs` in the `dioxus_out` directory, holding
//!
//! - `Client` (base URL, optional bearer-token provider), `ForgeError` and `use_client`,
//!   copied verbatim from `dioxus/client.rs`;
//! - one declaration per IR type, with serde attributes that give the server's wire shape
//!   (`types.rs`);
//! - per query and mutation, an `async fn` taking the client and the typed arguments and
//!   returning `Result<T, ForgeError>`; per query also a `use_<name>` hook on
//!   `dioxus::prelude::use_resource` that takes each argument as a signal (any
//!   `Readable`) and re-runs when one changes (`api.rs`).
//!
//! The module names every external item by path (`serde::Serialize`,
//! `dioxus::prelude::use_resource`, `std::collections::BTreeMap`), so it imports nothing
//! and a user type can only clash with the names `names.rs` keeps out of its way. The crate
//! that includes it depends on `dioxus` (features `hooks` and `signals`), `serde` (with
//! `derive`), `serde_json` and `reqwest` (no features needed; a TLS feature for https from
//! native builds).
//!
//! The text is prettyplease's rendering of the generated items after the hand-written
//! client. It carries `#![cfg_attr(rustfmt, rustfmt::skip)]`: `cargo fmt` with the user's
//! own rustfmt.toml must not rewrite a file `forge generate --check` compares byte for
//! byte. Output depends only on the IR, iterated in its sorted order.
//!
//! # Decisions
//!
//! - **One module**, `<dioxus_out>/mod.rs`, importing nothing (every external item by path),
//!   so user type names clash only with the names `emit/dioxus/names.rs` keeps free (the
//!   prelude's, primitives', `Client`, `ForgeError`, `Args`, `LiveSubscription`, …, crate
//!   roots); clashing names get
//!   their module path as in TypeScript (`billing::Status` → `BillingStatus`).
//! - **What the frontend depends on**: `dioxus` 0.7 (features `hooks` and `signals`),
//!   `serde` (with `derive`), `serde_json`, `reqwest` (feature `stream` only, for the live
//!   queries' `bytes_stream`, which needs it on native and on wasm alike; add a TLS feature
//!   for https from native builds; on wasm it uses `fetch`), `futures-util` (no default
//!   features: `StreamExt::next` over that stream) and `futures-timer` (feature
//!   `wasm-bindgen`: the reconnection backoff's sleep). `reqwest` because it compiles for
//!   both wasm32 and native, so desktop apps and the native compile test use the same code.
//!   `futures-timer` over `gloo-timers` + `tokio` behind `cfg`s: one crate and no `cfg` in
//!   generated code; natively it runs its own timer thread (no async runtime assumed, Dioxus
//!   desktop brings tokio but the client must not rely on it), in the browser it uses
//!   `setTimeout` through gloo-timers, which its `wasm-bindgen` feature pulls in only on
//!   wasm32. `futures-util` was already in the lock through dioxus.
//! - **Types**: uuids, dates, times, decimals are `String` (no uuid/chrono dependency, and a
//!   value is written back byte for byte as the server wrote it); `Duration` is
//!   `std::time::Duration` (same serde form); maps are `BTreeMap` keyed by `String` or by the
//!   integer type; arrays over 32 are `Vec` (serde's limit); `serde_json::Value` for what the
//!   IR cannot describe. Every type derives `Debug, Clone, PartialEq, Serialize, Deserialize`.
//! - **Direction** (from `Usage`, as in TypeScript): the client's `Serialize` writes what the
//!   server's `Deserialize` reads, its `Deserialize` reads what the server writes
//!   (`rename(serialize = …, deserialize = …)` when they differ). What is skipped in every
//!   direction the type is used in is left out; a field the server may omit gets
//!   `#[serde(default)]` when its client type has a default, else becomes `Option<T>` (not
//!   sent when `None`); a field the server never reads is `skip_serializing`. Mirrored as
//!   written: `tag`/`content`/`untagged`, `flatten`, variant `untagged` and `other`,
//!   `skip_serializing_if = "Option::is_none"` / `…::is_empty`. A generic parameter no
//!   emitted field uses is dropped, with its arguments. A type holding itself inline (through
//!   `Option`, tuples, arrays) gets the `Box` the IR made transparent.
//! - **Calls**: `Client::new(base_url).with_token(..)` / `.with_token_provider(|| …)` (an
//!   `Rc<dyn Fn>`: on the web a provider may capture a signal, which is not `Send`), provided
//!   with `use_context_provider`; `pub async fn <query>(&Client, args…) -> Result<T,
//!   ForgeError>`; `ForgeError { code, message, details, request_id, status }` with the wire
//!   codes as constants plus `NETWORK_ERROR`; a result that does not match the types is an
//!   `INTERNAL_ERROR` saying to regenerate.
//! - **Hooks**: `use_<query>(arg: impl Readable<Target = T> + 'static, …) ->
//!   Resource<Result<T, ForgeError>>`, built on `use_resource` with the client from
//!   `use_client()`. Arguments are signals (a `Signal`, `Memo`, `ReadSignal` prop): the
//!   resource reads them, so it re-runs when one changes; plain values would be captured once.
//! - **Live queries** (`client.rs`, the protocol of DESIGN's "Runtime wire protocol", the
//!   same behaviour as the TypeScript client): `Client::subscribe(name, &args, on_event) ->
//!   LiveSubscription` (dropping it unsubscribes). All subscriptions of a client and its
//!   clones share one `Rc<RefCell<Live>>`: one `GET /_api/events` stream read with reqwest
//!   (so it sends the bearer token), opened by the first subscription and closed (its task
//!   cancelled, which ends the server's session and its subscriptions) after the last; on
//!   `connected` every subscription is `POST /_api/subscribe`d with the session pair; when the
//!   stream ends it reopens after 0.5 s doubling to 30 s (reset on `connected`). A subscribe
//!   the server refuses (not `NETWORK_ERROR`) is dropped and reported; an unsubscribe that
//!   raced an in-flight subscribe is sent once the subscribe returns. The stream and the
//!   requests run as `spawn_forever` tasks on the Dioxus runtime (not the component's scope:
//!   the connection outlives any one component); without a current runtime (shutting down)
//!   nothing is spawned. Wire data stays `serde_json::Value` until the subscription's
//!   callback decodes it into the generated type (a mismatch is the same `INTERNAL_ERROR` as
//!   for calls). `use_<query>_live(args…) -> ReadSignal<Option<Result<T, ForgeError>>>`:
//!   `None` until the first event; a `use_effect` reads the argument signals and subscribes,
//!   replacing (so unsubscribing) the previous subscription when they change; the
//!   subscription sits in a `use_hook` cell, so it is dropped, and unsubscribed, with the
//!   component. Not tested against a running server (only type-checked against dioxus): the
//!   protocol is proven end to end through the TypeScript client.
//! - **Formatting**: prettyplease's output, with function signatures and `Args { … }`
//!   literals laid out by rustfmt's rules (`layout.rs`); the tests hold the snapshots against
//!   the real rustfmt. The file also says `#![cfg_attr(rustfmt, rustfmt::skip)]`: a project's
//!   own rustfmt.toml must not rewrite a file `forge generate --check` compares byte for byte.
//! - **Tests**: snapshots in `codegen/src/emit/dioxus/`; `tests/tests/dioxus.rs` builds
//!   `tests/app/frontend/dioxus` (a crate outside the workspace with its own Cargo.lock,
//!   pinning dioxus 0.7.10, whose `src/forge/` the app's `forge generate` keeps current) and
//!   runs `tests/dioxus/wire.rs` against the client of the every-shape IR and the kitchen
//!   sink's, all in `target/dioxus-check` (cold: about a minute on 2 cores; warm: seconds).
//!   `cli/tests/new.rs` builds a generated frontend there too, with that Cargo.lock, so the
//!   Dioxus dependencies compile once (see "Test build times").

mod api;
mod layout;
mod names;
#[cfg(test)]
mod tests;
mod types;

use std::sync::Arc;

use proc_macro2::TokenStream;
use quote::quote;

use super::{GeneratedFile, GENERATED_HEADER};
use crate::ir::{Field, Ir, Shape, Tagging, TypeDef, TypeRef, VariantShape};
use layout::Placeholders;
use names::Namer;
use types::{Direction, TypeWriter};

/// The hand-written half of the module, the same for every project.
const CLIENT_RS: &str = include_str!("dioxus/client.rs");

/// The module's file name inside `dioxus_out`.
pub const MODULE_FILE: &str = "mod.rs";

const MODULE_DOC: [&str; 6] = [
    " The typed client of this app's forge API, for Dioxus; `forge generate` rewrites it.",
    "",
    " Provide a [`Client`] with `use_context_provider(|| Client::new(base_url))`, then call",
    " the `async fn` of a query or mutation with it, or use a query's `use_<name>` hook,",
    " which runs it in a resource and re-runs it when a signal passed to it changes. Needs",
    " the `dioxus`, `serde` (with `derive`), `serde_json` and `reqwest` crates.",
];

/// The client module.
pub fn emit(ir: &Ir) -> Vec<GeneratedFile> {
    let mut type_namer = Namer::types();
    let names = ClientNames::new(&ir.types, &mut type_namer);
    let mut items: Vec<TokenStream> = Vec::new();
    for (index, def) in ir.types.iter().enumerate() {
        let writer = TypeWriter {
            names: &names,
            params: names.params(index),
            holder: Some(index),
        };
        items.push(writer.def(def, names.type_name(index)));
    }
    let mut placeholders = Placeholders::default();
    items.extend(api::functions(ir, &names, &mut placeholders));

    let docs = MODULE_DOC.iter().map(|line| quote!(#![doc = #line]));
    let head = unparse(quote! {
        #(#docs)*
        #![cfg_attr(rustfmt, rustfmt::skip)]
        #![allow(dead_code, non_camel_case_types, non_snake_case, clippy::all)]
    });
    let mut contents = String::with_capacity(CLIENT_RS.len() + items.len() * 512);
    contents.push_str(GENERATED_HEADER);
    contents.push('\n');
    contents.push_str(&head);
    contents.push('\n');
    contents.push_str(CLIENT_RS);
    // One item at a time, with a blank line between items, which prettyplease does not
    // put (it formats each item on its own, so this is the text of the whole file).
    for item in items {
        contents.push('\n');
        contents.push_str(&placeholders.fill(&unparse(item)));
    }
    vec![GeneratedFile {
        path: MODULE_FILE.to_owned(),
        contents,
    }]
}

fn unparse(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens)
        .expect("the client parses by construction: every name in it was made an identifier");
    prettyplease::unparse(&file)
}

/// `#[doc]` attributes for a doc comment, one per line (prettyplease prints each as `///`):
/// blank lines at either end dropped, the indentation all lines share replaced by one
/// space (indented code blocks keep the rest), trailing whitespace removed. Nothing for a
/// blank comment.
fn doc_attrs(doc: Option<&str>) -> TokenStream {
    let Some(doc) = doc else {
        return quote!();
    };
    let lines: Vec<&str> = doc.lines().map(str::trim_end).collect();
    let Some(first) = lines.iter().position(|line| !line.is_empty()) else {
        return quote!();
    };
    let last = lines
        .iter()
        .rposition(|line| !line.is_empty())
        .unwrap_or(first);
    let lines = &lines[first..=last];
    let margin = lines
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| line.len() - line.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let lines = lines.iter().map(|line| match line.get(margin..) {
        Some(text) if !text.is_empty() => format!(" {text}"),
        _ => String::new(),
    });
    quote!(#(#[doc = #lines])*)
}

/// The Rust name of every IR type and which of its generic parameters the client keeps.
struct ClientNames<'a> {
    defs: &'a [Arc<TypeDef>],
    /// Parallel to `defs`.
    names: Vec<String>,
    /// Parallel to `defs`, then to each one's `generics`: a parameter no field that
    /// crosses the wire uses is dropped (Rust refuses unused type parameters), and with it
    /// the matching argument wherever the type is named.
    kept_params: Vec<Vec<bool>>,
    /// Parallel to `defs`: the strongly connected component of each type in the graph of
    /// types holding one another inline (directly, or in an `Option`, tuple or array; a
    /// `Vec` or map is indirection). A type in its own component holds itself by value,
    /// which Rust refuses; the server's types have a `Box` there, which the IR does not
    /// record, so the client puts one back (serde writes a `Box` as what it holds).
    components: Vec<usize>,
}

impl<'a> ClientNames<'a> {
    fn new(defs: &'a [Arc<TypeDef>], namer: &mut Namer) -> Self {
        let mut names = ClientNames {
            defs,
            names: names::type_names(defs, namer),
            kept_params: defs
                .iter()
                .map(|def| vec![true; def.generics.len()])
                .collect(),
            components: Vec::new(),
        };
        names.components = components(defs, &names);
        // Dropping a parameter drops the arguments given for it, which may leave another
        // type's parameter unused in turn: repeat until nothing changes. Each round only
        // clears flags, so this ends.
        loop {
            let next: Vec<Vec<bool>> = defs
                .iter()
                .map(|def| {
                    let mut used = Vec::new();
                    for ty in wire_type_refs(def) {
                        names.params_used(ty, &mut used);
                    }
                    def.generics
                        .iter()
                        .map(|param| used.contains(&param.as_str()))
                        .collect()
                })
                .collect();
            if next == names.kept_params {
                break;
            }
            names.kept_params = next;
        }
        names.components = components(defs, &names);
        names
    }

    /// Whether a field of type `holder` that holds `held` inline needs a `Box`.
    fn needs_box(&self, holder: usize, held: usize) -> bool {
        self.components[holder] == self.components[held]
    }

    fn params_used<'t>(&self, ty: &'t TypeRef, used: &mut Vec<&'t str>) {
        match ty {
            TypeRef::Param { name } => used.push(name),
            TypeRef::Option { of } | TypeRef::List { of } | TypeRef::Array { of, .. } => {
                self.params_used(of, used)
            }
            TypeRef::Map { value, .. } => self.params_used(value, used),
            TypeRef::Tuple { items } => items.iter().for_each(|i| self.params_used(i, used)),
            TypeRef::Named { id, args } => {
                let kept = self.index(id).map(|i| &self.kept_params[i]);
                for (n, arg) in args.iter().enumerate() {
                    if kept.is_some_and(|kept| kept.get(n) == Some(&true)) {
                        self.params_used(arg, used);
                    }
                }
            }
            TypeRef::Scalar { .. } | TypeRef::Unsupported { .. } => {}
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.defs
            .binary_search_by(|def| def.id.as_str().cmp(id))
            .ok()
    }

    fn type_name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The generic parameters type `index` keeps.
    fn params(&self, index: usize) -> Vec<&'a str> {
        self.defs[index]
            .generics
            .iter()
            .zip(&self.kept_params[index])
            .filter(|(_, kept)| **kept)
            .map(|(param, _)| param.as_str())
            .collect()
    }
}

/// The strongly connected components of the inline-holding graph (Kosaraju, iterative, so
/// that a long chain of types cannot overflow the stack), numbered in discovery order.
fn components(defs: &[Arc<TypeDef>], names: &ClientNames) -> Vec<usize> {
    let edges: Vec<Vec<usize>> = defs
        .iter()
        .map(|def| {
            let mut held = Vec::new();
            for ty in wire_type_refs(def) {
                inline_named(ty, names, &mut held);
            }
            held
        })
        .collect();
    let mut reverse: Vec<Vec<usize>> = vec![Vec::new(); defs.len()];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            reverse[to].push(from);
        }
    }
    // First pass: the order in which depth-first searches finish.
    let mut visited = vec![false; defs.len()];
    let mut order = Vec::with_capacity(defs.len());
    for start in 0..defs.len() {
        if visited[start] {
            continue;
        }
        visited[start] = true;
        let mut stack = vec![(start, 0usize)];
        while let Some((node, next)) = stack.pop() {
            if let Some(&to) = edges[node].get(next) {
                stack.push((node, next + 1));
                if !visited[to] {
                    visited[to] = true;
                    stack.push((to, 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    // Second pass, on the reversed graph in reverse finishing order: each search is one
    // component.
    let mut component = vec![usize::MAX; defs.len()];
    let mut count = 0;
    for &start in order.iter().rev() {
        if component[start] != usize::MAX {
            continue;
        }
        component[start] = count;
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for &from in &reverse[node] {
                if component[from] == usize::MAX {
                    component[from] = count;
                    stack.push(from);
                }
            }
        }
        count += 1;
    }
    component
}

/// The types `ty` holds inline: itself when named, and through `Option`s, tuples and
/// arrays serde can read (longer ones are `Vec`s).
fn inline_named(ty: &TypeRef, names: &ClientNames, out: &mut Vec<usize>) {
    match ty {
        TypeRef::Named { id, .. } => out.extend(names.index(id)),
        TypeRef::Option { of } => inline_named(of, names, out),
        TypeRef::Array { of, len } if *len <= types::MAX_SERDE_ARRAY => {
            inline_named(of, names, out)
        }
        TypeRef::Tuple { items } => items.iter().for_each(|i| inline_named(i, names, out)),
        _ => {}
    }
}

/// The types of what `def`'s client declaration holds: every field, item and payload that
/// crosses the wire in the type's direction (the rest is left out of the declaration).
fn wire_type_refs<'a>(def: &'a TypeDef) -> Vec<&'a TypeRef> {
    let dir = Direction::of(def.usage);
    let fields = |fields: &'a [Field]| -> Vec<&'a TypeRef> {
        fields
            .iter()
            .filter(|f| !dir.omits(f.skip_serializing, f.skip_deserializing))
            .map(|f| &f.ty)
            .collect()
    };
    match &def.shape {
        Shape::Struct { fields: f, .. } => fields(f),
        Shape::Tuple { items } => items.iter().collect(),
        Shape::Newtype { of } => vec![of],
        Shape::Unit => Vec::new(),
        Shape::Enum { tagging, variants } => variants
            .iter()
            .filter(|v| !dir.omits(v.skip_serializing, v.skip_deserializing))
            .flat_map(|v| match &v.shape {
                VariantShape::Unit => Vec::new(),
                VariantShape::Newtype { of } => vec![of],
                // Left out of internally tagged enums (see `types.rs`).
                VariantShape::Tuple { .. } if matches!(tagging, Tagging::Internal { .. }) => {
                    Vec::new()
                }
                VariantShape::Tuple { items } => items.iter().collect(),
                VariantShape::Struct { fields: f } => fields(f),
            })
            .collect(),
    }
}
