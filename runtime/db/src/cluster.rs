//! One PostgreSQL cluster on disk and its server: initialised once, started on a free
//! loopback port, stopped, deleted.
//!
//! A cluster has a *home* (`<project>/.forge/pg`, or the test cluster's directory under
//! `target/`) holding `state.json` and the lock that serialises forge processes, and a data
//! directory: `<home>/data` when the server's user can reach it, else
//! `<temp>/forge-pg-<hash of home>` (see [`crate::os`]). The server writes its log to
//! `server.log` in the data directory, so deleting a cluster is deleting one directory.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::binaries::{BinSearch, Binaries};
use crate::os::{pid_alive, Runner};
use crate::{lock, DbError};

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";
const LOG_FILE: &str = "server.log";
/// Seconds `pg_ctl` waits for the server to accept connections or to stop: generous, for
/// loaded CI machines.
const WAIT_SECONDS: &str = "60";
/// Another process can take the free port between our probe and the server's bind.
const START_ATTEMPTS: u32 = 3;
const LOG_TAIL_LINES: usize = 20;
/// A live server on loopback accepts at once; this only bounds a wedged one.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a cluster's data is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash of the machine: the development cluster.
    Durable,
    /// `fsync` off: test clusters, rebuilt in a second when lost.
    Disposable,
}

/// A running server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    pub pid: u32,
    pub port: u16,
}

impl Server {
    /// The URL of one database on this server (trust authentication: no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

/// What `forge db status` reports.
#[derive(Clone, Debug)]
pub struct Status {
    pub server: Option<Server>,
    pub initialised: bool,
    pub data_dir: PathBuf,
    /// What the binaries' `postgres --version` says.
    pub version: String,
}

/// `<home>/state.json`: where the data lives and the last port, which a restart reuses
/// while it is free so URLs the developer copied keep working.
#[derive(Serialize, Deserialize)]
struct State {
    data_dir: PathBuf,
    port: u16,
    /// The server's pid while forge knows it runs.
    pid: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Cluster {
    home: PathBuf,
    data: PathBuf,
    bin: Binaries,
    runner: Runner,
    durability: Durability,
}

impl Cluster {
    /// Finds the binaries and decides where the data lives; touches no server.
    pub fn open(
        home: &Path,
        search: &BinSearch,
        durability: Durability,
    ) -> Result<Cluster, DbError> {
        let bin = search.find()?;
        let runner = Runner::detect()?;
        if !runner.can_reach(&bin.tool("postgres")) {
            return Err(DbError::BinariesUnreachable {
                dir: bin.dir().to_path_buf(),
            });
        }
        fs::create_dir_all(home).map_err(DbError::io("cannot create", home))?;
        let home = home
            .canonicalize()
            .map_err(DbError::io("cannot resolve", home))?;
        let data = data_dir(&home, &runner)?;
        Ok(Cluster {
            home,
            data,
            bin,
            runner,
            durability,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn binaries(&self) -> &Binaries {
        &self.bin
    }

    /// The running server, initialising the cluster and starting it first when needed.
    pub fn start(&self) -> Result<Server, DbError> {
        self.ensure_running().map(|(server, _)| server)
    }

    /// Like [`Cluster::start`], and whether this call started the server (it was not
    /// running), so a one-off command can stop what it started and leave alone what it found.
    pub fn ensure_running(&self) -> Result<(Server, bool), DbError> {
        let _lock = lock::acquire(&self.home.join(LOCK_FILE))?;
        if let Some(server) = self.running() {
            return Ok((server, false));
        }
        if self.initialised() {
            self.check_version()?;
        }
        if !self.initialised() {
            self.init()?;
        }
        let preferred = self.read_state().map(|state| state.port);
        let mut attempt = 1;
        loop {
            let port = free_port(preferred.filter(|_| attempt == 1))?;
            match self.start_on(port) {
                Err(DbError::Command { detail, .. })
                    if attempt < START_ATTEMPTS && detail.contains("could not bind") =>
                {
                    attempt += 1;
                }
                Err(error) => return Err(error),
                Ok(server) => {
                    self.write_state(server.port, Some(server.pid))?;
                    return Ok((server, true));
                }
            }
        }
    }

    /// Stops the server; the server that was running, if one was.
    pub fn stop(&self) -> Result<Option<Server>, DbError> {
        let _lock = lock::acquire(&self.home.join(LOCK_FILE))?;
        self.stop_locked()
    }

    /// Stops the server and deletes the cluster's data. The state file stays, so a new
    /// cluster gets the same port while it is free.
    pub fn destroy(&self) -> Result<(), DbError> {
        let _lock = lock::acquire(&self.home.join(LOCK_FILE))?;
        self.stop_locked()?;
        tracing::info!(data_dir = %self.data.display(), "deleting the PostgreSQL cluster");
        match fs::remove_dir_all(&self.data) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(DbError::io("cannot delete", &self.data)(error))
            }
            _ => Ok(()),
        }
    }

    pub fn status(&self) -> Result<Status, DbError> {
        Ok(Status {
            server: self.running(),
            initialised: self.initialised(),
            data_dir: self.data.clone(),
            version: self.bin.version()?,
        })
    }

    /// The server named by `postmaster.pid`, if its process lives and its port answers:
    /// after a crash and a reboot the pid may belong to an unrelated process.
    fn running(&self) -> Option<Server> {
        let text = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        // Line 4; lines 2 and 3 are the data directory and the start time.
        let port = lines.nth(2)?.trim().parse().ok()?;
        let answers = || {
            TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), PROBE_TIMEOUT).is_ok()
        };
        (pid_alive(pid) && answers()).then_some(Server { pid, port })
    }

