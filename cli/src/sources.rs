//! Reading the crate's source files and parsing them, with a content-hash cache so an
//! unchanged file is never parsed twice.

use std::collections::HashMap;
use std::path::Path;

use forge_codegen::migrations::MigrationFile;
use forge_codegen::parse::{self, ParsedFile};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use crate::Fatal;

pub struct Source {
    /// Relative to the project root, `/`-separated.
    pub rel: String,
    pub module: String,
    pub content: Vec<u8>,
    pub hash: String,
}

/// Every `.rs` file of the crate's module tree, sorted by path.
pub fn read(root: &Path) -> Result<Vec<Source>, Fatal> {
    let src = root.join("src");
    if !src.is_dir() {
        return Err(Fatal(format!(
            "{} does not exist; a forge project keeps its crate's source in src/",
            src.display()
        )));
    }
    let mut candidates = Vec::new();
    for entry in WalkDir::new(&src).sort_by_file_name() {
        let entry = entry.map_err(|e| Fatal(format!("cannot list {}: {e}", src.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if let Some(module) = parse::module_path(&rel) {
            candidates.push((rel, module, entry.into_path()));
        }
    }
    candidates.sort();
    candidates
        .into_par_iter()
        .map(|(rel, module, path)| {
            let content = std::fs::read(&path)
                .map_err(|e| Fatal(format!("cannot read {}: {e}", path.display())))?;
            let hash = blake3::hash(&content).to_hex().to_string();
            Ok(Source {
                rel,
                module,
                content,
                hash,
            })
        })
        .collect()
}

/// Parse results by file, from the last run.
#[derive(Default, Deserialize)]
pub struct ParseCache {
    /// Identifies the forge build that wrote the cache: another build may parse differently.
    build: String,
    entries: HashMap<String, CacheEntry>,
}

#[derive(Deserialize)]
struct CacheEntry {
    hash: String,
    parsed: ParsedFile,
}

/// What is written: the same shape as [`ParseCache`], borrowing the run's results.
#[derive(Serialize)]
struct CacheOut<'a> {
    build: &'a str,
    entries: HashMap<&'a str, CacheEntryOut<'a>>,
}

#[derive(Serialize)]
struct CacheEntryOut<'a> {
    hash: &'a str,
    parsed: &'a ParsedFile,
}

const CACHE_FILE: &str = "parse-cache.json";

/// Identifies this forge binary (its size and modification time).
pub fn build_id() -> String {
    let meta = std::env::current_exe().and_then(std::fs::metadata);
    match meta {
        Ok(meta) => {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}-{}-{modified}", env!("CARGO_PKG_VERSION"), meta.len())
        }
        Err(_) => env!("CARGO_PKG_VERSION").to_owned(),
    }
}

impl ParseCache {
    /// The cache in `dir`, or an empty one when it is missing, unreadable or from another build.
    pub fn load(dir: &Path, build: &str) -> ParseCache {
        let cache: Option<ParseCache> = std::fs::read(dir.join(CACHE_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        cache.filter(|c| c.build == build).unwrap_or_default()
    }

    /// Parses every source (in parallel), taking unchanged files' results from the cache.
    pub fn parse_all(mut self, sources: &[Source]) -> Vec<ParsedFile> {
        let mut slots: Vec<Option<ParsedFile>> = sources
            .iter()
            .map(|source| match self.entries.remove(&source.rel) {
                Some(entry) if entry.hash == source.hash => Some(entry.parsed),
                _ => None,
            })
            .collect();
        slots
            .par_iter_mut()
            .zip(sources)
            .filter(|(slot, _)| slot.is_none())
            .for_each(|(slot, source)| *slot = Some(parse_source(source)));
        slots.into_iter().flatten().collect()
    }
}

/// Writes this run's results as the next run's cache; failures only cost speed next time,
/// so they are ignored.
pub fn save_cache(dir: &Path, build: &str, sources: &[Source], parsed: &[ParsedFile]) {
    let cache = CacheOut {
        build,
        entries: sources
            .iter()
            .zip(parsed)
            .map(|(source, parsed)| {
                (
                    source.rel.as_str(),
                    CacheEntryOut {
                        hash: &source.hash,
                        parsed,
                    },
                )
            })
            .collect(),
    };
    if std::fs::create_dir_all(dir).is_ok() {
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            let _ = crate::output::write_atomically(&dir.join(CACHE_FILE), &bytes);
        }
    }
}

pub(crate) fn parse_source(source: &Source) -> ParsedFile {
    match std::str::from_utf8(&source.content) {
        Ok(text) => parse::parse_file(&source.rel, &source.module, text),
        Err(error) => parse::unreadable(&source.rel, &source.module, &error.to_string()),
    }
}

/// Every file in `migrations/` (none when the directory is missing), sorted by name, with
/// the SHA-256 `forge migrate` records for it.
pub fn read_migrations(root: &Path) -> Result<Vec<MigrationFile>, Fatal> {
    let dir = root.join("migrations");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Fatal(format!("cannot list {}: {e}", dir.display()))),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Fatal(format!("cannot list {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        let content = std::fs::read(entry.path())
            .map_err(|e| Fatal(format!("cannot read {}: {e}", entry.path().display())))?;
        let sha256 = Sha256::digest(&content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        files.push(MigrationFile { name, sha256 });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}
