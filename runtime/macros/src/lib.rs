//! The `#[forge::…]` attributes.
//!
//! They check their arguments with the same grammar the forge CLI uses
//! ([`forge_attrs::parse_options`]) and the shape of the item they mark, then leave the
//! item unchanged: registration happens in the generated `forge_generated.rs`, not here.

mod rules;

use forge_attrs::{Kind, Options};
use proc_macro::TokenStream;
use syn::spanned::Spanned;

fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item2 = proc_macro2::TokenStream::from(item.clone());
    let args = proc_macro2::TokenStream::from(args);
    let checked = forge_attrs::parse_options(kind, args.clone())
        .and_then(|options| check_item(kind, &options, args, item2.clone()));
    match checked {
        Ok(()) => item,
        Err(error) => {
            // Keep the item so the error is the only one the user sees.
            let mut out = error.to_compile_error();
            out.extend(item2);
            out.into()
        }
    }
}

fn check_item(
    kind: Kind,
    options: &Options,
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<()> {
    let item: syn::Item = syn::parse2(item)?;
    let attribute = format!("#[forge::{}]", kind.attribute_name());
    match (kind, &item) {
        (Kind::Model, syn::Item::Struct(_)) => Ok(()),
        (Kind::Model, syn::Item::Enum(e)) => match options {
            Options::Model(model) if model.table.is_some() => Err(syn::Error::new(
                e.ident.span(),
                "`table` applies to structs only: an enum is stored in a column, not a table",
            )),
            _ => Ok(()),
        },
        (Kind::Model, other) => Err(syn::Error::new(
            other.span(),
            format!("{attribute} marks a struct or an enum"),
        )),
        (_, syn::Item::Fn(function)) => rules::check(kind, args, function),
        (_, other) => Err(syn::Error::new(
            other.span(),
            format!("{attribute} marks a `pub async fn`"),
        )),
    }
}

macro_rules! attributes {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {$(
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $name(args: TokenStream, item: TokenStream) -> TokenStream {
            expand(Kind::$kind, args, item)
        }
    )*};
}

attributes! {
    /// A read-only RPC handler: `#[forge::query(public, unscoped, cache = "30s", tables("a"), timeout = "5s")]`.
    query => Query;
    /// A write RPC handler, transactional by default: `#[forge::mutation(transactional = false, public, timeout = "5s")]`.
    mutation => Mutation;
    /// A background job: `#[forge::job(retry(max_attempts = 3, backoff = "exponential", base = "1s", max = "5m"), timeout = "1h", queue = "default", priority = 0)]`.
    job => Job;
    /// A scheduled function: `#[forge::cron("0 9 * * *", timezone = "Europe/Berlin", catch_up = 10)]`, or `every = "15m"`, or `daily_at = "09:00"`.
    cron => Cron;
    /// A durable workflow: `#[forge::workflow(name = "onboarding", version = "2026-03", active, timeout = "60d")]`.
    workflow => Workflow;
    /// A long-running task: `#[forge::daemon(leader_elected | replicated, restart = "5s")]`.
    daemon => Daemon;
    /// An HTTP webhook: `#[forge::webhook(path = "/hooks/stripe", signature = hmac_sha256("Header", "ENV_SECRET"), idempotency = "header:Idempotency-Key")]`.
    webhook => Webhook;
    /// A Model Context Protocol tool: `#[forge::mcp_tool(name = "tickets.list", title = "List tickets", read_only)]`.
    mcp_tool => McpTool;
    /// A type stored in or sent by the API: `#[forge::model(table = "users")]`.
    model => Model;
}
