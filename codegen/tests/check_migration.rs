//! FG6xx on fixture crates: their source through the parser and resolver, their
//! `migrations/` hashed the way the CLI hashes it, and their forge.lock.

mod support;

use std::path::Path;

use forge_codegen::check::{self, Project};
use forge_codegen::config::Config;
use forge_codegen::ir::Diagnostic;
use forge_codegen::lock::{Lock, LOCK_FILE};
use forge_codegen::migrations::MigrationFile;
use sha2::{Digest, Sha256};

/// Every file in `dir` but dotfiles, sorted by name, as `forge check` sees them.
fn migrations(dir: &Path) -> Vec<MigrationFile> {
    let mut files: Vec<MigrationFile> = std::fs::read_dir(dir)
        .expect("the fixture has migrations/")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let content = std::fs::read(&path).expect("migration is readable");
            let sha256 = Sha256::digest(&content)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (!name.starts_with('.')).then_some(MigrationFile { name, sha256 })
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// The FG6xx findings of a fixture, in `check::check`'s order.
fn findings(fixture: &str) -> Vec<Diagnostic> {
    let root = support::fixture_dir(fixture);
    let resolved = support::build_fixture(fixture);
    assert_eq!(
        resolved.diagnostics,
        [],
        "{fixture} parses and resolves cleanly"
    );
    let config_text = std::fs::read_to_string(root.join("forge.toml")).expect("forge.toml");
    let config = Config::parse(&config_text).expect("forge.toml is valid");
    let lock_text = std::fs::read_to_string(root.join(LOCK_FILE)).expect("forge.lock");
    let lock = Lock::parse(&lock_text).expect("forge.lock is valid");
    let migrations = migrations(&root.join("migrations"));
    let project = Project {
        ir: &resolved.ir,
        config: &config.check,
        lock: &lock,
        migrations: &migrations,
    };
    check::check(&project)
        .into_iter()
        .filter(|d| d.code.starts_with("FG6"))
        .collect()
}

fn summary(diagnostics: &[Diagnostic]) -> Vec<(&str, &str, u32)> {
    diagnostics
        .iter()
        .map(|d| {
            let span = d.span.as_ref().expect("every FG6xx finding has a span");
            (d.code.as_str(), span.file.as_str(), span.line)
        })
        .collect()
}

#[test]
fn pass_fixture_is_clean() {
    assert_eq!(findings("check_migration_pass"), []);
}

#[test]
fn fail_fixture_finds_exactly_the_planted_problems() {
    let found = findings("check_migration_fail");
    assert_eq!(
        summary(&found),
        [
            ("FG602", "forge.lock", 1),
            ("FG602", "migrations/0001_init.sql", 1),
            ("FG601", "migrations/0002_billing.sql", 1),
            ("FG601", "migrations/3_AddIndex.sql", 1),
            ("FG601", "migrations/notes.txt", 1),
            ("FG603", "src/todos.rs", 17),
            ("FG603", "src/todos.rs", 27),
            ("FG603", "src/todos.rs", 36),
        ]
    );
    insta::assert_json_snapshot!(found);
}
