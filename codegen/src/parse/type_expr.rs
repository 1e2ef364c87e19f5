//! `syn::Type` → [`TypeExpr`].

use quote::ToTokens;

use super::span;
use super::syntax::{PathSegment, TypeExpr};

pub fn convert(file: &str, ty: &syn::Type) -> TypeExpr {
    let span = span::of(file, ty);
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => TypeExpr::Path {
            segments: segments(file, &p.path),
            span,
        },
        syn::Type::Tuple(t) => TypeExpr::Tuple {
            items: t.elems.iter().map(|e| convert(file, e)).collect(),
            span,
        },
        syn::Type::Array(a) => TypeExpr::Array {
            of: Box::new(convert(file, &a.elem)),
            len: literal_len(&a.len),
            span,
        },
        syn::Type::Slice(s) => TypeExpr::Slice {
            of: Box::new(convert(file, &s.elem)),
            span,
        },
        syn::Type::Reference(r) => TypeExpr::Reference {
            of: Box::new(convert(file, &r.elem)),
            span,
        },
        syn::Type::Paren(p) => convert(file, &p.elem),
        syn::Type::Group(g) => convert(file, &g.elem),
        other => TypeExpr::Other {
            text: other.to_token_stream().to_string(),
            span,
        },
    }
}

pub fn segments(file: &str, path: &syn::Path) -> Vec<PathSegment> {
    path.segments
        .iter()
        .map(|segment| PathSegment {
            name: crate::parse::items::unraw(&segment.ident),
            args: match &segment.arguments {
                syn::PathArguments::AngleBracketed(args) => args
                    .args
                    .iter()
                    .filter_map(|arg| match arg {
                        syn::GenericArgument::Type(t) => Some(convert(file, t)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
        })
        .collect()
}

fn literal_len(expr: &syn::Expr) -> Option<u32> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse().ok(),
        _ => None,
    }
}
