//! Who runs the server processes, and what that user can reach.
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root. When forge runs as root (in
//! containers and CI), they run as the `postgres` system user that PostgreSQL's packages
//! create, and the data directory belongs to that user. A machine without PostgreSQL
//! installed has no such user: forge creates it (`useradd --system`) and says so.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{Gid, Pid, Uid, User};

use crate::DbError;

/// The user the server runs as when forge runs as root.
const SERVER_USER: &str = "postgres";

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
        let user = server_user(SERVER_USER)?;
        Ok(Runner::As {
            uid: user.uid,
            gid: user.gid,
        })
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

/// The system user `name`, created when missing. Another process may create it at the same
/// time: `useradd` then fails, and the user is there all the same.
fn server_user(name: &str) -> Result<User, DbError> {
    let lookup = || User::from_name(name).ok().flatten();
    if let Some(user) = lookup() {
        return Ok(user);
    }
    let created = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "PostgreSQL server run by forge",
            name,
        ])
        .output();
    match (lookup(), created) {
        (Some(user), Ok(output)) => {
            if output.status.success() {
                eprintln!(
                    "forge: created the system user `{name}` to run PostgreSQL, which refuses \
                     to run as root"
                );
            }
            Ok(user)
        }
        (Some(user), Err(_)) => Ok(user),
        (None, Ok(output)) => Err(DbError::NoServerUser {
            detail: format!(
                "`useradd` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }),
        (None, Err(error)) => Err(DbError::NoServerUser {
            detail: format!("cannot run `useradd`: {error}"),
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes the user it names when dropped, so a failed test leaves no account behind.
    struct TemporaryUser(String);

    impl Drop for TemporaryUser {
        fn drop(&mut self) {
            let _ = Command::new("userdel").arg(&self.0).status();
            let _ = Command::new("groupdel").arg(&self.0).status();
        }
    }

    /// Only as root (as in CI), where a machine without PostgreSQL has no `postgres` user:
    /// the same code creates a user of another name, once.
    #[test]
    fn root_creates_the_missing_server_user() {
        if !Uid::effective().is_root() {
            return;
        }
        let name = format!("forge_t{}", std::process::id());
        let _cleanup = TemporaryUser(name.clone());
        assert!(User::from_name(&name).expect("lookup").is_none());
        let user = server_user(&name).expect("created");
        assert!(!user.uid.is_root());
        assert_eq!(user.name, name);
        let again = server_user(&name).expect("found");
        assert_eq!(again.uid, user.uid);
    }
}
