//! The parts of the module that prettyplease and rustfmt lay out differently, laid out as
//! rustfmt (default configuration) does.
//!
//! prettyplease breaks lines at column 89, rustfmt at 100, and rustfmt puts a struct
//! literal on one line only when its fields take at most 18 columns. So prettyplease
//! formats a placeholder identifier in place of each function signature and each
//! `Args { … }` literal, and [`Placeholders::fill`] writes them from the column the
//! placeholder ended up in. A placeholder is a raw identifier, which is never how the
//! module spells a user's name (those are raw only when they are keywords).

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

const MAX_WIDTH: usize = 100;
/// rustfmt's `struct_lit_width`.
const STRUCT_LIT_WIDTH: usize = 18;
const INDENT: usize = 4;

const PREFIX: &str = "r#__forge_";

/// What the placeholders of one module stand for.
#[derive(Default)]
pub(super) struct Placeholders {
    /// The fields of each `Args { … }` literal, as source.
    literals: Vec<Vec<String>>,
    signatures: Vec<Signature>,
}

/// A function signature, as source: `{head}({params}){tail}`, e.g. `pub async fn f`,
/// `["a: u32"]`, ` -> Result<(), ForgeError>`.
pub(super) struct Signature {
    pub(super) head: String,
    pub(super) params: Vec<String>,
    pub(super) tail: String,
}

impl Placeholders {
    /// A placeholder expression for `Args { <fields> }`.
    pub(super) fn literal<'i>(&mut self, fields: impl Iterator<Item = &'i Ident>) -> TokenStream {
        let ident = placeholder("args", self.literals.len());
        self.literals
            .push(fields.map(ToString::to_string).collect());
        quote!(#ident)
    }

    /// A placeholder function signature: `fn <placeholder>()`, which the caller completes
    /// with the body.
    pub(super) fn signature(&mut self, signature: Signature) -> TokenStream {
        let ident = placeholder("sig", self.signatures.len());
        self.signatures.push(signature);
        quote!(fn #ident())
    }

    /// `text` (prettyplease's output) with every placeholder replaced by its layout. Text
    /// that only looks like a placeholder (in a user's string) names none and is kept.
    pub(super) fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + text.len() / 4);
        let mut rest = text;
        while let Some(at) = rest.find(PREFIX) {
            out.push_str(&rest[..at]);
            let found = &rest[at..];
            let name = &found[PREFIX.len()..];
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(name.len());
            rest = &name[end..];
            let line_start = out.rfind('\n').map_or(0, |i| i + 1);
            let line = &out[line_start..];
            let (kind, n) = name[..end].split_once('_').unwrap_or(("", ""));
            let n: Option<usize> = n.parse().ok();
            match (kind, n) {
                ("args", Some(n)) if n < self.literals.len() => {
                    let text = literal(&self.literals[n], line);
                    out.push_str(&text);
                }
                ("sig", Some(n)) if n < self.signatures.len() => {
                    // prettyplease wrote `pub async fn <placeholder>() {`: the signature
                    // replaces it from the start of the line through the `()`.
                    let text = signature(&self.signatures[n], line);
                    out.truncate(line_start);
                    out.push_str(&text);
                    rest = rest.strip_prefix("()").unwrap_or(rest);
                }
                _ => out.push_str(&found[..PREFIX.len() + end]),
            }
        }
        out.push_str(rest);
        out
    }
}

fn placeholder(kind: &str, n: usize) -> Ident {
    Ident::new_raw(&format!("{}{kind}_{n}", &PREFIX[2..]), Span::call_site())
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// `Args { a, b }` after `line`: on one line when the fields are narrow enough and it fits,
/// else one field per line.
fn literal(fields: &[String], line: &str) -> String {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let body = fields.join(", ");
    // `Args { ` … ` };`
    if width(&body) <= STRUCT_LIT_WIDTH && width(line) + width(&body) + 10 <= MAX_WIDTH {
        return format!("Args {{ {body} }}");
    }
    let mut out = String::from("Args {\n");
    for field in fields {
        out.push_str(&format!("{}{field},\n", " ".repeat(indent + INDENT)));
    }
    out.push_str(&" ".repeat(indent));
    out.push('}');
    out
}

/// The signature for the line `line` began: on that line when it fits (with the ` {` that
/// follows), else one parameter per line.
fn signature(sig: &Signature, line: &str) -> String {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let pad = " ".repeat(indent);
    let one_line = format!("{pad}{}({}){}", sig.head, sig.params.join(", "), sig.tail);
    // rustfmt gives up on a signature it cannot fit even broken, and leaves it as written.
    if width(&one_line) + " {".len() <= MAX_WIDTH || sig.params.is_empty() {
        return one_line;
    }
    let mut out = format!("{pad}{}(\n", sig.head);
    for param in &sig.params {
        out.push_str(&format!("{pad}    {param},\n"));
    }
    out.push_str(&format!("{pad}){}", sig.tail));
    out
}
