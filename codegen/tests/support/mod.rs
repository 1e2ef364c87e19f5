//! Loading fixture crates from `fixtures/`.

use std::path::{Path, PathBuf};

use forge_codegen::parse::{self, ParsedFile};
use forge_codegen::resolve::{self, Resolved};

pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("fixture directory is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("inside the fixture")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((
                rel,
                std::fs::read_to_string(&path).expect("fixture file is UTF-8"),
            ));
        }
    }
}

/// Every crate source file of a fixture: (relative path, text), sorted by path.
pub fn sources(name: &str) -> Vec<(String, String)> {
    let root = fixture_dir(name);
    let mut out = Vec::new();
    collect(&root.join("src"), &root, &mut out);
    out.retain(|(rel, _)| parse::module_path(rel).is_some());
    out.sort();
    out
}

pub fn parse_fixture(name: &str) -> Vec<ParsedFile> {
    sources(name)
        .iter()
        .map(|(rel, text)| {
            let module = parse::module_path(rel).expect("filtered above");
            parse::parse_file(rel, &module, text)
        })
        .collect()
}

pub fn build_fixture(name: &str) -> Resolved {
    resolve::build(&parse_fixture(name))
}
