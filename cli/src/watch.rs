//! `forge generate --watch`: regenerate on every save, re-parsing only the files that
//! changed.
//!
//! [`Generator`] keeps every source file and its parse result in memory between
//! regenerations (sorted by path, as `resolve::build` wants them); a batch of file-system
//! events re-reads the paths it names, re-parses those whose bytes changed and drops those
//! that are gone. Resolving reuses the IR entries of unchanged files while no file's names
//! or imports changed (`resolve::build_cached`), and the glue and the TypeScript client
//! reuse the chunks of unchanged handlers and types (`emit::rust::emit_cached`,
//! `emit::typescript::emit_cached`); all give exactly the bytes a cold `forge generate`
//! gives. Outputs are written only when their bytes change: compared with what forge last
//! wrote while no event says someone else wrote the file since, with the disk otherwise.
//!
//! The generated files are both outputs and, for forge.lock and `src/forge_generated.rs`,
//! inside watched places. An event on one of them whose content is what forge wrote last is
//! forge's own write and is ignored, so a regeneration never triggers the next one; any other
//! content (the developer edited or deleted it) regenerates, which restores it.
//!
//! `forge dev` drives the same [`Generator`] and [`FsWatcher`] in-process.
//!
//! # Decisions
//!
//! - **Incremental in memory.** The watcher keeps every source file with its `ParsedFile`
//!   (sorted by path) between regenerations. A batch of events re-reads only the paths it
//!   names (a directory's files when a directory appears; everything under a deleted path is
//!   dropped) and re-parses only files whose bytes changed. A batch that changed no bytes (a
//!   save without edits) regenerates nothing and prints nothing.
//! - **Incremental resolve and emitters, same bytes.** `resolve::build_cached` keeps, per file, each handler's IR entry with the diagnostics
//!   and type ids building it produced, and each type definition likewise: an entry depends
//!   only on its own item and on name resolution, so while every changed file declares the
//!   same module, scopes (imports, globs), type names and aliases as before (edits in
//!   bodies, docs, fields, attributes), unchanged files' entries are reused and only changed
//!   files' items are rebuilt; anything else (a file added or removed, an import, a rename)
//!   rebuilds all. Reachability, usage, workflow signatures and sorting are always
//!   recomputed over the result, so it equals `resolve::build` (a unit test compares them,
//!   and the emitters' cached output, across twelve kinds of edit).
//! - **Shared IR items.** `Ir` holds `Arc<Handler>` and `Arc<TypeDef>`. `build_cached` gives
//!   the next IR the very allocations of the last one for every entry it reuses, and for a
//!   rebuilt entry equal to its predecessor; `finish` copies an item only to change its usage
//!   or workflow signature, and the cache then keeps the copy, so an unchanged item stays
//!   pointer-equal from one save to the next (a unit test checks exactly which items change
//!   after an edit). The emitters' caches rely on this and never compare items field by
//!   field: `emit::rust::emit_cached` reuses a handler's formatted registration and argument
//!   struct when the handler is the same allocation and its struct name and MCP input schema
//!   are the ones they were formatted from; `emit::typescript::emit_cached` names everything
//!   in one pass (`Naming`: types, then each callable handler's function and arguments
//!   interface, then the live entry points) and, while nothing declares a different name (no
//!   type or callable handler added, removed or renamed), reuses every type declaration and
//!   handler function whose item is the same allocation. The Dioxus and JSON Schema emitters
//!   and forge.lock run in full. `cli/tests/watch.rs` checks that after a sequence of edits
//!   the watcher's outputs equal a cold `forge generate`'s, byte for byte.
//! - **No read-back.** The watcher remembers each output's hash, size and modification time
//!   as it last wrote or read it, and compares a new output with the disk only when they no
//!   longer match (not every output is in a watched place, so the file's metadata, not only
//!   the events, says whether someone else wrote it).
//! - **What is watched.** `src/` and `migrations/` recursively, the project root
//!   non-recursively (forge.toml, forge.lock, Cargo.toml; a `migrations/` created later is
//!   added). Never `target/`. An event on a generated file whose content is what forge last
//!   wrote is forge's own write and ignored; any other content (edited, deleted) regenerates,
//!   which restores it. So writes never loop.
//! - **Debouncing is forge's own** (`watch::debounce`, on notify's raw events): a batch goes
//!   out once no relevant event came for a quiet period, or after 1 s of continuous events.
//!   The quiet period is 5 ms (`SETTLE`) when every changed path's last event completed a
//!   change (a close after writing, a rename into place), so a plain save is not delayed by
//!   a fixed wait, and 50 ms (`DEBOUNCE`) while a path is mid-change (created, written but
//!   not closed, deleted, renamed away: an editor's backup dance) or events were lost. inotify
//!   reports every *open* of a watched file, forge's and cargo's reads included; those
//!   (access events other than close-after-write) and metadata-only changes are ignored.
//!   notify-debouncer-mini drops event kinds, so it cannot filter opens (each regeneration's
//!   reads caused the next); notify-debouncer-full releases each event when it is old enough
//!   rather than after a quiet period, which splits one save into several batches and
//!   `forge dev` into several restarts.
//! - **Diagnostics** go through the same renderer as `forge generate`, then one summary line
//!   per regeneration with its time; FG001 in a half-typed file is a diagnostic like any
//!   other, so the watcher keeps running and the next good save recovers. forge.toml that
//!   stops parsing is reported and generation waits for a good one. On exit the watcher
//!   saves the parse cache for the next run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use forge_codegen::config::Target;
use forge_codegen::ir::Severity;
use forge_codegen::lock::LOCK_FILE;
use forge_codegen::parse::{self, ParsedFile};
use forge_codegen::resolve;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use rayon::prelude::*;
use walkdir::WalkDir;

