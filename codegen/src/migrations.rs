//! Migration files: what `migrations/` holds, how its files are named and numbered, and the
//! name of the next one. FG601 (`check/migration.rs`) reports names that break these rules;
//! `forge migrate new` and the reactivity migrations name new files with [`new_file_name`],
//! so a new file never trips FG601.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::lock::Lock;

/// One file under `migrations/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The file name (`0001_init.sql`).
    pub name: String,
    /// SHA-256 of the content, lowercase hex, as `forge migrate` records it.
    pub sha256: String,
}

/// Why `forge migrate new` cannot name a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewMigrationError {
    #[error(
        "`{name}` is not a migration name: use lower-case words (`a-z`, `0-9`) joined by single \
         `_`{}",
        suggestion.as_ref().map(|s| format!(", such as `{s}`")).unwrap_or_default()
    )]
    BadName {
        name: String,
        /// The name most likely meant, when there is one.
        suggestion: Option<String>,
    },
    #[error("no migration number is left after {0}")]
    NumbersExhausted(u64),
}

/// The file name `forge migrate new <words>` creates: the next free number (past every
/// number in `migrations/` and in forge.lock, as FG601 renumbers) at the width FG601 requires
/// of every file, so the new file never trips FG601 itself.
pub fn new_file_name(
    files: &[MigrationFile],
    lock: &Lock,
    words: &str,
) -> Result<String, NewMigrationError> {
    if !is_snake_case(words) {
        let suggestion = snake_case(words);
        return Err(NewMigrationError::BadName {
            name: words.to_owned(),
            suggestion: (!suggestion.is_empty()).then_some(suggestion),
        });
    }
    let names: Vec<FileName> = files
        .iter()
        .map(|file| file.name.as_str())
        .filter(|file| !is_note(file))
        .map(FileName::parse)
        .collect();
    let numbering = Numbering::of(&names, lock);
    let number = numbering.next_free;
    if number == u64::MAX {
        return Err(NewMigrationError::NumbersExhausted(number));
    }
    let width = numbering.width;
    Ok(format!("{number:0width$}_{words}.sql"))
}

/// Four digits keep a directory listing in order for the first 9999 migrations.
pub(crate) const MIN_WIDTH: usize = 4;

/// Files that may sit in `migrations/` without being migrations.
pub(crate) fn is_note(file: &str) -> bool {
    file.starts_with('.')
        || file
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("md"))
}

/// A file name taken apart as `<digits><rest>.<ext>`; any part may be malformed.
pub(crate) struct FileName<'a> {
    pub file: &'a str,
    /// Everything before the last `.`.
    pub stem: &'a str,
    pub ext: Option<&'a str>,
    /// The stem's leading ASCII digits.
    pub digits: &'a str,
    /// The stem after the digits: `_name` when well formed.
    pub rest: &'a str,
}

impl<'a> FileName<'a> {
    pub(crate) fn parse(file: &'a str) -> Self {
        let (stem, ext) = match file.rsplit_once('.') {
            Some((stem, ext)) => (stem, Some(ext)),
            None => (file, None),
        };
        let end = stem
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(stem.len());
        let (digits, rest) = stem.split_at(end);
        FileName {
            file,
            stem,
            ext,
            digits,
            rest,
        }
    }

    /// `None` without digits, or when they do not fit in a `u64`.
    pub(crate) fn number(&self) -> Option<u64> {
        self.digits.parse().ok()
    }

    /// The words after the number and its `_`.
    pub(crate) fn words(&self) -> &'a str {
        self.rest.strip_prefix('_').unwrap_or(self.rest)
    }

    /// Not even trying to be a migration: no number and not `.sql` (`notes.txt`, `README`).
    pub(crate) fn is_stray(&self) -> bool {
        self.digits.is_empty() && self.ext != Some("sql")
    }
}

/// How the project numbers its migrations; it takes every file at once.
pub(crate) struct Numbering<'a> {
    /// The width every number must have.
    pub width: usize,
    /// Number → the file that keeps it when several share it.
    pub owners: BTreeMap<u64, &'a str>,
    /// Past every number in `migrations/` and in forge.lock.
    pub next_free: u64,
}

impl<'a> Numbering<'a> {
    pub(crate) fn of(names: &[FileName<'a>], lock: &Lock) -> Self {
        Numbering {
            width: usual_width(names),
            owners: owners(names, lock),
            next_free: next_free(names, lock),
        }
    }

    pub(crate) fn owner(&self, number: u64) -> Option<&'a str> {
        self.owners.get(&number).copied()
    }
}