    fn initialised(&self) -> bool {
        self.data.join("PG_VERSION").is_file()
    }

    /// A cluster's files work with the major version that created them only, and the
    /// binaries can change under it (PostgreSQL installed after forge downloaded one, or
    /// removed). A disposable cluster of another version is deleted, to be rebuilt; a
    /// development cluster is kept, and the error names both ways on.
    fn check_version(&self) -> Result<(), DbError> {
        let path = self.data.join("PG_VERSION");
        let data_version = fs::read_to_string(&path)
            .map_err(DbError::io("cannot read", &path))?
            .trim()
            .to_owned();
        let binaries_version = self.bin.version()?;
        if major_version(&binaries_version).is_none_or(|major| major == data_version) {
            return Ok(());
        }
        match self.durability {
            Durability::Disposable => {
                tracing::info!(
                    data_dir = %self.data.display(),
                    data_version,
                    binaries_version,
                    "deleting a disposable cluster of another PostgreSQL version"
                );
                fs::remove_dir_all(&self.data).map_err(DbError::io("cannot delete", &self.data))
            }
            Durability::Durable => Err(DbError::VersionMismatch {
                data_dir: self.data.clone(),
                data_version,
                binaries: self.bin.dir().to_path_buf(),
                binaries_version,
            }),
        }
    }

    fn init(&self) -> Result<(), DbError> {
        tracing::info!(data_dir = %self.data.display(), "initialising a PostgreSQL cluster");
        match fs::symlink_metadata(&self.data) {
            // A planted symlink in a shared temp directory must not redirect the data.
            Ok(meta) if !meta.is_dir() => {
                return Err(DbError::io("cannot use", &self.data)(
                    std::io::Error::other("it is not a directory"),
                ));
            }
            Ok(_) => {}
            Err(_) => fs::DirBuilder::new()
                .mode(0o700)
                .create(&self.data)
                .map_err(DbError::io("cannot create", &self.data))?,
        }
        self.runner.give(&self.data)?;
        let initdb = self.bin.tool("initdb");
        let mut command = self.runner.command(&initdb);
        command.arg("-D").arg(&self.data).args([
            "--username=postgres",
            // Loopback only (see CONFIG): trust is what a development database wants.
            "--auth=trust",
            "--encoding=UTF8",
            // Byte-order collation: the same on every machine, whatever its locale.
            "--no-locale",
            "--no-sync",
        ]);
        checked(command, "initdb", None)?;
        let conf = self.data.join("postgresql.conf");
        let mut settings = CONFIG.to_owned();
        if self.durability == Durability::Disposable {
            settings.push_str(DISPOSABLE_CONFIG);
        }
        OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .map_err(DbError::io("cannot configure", &conf))
    }

    fn start_on(&self, port: u16) -> Result<Server, DbError> {
        let log = self.data.join(LOG_FILE);
        let log_start = fs::metadata(&log).map_or(0, |meta| meta.len());
        let mut command = self.runner.command(&self.bin.tool("pg_ctl"));
        command
            .args(["start", "--wait", "--timeout", WAIT_SECONDS, "--pgdata"])
            .arg(&self.data)
            .arg("--log")
            .arg(&log)
            .args(["-o", &format!("-p {port}")]);
        checked(command, "pg_ctl start", Some((&log, log_start)))?;
        let server = self.running().ok_or_else(|| DbError::Command {
            command: "pg_ctl start".to_owned(),
            detail: format!(
                "it reported success, but {} names no live server",
                self.data.join("postmaster.pid").display()
            ),
        })?;
        tracing::info!(port = server.port, pid = server.pid, "PostgreSQL started");
        Ok(server)
    }

