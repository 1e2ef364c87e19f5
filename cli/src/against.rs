//! `forge check --against <git-ref | ir.json>`: the IR of an earlier version of the API.
//!
//! A file is read as an IR (`forge generate --emit-ir`). Anything else is a git revision:
//! its tree is read from the object store (`git ls-tree`, then one `git cat-file --batch`
//! for every source file), never checked out, so the work tree and the index stay as they
//! are; the files go through the same parser and resolver as the current source.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use forge_codegen::ir::{Ir, IR_VERSION};
use forge_codegen::{parse, resolve};
use rayon::prelude::*;

use crate::Fatal;

/// The earlier IR `against` names, for the project at `root`.
pub fn earlier_ir(root: &Path, against: &str) -> Result<Ir, Fatal> {
    let file = Path::new(against);
    if file.is_file() {
        return read_ir(file);
    }
    from_git(root, against)
}

fn read_ir(file: &Path) -> Result<Ir, Fatal> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Fatal(format!("--against: cannot read {}: {e}", file.display())))?;
    let ir: Ir = serde_json::from_str(&text).map_err(|e| {
        Fatal(format!(
            "--against: {} is not an IR written by `forge generate --emit-ir`: {e}",
            file.display()
        ))
    })?;
    if ir.ir_version != IR_VERSION {
        return Err(Fatal(format!(
            "--against: {} is IR version {}, this forge reads version {IR_VERSION}; write it again with this forge's `forge generate --emit-ir`",
            file.display(),
            ir.ir_version
        )));
    }
    Ok(ir)
}

fn from_git(root: &Path, revision: &str) -> Result<Ir, Fatal> {
    if revision.is_empty() || revision.starts_with('-') {
        return Err(Fatal(format!(
            "--against `{revision}`: not a file, and not a git revision"
        )));
    }
    let prefix = git(root, &["rev-parse", "--show-prefix"]).map_err(|e| {
        Fatal(format!(
            "--against `{revision}`: no such file, and {} is not in a git repository ({e})",
            root.display()
        ))
    })?;
    let prefix = prefix.trim_end_matches('\n');
    let commit = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{revision}^{{commit}}"),
        ],
    )
    .map_err(|_| {
        Fatal(format!(
            "--against `{revision}`: no such file or git revision (try a branch, a tag or a commit, e.g. `origin/main`)"
        ))
    })?;
    let commit = commit.trim();
    let listing = git(
        root,
        &[
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            commit,
            "--",
            &format!("{prefix}src"),
        ],
    )
    .map_err(|e| Fatal(format!("--against `{revision}`: cannot list its tree: {e}")))?;
    // `<mode> <type> <object>\t<path>`, NUL-terminated.
    let mut files: Vec<(String, String, String)> = Vec::new();
    for entry in listing.split('\0').filter(|e| !e.is_empty()) {
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut meta = meta.split(' ');
        let (Some(_mode), Some("blob"), Some(object)) = (meta.next(), meta.next(), meta.next())
        else {
            continue;
        };
        let Some(rel) = path.strip_prefix(prefix) else {
            continue;
        };
        if let Some(module) = parse::module_path(rel) {
            files.push((rel.to_owned(), module, object.to_owned()));
        }
    }
    if files.is_empty() {
        return Err(Fatal(format!(
            "--against `{revision}`: its tree has no Rust files under `{prefix}src/`"
        )));
    }
    let objects: Vec<&str> = files.iter().map(|(_, _, object)| object.as_str()).collect();
    let contents = cat_files(root, &objects).map_err(|e| {
        Fatal(format!(
            "--against `{revision}`: cannot read its files: {e}"
        ))
    })?;
    let mut texts = Vec::with_capacity(contents.len());
    for ((rel, _, _), bytes) in files.iter().zip(&contents) {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Fatal(format!(
                "--against `{revision}`: its {rel} is not UTF-8, so its API is unknown"
            ))
        })?;
        texts.push(text);
    }
    let parsed: Vec<_> = files
        .par_iter()
        .zip(texts.par_iter())
        .map(|((rel, module, _), text)| parse::parse_file(rel, module, text))
        .collect();
    let resolved = resolve::build(&parsed);
    if let Some(error) = resolved.diagnostics.iter().find(|d| d.code == "FG001") {
        let place = error
            .span
            .as_ref()
            .map(|s| format!("{}:{}:{}: ", s.file, s.line, s.column))
            .unwrap_or_default();
        return Err(Fatal(format!(
            "--against `{revision}`: its source does not parse, so its API is unknown: {place}{}",
            error.message
        )));
    }
    Ok(resolved.ir)
}

/// Runs `git` in `dir` and returns its standard output.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    String::from_utf8(output.stdout)
        .map_err(|_| "git printed something that is not UTF-8".to_owned())
}

/// The contents of `objects`, in order, through one `git cat-file --batch`.
fn cat_files(dir: &Path, objects: &[&str]) -> Result<Vec<Vec<u8>>, String> {
    let mut child = Command::new("git")
        .args(["cat-file", "--batch"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin for git")?;
    let request: String = objects.iter().map(|o| format!("{o}\n")).collect();
    // Written from another thread: git answers while it reads, and both pipes are bounded.
    let writer = std::thread::spawn(move || stdin.write_all(request.as_bytes()));
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout for git")?);
    let mut contents = Vec::with_capacity(objects.len());
    for object in objects {
        let mut header = String::new();
        stdout
            .read_line(&mut header)
            .map_err(|e| format!("reading git's answer: {e}"))?;
        // `<object> blob <size>`, or `<object> missing`.
        let size = header
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|size| size.parse::<usize>().ok())
            .ok_or_else(|| format!("git cannot read object {object}: {}", header.trim_end()))?;
        let mut bytes = vec![0; size + 1];
        stdout
            .read_exact(&mut bytes)
            .map_err(|e| format!("reading git's answer: {e}"))?;
        bytes.pop(); // the newline after the content
        contents.push(bytes);
    }
    let _ = writer.join();
    let _ = child.wait();
    Ok(contents)
}
