use crate::ir::Span;

/// Converts a proc-macro2 span (0-based columns) into an IR span (1-based columns).
pub fn convert(file: &str, span: proc_macro2::Span) -> Span {
    let start = span.start();
    let end = span.end();
    Span {
        file: file.to_owned(),
        line: start.line as u32,
        column: start.column as u32 + 1,
        end_line: end.line as u32,
        end_column: end.column as u32 + 1,
    }
}

/// The span of anything with tokens.
pub fn of(file: &str, node: &impl syn::spanned::Spanned) -> Span {
    convert(file, node.span())
}
