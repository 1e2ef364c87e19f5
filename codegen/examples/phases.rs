//! Times each phase of generation on a project, single-threaded, to see where a cold
//! `forge generate` spends its time:
//!
//! ```sh
//! python3 ../shared/bench/gen_corpus.py /tmp/corpus --files 1000
//! cargo run --release -p forge-codegen --example phases -- /tmp/corpus
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use forge_codegen::{emit, parse, resolve};

fn sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if let (Ok(rel), Ok(text)) =
            (path.strip_prefix(root), std::fs::read_to_string(&path))
        {
            out.push((rel.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/corpus".into()),
    );
    let mut files = Vec::new();
    sources(&root, &root.join("src"), &mut files);
    files.sort();
    let start = Instant::now();
    let parsed: Vec<_> = files
        .iter()
        .filter_map(|(rel, text)| Some(parse::parse_file(rel, &parse::module_path(rel)?, text)))
        .collect();
    let parse_time = start.elapsed();
    let start = Instant::now();
    let resolved = resolve::build(&parsed);
    let resolve_time = start.elapsed();
    // Every file's entries reused, as in watch mode after a save that changed one body.
    let versions: Vec<String> = files
        .iter()
        .map(|(_, text)| blake3::hash(text.as_bytes()).to_hex().to_string())
        .collect();
    let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
    let mut cache = resolve::Cache::default();
    resolve::build_cached(&parsed, &versions, &mut cache);
    let start = Instant::now();
    let cached = resolve::build_cached(&parsed, &versions, &mut cache);
    let resolve_cached_time = start.elapsed();
    assert!(cached.ir == resolved.ir, "the cached IR differs");
    let start = Instant::now();
    let glue = emit::rust::emit(&resolved.ir);
    let glue_time = start.elapsed();
    let mut cache = emit::rust::Cache::default();
    emit::rust::emit_cached(&resolved.ir, &mut cache);
    let start = Instant::now();
    let cached = emit::rust::emit_cached(&resolved.ir, &mut cache);
    let cached_time = start.elapsed();
    assert_eq!(cached, glue, "the cached glue differs");
    let start = Instant::now();
    let typescript = emit::typescript::emit(&resolved.ir);
    let typescript_time = start.elapsed();
    let mut cache = emit::typescript::Cache::default();
    emit::typescript::emit_cached(&resolved.ir, &mut cache);
    let start = Instant::now();
    let cached = emit::typescript::emit_cached(&resolved.ir, &mut cache);
    let typescript_cached_time = start.elapsed();
    assert!(cached == typescript, "the cached TypeScript client differs");
    println!(
        "{} files, {} handlers, {} types, {} diagnostics",
        parsed.len(),
        resolved.ir.handlers.len(),
        resolved.ir.types.len(),
        resolved.diagnostics.len()
    );
    println!("parse (1 thread)   {parse_time:>10.1?}");
    println!("resolve            {resolve_time:>10.1?}");
    println!("resolve (cached)   {resolve_cached_time:>10.1?}");
    println!(
        "rust glue (rayon)  {glue_time:>10.1?}  {} bytes",
        glue.len()
    );
    println!("rust glue (cached) {cached_time:>10.1?}");
    println!(
        "typescript         {typescript_time:>10.1?}  {} bytes",
        typescript.iter().map(|f| f.contents.len()).sum::<usize>()
    );
    println!("typescript (cached) {typescript_cached_time:>9.1?}");
}