    fn stop_locked(&self) -> Result<Option<Server>, DbError> {
        let Some(server) = self.running() else {
            return Ok(None);
        };
        let mut command = self.runner.command(&self.bin.tool("pg_ctl"));
        command
            .args([
                "stop",
                "--wait",
                "--timeout",
                WAIT_SECONDS,
                "--mode=fast",
                "--pgdata",
            ])
            .arg(&self.data);
        checked(command, "pg_ctl stop", None)?;
        self.write_state(server.port, None)?;
        tracing::info!(port = server.port, "PostgreSQL stopped");
        Ok(Some(server))
    }

    fn read_state(&self) -> Option<State> {
        let text = fs::read(self.home.join(STATE_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn write_state(&self, port: u16, pid: Option<u32>) -> Result<(), DbError> {
        let state = State {
            data_dir: self.data.clone(),
            port,
            pid,
        };
        let path = self.home.join(STATE_FILE);
        let mut text = serde_json::to_string_pretty(&state).expect("the state serialises");
        text.push('\n');
        fs::write(&path, text).map_err(DbError::io("cannot write", &path))
    }
}

/// Appended to `postgresql.conf` by `init`. TCP on loopback only, so `trust` admits local
/// processes alone; no unix socket, so nothing clashes with a system cluster's socket in
/// /var/run/postgresql or needs a directory the server's user may not write.
const CONFIG: &str = "
# forge: a development cluster on loopback
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
";

/// Tests create and drop a database each: without flushes that takes milliseconds.
const DISPOSABLE_CONFIG: &str = "fsync = off
synchronous_commit = off
full_page_writes = off
";

/// `<home>/data`, or a directory under the temp dir keyed by the home's path when the
/// server's user cannot reach the home (a project under /root, a 0700 temp dir).
fn data_dir(home: &Path, runner: &Runner) -> Result<PathBuf, DbError> {
    let wanted = home.join("data");
    if runner.can_reach(&wanted) {
        return Ok(wanted);
    }
    let digest = Sha256::digest(home.as_os_str().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let fallback = std::env::temp_dir().join(format!("forge-pg-{hex}"));
    if runner.can_reach(&fallback) {
        Ok(fallback)
    } else {
        Err(DbError::Unreachable { wanted, fallback })
    }
}

/// The major version in `postgres --version`'s answer, as `PG_VERSION` spells it: `18` for
/// `postgres (PostgreSQL) 18.4`, `9.6` for 9.6.24 (before 10, the major had two parts).
fn major_version(version: &str) -> Option<String> {
    let number = version
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number.split('.');
    let first = parts.next()?;
    if first.parse::<u32>().ok()? >= 10 {
        Some(first.to_owned())
    } else {
        Some(format!("{first}.{}", parts.next()?))
    }
}

/// The preferred port while it is free, else one the kernel picks.
fn free_port(preferred: Option<u16>) -> Result<u16, DbError> {
    let bind = |port| TcpListener::bind((Ipv4Addr::LOCALHOST, port));
    if let Some(port) = preferred.filter(|&port| bind(port).is_ok()) {
        return Ok(port);
    }
    bind(0)
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(DbError::io("cannot find a free port on", "127.0.0.1"))
}

/// Runs a server tool; on failure, the error carries its output and the new part of the
/// server log, where the reason usually is.
fn checked(mut command: Command, name: &str, log: Option<(&Path, u64)>) -> Result<(), DbError> {
    tracing::debug!(?command, "running");
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .map_err(DbError::io("cannot run", command.get_program()))?;
    if status.success() {
        return Ok(());
    }
    let mut detail = format!(
        "{status}\n{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    if let Some(tail) = log.and_then(|(path, start)| log_tail(path, start)) {
        detail.push_str("server log:\n");
        detail.push_str(&tail);
    }
    Err(DbError::Command {
        command: name.to_owned(),
        detail: detail.trim_end().to_owned(),
    })
}

fn log_tail(path: &Path, start: u64) -> Option<String> {
    let mut file = fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    Some(tail.iter().map(|line| format!("  {line}\n")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions_are_spelled_like_pg_version() {
        assert_eq!(
            major_version("postgres (PostgreSQL) 18.4").as_deref(),
            Some("18")
        );
        assert_eq!(
            major_version("postgres (PostgreSQL) 15.18 (Debian 15.18-1.pgdg120+1)").as_deref(),
            Some("15")
        );
        assert_eq!(
            major_version("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(major_version("postgres (PostgreSQL)"), None);
    }
}