use crate::generate::{plan, read_optional, EmitCaches};
use crate::output::{self, State};
use crate::project::{Project, CONFIG_FILE};
use crate::sources::{self, parse_source, ParseCache, Source};
use crate::{Fatal, Outcome};

/// How long the events must stay quiet before they count as one save while some path's
/// last event leaves it mid-change: created, written but not yet closed, deleted or renamed
/// away. Editors save in several steps (rename to a backup, create, write, fsync, close,
/// delete the backup) and the quiet period spans the gaps between them.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// The quiet period once every changed path's last event finished a change (closed after
/// writing, or renamed into place): the save is complete, so this only gathers the other
/// files of a burst (a formatter, a checkout) written right after it.
pub const SETTLE: Duration = Duration::from_millis(5);

const SOURCE_DIR: &str = "src";
const MIGRATIONS_DIR: &str = "migrations";

/// What the watch loops receive.
pub enum Signal {
    /// Paths that changed, after debouncing.
    Changed(Vec<PathBuf>),
    /// The watcher lost track (for example the kernel's event queue overflowed): reread
    /// everything.
    Lost(String),
    /// Ctrl-C, SIGTERM or SIGHUP.
    Stop,
}

/// Sends [`Signal::Stop`] on Ctrl-C, SIGTERM and SIGHUP instead of letting them kill the
/// process, so the loops can stop what they started.
pub fn on_interrupt(sender: Sender<Signal>) -> Result<(), Fatal> {
    ctrlc::set_handler(move || {
        let _ = sender.send(Signal::Stop);
    })
    .map_err(|e| Fatal(format!("cannot handle Ctrl-C: {e}")))
}

