//! `forge generate`: source → IR → generated files.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use forge_codegen::config::Target;
use forge_codegen::ir::{Ir, Severity};
use forge_codegen::lock::{Lock, LOCK_FILE};
use forge_codegen::migrations::MigrationFile;
use forge_codegen::{emit, resolve};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::output::{self, Planned, State};
use crate::project::Project;
use crate::sources::{self, ParseCache, Source};
use crate::{Fatal, Outcome};

#[derive(clap::Args)]
pub struct Args {
    /// Write nothing; exit 1 and print a unified diff of every out-of-date generated file.
    #[arg(long)]
    check: bool,
    /// Also write the IR as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    emit_ir: Option<PathBuf>,
    /// Generate only this target (repeatable), instead of forge.toml's `[generate]
    /// targets`: `rust`, `typescript`, `dioxus`, `jsonschema`, `openapi`.
    #[arg(long = "target", value_name = "TARGET", value_parser = parse_target)]
    targets: Vec<Target>,
    /// Keep running and regenerate on every save of src/, migrations/, forge.toml or
    /// forge.lock (Ctrl-C stops).
    #[arg(long, conflicts_with_all = ["check", "emit_ir"])]
    watch: bool,
}

fn parse_target(name: &str) -> Result<Target, String> {
    Target::parse(name).map_err(|e| e.message)
}

/// `forge generate` in `root`, as `forge new` runs it after writing files.
pub fn run_in(root: &Path) -> Result<Outcome, Fatal> {
    run(
        Some(root),
        &Args {
            check: false,
            emit_ir: None,
            targets: Vec::new(),
            watch: false,
        },
    )
}

pub fn run(project: Option<&Path>, args: &Args) -> Result<Outcome, Fatal> {
    if args.watch {
        return crate::watch::run(project);
    }
    let started = Instant::now();
    let mut project = Project::locate(project)?;
    // `--target` picks from the targets; the no-change stamp is for full runs only.
    let full_run = args.targets.is_empty();
    if !full_run {
        project.config.generate.targets = args.targets.clone();
    }
    let sources = sources::read(&project.root)?;
    let lock_text = read_optional(&project.root.join(LOCK_FILE))?;
    let migrations = sources::read_migrations(&project.root)?;
    let build = sources::build_id();
    let cache_dir = project.cache_dir();
    let stamp = Stamp::key(
        &build,
        &project,
        lock_text.as_deref(),
        &sources,
        &migrations,
    );
    if full_run && args.emit_ir.is_none() && Stamp::is_fresh(&cache_dir, &stamp, &project.root) {
        eprintln!(
            "forge generate: up to date ({} source files, {} ms)",
            sources.len(),
            started.elapsed().as_millis()
        );
        return Ok(Outcome::Clean);
    }

    let parsed = ParseCache::load(&cache_dir, &build).parse_all(&sources);
    let (resolved, planned) = std::thread::scope(|scope| {
        if !args.check {
            // The cache is only for the next run: write it while this one goes on.
            scope.spawn(|| sources::save_cache(&cache_dir, &build, &sources, &parsed));
        }
        let resolved = resolve::build(&parsed);
        let planned = plan(
            &project,
            &resolved.ir,
            lock_text.as_deref(),
            &migrations,
            None,
        );
        (resolved, planned)
    });
    let planned = planned?;

    if let Some(target) = &args.emit_ir {
        emit_ir(target, &resolved.ir)?;
    }
    let diagnostics = &resolved.diagnostics;
    if !diagnostics.is_empty() {
        let texts: HashMap<&str, &str> = sources
            .iter()
            .filter_map(|s| Some((s.rel.as_str(), std::str::from_utf8(&s.content).ok()?)))
            .collect();
        eprint!(
            "{}",
            crate::render::render(
                diagnostics,
                &texts,
                crate::render::use_color(&std::io::stderr())
            )
        );
    }
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);

    let stale: Vec<(&Planned, Option<String>)> = planned
        .iter()
        .filter_map(|p| match output::state(p) {
            State::Unchanged => None,
            State::Stale { current } => Some((p, current)),
        })
        .collect();
    let elapsed = started.elapsed().as_millis();
    if args.check {
        let mut stdout = std::io::stdout().lock();
        for (planned, current) in &stale {
            let _ = write!(stdout, "{}", output::diff(planned, current.as_deref()));
        }
        if stale.is_empty() {
            eprintln!(
                "forge generate --check: {} generated files are up to date ({elapsed} ms)",
                planned.len()
            );
        } else {
            eprintln!(
                "forge generate --check: {} of {} generated files are out of date; run `forge generate`",
                stale.len(),
                planned.len()
            );
        }
        return Ok(if stale.is_empty() && !has_errors {
            Outcome::Clean
        } else {
            Outcome::Problems
        });
    }

    for (planned, _) in &stale {
        output::write(planned)?;
    }
    if diagnostics.is_empty() && full_run {
        // With diagnostics the next run must print them again, so it may not take the
        // shortcut.
        let lock_now = read_optional(&project.root.join(LOCK_FILE))?;
        // A migration written just now is an input of the next run.
        let migrations = if stale.iter().any(|(p, _)| p.new_file) {
            sources::read_migrations(&project.root)?
        } else {
            migrations
        };
        let key = Stamp::key(&build, &project, lock_now.as_deref(), &sources, &migrations);
        Stamp::save(&cache_dir, key, &planned);
    }
    eprintln!(
        "forge generate: {} of {} files written, {} handlers, {} types from {} source files ({} ms)",
        stale.len(),
        planned.len(),
        resolved.ir.handlers.len(),
        resolved.ir.types.len(),
        sources.len(),
        started.elapsed().as_millis()
    );
    // The process is about to exit, which frees memory faster than dropping these large
    // trees one node at a time.
    std::mem::forget((parsed, resolved, planned, sources));
    Ok(if has_errors {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, Fatal> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Fatal(format!("cannot read {}: {e}", path.display()))),
    }
}

