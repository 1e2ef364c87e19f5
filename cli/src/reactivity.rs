//! The migration `forge generate` writes when the tables queries read differ from those
//! the migrations give change notifications (see `forge_codegen::reactivity` for the rules).

use std::path::Path;

use forge_codegen::check::{self, MigrationFile};
use forge_codegen::ir::Ir;
use forge_codegen::lock::Lock;
use forge_codegen::reactivity::{self, Replay, MIGRATION_WORDS};
use sha2::{Digest, Sha256};

use crate::migrate::MIGRATIONS_DIR;
use crate::output::Planned;
use crate::Fatal;

/// The next migration, when one is needed, with the entry forge.lock gets for it. It takes
/// the number `forge migrate new` would, from the same code.
pub fn plan(
    root: &Path,
    ir: &Ir,
    lock: &Lock,
    migrations: &[MigrationFile],
) -> Result<Option<(Planned, MigrationFile)>, Fatal> {
    let queried = reactivity::queried_tables(ir);
    let replay = replay(root, migrations)?;
    let change = replay.change(&queried);
    if change.is_empty() {
        return Ok(None);
    }
    let name = check::new_file_name(migrations, lock, MIGRATION_WORDS)
        .map_err(|e| Fatal(e.to_string()))?;
    let contents = reactivity::render(&name, &change);
    let sha256 = Sha256::digest(contents.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let rel = format!("{MIGRATIONS_DIR}/{name}");
    Ok(Some((
        Planned {
            path: root.join(&rel),
            rel,
            contents,
            new_file: true,
        },
        MigrationFile { name, sha256 },
    )))
}

/// Every `.sql` file in `migrations/`, in the order the runner applies them (by name), cut
/// into statements by the runner's own splitter. A file that is not UTF-8 or does not split
/// (an unterminated string) is skipped: the runner refuses it anyway, and generate must not
/// stop over a migration being written.
fn replay(root: &Path, migrations: &[MigrationFile]) -> Result<Replay, Fatal> {
    let mut replay = Replay::default();
    for file in migrations.iter().filter(|m| m.name.ends_with(".sql")) {
        let path = root.join(MIGRATIONS_DIR).join(&file.name);
        let bytes = std::fs::read(&path)
            .map_err(|e| Fatal(format!("cannot read {}: {e}", path.display())))?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let Ok(statements) = forge_migrate::split::split(text) else {
            continue;
        };
        for statement in statements {
            replay.statement(statement.text);
        }
    }
    Ok(replay)
}
