//! forge's own tables, functions and triggers (DESIGN.md, "System tables").
//!
//! The system schema is versioned separately from the project's migrations: the runner
//! applies [`SYSTEM_MIGRATIONS`] first, in order, and records them in `forge_migrations` with
//! kind `system`, beside the project's files (kind `user`). Each is a file under
//! `runtime/migrate/schema/` (`vNNN.sql` or `vNNN_name.sql`), embedded in the binary, and
//! forward-only like any migration: a released file is never edited.

/// One version of forge's system schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemMigration {
    /// 1, 2, …: the `NNN` of `schema/vNNN.sql`.
    pub version: u32,
    pub name: &'static str,
    /// The statements, split like a user's file (see [`crate::split`]).
    pub sql: &'static str,
}

/// Every system migration, by ascending version with no gaps.
pub const SYSTEM_MIGRATIONS: &[SystemMigration] = &[
    SystemMigration {
        version: 1,
        name: "system_schema",
        sql: include_str!("../schema/v001.sql"),
    },
    SystemMigration {
        version: 2,
        name: "refresh_tokens",
        sql: include_str!("../schema/v002_refresh_tokens.sql"),
    },
    SystemMigration {
        version: 3,
        name: "rate_limits",
        sql: include_str!("../schema/v003.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::{no_transaction, split};

    #[test]
    fn versions_count_up_from_one() {
        for (index, migration) in SYSTEM_MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, index + 1, "{}", migration.name);
        }
    }

    #[test]
    fn every_migration_splits_and_runs_in_a_transaction() {
        for migration in SYSTEM_MIGRATIONS {
            let statements = split(migration.sql).unwrap();
            assert!(!statements.is_empty(), "{}", migration.name);
            assert!(!no_transaction(migration.sql), "{}", migration.name);
        }
    }
}
