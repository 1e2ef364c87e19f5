//! The migration `forge generate` writes when the tables queries read differ from those
//! the migrations give change notifications (see `forge_codegen::reactivity` for the rules).
//!
//! # Decisions
//!
//! `forge generate` keeps the set of tables with change notifications (the triggers
//! `forge_enable_reactivity` installs) equal to the set of tables queries read, by writing a new
//! migration whenever they differ.
//! - **Which tables are wanted.** Every query's (public, private or unscoped: any query can be
//!   subscribed to) literal SQL reads — FROM, JOIN, subqueries, CTE bodies, as `sql.rs` finds
//!   them — and its `tables(...)` option. Other kinds do not count. A wanted table is enabled
//!   only once a migration creates it, so the enable always comes after the `CREATE TABLE`
//!   (generating before writing that migration writes nothing yet), and nothing
//!   `forge_enable_reactivity` refuses (views, partitioned, foreign and temporary tables) or
//!   should not touch (forge's own tables, the catalogs) reaches it. A table created outside
//!   the migrations (an extension's, another tool's) needs a hand-written enable.
//! - **What the migrations did** is read from the files, never from forge.lock or a database:
//!   each `.sql` file in name order, cut by forge-migrate's splitter (a file that is not UTF-8
//!   or does not split is skipped: the runner refuses it anyway), each statement matched on
//!   sqlparser's tokens: `CREATE [UNLOGGED] TABLE [IF NOT EXISTS]` (not `TEMP`, not `PARTITION
//!   BY`), `DROP TABLE` (the triggers go with it), `ALTER TABLE … RENAME TO` / `SET SCHEMA`
//!   (they move with it), and a `SELECT` made only of `forge_enable_reactivity('t')` /
//!   `forge_disable_reactivity('t')` calls (optionally schema-qualified, the literal optionally
//!   `::regclass`). So hand-written calls count; calls with computed arguments are not
//!   understood and not counted (a redundant enable is harmless: enabling is idempotent).
//! - **Names** are compared as Postgres resolves them: unquoted parts folded to lower case,
//!   quoted parts exact (in `tables("…")` and in the literal alike), and `public.t` is `t` —
//!   forge assumes the default `search_path`, so two spellings of one table never disagree.
//!   The generated literal quotes a part only when folding would change it (`'"Events"'`,
//!   `'audit.entries'`).
//! - **The difference.** Enable what is wanted, created and not enabled; disable what is
//!   enabled and read by no query (including a table enabled by hand: the set is generate's).
//!   Both lists sorted, enables first, in one file.
//! - **The file** is `NNNN_forge_reactivity.sql`, numbered by `forge_codegen::migrations::new_file_name` (the code
//!   behind `forge migrate new` and FG601), created with `create_new` (never overwriting
//!   anything), with a header saying it is generated. It is recorded in forge.lock by the same
//!   run, and the no-change stamp counts it as an input, so a second run writes nothing. No
//!   `migrations/` directory means no created tables, so nothing is written.
//! - **`--check` and `forge check`**: the migration is a planned file like the others; when
//!   due, `--check` prints it as a diff from `/dev/null` and `forge check` reports FG701
//!   "migration `migrations/NNNN_forge_reactivity.sql` is missing". Nothing is written.
//! - **Watch mode and `forge dev`** write it too (so the running app gets notifications for
//!   a new query's table); a query commented out and back in writes a disable and then an
//!   enable migration.
//! - `forge new` projects enable their table in `0001_init.sql`, so a new project has one
//!   migration; the kitchen-sink fixture does the same by hand.

use std::path::Path;

use forge_codegen::ir::Ir;
use forge_codegen::lock::Lock;
use forge_codegen::migrations::{new_file_name, MigrationFile};
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
    let name =
        new_file_name(migrations, lock, MIGRATION_WORDS).map_err(|e| Fatal(e.to_string()))?;
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