pub fn run(project: Option<&Path>) -> Result<Outcome, Fatal> {
    let (sender, receiver) = mpsc::channel();
    on_interrupt(sender.clone())?;
    let color = crate::render::use_color(&std::io::stderr());
    let mut generator = Generator::open(project)?;
    let report = generator.regenerate(&[]);
    report.print("", color);
    let mut watcher = FsWatcher::start(generator.root(), sender)?;
    eprintln!(
        "forge generate --watch: watching src/, migrations/, {CONFIG_FILE} and {LOCK_FILE}; Ctrl-C stops"
    );
    while let Some(batch) = next_batch(&receiver, None) {
        let changes = generator.classify(&batch.paths);
        if changes.migrations_dir {
            watcher.watch_migrations(generator.root());
        }
        let changed = if batch.lost {
            generator.rescan();
            Vec::new()
        } else {
            match generator.apply(&changes) {
                Some(changed) => changed,
                None => continue,
            }
        };
        generator.regenerate(&changed).print("", color);
    }
    generator.save_cache();
    Ok(Outcome::Clean)
}

/// One debounced batch, merged with whatever else was already queued.
#[derive(Default)]
pub struct Batch {
    pub paths: Vec<PathBuf>,
    pub lost: bool,
}

/// Waits for the next batch (at most `timeout` when given: `Some(empty batch)` then).
/// `None` means stop: Ctrl-C, or every sender is gone.
pub fn next_batch(receiver: &Receiver<Signal>, timeout: Option<Duration>) -> Option<Batch> {
    let first = match timeout {
        None => receiver.recv().ok()?,
        Some(timeout) => match receiver.recv_timeout(timeout) {
            Ok(signal) => signal,
            Err(RecvTimeoutError::Timeout) => return Some(Batch::default()),
            Err(RecvTimeoutError::Disconnected) => return None,
        },
    };
    let mut batch = Batch::default();
    // Batches that arrived while the last one was being handled belong to the same burst
    // (a `git checkout`, a formatter run): one regeneration for all of them.
    for signal in std::iter::once(first).chain(std::iter::from_fn(|| receiver.try_recv().ok())) {
        match signal {
            Signal::Changed(paths) => batch.paths.extend(paths),
            Signal::Lost(reason) => {
                eprintln!("forge: the file watcher lost events ({reason}); rereading everything");
                batch.lost = true;
            }
            Signal::Stop => return None,
        }
    }
    Some(batch)
}

/// The notify watcher and its debouncer: `src/` and `migrations/` recursively, the project
/// root alone (forge.toml, forge.lock, Cargo.toml, a `migrations/` created later). Never
/// `target/`, where cargo and forge's caches write all the time.
///
/// The debouncer is forge's own, on a thread: a batch is sent once no relevant event came
/// for a quiet period — [`SETTLE`] when every path's last event completed a change,
/// [`DEBOUNCE`] otherwise — so one save is one batch however many events it makes and a
/// plain save costs 5 ms, not 50; or after [`MAX_BATCH_WAIT`] of continuous events. notify-debouncer-mini drops
/// the event kinds, and inotify reports every *open* of a watched file, forge's own reads
/// included, so with it each regeneration caused the next; notify-debouncer-full keeps the
/// kinds but releases each event once it is old enough rather than after a quiet period,
/// which splits one save into several batches (and `forge dev` into several restarts).
pub struct FsWatcher {
    watcher: RecommendedWatcher,
    migrations: bool,
}

/// A burst of events longer than this (a checkout of many files) is delivered in parts, so
/// the developer sees progress.
const MAX_BATCH_WAIT: Duration = Duration::from_secs(1);

impl FsWatcher {
    pub fn start(root: &Path, sender: Sender<Signal>) -> Result<FsWatcher, Fatal> {
        let (raw_sender, raw) = mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(raw_sender)
            .map_err(|e| Fatal(format!("cannot start the file watcher: {e}")))?;
        std::thread::Builder::new()
            .name("forge watch debouncer".into())
            .spawn(move || debounce(&raw, &sender))
            .map_err(|e| Fatal(format!("cannot start the file watcher: {e}")))?;
        for (path, mode) in [
            (root.to_path_buf(), RecursiveMode::NonRecursive),
            (root.join(SOURCE_DIR), RecursiveMode::Recursive),
        ] {
            watcher
                .watch(&path, mode)
                .map_err(|e| Fatal(format!("cannot watch {}: {e}", path.display())))?;
        }
        let mut watcher = FsWatcher {
            watcher,
            migrations: false,
        };
        watcher.watch_migrations(root);
        Ok(watcher)
    }

