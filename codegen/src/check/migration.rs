//! FG6xx: the migrations in `migrations/` and forge's own `forge_*` tables.
//!
//! FG601, the file-name contract:
//! - A migration is `NNNN_name.sql`: a number of at least four ASCII digits, `_`, a name of
//!   lower-case words (`a-z`, `0-9`) joined by single `_`, and the extension `.sql` in lower
//!   case. Timestamps (`20240101120000_init.sql`, sqlx's style) are numbers too.
//! - Every migration uses the same number width, so that sorting by name is sorting by
//!   number: the width most files use (the narrower on a tie), widened to four digits and to
//!   the digits of the largest number.
//! - No two files share a number, compared as numbers (`0002` and `00002` clash). When they
//!   do, the file forge.lock records keeps it (a database may have applied it under that
//!   name), else the first by name; the others are told to take the next free number, which
//!   is past every number in `migrations/` and in forge.lock (a deleted migration's number
//!   stays taken).
//! - Notes may live beside the migrations: `*.md` files (any letter case) and dotfiles
//!   (`.gitkeep`) are not migrations, and every rule here ignores them, even when forge.lock
//!   records them. Any other file is refused rather than guessed at.
//!
//! FG602 compares each file's SHA-256 with the one forge.lock recorded when `forge generate`
//! first saw it, so an edited or deleted migration is caught offline. The lock model keeps no
//! line numbers, so a deleted file's finding points at forge.lock's first line.
//!
//! FG603 flags SQL writes to a table whose last name segment starts with `forge_`, in any
//! letter case: the prefix is reserved for forge's system tables.

use std::collections::BTreeSet;

use super::{Project, Rule};
use crate::ir::{Diagnostic, Handler, Ir, Span, SqlCall};
use crate::lock::{Lock, LOCK_FILE};
use crate::migrations::{
    corrected, is_note, is_snake_case, FileName, MigrationFile, Numbering, MIN_WIDTH,
};

