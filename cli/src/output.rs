//! Writing generated files: only when their content changed, atomically, and showing what
//! would change under `--check`.

use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::Fatal;

/// A file forge generates, with its full intended content.
pub struct Planned {
    /// Relative to the project root, `/`-separated (for messages and diffs).
    pub rel: String,
    pub path: PathBuf,
    pub contents: String,
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
    write_atomically(&planned.path, planned.contents.as_bytes())
        .map_err(|e| Fatal(format!("cannot write {}: {e}", planned.path.display())))
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