    /// Starts watching `migrations/` once it exists (it may be created while forge runs).
    pub fn watch_migrations(&mut self, root: &Path) {
        let dir = root.join(MIGRATIONS_DIR);
        if self.migrations || !dir.is_dir() {
            return;
        }
        match self.watcher.watch(&dir, RecursiveMode::Recursive) {
            Ok(()) => self.migrations = true,
            Err(error) => eprintln!("forge: cannot watch {}: {error}", dir.display()),
        }
    }
}

/// The debouncer's loop; ends when the watcher (the raw events' sender) is dropped or the
/// receiving loop is gone.
fn debounce(raw: &Receiver<notify::Result<notify::Event>>, sender: &Sender<Signal>) {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut lost: Option<String> = None;
    // Paths whose last event left them mid-change; while there are any (or events were
    // lost), the batch waits for the longer quiet period.
    let mut unsettled: HashSet<PathBuf> = HashSet::new();
    // When the pending batch's first and latest relevant events came.
    let mut pending: Option<(Instant, Instant)> = None;
    loop {
        let quiet = quiet_period(&unsettled, &lost);
        let received = match pending {
            None => raw.recv().map_err(|_| RecvTimeoutError::Disconnected),
            // Irrelevant events (opens) keep arriving while cargo or an editor reads files:
            // the quiet period is measured from the last relevant event, not the last event.
            Some((_, last)) => {
                raw.recv_timeout((last + quiet).saturating_duration_since(Instant::now()))
            }
        };
        let now = Instant::now();
        let mut note = || pending = Some((pending.map_or(now, |(first, _)| first), now));
        match received {
            Ok(Ok(event)) if event.need_rescan() => {
                lost = Some("the kernel's event queue overflowed".to_owned());
                note();
            }
            Ok(Ok(event)) if relevant(&event.kind) => {
                let completes = completes(&event.kind);
                for path in &event.paths {
                    if completes {
                        unsettled.remove(path);
                    } else {
                        unsettled.insert(path.clone());
                    }
                }
                paths.extend(event.paths);
                note();
            }
            Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Err(error)) => {
                lost = Some(error.to_string());
                note();
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some((first, last)) = pending else {
            continue;
        };
        let quiet = quiet_period(&unsettled, &lost);
        if now < last + quiet && now < first + MAX_BATCH_WAIT {
            continue;
        }
        pending = None;
        unsettled.clear();
        let mut signals = Vec::new();
        if let Some(reason) = lost.take() {
            signals.push(Signal::Lost(reason));
        }
        if !paths.is_empty() {
            signals.push(Signal::Changed(std::mem::take(&mut paths)));
        }
        for signal in signals {
            if sender.send(signal).is_err() {
                return;
            }
        }
    }
}

/// Whether an event can mean changed content. inotify reports opens and reads of watched
/// files (forge's own, cargo's, an editor's), which must not count; a close after writing
/// does, and so do creations, removals, renames and data changes. Metadata-only changes
/// (permissions, times) do not, except through the close-after-write that `touch` makes.
fn relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Any | EventKind::Other => true,
    }
}

fn quiet_period(unsettled: &HashSet<PathBuf>, lost: &Option<String>) -> Duration {
    if unsettled.is_empty() && lost.is_none() {
        SETTLE
    } else {
        DEBOUNCE
    }
}

/// Whether an event finishes a change to its paths, so that nothing more is expected of
/// them: a close after writing (the writer is done), or a rename (atomic: the new name has
/// its whole content, the old one is gone on purpose). Creations, writes still open and
/// deletions may be one step of a longer save.
fn completes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    )
}

