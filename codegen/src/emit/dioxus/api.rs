//! An `async fn` per query and mutation, and `use_<name>` and `use_<name>_live` hooks per
//! query.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::layout::{Placeholders, Signature};
use super::names::{ident_or_escaped, to_identifier, Namer};
use super::types::TypeWriter;
use super::{doc_attrs, ClientNames};
use crate::ir::{Handler, Ir, Kind, Shape};

/// Every function, then every hook, in the IR's handler order.
pub(super) fn functions(
    ir: &Ir,
    names: &ClientNames,
    placeholders: &mut Placeholders,
) -> Vec<TokenStream> {
    let mut values = Namer::values();
    // Tuple and unit structs also name a value (their constructor).
    for (index, def) in ir.types.iter().enumerate() {
        if matches!(
            def.shape,
            Shape::Tuple { .. } | Shape::Newtype { .. } | Shape::Unit
        ) {
            values.claim(names.type_name(index));
        }
    }
    // Other kinds run inside the server and cannot be called over RPC.
    let callable: Vec<&Handler> = ir
        .handlers
        .iter()
        .filter(|h| matches!(h.kind, Kind::Query | Kind::Mutation))
        .map(|h| &**h)
        .collect();
    // Functions first: a hook's name yields to a function's.
    let functions: Vec<String> = callable
        .iter()
        .map(|h| values.claim(&to_identifier(&h.name)))
        .collect();
    let writer = TypeWriter {
        names,
        params: Vec::new(),
        holder: None,
    };
    let mut items = Vec::new();
    let mut hooks = Vec::new();
    for (handler, function) in callable.iter().zip(&functions) {
        let call = Call::new(handler, function, &writer);
        items.push(call.function(placeholders));
        if handler.kind == Kind::Query {
            let hook = values.claim(&format!("use_{function}"));
            hooks.push(call.hook(&hook, placeholders));
            let live = values.claim(&format!("use_{function}_live"));
            hooks.push(call.live_hook(&live, placeholders));
        }
    }
    items.extend(hooks);
    items
}

/// One callable handler and the names generated for it.
struct Call<'a> {
    handler: &'a Handler,
    function: Ident,
    /// The client parameter's name: `client`, unless an argument has that name.
    client: Ident,
    /// The live hook's signal and subscription, named like `client` for the same reason:
    /// the arguments' values shadow them inside the effect.
    state: Ident,
    subscription: Ident,
    /// The arguments' identifiers, wire names and types.
    args: Vec<(Ident, &'a str, TokenStream)>,
    result: TokenStream,
}

impl<'a> Call<'a> {
    fn new(handler: &'a Handler, function: &str, writer: &TypeWriter) -> Self {
        let mut locals = Namer::values();
        let args: Vec<(Ident, &str, TokenStream)> = handler
            .args
            .iter()
            .map(|arg| {
                let name = arg.name.strip_prefix("r#").unwrap_or(&arg.name);
                let ident = ident_or_escaped(&locals.claim(name));
                (ident, name, writer.ty(&arg.ty))
            })
            .collect();
        let client = format_ident!("{}", locals.claim("client"));
        let state = format_ident!("{}", locals.claim("state"));
        let subscription = format_ident!("{}", locals.claim("subscription"));
        Call {
            handler,
            function: ident_or_escaped(function),
            client,
            state,
            subscription,
            args,
            result: writer.ty(&handler.returns),
        }
    }

    fn function(&self, placeholders: &mut Placeholders) -> TokenStream {
        let docs = doc_attrs(self.handler.doc.as_deref());
        let Call {
            function,
            client,
            result,
            ..
        } = self;
        let name = &self.handler.name;
        let params = std::iter::once(format!("{client}: &Client"))
            .chain(
                self.args
                    .iter()
                    .map(|(ident, _, ty)| format!("{ident}: {}", type_text(ty))),
            )
            .collect();
        let signature = placeholders.signature(Signature {
            head: format!("pub async fn {function}"),
            params,
            tail: format!(" -> Result<{}, ForgeError>", type_text(result)),
        });
        let body = match self.args_value(placeholders) {
            None => quote!(#client.call(#name, &serde_json::Map::new()).await),
            Some(args) => quote! {
                #args
                #client.call(#name, &args).await
            },
        };
        quote! {
            #docs
            #signature {
                #body
            }
        }
    }

