//! Finding the PostgreSQL server binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::DbError;

/// Replaces the search with exactly these directories (`PATH` syntax). Tests use it to
/// pretend PostgreSQL is missing; it also picks one installed version over another.
pub const BIN_DIRS_ENV: &str = "FORGE_PG_BIN_DIRS";

/// Where Debian and Ubuntu install each server version, one directory per version.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

const TOOLS: [&str; 3] = ["pg_ctl", "initdb", "postgres"];

/// Where to look for the server binaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinSearch {
    /// `PATH`, then `/usr/lib/postgresql/*/bin`, highest version first.
    Default,
    /// Exactly these directories, in order.
    Only(Vec<PathBuf>),
}

impl BinSearch {
    /// [`BIN_DIRS_ENV`] when set, else the default search.
    pub fn from_env() -> BinSearch {
        match std::env::var_os(BIN_DIRS_ENV) {
            Some(dirs) => BinSearch::Only(
                std::env::split_paths(&dirs)
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .collect(),
            ),
            None => BinSearch::Default,
        }
    }

    /// The first directory that holds all of `pg_ctl`, `initdb` and `postgres`: mixing tools
    /// of different versions would fail later with far less clear errors.
    pub fn find(&self) -> Result<Binaries, DbError> {
        let candidates = match self {
            BinSearch::Default => {
                let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                    .map(|path| std::env::split_paths(&path).collect())
                    .unwrap_or_default();
                dirs.extend(versioned_dirs(Path::new(VERSIONED_ROOT)));
                dirs
            }
            BinSearch::Only(dirs) => dirs.clone(),
        };
        candidates
            .into_iter()
            .find(|dir| TOOLS.iter().all(|tool| is_executable(&dir.join(tool))))
            .map(|dir| Binaries { dir })
            .ok_or_else(|| DbError::BinariesNotFound {
                searched: self.describe(),
            })
    }

    fn describe(&self) -> String {
        match self {
            BinSearch::Default => format!("on PATH or under {VERSIONED_ROOT}/*/bin"),
            BinSearch::Only(dirs) => {
                let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                format!("in {BIN_DIRS_ENV} ({})", dirs.join(", "))
            }
        }
    }
}

/// `<root>/<version>/bin` for every version directory, highest version first.
fn versioned_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A directory with the server binaries of one PostgreSQL installation.
#[derive(Clone, Debug)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// What `postgres --version` says, e.g. `postgres (PostgreSQL) 15.18`.
    pub fn version(&self) -> Result<String, DbError> {
        let program = self.tool("postgres");
        // --version is answered before the server's refusal to run as root.
        let output = Command::new(&program)
            .arg("--version")
            .output()
            .map_err(DbError::io("cannot run", &program))?;
        if !output.status.success() {
            return Err(DbError::Command {
                command: format!("{} --version", program.display()),
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically_highest_first() {
        let root = tempfile::tempdir().expect("temp dir");
        for name in ["9.6", "15", "10", "not-a-version"] {
            std::fs::create_dir(root.path().join(name)).expect("create");
        }
        let found: Vec<PathBuf> = versioned_dirs(root.path());
        let names: Vec<String> = found
            .iter()
            .map(|dir| {
                dir.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["15", "10", "9.6"]);
    }

    #[test]
    fn a_directory_needs_all_three_tools() {
        let dir = tempfile::tempdir().expect("temp dir");
        for tool in ["pg_ctl", "initdb"] {
            let path = dir.path().join(tool);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let search = BinSearch::Only(vec![dir.path().to_path_buf()]);
        let error = search.find().expect_err("postgres is missing");
        assert!(error.to_string().contains("FORGE_PG_BIN_DIRS"), "{error}");
    }
}
