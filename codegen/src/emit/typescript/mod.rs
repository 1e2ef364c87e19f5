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
use names::{Namer, TypeNames};

/// The runtime half of the client, the same for every project.
const CLIENT_TS: &str = include_str!("client.ts");

/// `.js` specifiers resolve to the `.ts` files under every TypeScript module resolution,
/// and keep the compiled output loadable by Node's own ES module loader.
const INDEX_TS: &str = "\
export * from \"./api.js\";
export * from \"./client.js\";
export * from \"./types.js\";
";

/// Every file of the TypeScript client, sorted by path.
pub fn emit(ir: &Ir) -> Vec<GeneratedFile> {
    let mut namer = Namer::new();
    let names = TypeNames::new(&ir.types, &mut namer);
    vec![
        file("api.ts", |out| api::write_api(out, ir, &names, &mut namer)),
        file("client.ts", |out| {
            out.push('\n');
            out.push_str(CLIENT_TS);
            Ok(())
        }),
        file("index.ts", |out| {
            out.push_str(INDEX_TS);
            Ok(())
        }),
        file("types.ts", |out| types::write_types(out, ir, &names)),
    ]
}

fn file(path: &str, write: impl FnOnce(&mut String) -> fmt::Result) -> GeneratedFile {
    let mut contents = String::with_capacity(4096);
    contents.push_str(GENERATED_HEADER);
    contents.push('\n');
    write(&mut contents).expect("formatting into a String cannot fail");
    GeneratedFile {
        path: path.to_owned(),
        contents,
    }
}