    /// `let args = Args { … };`, with the struct it builds, serialising to the object of
    /// the arguments by name; `None` when there are none.
    fn args_value(&self, placeholders: &mut Placeholders) -> Option<TokenStream> {
        if self.args.is_empty() {
            return None;
        }
        let fields = self.args.iter().map(|(ident, wire, ty)| {
            let own = ident.to_string();
            let rename = (own.strip_prefix("r#").unwrap_or(&own) != *wire)
                .then(|| quote!(#[serde(rename = #wire)]));
            quote!(#rename #ident: #ty,)
        });
        let literal = placeholders.literal(self.args.iter().map(|(ident, ..)| ident));
        Some(quote! {
            #[derive(serde::Serialize)]
            struct Args { #(#fields)* }
            let args = #literal;
        })
    }

    fn live_hook(&self, hook: &str, placeholders: &mut Placeholders) -> TokenStream {
        let hook = ident_or_escaped(hook);
        let Call {
            function,
            client,
            state,
            subscription,
            result,
            ..
        } = self;
        let name = &self.handler.name;
        let docs = doc_attrs(self.handler.doc.as_deref());
        let separator = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
        let doc = format!(
            " Subscribes to [`{function}`] with the [`Client`] from [`use_client`]: holds `None`"
        );
        let params = self.readable_params();
        let signature = placeholders.signature(Signature {
            head: format!("pub fn {hook}"),
            params,
            tail: format!(
                " -> dioxus::prelude::ReadSignal<Option<Result<{}, ForgeError>>>",
                type_text(result)
            ),
        });
        let reads = self.read_args();
        // `on_event` and `live` come after the arguments' last use, so an argument may have
        // either name.
        // A copy of the signal per call keeps the closure `Fn`.
        let on_event = quote! {
            let on_event = move |result| {
                let mut #state = #state;
                dioxus::prelude::WritableExt::set(&mut #state, Some(result));
            };
        };
        let subscribe = match self.args_value(placeholders) {
            None => quote! {
                #on_event
                let live = #client.subscribe(#name, &serde_json::Map::new(), on_event);
            },
            Some(args) => quote! {
                #args
                #on_event
                let live = #client.subscribe(#name, &args, on_event);
            },
        };
        quote! {
            #docs
            #separator
            #[doc = #doc]
            #[doc = " until the first result arrives, then the latest result or error. Subscribes again"]
            #[doc = " whenever a signal passed as an argument changes; unsubscribes when the component is"]
            #[doc = " dropped."]
            #signature {
                let #client = use_client();
                let #state = dioxus::prelude::use_signal(|| None);
                // Dropped with the component, and replaced when the arguments change: either
                // unsubscribes.
                let #subscription = dioxus::prelude::use_hook(|| {
                    std::rc::Rc::new(std::cell::RefCell::new(None::<LiveSubscription>))
                });
                dioxus::prelude::use_effect(move || {
                    // Read here, so that the effect subscribes to them.
                    #(#reads)*
                    #subscribe
                    *#subscription.borrow_mut() = Some(live);
                });
                #state.into()
            }
        }
    }

    /// A hook's parameters: each argument as a readable (a signal or a plain value), so the
    /// hook re-runs when one changes.
    fn readable_params(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|(ident, _, ty)| {
                let readable = quote!(impl dioxus::prelude::Readable<Target = #ty> + 'static);
                format!("{ident}: {}", type_text(&readable))
            })
            .collect()
    }

    /// Reads each readable parameter into a value of the argument's own name.
    fn read_args(&self) -> impl Iterator<Item = TokenStream> + '_ {
        self.args
            .iter()
            .map(|(ident, ..)| quote!(let #ident = dioxus::prelude::ReadableExt::cloned(&#ident);))
    }

    fn hook(&self, hook: &str, placeholders: &mut Placeholders) -> TokenStream {
        let hook = ident_or_escaped(hook);
        let Call {
            function,
            client,
            result,
            ..
        } = self;
        let docs = doc_attrs(self.handler.doc.as_deref());
        let separator = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
        let doc = format!(
            " Runs [`{function}`] in a resource, with the [`Client`] from [`use_client`], and"
        );
        let params = self.readable_params();
        let signature = placeholders.signature(Signature {
            head: format!("pub fn {hook}"),
            params,
            tail: format!(
                " -> dioxus::prelude::Resource<Result<{}, ForgeError>>",
                type_text(result)
            ),
        });
        let reads = self.read_args();
        let idents = self.args.iter().map(|(ident, ..)| ident);
        quote! {
            #docs
            #separator
            #[doc = #doc]
            #[doc = " again whenever a signal passed as an argument changes."]
            #signature {
                let #client = use_client();
                dioxus::prelude::use_resource(move || {
                    let #client = #client.clone();
                    // Read here, outside the future, so that the resource subscribes to them.
                    #(#reads)*
                    async move { #function(&#client, #(#idents),*).await }
                })
            }
        }
    }
}

/// A type as prettyplease writes it (`quote` would space it as `Option < String >`).
fn type_text(ty: &TokenStream) -> String {
    let text = super::unparse(quote!(type T = #ty;));
    let text = text.trim_end();
    let text = text.strip_prefix("type T = ").unwrap_or(text);
    let text = text.strip_suffix(';').unwrap_or(text);
    // A type too long for one line comes back broken; a signature holds it on one.
    text.split('\n')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}
