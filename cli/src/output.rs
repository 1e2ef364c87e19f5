//! Writing generated files: only when their content changed, atomically, and showing what
//! would change under `--check`.

use std::io::Write;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::Fatal;

/// A file forge generates, with its full intended content.
pub struct Planned {
    /// Relative to the project root, `/`-separated (for messages and diffs).
    pub rel: String,
    pub path: PathBuf,
    pub contents: String,
    /// A file forge creates once and never rewrites (a migration): written only when no
    /// file has the name yet.
    pub new_file: bool,
}

/// What a planned file is compared with what is on disk.
pub enum State {
    Unchanged,
    Stale { current: Option<String> },
}

pub fn state(planned: &Planned) -> State {
    match std::fs::read(&planned.path) {
        Ok(bytes) if bytes == planned.contents.as_bytes() => State::Unchanged,
        Ok(bytes) => State::Stale {
            current: Some(String::from_utf8_lossy(&bytes).into_owned()),
        },
        Err(_) => State::Stale { current: None },
    }
}

/// Replaces `path` in one step, so a crash never leaves a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".forge-tmp");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

pub fn write(planned: &Planned) -> Result<(), Fatal> {
    if let Some(parent) = planned.path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Fatal(format!("cannot create {}: {e}", parent.display())))?;
    }
    if planned.new_file {
        return create_new(&planned.path, planned.contents.as_bytes());
    }
    write_atomically(&planned.path, planned.contents.as_bytes())
        .map_err(|e| Fatal(format!("cannot write {}: {e}", planned.path.display())))
}

/// Creates `path` with `bytes`, refusing to replace or write through anything already
/// there (a file, a symlink) that appeared since the directory was read: an editor, another
/// forge. Migrations are written this way, never overwritten.
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<(), Fatal> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Fatal(format!(
                "{} already exists; forge never overwrites a migration",
                path.display()
            )),
            _ => Fatal(format!("cannot create {}: {e}", path.display())),
        })?;
    out.write_all(bytes)
        .map_err(|e| Fatal(format!("cannot write {}: {e}", path.display())))
}

/// A unified diff from what is on disk to what forge would write.
pub fn diff(planned: &Planned, current: Option<&str>) -> String {
    let old = current.unwrap_or("");
    let old_name = match current {
        Some(_) => format!("a/{}", planned.rel),
        None => "/dev/null".to_owned(),
    };
    TextDiff::from_lines(old, &planned.contents)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &format!("b/{}", planned.rel))
        .to_string()
}