pub const RULES: &[Rule] = &[
    Rule {
        code: "FG601",
        title: "a migration file name is not `NNNN_name.sql`, or two files share a number",
        explanation: "forge applies migrations in the order of their numbers and records each \
            one by its file name, so the name is part of the migration's identity. A number of \
            at least four digits, the same width in every file, keeps a directory listing, a \
            code review and the runner in one order; a lower-case snake_case name reads the \
            same on every file system; and two files with one number have no defined order, \
            which is what happens when two branches each add \"the next\" migration. Notes may \
            sit beside the migrations as `*.md` files, which forge ignores; any other file is \
            refused rather than guessed at. Rename a file only while no database has applied \
            it: the runner knows applied migrations by name.",
        example: "\
migrations/
  0001_init.sql
  0002_add_teams.sql
  0002_billing.sql      error[FG601]: its number is also used by `0002_add_teams.sql`
  3_AddIndex.sql        error[FG601]: 1 digit, fewer than 4; name not lower-case words

fixed:
migrations/
  0001_init.sql
  0002_add_teams.sql
  0003_add_index.sql
  0004_billing.sql",
    },
    Rule {
        code: "FG602",
        title: "an applied migration was edited or deleted (its checksum differs from forge.lock)",
        explanation: "A database that applied a migration keeps its effect and its checksum; \
            editing the file afterwards changes nothing there, so environments drift apart (a \
            fresh database runs the new text, production keeps the old) until the runner \
            refuses to start on the changed checksum. forge.lock records each migration's \
            SHA-256 when `forge generate` first sees the file, so this rule catches the edit \
            offline, in review and CI, before any runner does. Deleting a recorded file is the \
            same problem. Migrations are forward-only: restore the file and put the change in a \
            new one. Only when no database anywhere has applied the file may you delete its \
            forge.lock entry, so that `forge generate` records it afresh.",
        example: "\
# forge.lock
[[migration]]
file = \"0001_init.sql\"
sha256 = \"3f1a…\"        # but migrations/0001_init.sql now hashes to 9b2c…

error[FG602]: migration `0001_init.sql` was edited after forge.lock recorded it

fixed: restore 0001_init.sql and write the change as a new migration,
migrations/0002_add_email.sql:
ALTER TABLE users ADD COLUMN email text;",
    },
    Rule {
        code: "FG603",
        title: "handler SQL writes to a `forge_*` system table",
        explanation: "forge keeps its own state (the job queue, cron runs, workflow runs, steps \
            and events, leader leases, the change log) in tables prefixed `forge_`, and the \
            runtime relies on invariants between their rows, such as a job's status and \
            attempts or a run's current step and wake time, that plain SQL does not maintain. \
            The context API (`ctx.dispatch_job`, `ctx.start_workflow`, `ctx.send_event`) writes \
            them correctly and in the handler's own transaction. Reading `forge_*` tables is \
            fine; writing them (INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM, with or \
            without a schema, in any letter case) is not. The prefix is reserved, so a table \
            of your own named `forge_…` is refused too: rename it.",
        example: "\
// error[FG603]: `create_user` writes to forge's system table `forge_jobs`
sqlx::query(\"INSERT INTO forge_jobs (name, input) VALUES ('send_welcome', $1)\")
    .bind(json!({ \"user_id\": user.id }))
    .execute(ctx.tx())
    .await?;

// fixed
ctx.dispatch_job(\"send_welcome\", Welcome { user_id: user.id }).await?;",
    },
];

pub fn check(project: &Project, out: &mut Vec<Diagnostic>) {
    check_files(project.migrations, project.lock, out);
    check_system_tables(project.ir, out);
}

/// FG601 and FG602: the rules that need only the files and forge.lock, no source. `forge
/// migrate verify` runs them offline.
pub fn check_files(files: &[MigrationFile], lock: &Lock, out: &mut Vec<Diagnostic>) {
    check_names(files, lock, out);
    check_checksums(files, lock, out);
}

// ---- FG601: file names ----

fn check_names(files: &[MigrationFile], lock: &Lock, out: &mut Vec<Diagnostic>) {
    let names: Vec<FileName> = files
        .iter()
        .map(|file| file.name.as_str())
        .filter(|file| !is_note(file))
        .map(FileName::parse)
        .collect();
    let numbering = Numbering::of(&names, lock);
    let mut next_free = numbering.next_free;
    for name in &names {
        let problems = problems(name, &numbering);
        if problems.is_empty() {
            continue;
        }
        let number = match name.number() {
            Some(number) if numbering.owner(number) == Some(name.file) => number,
            _ => {
                let number = next_free;
                next_free = next_free.saturating_add(1);
                number
            }
        };
        let corrected = corrected(name, number, numbering.width);
        out.push(misnamed(name, &problems, &corrected, lock));
    }
}

fn problems(name: &FileName, numbering: &Numbering) -> Vec<String> {
    if name.is_stray() {
        return vec!["it is neither a migration (`NNNN_name.sql`) nor a note (`*.md`)".to_owned()];
    }
    let mut problems = Vec::new();
    extension_problems(name, &mut problems);
    number_problems(name, numbering, &mut problems);
    words_problems(name, &mut problems);
    problems
}

fn extension_problems(name: &FileName, problems: &mut Vec<String>) {
    match name.ext {
        Some("sql") => {}
        Some(ext) => problems.push(format!("its extension is `.{ext}`, not `.sql`")),
        None => problems.push("it has no `.sql` extension".to_owned()),
    }
}

fn number_problems(name: &FileName, numbering: &Numbering, problems: &mut Vec<String>) {
    let digits = name.digits.len();
    let Some(number) = name.number() else {
        problems.push(match digits {
            0 => "it does not start with a number".to_owned(),
            _ => "its number is too large".to_owned(),
        });
        return;
    };
    if let Some(owner) = numbering.owner(number).filter(|&owner| owner != name.file) {
        problems.push(format!("its number is also used by `{owner}`"));
    }
    if digits != numbering.width {
        let plural = if digits == 1 { "" } else { "s" };
        let width = numbering.width;
        let why = if digits < MIN_WIDTH && width == MIN_WIDTH {
            format!("fewer than {MIN_WIDTH}")
        } else {
            format!("but every number here must have {width}")
        };
        problems.push(format!("its number has {digits} digit{plural}, {why}"));
    }
}

fn words_problems(name: &FileName, problems: &mut Vec<String>) {
    // `0001-init` is left to the name check below, which also reports the `-`.
    let glued = name.rest.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !name.digits.is_empty() && glued {
        problems.push("its number is not followed by `_`".to_owned());
    }
    let words = name.words();
    if words.is_empty() {
        problems.push("it has no name after the number".to_owned());
    } else if !is_snake_case(words) {
        problems.push(format!(
            "its name `{words}` is not lower-case words (`a-z`, `0-9`) joined by single `_`"
        ));
    }
}

fn misnamed(name: &FileName, problems: &[String], corrected: &str, lock: &Lock) -> Diagnostic {
    let (message, label, mut help) = if name.is_stray() {
        (
            format!(
                "`{}` does not belong in migrations/: {}",
                name.file,
                problems.join("; ")
            ),
            "not a migration",
            format!(
                "if it holds notes, rename it to `{}.md` (forge ignores `*.md` files there) or \
                 move it out of migrations/; if it is a migration, rename it to `{corrected}`",
                name.stem
            ),
        )
    } else {
        (
            format!(
                "migration file name `{}` is not `NNNN_name.sql`: {}",
                name.file,
                problems.join("; ")
            ),
            "misnamed migration",
            format!("rename it to `{corrected}`"),
        )
    };
    if lock.migrations.contains_key(name.file) {
        help.push_str(&format!(
            ". {LOCK_FILE} records `{}`: rename it only if no database has applied it, and then \
             delete its entry from {LOCK_FILE}",
            name.file
        ));
    }
    Diagnostic::error(
        "FG601",
        message,
        Some(file_start(&migration_path(name.file))),
    )
    .with_label(label)
    .with_help(help)
}

fn migration_path(file: &str) -> String {
    format!("migrations/{file}")
}

/// A whole file has no better place than its start.
fn file_start(file: &str) -> Span {
    Span {
        file: file.to_owned(),
        line: 1,
        column: 1,
        end_line: 1,
        end_column: 1,
    }
}

// ---- FG602: checksums ----

fn check_checksums(files: &[MigrationFile], lock: &Lock, out: &mut Vec<Diagnostic>) {
    for file in files.iter().filter(|file| !is_note(&file.name)) {
        match lock.migrations.get(&file.name) {
            // The lock may have been written by hand in upper case.
            Some(recorded) if !recorded.eq_ignore_ascii_case(&file.sha256) => {
                out.push(edited(file, recorded));
            }
            _ => {}
        }
    }
    let present: BTreeSet<&str> = files.iter().map(|file| file.name.as_str()).collect();
    for (file, recorded) in &lock.migrations {
        if !is_note(file) && !present.contains(file.as_str()) {
            out.push(deleted(file, recorded));
        }
    }
}

fn edited(file: &MigrationFile, recorded: &str) -> Diagnostic {
    let name = &file.name;
    Diagnostic::error(
        "FG602",
        format!(
            "migration `{name}` was edited after {LOCK_FILE} recorded it: sha256 was {recorded}, \
             is now {}",
            file.sha256
        ),
        Some(file_start(&migration_path(name))),
    )
    .with_label("edited after it was recorded")
    .with_help(format!(
        "migrations are forward-only: a database that applied `{name}` keeps the recorded \
         version, and the runner refuses a changed one. Restore the recorded content (from git) \
         and write the change as a new migration. Only if no database has applied `{name}` yet, \
         delete its `[[migration]]` entry from {LOCK_FILE}, and `forge generate` records the \
         new checksum"
    ))
}

fn deleted(file: &str, recorded: &str) -> Diagnostic {
    Diagnostic::error(
        "FG602",
        format!("migration `{file}` was deleted, but {LOCK_FILE} records it (sha256 {recorded})"),
        // The lock model keeps no line numbers; the entry is somewhere in the file.
        Some(file_start(LOCK_FILE)),
    )
    .with_label(format!("the entry for `{file}` is in this file"))
    .with_help(format!(
        "migrations are forward-only: a database that applied `{file}` still expects it. \
         Restore it from git (if you renamed it, rename it back) and undo its effect in a new \
         migration. Only if no database has applied it, delete its `[[migration]]` entry from \
         {LOCK_FILE}"
    ))
}

// ---- FG603: forge's system tables ----

fn check_system_tables(ir: &Ir, out: &mut Vec<Diagnostic>) {
    for handler in &ir.handlers {
        for call in &handler.sql {
            for table in call.tables_written.iter().filter(|t| is_system_table(t)) {
                out.push(writes_system_table(handler, call, table));
            }
        }
    }
}

fn is_system_table(table: &str) -> bool {
    unqualified(table)
        .get(..6)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("forge_"))
}

fn writes_system_table(handler: &Handler, call: &SqlCall, table: &str) -> Diagnostic {
    Diagnostic::error(
        "FG603",
        format!(
            "`{}` writes to forge's system table `{table}`",
            handler.name
        ),
        Some(call.span.clone()),
    )
    .with_label(format!("writes `{table}`"))
    .with_help(system_table_help(table))
}

fn system_table_help(table: &str) -> String {
    match context_api(table) {
        Some(instead) => format!("{instead}. Reading `{table}` with SQL is fine"),
        None => format!(
            "forge owns every `forge_*` table: change its state through the context API \
             (`ctx.dispatch_job`, `ctx.start_workflow`, `ctx.send_event`) or the admin API. If \
             `{table}` is a table of your own, rename it: the `forge_` prefix is reserved"
        ),
    }
}

/// `forge_jobs` of `public.forge_jobs`: the schema does not matter, the table's name does.
fn unqualified(table: &str) -> &str {
    table.rsplit('.').next().unwrap_or(table)
}

/// What a handler does instead of writing this system table itself.
fn context_api(table: &str) -> Option<&'static str> {
    match unqualified(table).to_ascii_lowercase().as_str() {
        "forge_jobs" => Some(
            "enqueue jobs with `ctx.dispatch_job(\"name\", input)`, which writes in the \
             handler's transaction; from then on only forge moves a job through its statuses, \
             attempts and retries",
        ),
        "forge_workflow_runs" => Some(
            "start workflows with `ctx.start_workflow(\"name\", input)`, which writes in the \
             handler's transaction; cancel or retry runs through the admin API \
             (`POST /_api/admin/workflows/{id}/cancel`, `…/retry`)",
        ),
        "forge_workflow_events" => Some(
            "deliver events with `ctx.send_event(run_id, \"key\", payload)`, which writes in \
             the handler's transaction",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CheckConfig;
    use crate::ir::IR_VERSION;

    fn sha(seed: &str) -> String {
        seed.repeat(64 / seed.len())
    }

    /// Every file's checksum is `sha("a")`; `locked` entries record that too, so only
    /// FG601 fires unless a test says otherwise.
    fn files(names: &[&str]) -> Vec<MigrationFile> {
        names
            .iter()
            .map(|name| MigrationFile {
                name: (*name).to_owned(),
                sha256: sha("a"),
            })
            .collect()
    }

    fn lock(entries: &[(&str, &str)]) -> Lock {
        Lock {
            migrations: entries
                .iter()
                .map(|(file, sha)| ((*file).to_owned(), (*sha).to_owned()))
                .collect(),
            ..Lock::default()
        }
    }

    fn run_on(ir: &Ir, migrations: &[MigrationFile], lock: &Lock) -> Vec<Diagnostic> {
        let config = CheckConfig::default();
        let project = Project {
            ir,
            config: &config,
            lock,
            migrations,
        };
        let mut out = Vec::new();
        check(&project, &mut out);
        out
    }

    fn empty_ir() -> Ir {
        Ir {
            ir_version: IR_VERSION,
            handlers: Vec::new(),
            types: Vec::new(),
        }
    }

    fn diagnostics(names: &[&str], locked: &[&str]) -> Vec<Diagnostic> {
        let recorded: Vec<(&str, String)> = locked.iter().map(|f| (*f, sha("a"))).collect();
        let recorded: Vec<(&str, &str)> = recorded.iter().map(|(f, s)| (*f, s.as_str())).collect();
        run_on(&empty_ir(), &files(names), &lock(&recorded))
    }

    /// The suggested name: the last `rename it to `…`` of the help.
    fn suggestion(d: &Diagnostic) -> &str {
        let help = d.help.as_deref().unwrap_or_default();
        let start = help
            .rfind("rename it to `")
            .map_or(0, |i| i + "rename it to `".len());
        help[start..].split('`').next().unwrap_or_default()
    }

    /// (flagged file, suggested name) for every FG601.
    fn renames(names: &[&str], locked: &[&str]) -> Vec<(String, String)> {
        diagnostics(names, locked)
            .iter()
            .filter(|d| d.code == "FG601")
            .map(|d| {
                let file = d.span.as_ref().map(|s| s.file.clone()).unwrap_or_default();
                let file = file.trim_start_matches("migrations/").to_owned();
                (file, suggestion(d).to_owned())
            })
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn good_names_pass() {
        let good = [
            ".gitkeep",
            "0001_init.sql",
            "0002_add_users.sql",
            "0010_v2_schema_3.sql",
            "NOTES.MD",
            "README.md",
        ];
        assert_eq!(diagnostics(&good, &[]), []);
        let timestamps = ["20240101120000_init.sql", "20240202093000_add_users.sql"];
        assert_eq!(diagnostics(&timestamps, &[]), []);
        assert_eq!(diagnostics(&[], &[]), []);
    }

    #[test]
    fn numbers_need_four_digits() {
        let found = diagnostics(&["1_init.sql", "02_users.sql"], &[]);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].message,
            "migration file name `1_init.sql` is not `NNNN_name.sql`: its number has 1 digit, \
             fewer than 4"
        );
        assert_eq!(
            found[0].help.as_deref(),
            Some("rename it to `0001_init.sql`")
        );
        let span = found[0]
            .span
            .as_ref()
            .map(|s| (s.file.as_str(), s.line, s.column));
        assert_eq!(span, Some(("migrations/1_init.sql", 1, 1)));
        assert_eq!(suggestion(&found[1]), "0002_users.sql");
    }

    #[test]
    fn every_file_uses_the_usual_width() {
        let mixed = ["0001_a.sql", "0002_b.sql", "00003_c.sql"];
        assert_eq!(
            renames(&mixed, &[]),
            pairs(&[("00003_c.sql", "0003_c.sql")])
        );
        let found = diagnostics(&mixed, &[]);
        assert!(
            found[0]
                .message
                .ends_with("its number has 5 digits, but every number here must have 4"),
            "{}",
            found[0].message
        );
        // A tie goes to the narrower width.
        let tie = ["0001_a.sql", "00002_b.sql"];
        assert_eq!(renames(&tie, &[]), pairs(&[("00002_b.sql", "0002_b.sql")]));
        // Timestamped projects pad to their width.
        let stamped = ["20240101120000_a.sql", "20240202093000_b.sql", "7_c.sql"];
        assert_eq!(
            renames(&stamped, &[]),
            pairs(&[("7_c.sql", "00000000000007_c.sql")])
        );
        let found = diagnostics(&stamped, &[]);
        assert!(found[0]
            .message
            .ends_with("its number has 1 digit, but every number here must have 14"));
        // Past 9999 every number needs five digits, or the listing goes out of order.
        let grown = ["0001_a.sql", "0002_b.sql", "10000_c.sql"];
        assert_eq!(
            renames(&grown, &[]),
            pairs(&[("0001_a.sql", "00001_a.sql"), ("0002_b.sql", "00002_b.sql")])
        );
    }

    #[test]
    fn shared_numbers_move_to_the_next_free_one() {
        let files = ["0001_a.sql", "0002_b.sql", "0002_c.sql", "0002_d.sql"];
        assert_eq!(
            renames(&files, &[]),
            pairs(&[("0002_c.sql", "0003_c.sql"), ("0002_d.sql", "0004_d.sql")])
        );
        let found = diagnostics(&files, &[]);
        assert!(
            found[0]
                .message
                .ends_with("its number is also used by `0002_b.sql`"),
            "{}",
            found[0].message
        );
        // Numbers clash as numbers, whatever their width.
        assert_eq!(
            renames(&["0001_a.sql", "00001_b.sql"], &[]),
            pairs(&[("00001_b.sql", "0002_b.sql")])
        );
    }

    #[test]
    fn the_recorded_file_keeps_a_shared_number() {
        let files = ["0001_a.sql", "0002_b.sql", "0002_c.sql"];
        assert_eq!(
            renames(&files, &["0002_c.sql"]),
            pairs(&[("0002_b.sql", "0003_b.sql")])
        );
    }

    #[test]
    fn deleted_migrations_keep_their_numbers() {
        let found = renames(&["0001_a.sql", "0001_b.sql"], &["0007_gone.sql"]);
        assert_eq!(found, pairs(&[("0001_b.sql", "0008_b.sql")]));
    }

    #[test]
    fn names_are_lower_case_words() {
        let cases = [
            ("0002_AddUsers.sql", "0002_add_users.sql"),
            ("0002_add-users.sql", "0002_add_users.sql"),
            ("0002_add__users_.sql", "0002_add_users.sql"),
            ("0002_x.down.sql", "0002_x_down.sql"),
            ("0002_café.sql", "0002_caf.sql"),
        ];
        for (file, fixed) in cases {
            assert_eq!(renames(&[file], &[]), pairs(&[(file, fixed)]), "{file}");
        }
        let found = diagnostics(&["0002_AddUsers.sql"], &[]);
        assert!(
            found[0].message.ends_with(
                "its name `AddUsers` is not lower-case words (`a-z`, `0-9`) joined by single `_`"
            ),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn a_name_and_its_separator_are_required() {
        assert_eq!(
            renames(&["0002.sql", "0003_.sql", "0004init.sql", "init.sql"], &[]),
            pairs(&[
                ("0002.sql", "0002_<name>.sql"),
                ("0003_.sql", "0003_<name>.sql"),
                ("0004init.sql", "0004_init.sql"),
                ("init.sql", "0005_init.sql"),
            ])
        );
        let found = diagnostics(&["0004init.sql"], &[]);
        assert!(found[0]
            .message
            .ends_with("its number is not followed by `_`"));
    }

    #[test]
    fn only_sql_migrations_and_md_notes_belong() {
        assert_eq!(
            renames(&["0001_a.sql", "0002_b.SQL", "0003_c.txt", "0004_d"], &[]),
            pairs(&[
                ("0002_b.SQL", "0002_b.sql"),
                ("0003_c.txt", "0003_c.sql"),
                ("0004_d", "0004_d.sql"),
            ])
        );
        let found = diagnostics(&["0001_a.sql", "notes.txt", "README"], &[]);
        let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`notes.txt` does not belong in migrations/: it is neither a migration \
                 (`NNNN_name.sql`) nor a note (`*.md`)",
                "`README` does not belong in migrations/: it is neither a migration \
                 (`NNNN_name.sql`) nor a note (`*.md`)",
            ]
        );
        let help = found[0].help.as_deref().unwrap_or_default();
        assert!(help.contains("rename it to `notes.md`"), "{help}");
        assert_eq!(suggestion(&found[0]), "0002_notes.sql");
        assert!(found[1]
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("`README.md`"));
    }

    #[test]
    fn one_finding_lists_every_problem() {
        let found = diagnostics(&["0001_a.sql", "1_AddIndex.txt"], &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "migration file name `1_AddIndex.txt` is not `NNNN_name.sql`: its extension is \
             `.txt`, not `.sql`; its number is also used by `0001_a.sql`; its number has 1 \
             digit, fewer than 4; its name `AddIndex` is not lower-case words (`a-z`, `0-9`) \
             joined by single `_`"
        );
        assert_eq!(suggestion(&found[0]), "0002_add_index.sql");
    }

    #[test]
    fn renaming_a_recorded_file_warns() {
        let found = diagnostics(&["0001_Init.sql"], &["0001_Init.sql"]);
        assert_eq!(
            found[0].help.as_deref(),
            Some(
                "rename it to `0001_init.sql`. forge.lock records `0001_Init.sql`: rename it \
                 only if no database has applied it, and then delete its entry from forge.lock"
            )
        );
    }

    #[test]
    fn huge_numbers_do_not_panic() {
        let huge = format!("{}_x.sql", "9".repeat(30));
        let found = diagnostics(&[huge.as_str(), "18446744073709551615_y.sql"], &[]);
        let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [format!(
                "migration file name `{huge}` is not `NNNN_name.sql`: its number is too large"
            )]
        );
    }

    // ---- FG602 ----

    fn checksum_findings(files: &[MigrationFile], recorded: &[(&str, &str)]) -> Vec<Diagnostic> {
        run_on(&empty_ir(), files, &lock(recorded))
            .into_iter()
            .filter(|d| d.code == "FG602")
            .collect()
    }

    #[test]
    fn an_edited_migration_shows_both_checksums() {
        let (old, new) = (sha("b"), sha("a"));
        let found = checksum_findings(&files(&["0001_init.sql"]), &[("0001_init.sql", &old)]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            format!(
                "migration `0001_init.sql` was edited after forge.lock recorded it: sha256 was \
                 {old}, is now {new}"
            )
        );
        assert_eq!(
            found[0].span.as_ref().map(|s| s.file.as_str()),
            Some("migrations/0001_init.sql")
        );
        let help = found[0].help.as_deref().unwrap_or_default();
        assert!(help.starts_with("migrations are forward-only"), "{help}");
        assert!(help.contains("Only if no database has applied"), "{help}");
    }

    #[test]
    fn unchanged_and_new_migrations_pass() {
        let recorded = sha("a");
        let found = checksum_findings(
            &files(&["0001_init.sql", "0002_new.sql"]),
            &[("0001_init.sql", &recorded)],
        );
        assert_eq!(found, []);
        let upper = sha("A");
        let found = checksum_findings(&files(&["0001_init.sql"]), &[("0001_init.sql", &upper)]);
        assert_eq!(found, [], "checksums compare in any letter case");
    }

    #[test]
    fn a_deleted_migration_points_at_the_lock() {
        let recorded = sha("c");
        let found = checksum_findings(
            &files(&["0001_init.sql"]),
            &[("0001_init.sql", &sha("a")), ("0002_gone.sql", &recorded)],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            format!("migration `0002_gone.sql` was deleted, but forge.lock records it (sha256 {recorded})")
        );
        let span = found[0].span.as_ref().map(|s| (s.file.as_str(), s.line));
        assert_eq!(span, Some(("forge.lock", 1)));
    }

    #[test]
    fn notes_are_not_migrations() {
        let found = checksum_findings(
            &files(&["README.md"]),
            &[("README.md", &sha("b")), ("OLD.md", &sha("b"))],
        );
        assert_eq!(found, []);
    }

    // ---- FG603 ----

    fn ir_of(source: &str) -> Ir {
        let parsed = crate::parse::parse_file("src/main.rs", "", source);
        crate::resolve::build(&[parsed]).ir
    }

    /// (table, line) of every FG603.
    fn system_writes(source: &str) -> Vec<(String, u32)> {
        run_on(&ir_of(source), &[], &Lock::default())
            .iter()
            .filter(|d| d.code == "FG603")
            .map(|d| {
                let table = d.label.as_deref().unwrap_or_default();
                let line = d.span.as_ref().map_or(0, |s| s.line);
                (table.trim_start_matches("writes ").replace('`', ""), line)
            })
            .collect()
    }

    #[test]
    fn writes_to_system_tables_are_refused() {
        let source = r#"
use forge::prelude::*;

#[forge::mutation]
pub async fn meddle(ctx: &MutationContext) -> Result<()> {
    sqlx::query("INSERT INTO forge_jobs (name) VALUES ('x')").execute(ctx.tx()).await?;
    sqlx::query("UPDATE forge_jobs SET status = 'cancelled'").execute(ctx.tx()).await?;
    sqlx::query("DELETE FROM public.forge_jobs").execute(ctx.tx()).await?;
    sqlx::query("TRUNCATE \"Forge_Cron_Runs\"").execute(ctx.tx()).await?;
    sqlx::query("INSERT INTO forgery (id) VALUES (1)").execute(ctx.tx()).await?;
    sqlx::query("INSERT INTO audit SELECT * FROM forge_jobs").execute(ctx.tx()).await?;
    Ok(())
}
"#;
        assert_eq!(
            system_writes(source),
            [
                ("forge_jobs".to_owned(), 6),
                ("forge_jobs".to_owned(), 7),
                ("public.forge_jobs".to_owned(), 8),
                ("Forge_Cron_Runs".to_owned(), 9),
            ]
        );
    }

    #[test]
    fn the_help_names_the_context_api() {
        let source = r#"
use forge::prelude::*;

#[forge::job]
pub async fn meddle(ctx: &JobContext) -> Result<()> {
    sqlx::query("INSERT INTO forge_jobs (name) VALUES ('x')").execute(ctx.db()).await?;
    Ok(())
}
"#;
        let found = run_on(&ir_of(source), &[], &Lock::default());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "`meddle` writes to forge's system table `forge_jobs`"
        );
        let help = found[0].help.as_deref().unwrap_or_default();
        assert!(
            help.starts_with("enqueue jobs with `ctx.dispatch_job("),
            "{help}"
        );
        assert!(system_table_help("forge_settings").contains("the `forge_` prefix is reserved"));
    }

    #[test]
    fn system_table_names() {
        for table in ["forge_jobs", "public.forge_jobs", "FORGE_JOBS", "forge_"] {
            assert!(is_system_table(table), "{table}");
        }
        for table in [
            "forgery",
            "forge",
            "jobs",
            "my_forge_jobs",
            "forge_jobs.x",
            "éé",
        ] {
            assert!(!is_system_table(table), "{table}");
        }
    }

    #[test]
    fn every_rule_is_documented() {
        let codes: Vec<&str> = RULES.iter().map(|rule| rule.code).collect();
        assert_eq!(codes, ["FG601", "FG602", "FG603"]);
        for rule in RULES {
            assert!(
                !rule.explanation.contains('\n'),
                "{}: one paragraph",
                rule.code
            );
            assert!(rule.example.contains("fixed"), "{}", rule.code);
        }
    }
}
