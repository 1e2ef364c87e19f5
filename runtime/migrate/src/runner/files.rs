//! The project's migration files: `migrations/NNNN_name.sql`, found, ordered and checksummed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::runner::MigrateError;

/// One `NNNN_name.sql` file, read whole so the checksum and the statements come from the
/// same bytes.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub version: i64,
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub checksum: String,
}

/// The `.sql` files of `dir` by ascending version. A missing directory is a project without
/// migrations yet, not an error; a `.sql` file whose name is not `NNNN_name.sql`, or two
/// files with one version, are errors, since silently skipping either would leave a
/// migration unapplied.
pub fn discover(dir: &Path) -> Result<Vec<MigrationFile>, MigrateError> {
    let io = |source| MigrateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") || !path.is_file() {
            continue;
        }
        let (version, name) =
            parse_name(&path).ok_or_else(|| MigrateError::BadFileName { path: path.clone() })?;
        let bytes = std::fs::read(&path).map_err(|source| MigrateError::Io {
            path: path.clone(),
            source,
        })?;
        let sql =
            String::from_utf8(bytes).map_err(|_| MigrateError::NotUtf8 { path: path.clone() })?;
        let checksum = sha256_hex(sql.as_bytes());
        files.push(MigrationFile {
            version,
            name,
            path,
            sql,
            checksum,
        });
    }
    files.sort_by_key(|f| f.version);
    if let Some(pair) = files.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(MigrateError::DuplicateVersion {
            version: pair[0].version,
            first: pair[0].path.clone(),
            second: pair[1].path.clone(),
        });
    }
    Ok(files)
}

/// `0001_create_users.sql` → (1, "create_users").
fn parse_name(path: &Path) -> Option<(i64, String)> {
    let stem = path.file_stem()?.to_str()?;
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, name.to_owned()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name(Path::new("m/0012_add_users.sql")),
            Some((12, "add_users".to_owned()))
        );
        assert_eq!(parse_name(Path::new("0012.sql")), None);
        assert_eq!(parse_name(Path::new("x1_a.sql")), None);
        assert_eq!(parse_name(Path::new("_a.sql")), None);
        assert_eq!(parse_name(Path::new("1_.sql")), None);
    }

    #[test]
    fn discovery_orders_by_number_and_refuses_ambiguity() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(discover(&dir.path().join("absent"))
            .expect("no dir")
            .is_empty());
        for name in ["10_c.sql", "2_b.sql", "0001_a.sql", "README.md"] {
            std::fs::write(dir.path().join(name), "SELECT 1;").expect("write");
        }
        let found: Vec<(i64, String)> = discover(dir.path())
            .expect("discover")
            .into_iter()
            .map(|f| (f.version, f.name))
            .collect();
        assert_eq!(found, [(1, "a".into()), (2, "b".into()), (10, "c".into())]);

        std::fs::write(dir.path().join("0002_again.sql"), "SELECT 1;").expect("write");
        let error = discover(dir.path()).expect_err("duplicate");
        assert!(
            matches!(error, MigrateError::DuplicateVersion { version: 2, .. }),
            "{error}"
        );
        std::fs::remove_file(dir.path().join("0002_again.sql")).expect("rm");

        std::fs::write(dir.path().join("add_users.sql"), "SELECT 1;").expect("write");
        let error = discover(dir.path()).expect_err("bad name");
        assert!(
            error
                .to_string()
                .contains("add_users.sql is not named NNNN_name.sql"),
            "{error}"
        );
    }

    #[test]
    fn checksum_is_lowercase_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