/// What a batch of paths means.
#[derive(Debug, Default)]
pub struct Changes {
    /// Paths under `src/` that may be module files or directories holding them (present or
    /// deleted).
    pub sources: Vec<PathBuf>,
    /// forge.toml changed.
    pub config: bool,
    /// Inputs read whole at every regeneration that changed (relative paths): files in
    /// `migrations/`, forge.toml, or forge.lock (or another output) edited by someone else.
    pub inputs: BTreeSet<String>,
    /// A migration file changed.
    pub migrations: bool,
    /// `migrations/` appeared: start watching it.
    pub migrations_dir: bool,
    /// Anything cargo builds from changed: a `.rs` under `src/` (modules or not), Cargo.toml,
    /// build.rs. `forge dev` restarts the app for these.
    pub rust: bool,
}

/// What one regeneration did.
pub struct Report {
    /// The summary line.
    pub summary: String,
    /// The rendered diagnostics (empty when there are none).
    pub diagnostics: String,
    /// The Rust glue was rewritten: the app must be rebuilt.
    pub rust_written: bool,
    /// Generation failed outright (forge.toml or forge.lock unreadable, a write failed).
    pub failed: bool,
}

impl Report {
    /// Prints the diagnostics and the summary to stderr, each line after `prefix`.
    pub fn print(&self, prefix: &str, color: bool) {
        let mut text = String::new();
        for line in self.diagnostics.lines() {
            text.push_str(prefix);
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(prefix);
        if color && self.failed {
            text.push_str(&format!("\x1b[31m{}\x1b[0m", self.summary));
        } else {
            text.push_str(&self.summary);
        }
        text.push('\n');
        eprint!("{text}");
    }
}

/// A generated file as forge last wrote or read it.
struct Output {
    hash: blake3::Hash,
    /// Its size and modification time then.
    stamp: Option<(u64, std::time::SystemTime)>,
}

impl Output {
    fn stamp_of(path: &Path) -> Option<(u64, std::time::SystemTime)> {
        let metadata = std::fs::metadata(path).ok()?;
        Some((metadata.len(), metadata.modified().ok()?))
    }
}

/// The crate held in memory between regenerations.
pub struct Generator {
    project: Project,
    build: String,
    /// Sorted by `rel`; `parsed[i]` belongs to `sources[i]`.
    sources: Vec<Source>,
    parsed: Vec<ParsedFile>,
    /// Each generated file as forge last wrote (or found) it, to recognise its own writes
    /// among the events and to skip reading back what it wrote.
    outputs: HashMap<PathBuf, Output>,
    /// forge.toml does not parse: nothing is generated until it does.
    config_error: Option<String>,
    /// What the last regeneration resolved and formatted, for the next one to reuse.
    resolved: resolve::Cache,
    emitted: EmitCaches,
}

impl Generator {
    /// Reads and parses the whole crate, taking unchanged files from the on-disk parse cache
    /// of `forge generate`.
    pub fn open(project: Option<&Path>) -> Result<Generator, Fatal> {
        let mut project = Project::locate(project)?;
        // Event paths are absolute and canonical; so must the root be to strip it from them.
        project.root = project
            .root
            .canonicalize()
            .map_err(|e| Fatal(format!("cannot resolve {}: {e}", project.root.display())))?;
        let build = sources::build_id();
        let sources = sources::read(&project.root)?;
        let cache_dir = project.cache_dir();
        let parsed = ParseCache::load(&cache_dir, &build).parse_all(&sources);
        sources::save_cache(&cache_dir, &build, &sources, &parsed);
        Ok(Generator {
            project,
            build,
            sources,
            parsed,
            outputs: HashMap::new(),
            config_error: None,
            resolved: resolve::Cache::default(),
            emitted: EmitCaches::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.project.root
    }

    /// Sorts a batch of event paths into what they mean. Events on generated files whose
    /// content is what forge wrote are dropped here.
    pub fn classify(&self, paths: &[PathBuf]) -> Changes {
        let mut changes = Changes::default();
        let unique: BTreeSet<&PathBuf> = paths.iter().collect();
        for path in unique {
            if let Some(written) = self.outputs.get(path) {
                let same =
                    std::fs::read(path).is_ok_and(|bytes| blake3::hash(&bytes) == written.hash);
                if !same {
                    changes.inputs.extend(self.rel(path));
                }
                continue;
            }
            let Some(rel) = self.rel(path) else {
                continue;
            };
            let mut parts = rel.split('/');
            let first = parts.next().unwrap_or_default();
            let nested = parts.next().is_some();
            let is_rs = path.extension().is_some_and(|e| e == "rs");
            match (first, nested) {
                (SOURCE_DIR, true) => {
                    if is_rs {
                        changes.rust = true;
                    }
                    // Directories matter too: one moved in or deleted holds module files.
                    if is_rs || path.is_dir() || !path.exists() {
                        changes.sources.push(path.clone());
                    }
                }
                (MIGRATIONS_DIR, _) => {
                    changes.migrations = true;
                    changes.migrations_dir |= !nested && path.is_dir();
                    changes.inputs.insert(rel);
                }
                (CONFIG_FILE, false) => {
                    changes.config = true;
                    changes.inputs.insert(rel);
                }
                (LOCK_FILE, false) => {
                    changes.inputs.insert(rel);
                }
                ("Cargo.toml" | "build.rs", false) => changes.rust = true,
                _ => {}
            }
        }
        changes
    }

    /// Brings the in-memory crate up to date with `changes`. What changed (relative paths,
    /// for the summary), or `None` when nothing generation reads did (a save without
    /// changes, an editor's backup file).
    pub fn apply(&mut self, changes: &Changes) -> Option<Vec<String>> {
        // Written by someone else (or deleted): the disk no longer holds what forge wrote.
        for rel in &changes.inputs {
            self.outputs.remove(&self.project.root.join(rel));
        }
        let mut changed: Vec<String> = changes
            .inputs
            .iter()
            .filter(|rel| rel.as_str() != CONFIG_FILE)
            .cloned()
            .collect();
        if changes.config && self.reload_config() {
            changed.push(CONFIG_FILE.to_owned());
        }
        // A set: a new directory's files come both from walking it and from their own
        // events.
        let mut fresh: BTreeSet<PathBuf> = BTreeSet::new();
        for path in &changes.sources {
            if path.is_dir() {
                fresh.extend(
                    WalkDir::new(path)
                        .into_iter()
                        .filter_map(Result::ok)
                        .filter(|e| e.file_type().is_file())
                        .map(walkdir::DirEntry::into_path),
                );
            } else if path.is_file() {
                fresh.insert(path.clone());
            } else {
                changed.extend(self.remove(path));
            }
        }
        changed.extend(self.update(fresh));
        (!changed.is_empty()).then_some(changed)
    }

    /// Rereads every source file, re-parsing those that changed, after the watcher lost
    /// events.
    pub fn rescan(&mut self) {
        self.reload_config();
        // Events were lost: what forge wrote may have been changed since.
        self.outputs.clear();
        let listed = match sources::read(&self.project.root) {
            Ok(listed) => listed,
            Err(Fatal(message)) => {
                eprintln!("forge: {message}");
                return;
            }
        };
        let old: HashMap<String, (Source, ParsedFile)> = std::mem::take(&mut self.sources)
            .into_iter()
            .zip(std::mem::take(&mut self.parsed))
            .map(|(s, p)| (s.rel.clone(), (s, p)))
            .collect();
        let mut old = old;
        let parsed: Vec<ParsedFile> = listed
            .iter()
            .map(|source| match old.remove(&source.rel) {
                Some((previous, parsed)) if previous.hash == source.hash => Some(parsed),
                _ => None,
            })
            .collect::<Vec<_>>()
            .into_par_iter()
            .zip(listed.par_iter())
            .map(|(cached, source)| cached.unwrap_or_else(|| parse_source(source)))
            .collect();
        self.sources = listed;
        self.parsed = parsed;
    }

    /// Drops a deleted file, or every file under a deleted directory; the files dropped.
    fn remove(&mut self, path: &Path) -> Vec<String> {
        let Some(rel) = self.rel(path) else {
            return Vec::new();
        };
        let below = format!("{rel}/");
        let mut removed = Vec::new();
        let mut index = 0;
        self.sources.retain(|source| {
            let keep = source.rel != rel && !source.rel.starts_with(&below);
            if keep {
                index += 1;
            } else {
                self.parsed.remove(index);
                removed.push(source.rel.clone());
            }
            keep
        });
        removed
    }

    /// Reads `paths` and re-parses (in parallel) those whose content changed or that are
    /// new; those files.
    fn update(&mut self, paths: BTreeSet<PathBuf>) -> Vec<String> {
        let read: Vec<Source> = paths
            .into_par_iter()
            .filter_map(|path| {
                let rel = self.rel(&path)?;
                let module = parse::module_path(&rel)?;
                // Gone again, or unreadable for a moment mid-save: the next event says.
                let content = std::fs::read(&path).ok()?;
                let hash = blake3::hash(&content).to_hex().to_string();
                let known = self
                    .position(&rel)
                    .ok()
                    .is_some_and(|i| self.sources[i].hash == hash);
                (!known).then_some(Source {
                    rel,
                    module,
                    content,
                    hash,
                })
            })
            .collect();
        let parsed: Vec<ParsedFile> = read.par_iter().map(parse_source).collect();
        let changed = read.iter().map(|source| source.rel.clone()).collect();
        for (source, parsed) in read.into_iter().zip(parsed) {
            match self.position(&source.rel) {
                Ok(i) => {
                    self.sources[i] = source;
                    self.parsed[i] = parsed;
                }
                Err(i) => {
                    self.sources.insert(i, source);
                    self.parsed.insert(i, parsed);
                }
            }
        }
        changed
    }

    fn position(&self, rel: &str) -> Result<usize, usize> {
        self.sources
            .binary_search_by(|source| source.rel.as_str().cmp(rel))
    }

    /// `path` relative to the root, `/`-separated, as [`Source::rel`] spells it.
    fn rel(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.project.root).ok()?;
        Some(
            relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// Rereads forge.toml; whether generation must run again (it parsed, or it stopped
    /// parsing, which is reported).
    fn reload_config(&mut self) -> bool {
        match Project::locate(Some(&self.project.root)) {
            Ok(mut project) => {
                project.root = std::mem::take(&mut self.project.root);
                let changed =
                    project.config_text != self.project.config_text || self.config_error.is_some();
                self.project = project;
                self.config_error = None;
                changed
            }
            Err(Fatal(message)) => {
                self.config_error = Some(message);
                true
            }
        }
    }

    /// Resolves, plans and writes what changed. `changed` names the files that caused it,
    /// for the summary.
    pub fn regenerate(&mut self, changed: &[String]) -> Report {
        let started = Instant::now();
        let cause = self.cause(changed);
        if let Some(message) = &self.config_error {
            return Report {
                summary: format!("forge generate: {message}; fix it and save"),
                diagnostics: String::new(),
                rust_written: false,
                failed: true,
            };
        }
        match self.generate() {
            Ok((written, total, handlers, diagnostics)) => {
                let errors = diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .count();
                let warnings = diagnostics.len() - errors;
                let rust_out = &self.project.config.generate.rust_out;
                let rust_written = self.project.config.generate.targets.contains(&Target::Rust)
                    && written.iter().any(|rel| rel == rust_out);
                let rendered = if diagnostics.is_empty() {
                    String::new()
                } else {
                    let texts: HashMap<&str, &str> = self
                        .sources
                        .iter()
                        .filter_map(|s| {
                            Some((s.rel.as_str(), std::str::from_utf8(&s.content).ok()?))
                        })
                        .collect();
                    crate::render::render(
                        &diagnostics,
                        &texts,
                        crate::render::use_color(&std::io::stderr()),
                    )
                };
                let wrote = if written.is_empty() {
                    format!("0 of {total} files written")
                } else {
                    format!(
                        "{} of {total} files written ({})",
                        written.len(),
                        written.join(", ")
                    )
                };
                let mut problems = String::new();
                for (count, word) in [(errors, "error"), (warnings, "warning")] {
                    match count {
                        0 => {}
                        1 => problems.push_str(&format!(", 1 {word}")),
                        n => problems.push_str(&format!(", {n} {word}s")),
                    }
                }
                Report {
                    summary: format!(
                        "forge generate: {cause}{wrote}, {handlers} handlers{problems} ({:.1} ms)",
                        started.elapsed().as_secs_f64() * 1000.0
                    ),
                    diagnostics: rendered,
                    rust_written,
                    failed: false,
                }
            }
            Err(Fatal(message)) => Report {
                summary: format!("forge generate: {cause}{message}"),
                diagnostics: String::new(),
                rust_written: false,
                failed: true,
            },
        }
    }

    /// The part of the summary that says which save it answers.
    fn cause(&self, changed: &[String]) -> String {
        match changed {
            [] => String::new(),
            [one] => format!("{one} changed; "),
            many => format!("{} files changed; ", many.len()),
        }
    }

    /// The files written (relative), how many forge generates, the handler count and the
    /// diagnostics.
    #[allow(clippy::type_complexity)]
    fn generate(
        &mut self,
    ) -> Result<
        (
            Vec<String>,
            usize,
            usize,
            Vec<forge_codegen::ir::Diagnostic>,
        ),
        Fatal,
    > {
        let root = &self.project.root;
        let lock_text = read_optional(&root.join(LOCK_FILE))?;
        let migrations = sources::read_migrations(root)?;
        let versions: Vec<&str> = self.sources.iter().map(|s| s.hash.as_str()).collect();
        let resolved = resolve::build_cached(&self.parsed, &versions, &mut self.resolved);
        let planned = plan(
            &self.project,
            &resolved.ir,
            lock_text.as_deref(),
            &migrations,
            Some(&mut self.emitted),
        )?;
        let mut written = Vec::new();
        for file in &planned {
            let hash = blake3::hash(file.contents.as_bytes());
            // Recorded before writing: the write's own event must find it.
            let recorded = self
                .outputs
                .insert(file.path.clone(), Output { hash, stamp: None });
            let stamp = Output::stamp_of(&file.path);
            // Still what forge wrote or read last (not every output is in a watched place, so
            // the file's size and time say so, not the events alone): no need to read it.
            let current =
                recorded.is_some_and(|r| r.hash == hash && r.stamp.is_some() && r.stamp == stamp);
            let stamp = if !current && matches!(output::state(file), State::Stale { .. }) {
                output::write(file)?;
                written.push(file.rel.clone());
                Output::stamp_of(&file.path)
            } else {
                stamp
            };
            if let Some(output) = self.outputs.get_mut(&file.path) {
                output.stamp = stamp;
            }
        }
        Ok((
            written,
            planned.len(),
            resolved.ir.handlers.len(),
            resolved.diagnostics,
        ))
    }

    /// Keeps the parse cache on disk current, so the next `forge generate` or watch starts
    /// from it. Failures only cost speed, so they are ignored.
    pub fn save_cache(&self) {
        sources::save_cache(
            &self.project.cache_dir(),
            &self.build,
            &self.sources,
            &self.parsed,
        );
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, RemoveKind};

    use super::*;

    #[test]
    fn only_a_close_after_writing_or_a_rename_completes_a_change() {
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
        ] {
            assert!(completes(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(!completes(&kind), "{kind:?}");
        }
        let mut unsettled = HashSet::new();
        assert_eq!(quiet_period(&unsettled, &None), SETTLE);
        assert_eq!(quiet_period(&unsettled, &Some("lost".into())), DEBOUNCE);
        unsettled.insert(PathBuf::from("src/a.rs"));
        assert_eq!(quiet_period(&unsettled, &None), DEBOUNCE);
    }
}
