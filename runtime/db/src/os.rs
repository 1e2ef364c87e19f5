//! Who runs the server processes, and what that user can reach.
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root. When forge runs as root (in
//! containers and CI), they run as the `postgres` system user that PostgreSQL's packages
//! create, and the data directory belongs to that user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{Gid, Pid, Uid, User};

use crate::DbError;

#[derive(Clone, Debug)]
pub(crate) enum Runner {
    /// The server runs as whoever runs forge.
    Current,
    /// forge runs as root; the server runs as this user.
    As { uid: Uid, gid: Gid },
}

impl Runner {
    pub fn detect() -> Result<Runner, DbError> {
        if !Uid::effective().is_root() {
            return Ok(Runner::Current);
        }
        match User::from_name("postgres") {
            Ok(Some(user)) => Ok(Runner::As {
                uid: user.uid,
                gid: user.gid,
            }),
            _ => Err(DbError::NoServerUser),
        }
    }

    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Runner::As { uid, gid } = self {
            // std drops root's supplementary groups before switching user.
            command.uid(uid.as_raw()).gid(gid.as_raw());
            // The caller's directory (often /root) may be closed to the server's user;
            // every path handed to the tools is absolute.
            command.current_dir("/");
        }
        command
    }

    /// Hands a directory forge created to the server's user.
    pub fn give(&self, path: &Path) -> Result<(), DbError> {
        if let Runner::As { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))
                .map_err(DbError::io("cannot hand to the postgres user", path))?;
        }
        Ok(())
    }

    /// Whether the server's user can walk down to `path` (every existing ancestor searchable).
    /// Conservative: only the user's primary group counts, and ACLs are not read, so a
    /// reachable path may be judged unreachable, never the reverse.
    pub fn can_reach(&self, path: &Path) -> bool {
        let Runner::As { uid, gid } = self else {
            return true;
        };
        path.ancestors()
            .skip(1)
            .all(|dir| match std::fs::metadata(dir) {
                Ok(meta) => {
                    let mode = meta.permissions().mode();
                    let bit = if meta.uid() == uid.as_raw() {
                        0o100
                    } else if meta.gid() == gid.as_raw() {
                        0o010
                    } else {
                        0o001
                    };
                    mode & bit != 0
                }
                Err(_) => true,
            })
    }
}

/// Whether a process exists (EPERM: it does, under another user).
pub(crate) fn pid_alive(pid: u32) -> bool {
    // kill(0) would ask about our own process group.
    let Ok(raw @ 1..) = i32::try_from(pid) else {
        return false;
    };
    matches!(kill(Pid::from_raw(raw), None), Ok(()) | Err(Errno::EPERM))
}