pub(crate) fn usual_width(names: &[FileName]) -> usize {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for name in names.iter().filter(|name| !name.digits.is_empty()) {
        *counts.entry(name.digits.len()).or_default() += 1;
    }
    let usual = counts
        .into_iter()
        .max_by_key(|&(width, count)| (count, Reverse(width)))
        .map_or(0, |(width, _)| width);
    let largest = names
        .iter()
        .filter_map(FileName::number)
        .max()
        .map_or(0, |number| number.to_string().len());
    usual.max(largest).max(MIN_WIDTH)
}

/// A recorded file keeps its number over unrecorded ones because a database may know it by
/// that name; among equals, the first by name does.
pub(crate) fn owners<'a>(names: &[FileName<'a>], lock: &Lock) -> BTreeMap<u64, &'a str> {
    let mut owners = BTreeMap::new();
    for recorded in [true, false] {
        let files = names
            .iter()
            .filter(|name| lock.migrations.contains_key(name.file) == recorded);
        for name in files {
            if let Some(number) = name.number() {
                owners.entry(number).or_insert(name.file);
            }
        }
    }
    owners
}

pub(crate) fn next_free(names: &[FileName], lock: &Lock) -> u64 {
    let recorded = lock
        .migrations
        .keys()
        .filter_map(|file| FileName::parse(file).number());
    names
        .iter()
        .filter_map(FileName::number)
        .chain(recorded)
        .max()
        .map_or(1, |largest| largest.saturating_add(1))
}

pub(crate) fn is_snake_case(words: &str) -> bool {
    words.split('_').all(|word| {
        !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// What a malformed name most likely meant: `AddUsers`, `add-users` and `add  users` all
/// become `add_users`. Characters outside ASCII separate words, since the name must not
/// hold them.
pub(crate) fn snake_case(words: &str) -> String {
    let mut out = String::new();
    let mut after_lower = false;
    for c in words.chars() {
        if c.is_ascii_uppercase() && after_lower {
            out.push('_');
        }
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
        after_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out.split('_')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

pub(crate) fn corrected(name: &FileName, number: u64, width: usize) -> String {
    let words = snake_case(name.words());
    let words = if words.is_empty() { "<name>" } else { &words };
    format!("{number:0width$}_{words}.sql")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_name(names: &[&str], locked: &[&str], words: &str) -> Result<String, NewMigrationError> {
        let files: Vec<MigrationFile> = names
            .iter()
            .map(|name| MigrationFile {
                name: (*name).to_owned(),
                sha256: "a".repeat(64),
            })
            .collect();
        let lock = Lock {
            migrations: locked
                .iter()
                .map(|file| ((*file).to_owned(), "x".to_owned()))
                .collect(),
            ..Lock::default()
        };
        new_file_name(&files, &lock, words)
    }

    #[test]
    fn new_migrations_take_the_next_number_at_the_usual_width() {
        assert_eq!(new_name(&[], &[], "init").as_deref(), Ok("0001_init.sql"));
        let some = ["0001_a.sql", "0007_b.sql", "README.md"];
        assert_eq!(new_name(&some, &[], "c").as_deref(), Ok("0008_c.sql"));
        let wide = ["00001_a.sql", "00002_b.sql"];
        assert_eq!(new_name(&wide, &[], "c").as_deref(), Ok("00003_c.sql"));
        let stamped = ["20240101120000_a.sql"];
        assert_eq!(
            new_name(&stamped, &[], "b").as_deref(),
            Ok("20240101120001_b.sql")
        );
        // A deleted migration's number stays taken, as FG601 renumbers.
        let gone = new_name(&["0001_a.sql"], &["0004_gone.sql"], "b");
        assert_eq!(gone.as_deref(), Ok("0005_b.sql"));
        let grown = new_name(&["9999_a.sql"], &[], "b");
        assert_eq!(grown.as_deref(), Ok("10000_b.sql"));
    }

    #[test]
    fn new_migration_names_are_lower_case_words() {
        assert_eq!(
            new_name(&[], &[], "add_users_2").as_deref(),
            Ok("0001_add_users_2.sql")
        );
        for (bad, suggestion) in [
            ("AddUsers", Some("add_users")),
            ("add-users", Some("add_users")),
            ("add__users", Some("add_users")),
            ("_x", Some("x")),
            ("", None),
            ("---", None),
        ] {
            let error = new_name(&[], &[], bad).expect_err(bad);
            assert_eq!(
                error,
                NewMigrationError::BadName {
                    name: bad.to_owned(),
                    suggestion: suggestion.map(str::to_owned)
                }
            );
        }
        let message = new_name(&[], &[], "AddUsers").map_err(|e| e.to_string());
        assert_eq!(
            message,
            Err(
                "`AddUsers` is not a migration name: use lower-case words (`a-z`, `0-9`) joined \
                 by single `_`, such as `add_users`"
                    .to_owned()
            )
        );
    }
}
