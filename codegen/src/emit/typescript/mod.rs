//! The TypeScript client: `types.ts` (the wire shape of every IR type), `api.ts` (a typed
//! function per query and mutation), `client.ts` (the fetch-based RPC client) and
//! `index.ts`, which re-exports them.
//!
//! Output depends only on the IR, iterated in its sorted order, so the same IR always gives
//! byte-identical files.

mod api;
mod names;
mod syntax;
#[cfg(test)]
pub(crate) mod tests;
mod types;

use std::fmt;

use super::{GeneratedFile, GENERATED_HEADER};
use crate::ir::Ir;
use api::CallChunk;
use names::Naming;
use types::DeclChunk;

/// The runtime half of the client, the same for every project.
const CLIENT_TS: &str = include_str!("client.ts");

/// `.js` specifiers resolve to the `.ts` files under every TypeScript module resolution,
/// and keep the compiled output loadable by Node's own ES module loader.
const INDEX_TS: &str = "\
export * from \"./api.js\";
export * from \"./client.js\";
export * from \"./types.js\";
";

/// What the last emission named and wrote.
#[derive(Default)]
pub struct Cache {
    naming: Option<Naming>,
    calls: Vec<CallChunk>,
    decls: Vec<DeclChunk>,
}

/// Every file of the TypeScript client, sorted by path.
pub fn emit(ir: &Ir) -> Vec<GeneratedFile> {
    emit_cached(ir, &mut Cache::default())
}

/// [`emit`], reusing what `cache` kept of the last emission: while the IR declares the same
/// names (no type or callable handler added, removed or renamed), the declaration of every
/// type and the functions of every handler that is the same allocation as last time
/// (`resolve::build_cached` shares unchanged entries). Watch mode calls this; the bytes are
/// those of [`emit`].
pub fn emit_cached(ir: &Ir, cache: &mut Cache) -> Vec<GeneratedFile> {
    let previous = std::mem::take(cache);
    let (naming, calls, decls) = match previous.naming {
        Some(naming) if naming.fits(ir) => (naming, Some(previous.calls), Some(previous.decls)),
        _ => (Naming::new(ir), None, None),
    };
    let names = naming.type_names(&ir.types);
    // The two large files are independent once everything is named.
    let ((api, calls), (types, decls)) = rayon::join(
        || {
            chunked_file("api.ts", |out| {
                api::write_api(out, ir, &naming, &names, calls)
            })
        },
        || chunked_file("types.ts", |out| types::write_types(out, ir, &names, decls)),
    );
    *cache = Cache {
        naming: Some(naming),
        calls,
        decls,
    };
    vec![
        api,
        file("client.ts", |out| {
            out.push('\n');
            out.push_str(CLIENT_TS);
            Ok(())
        }),
        file("index.ts", |out| {
            out.push_str(INDEX_TS);
            Ok(())
        }),
        types,
    ]
}

fn file(path: &str, write: impl FnOnce(&mut String) -> fmt::Result) -> GeneratedFile {
    chunked_file(path, write).0
}

/// A file written from chunks, and the chunks.
fn chunked_file<T>(
    path: &str,
    write: impl FnOnce(&mut String) -> Result<T, fmt::Error>,
) -> (GeneratedFile, T) {
    let mut contents = String::with_capacity(4096);
    contents.push_str(GENERATED_HEADER);
    contents.push('\n');
    let chunks = write(&mut contents).expect("formatting into a String cannot fail");
    let file = GeneratedFile {
        path: path.to_owned(),
        contents,
    };
    (file, chunks)
}
