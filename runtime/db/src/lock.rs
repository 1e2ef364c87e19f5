//! An exclusive lock on a file, held across processes until dropped.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::DbError;

/// Unlocks when dropped.
pub(crate) type FileLock = Flock<File>;

/// Blocks until no other process holds the lock.
pub(crate) fn acquire(path: &Path) -> Result<FileLock, DbError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(DbError::io("cannot open the lock file", path))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| DbError::Io {
        what: "cannot lock",
        path: path.to_path_buf(),
        source: errno.into(),
    })
}