/// What watch mode keeps of one generation's emitters for the next.
#[derive(Default)]
pub(crate) struct EmitCaches {
    glue: emit::rust::Cache,
    typescript: emit::typescript::Cache,
}

/// Every file generate owns, with the content it should have. With `caches`, the emitters
/// reuse what they hold from an earlier run (watch mode); the bytes are the same.
pub(crate) fn plan(
    project: &Project,
    ir: &Ir,
    lock_text: Option<&str>,
    migrations: &[MigrationFile],
    caches: Option<&mut EmitCaches>,
) -> Result<Vec<Planned>, Fatal> {
    let lock = match lock_text {
        Some(text) => Lock::parse(text).map_err(|e| Fatal(format!("{LOCK_FILE}: {e}")))?,
        None => Lock::default(),
    };
    let generate = &project.config.generate;
    let mut planned = Vec::new();
    let mut add = |rel: String, contents: String| {
        planned.push(Planned {
            path: project.root.join(&rel),
            rel,
            contents,
            new_file: false,
        })
    };
    let wants = |target| generate.targets.contains(&target);
    let (glue, typescript) = match caches {
        Some(caches) => (Some(&mut caches.glue), Some(&mut caches.typescript)),
        None => (None, None),
    };
    let mut targets = generate.targets.clone();
    targets.sort();
    targets.dedup();
    // The emitters are independent: run them side by side.
    let (rust, (typescript, plain)) = rayon::join(
        || {
            wants(Target::Rust).then(|| match glue {
                Some(cache) => emit::rust::emit_cached(ir, cache),
                None => emit::rust::emit(ir),
            })
        },
        || {
            rayon::join(
                || {
                    wants(Target::Typescript).then(|| match typescript {
                        Some(cache) => emit::typescript::emit_cached(ir, cache),
                        None => emit::typescript::emit(ir),
                    })
                },
                || {
                    targets
                        .par_iter()
                        .filter_map(|&target| Some((target, emit::files(target, ir)?)))
                        .collect::<Vec<_>>()
                },
            )
        },
    );
    if let Some(rust) = rust {
        add(generate.rust_out.clone(), rust);
    }
    let typescript = typescript.map(|files| (Target::Typescript, files));
    for (target, files) in typescript.into_iter().chain(plain) {
        let dir = generate.out_dir(target).unwrap_or_default();
        for file in files {
            add(format!("{dir}/{}", file.path), file.contents);
        }
    }
    if wants(Target::Jsonschema) {
        add(generate.jsonschema_out.clone(), emit::jsonschema::emit(ir));
    }
    // The reactivity migration, when one is due, is recorded in forge.lock by the same run,
    // so the next run finds both up to date.
    let reactivity = crate::reactivity::plan(&project.root, ir, &lock, migrations)?;
    let mut migrations = migrations.to_vec();
    migrations.extend(reactivity.as_ref().map(|(_, file)| file.clone()));
    add(LOCK_FILE.to_owned(), lock.updated(ir, &migrations).render());
    planned.extend(reactivity.map(|(file, _)| file));
    Ok(planned)
}

fn emit_ir(target: &Path, ir: &Ir) -> Result<(), Fatal> {
    let mut json = serde_json::to_string_pretty(ir).expect("the IR serialises");
    json.push('\n');
    if target == Path::new("-") {
        std::io::stdout()
            .lock()
            .write_all(json.as_bytes())
            .map_err(|e| Fatal(format!("cannot write the IR to stdout: {e}")))
    } else {
        std::fs::write(target, json)
            .map_err(|e| Fatal(format!("cannot write the IR to {}: {e}", target.display())))
    }
}

/// The record of the last clean run: when neither the inputs nor the outputs changed since,
/// there is nothing to do and forge answers without parsing anything.
#[derive(Serialize, Deserialize)]
struct Stamp {
    key: String,
    outputs: Vec<(String, String)>,
}

const STAMP_FILE: &str = "generate-stamp.json";

impl Stamp {
    fn key(
        build: &str,
        project: &Project,
        lock: Option<&str>,
        sources: &[Source],
        migrations: &[MigrationFile],
    ) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [build, &project.config_text, lock.unwrap_or("")] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        for source in sources {
            hasher.update(source.rel.as_bytes());
            hasher.update(&[0]);
            hasher.update(source.hash.as_bytes());
        }
        for migration in migrations {
            hasher.update(migration.name.as_bytes());
            hasher.update(&[0]);
            hasher.update(migration.sha256.as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    }

    fn is_fresh(dir: &Path, key: &str, root: &Path) -> bool {
        let Some(stamp) = std::fs::read(dir.join(STAMP_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Stamp>(&bytes).ok())
        else {
            return false;
        };
        stamp.key == key
            && stamp.outputs.iter().all(|(rel, hash)| {
                std::fs::read(root.join(rel))
                    .is_ok_and(|bytes| blake3::hash(&bytes).to_hex().as_str() == hash)
            })
    }

    fn save(dir: &Path, key: String, planned: &[Planned]) {
        let stamp = Stamp {
            key,
            outputs: planned
                .iter()
                .map(|p| {
                    (
                        p.rel.clone(),
                        blake3::hash(p.contents.as_bytes()).to_hex().to_string(),
                    )
                })
                .collect(),
        };
        if std::fs::create_dir_all(dir).is_ok() {
            if let Ok(bytes) = serde_json::to_vec(&stamp) {
                let _ = output::write_atomically(&dir.join(STAMP_FILE), &bytes);
            }
        }
    }
}
