//! Totality: the parser and the resolver answer every input with diagnostics, never a panic.
//!
//! Three bodies of input: real Rust (the sources of this workspace's registry
//! dependencies, also rewritten so that every free function is a handler), every prefix
//! and small mutation of the fixture sources (what watch mode sees while the user types),
//! and hand-written pathological crates.

// Shared with the other test crates, each of which uses part of it.
#[allow(dead_code)]
mod support;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

use forge_codegen::ir::Diagnostic;
use forge_codegen::parse::{self, ParsedFile};
use forge_codegen::resolve::{self, Resolved};
use rayon::prelude::*;
use syn::spanned::Spanned;

// ---------------------------------------------------------------------------------------
// Catching panics
// ---------------------------------------------------------------------------------------

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The default hook prints every caught panic, which would bury the report under
/// thousands of lines; while [`catching`] runs, the hook records the message and its
/// location (which the payload alone does not carry) for the report instead.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let message = match info.payload().downcast_ref::<&str>() {
                    Some(s) => (*s).to_owned(),
                    None => info
                        .payload()
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "(non-string panic payload)".to_owned()),
                };
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into its message.
fn catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = CATCHING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "(panic without a message)".to_owned())
    })
}

/// Files outside a crate's module tree (`tests/`, `build.rs`, `src/bin/`) are read as the
/// crate root: the resolver then also meets duplicate definitions.
fn parse_one(rel: &str, text: &str) -> ParsedFile {
    let module = parse::module_path(rel).unwrap_or_default();
    parse::parse_file(rel, &module, text)
}

fn has_code(diagnostics: &[Diagnostic], code: &str) -> bool {
    diagnostics.iter().any(|d| d.code == code)
}

// ---------------------------------------------------------------------------------------
// 1. Real Rust: the registry sources of the workspace's dependencies
// ---------------------------------------------------------------------------------------

/// About how much source text the real-Rust test reads. The dependencies hold about 67 MB,
/// half of it generated bindings (`windows-sys`, `linux-raw-sys`, `libc`), which take
/// about 20 s to read in full on two cores; a deterministic, evenly spread sample of this
/// size keeps the test near 10 s. `FORGE_TOTALITY_BYTES` overrides it (a number larger
/// than the total reads everything).
const REAL_RUST_BUDGET: u64 = 32_000_000;

fn real_rust_budget() -> u64 {
    std::env::var("FORGE_TOTALITY_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REAL_RUST_BUDGET)
}

/// `$CARGO_HOME/registry/src/*`, or the default `~/.cargo/registry/src/*`.
fn registry_source_dirs() -> Vec<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let Some(cargo_home) = cargo_home else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// `name-version` of every registry package in the workspace's lock file, sorted.
fn locked_registry_packages() -> Vec<String> {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let text = std::fs::read_to_string(&lock).expect("Cargo.lock is readable");
    let value: toml::Value = toml::from_str(&text).expect("Cargo.lock is TOML");
    let mut out: Vec<String> = value
        .get("package")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| {
            p.get("source")
                .and_then(toml::Value::as_str)
                .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
        })
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?;
            let version = p.get("version")?.as_str()?;
            Some(format!("{name}-{version}"))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every `.rs` file under `dir`, as `/`-separated paths relative to `root`, sorted.
/// Symlinks are not followed, so a link cycle cannot trap the walk.
fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            rust_files(&path, root, out);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
}

/// Relative path, path on disk, length in bytes.
type SourceFile = (String, PathBuf, u64);

struct CrateSources {
    name: String,
    files: Vec<(String, String)>,
}

/// The sample: every crate's `src/lib.rs` (its root, where most of its `use`s and
/// re-exports live), and of the other files those that keep the bytes taken in step with
/// `budget / total` of the bytes seen, walking all files of all crates in a fixed order, so
/// they are spread evenly over the whole body of text. Returns the sample, and the number
/// of files and bytes it was drawn from.
fn real_rust_sample(budget: u64) -> (Vec<CrateSources>, usize, u64) {
    let registries = registry_source_dirs();
    let mut crates: Vec<(String, Vec<SourceFile>)> = Vec::new();
    for package in locked_registry_packages() {
        let Some(root) = registries
            .iter()
            .map(|r| r.join(&package))
            .find(|p| p.is_dir())
        else {
            continue;
        };
        let mut files = Vec::new();
        rust_files(&root, &root, &mut files);
        let files = files
            .into_iter()
            .filter_map(|(rel, path)| {
                let len = std::fs::metadata(&path).ok()?.len();
                Some((rel, path, len))
            })
            .collect();
        crates.push((package, files));
    }
    let total: u64 = crates
        .iter()
        .flat_map(|(_, files)| files.iter().map(|f| f.2))
        .sum();
    let total_files: usize = crates.iter().map(|(_, files)| files.len()).sum();
    let budget = budget.min(total);
    let mut seen = 0u64;
    let mut taken = 0u64;
    let mut sample = Vec::new();
    for (name, files) in crates {
        let mut kept = Vec::new();
        for (rel, path, len) in files {
            seen += len;
            // u128: `seen * budget` overflows u64 beyond a few GB of sources.
            let due = (u128::from(seen) * u128::from(budget) / u128::from(total.max(1))) as u64;
            if rel != "src/lib.rs" && taken + len / 2 > due {
                continue;
            }
            taken += len;
            // A file that is not UTF-8 is the CLI's business (it reports FG001 itself).
            if let Ok(text) = std::fs::read_to_string(&path) {
                kept.push((rel, text));
            }
        }
        if !kept.is_empty() {
            sample.push(CrateSources { name, files: kept });
        }
    }
    (sample, total_files, total)
}

/// Turns every free function of a file (top level and inline modules, where forge looks
/// for handlers) into a handler, so that real signatures and bodies reach the handler
/// extraction: attribute options, context detection, argument and return type resolution,
/// and the body visitor. Every string literal in those bodies becomes the SQL of an sqlx
/// call bound to the auth context, so that real strings (messages, format strings, paths)
/// reach the SQL analysis and the bind tracking.
///
/// The rewrite splices the original text at the byte ranges of the syntax tree's spans
/// rather than printing the tree back, so the result keeps the file's own layout and
/// comments (and syn's `visit-mut`, which the workspace does not enable, is not needed).
/// `None` when syn cannot parse the file or it starts with a shebang (syn strips it, which
/// shifts the spans).
fn handlerized(text: &str) -> Option<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.starts_with("#!") && !text[2..].trim_start().starts_with('[') {
        return None;
    }
    let file = syn::parse_file(text).ok()?;
    let mut edits = Edits {
        next: 0,
        edits: Vec::new(),
    };
    edits.items(&file.items);
    let mut edits = edits.edits;
    // Later edits first, so earlier byte offsets stay valid.
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut out = text.to_owned();
    for (range, replacement) in edits {
        out.replace_range(range, &replacement);
    }
    Some(out)
}

/// The handler kinds the rewrite rotates through, with their context types.
const KINDS: &[(&str, &str)] = &[
    ("#[forge::query]", "QueryContext"),
    ("#[forge::mutation]", "MutationContext"),
    ("#[forge::job]", "JobContext"),
    ("#[forge::workflow]", "WorkflowContext"),
    ("#[forge::cron(\"0 9 * * *\")]", "CronContext"),
    ("#[forge::daemon]", "DaemonContext"),
    ("#[forge::webhook(path = \"/hooks/h\")]", "WebhookContext"),
    ("#[forge::mcp_tool]", "McpToolContext"),
];

struct Edits {
    next: usize,
    edits: Vec<(std::ops::Range<usize>, String)>,
}

impl Edits {
    fn items(&mut self, items: &[syn::Item]) {
        for item in items {
            match item {
                syn::Item::Fn(f) => self.function(f),
                syn::Item::Mod(syn::ItemMod {
                    content: Some((_, items)),
                    ..
                }) => self.items(items),
                _ => {}
            }
        }
    }

    fn insert(&mut self, at: usize, text: String) {
        self.edits.push((at..at, text));
    }

    fn function(&mut self, f: &syn::ItemFn) {
        let (attr, context) = KINDS[self.next % KINDS.len()];
        self.next += 1;
        let head = match &f.vis {
            syn::Visibility::Inherited => f.sig.span(),
            vis => vis.span(),
        };
        self.insert(head.byte_range().start, format!("{attr} "));
        if !matches!(f.sig.inputs.first(), Some(syn::FnArg::Receiver(_))) {
            let open = f.sig.paren_token.span.open().byte_range().end;
            self.insert(open, format!("ctx: &forge::{context}, "));
        }
        syn::visit::Visit::visit_block(self, &f.block);
    }
}

impl<'ast> syn::visit::Visit<'ast> for Edits {
    fn visit_expr(&mut self, expr: &'ast syn::Expr) {
        if let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) = expr
        {
            let range = lit.span().byte_range();
            let replacement = format!("sqlx::query({}).bind(ctx.user_id())", lit.token());
            self.edits.push((range, replacement));
        } else {
            syn::visit::visit_expr(self, expr);
        }
    }

    // `#[doc = "…"]` on a nested item holds an expression that must stay a literal.
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

#[derive(Default)]
struct Coverage {
    crates: usize,
    files: usize,
    bytes: u64,
    rewritten_files: usize,
    rewritten_bytes: u64,
    handlers: usize,
    parse_errors: usize,
    rewritten_parse_errors: usize,
}

#[test]
fn real_rust_never_panics() {
    let started = Instant::now();
    let (sample, total_files, total_bytes) = real_rust_sample(real_rust_budget());
    if sample.is_empty() {
        eprintln!("no registry sources of the locked dependencies found; nothing to check");
        return;
    }
    let results: Vec<(Coverage, Vec<String>)> = sample
        .par_iter()
        .map(|krate| {
            let mut coverage = Coverage {
                crates: 1,
                ..Coverage::default()
            };
            let mut panics = Vec::new();
            let mut originals = Vec::new();
            let mut rewritten = Vec::new();
            for (rel, text) in &krate.files {
                let at = format!("{}/{rel}", krate.name);
                coverage.files += 1;
                coverage.bytes += text.len() as u64;
                match catching(|| parse_one(rel, text)) {
                    Ok(parsed) => {
                        coverage.parse_errors +=
                            usize::from(has_code(&parsed.diagnostics, "FG001"));
                        originals.push(parsed);
                    }
                    Err(message) => panics.push(format!("parse {at}: {message}")),
                }
                let Some(handlers) = catching(|| handlerized(text)).ok().flatten() else {
                    continue;
                };
                coverage.rewritten_files += 1;
                coverage.rewritten_bytes += handlers.len() as u64;
                match catching(|| parse_one(rel, &handlers)) {
                    Ok(parsed) => {
                        coverage.handlers += parsed.handlers.len();
                        coverage.rewritten_parse_errors +=
                            usize::from(has_code(&parsed.diagnostics, "FG001"));
                        rewritten.push(parsed);
                    }
                    Err(message) => panics.push(format!("parse {at} (as handlers): {message}")),
                }
            }
            for (what, files) in [("", &mut originals), (" (as handlers)", &mut rewritten)] {
                files.sort_by(|a, b| a.file.cmp(&b.file));
                if let Err(message) = catching(|| resolve::build(files)) {
                    panics.push(format!("resolve {}{what}: {message}", krate.name));
                }
            }
            (coverage, panics)
        })
        .collect();
    let mut total = Coverage::default();
    let mut panics = Vec::new();
    for (c, p) in results {
        total.crates += c.crates;
        total.files += c.files;
        total.bytes += c.bytes;
        total.rewritten_files += c.rewritten_files;
        total.rewritten_bytes += c.rewritten_bytes;
        total.handlers += c.handlers;
        total.parse_errors += c.parse_errors;
        total.rewritten_parse_errors += c.rewritten_parse_errors;
        panics.extend(p);
    }
    eprintln!(
        "real Rust: {} crates, {} of {total_files} files, {} of {total_bytes} bytes \
         ({} files syn rejects); rewritten as handlers: {} files, {} bytes ({} rejected), \
         {} handlers; {:.1?}",
        total.crates,
        total.files,
        total.bytes,
        total.parse_errors,
        total.rewritten_files,
        total.rewritten_bytes,
        total.rewritten_parse_errors,
        total.handlers,
        started.elapsed(),
    );
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// 2. Half-typed files: every prefix and small mutation of the fixture sources
// ---------------------------------------------------------------------------------------

/// How many prefixes of each fixture file are parsed.
const CUTS: usize = 200;
/// How many single-character deletions, and how many insertions, per fixture file.
const MUTATIONS: usize = 20;

/// xorshift64: a fixed-seed source of positions, so failures reproduce exactly.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n.max(1) as u64) as usize
    }
}

fn char_boundary_at_or_before(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The text a user has on disk mid-edit: prefixes at evenly spaced cuts, the file with one
/// character deleted, and the file with one syntax character inserted.
fn half_typed(text: &str, rng: &mut XorShift) -> Vec<(String, String)> {
    const INSERTED: &[u8] = b"{}()[]<>;:,.=!&|#'\"/\\*-+ \n_r0";
    let mut out = Vec::new();
    for i in 0..=CUTS {
        let at = char_boundary_at_or_before(text, text.len() * i / CUTS);
        out.push((format!("cut at byte {at}"), text[..at].to_owned()));
    }
    for _ in 0..MUTATIONS {
        if text.is_empty() {
            break;
        }
        let at = char_boundary_at_or_before(text, rng.below(text.len()));
        let mut deleted = text.to_owned();
        deleted.remove(at);
        out.push((format!("byte {at} deleted"), deleted));
    }
    for _ in 0..MUTATIONS {
        let at = char_boundary_at_or_before(text, rng.below(text.len() + 1));
        let byte = INSERTED[rng.below(INSERTED.len())];
        let mut inserted = text.to_owned();
        inserted.insert(at, char::from(byte));
        out.push((
            format!("{:?} inserted at byte {at}", char::from(byte)),
            inserted,
        ));
    }
    out
}

/// A file that does not parse yields exactly one FG001, pointing into the file, and nothing
/// else: no half-read handlers or types.
fn check_unparsable(parsed: &ParsedFile, text: &str) -> Result<(), String> {
    let syn_rejects = syn::parse_file(text).is_err();
    let reported = has_code(&parsed.diagnostics, "FG001");
    if !syn_rejects && !reported {
        return Ok(());
    }
    if !syn_rejects {
        return Err(format!(
            "FG001 for a file syn parses: {:?}",
            parsed.diagnostics
        ));
    }
    let [only] = parsed.diagnostics.as_slice() else {
        return Err(format!(
            "expected exactly one FG001, got {:?}",
            parsed.diagnostics
        ));
    };
    let lines = text.matches('\n').count() as u32 + 1;
    match &only.span {
        Some(span) if only.code == "FG001" && (1..=lines).contains(&span.line) => {}
        _ => {
            return Err(format!(
                "expected an FG001 on a line of the file, got {only:?}"
            ))
        }
    }
    if !(parsed.scopes.is_empty()
        && parsed.types.is_empty()
        && parsed.aliases.is_empty()
        && parsed.handlers.is_empty())
    {
        return Err("an unparsable file still contributed items".to_owned());
    }
    Ok(())
}

fn fixture_names() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut names: Vec<String> = std::fs::read_dir(root)
        .expect("fixtures/ is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("src").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn half_typed_fixtures_never_panic() {
    let started = Instant::now();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut failures = Vec::new();
    let mut variants = 0usize;
    for fixture in fixture_names() {
        let sources = support::sources(&fixture);
        let clean: Vec<ParsedFile> = sources
            .iter()
            .map(|(rel, text)| parse_one(rel, text))
            .collect();
        for (index, (rel, text)) in sources.iter().enumerate() {
            for (what, variant) in half_typed(text, &mut rng) {
                variants += 1;
                let at = format!("fixtures/{fixture}/{rel}, {what}");
                let parsed = match catching(|| parse_one(rel, &variant)) {
                    Ok(parsed) => parsed,
                    Err(message) => {
                        failures.push(format!("parse {at}: panicked: {message}"));
                        continue;
                    }
                };
                if let Err(problem) = check_unparsable(&parsed, &variant) {
                    failures.push(format!("parse {at}: {problem}"));
                }
                let mut files = clean.clone();
                files[index] = parsed;
                if let Err(message) = catching(|| resolve::build(&files)) {
                    failures.push(format!("resolve {at}: panicked: {message}"));
                }
            }
        }
    }
    eprintln!(
        "half-typed: {variants} variants of the fixture files; {:.1?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// 3. Pathological crates
// ---------------------------------------------------------------------------------------

/// What test threads and rayon's workers get by default.
const SMALL_STACK: usize = 2 << 20;
/// For inputs that syn itself cannot parse on a small stack (it recurses about 9 KiB per
/// level of nested types and modules, so a 500-deep `Vec<…>` overflows 2 MiB inside
/// `syn::parse_file` before forge sees the tree).
const LARGE_STACK: usize = 64 << 20;
/// Long enough for any of these crates; a case that takes longer has hit an exponential
/// path.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

const PRELUDE: &str = "use forge::prelude::*;\n";

struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    stack: usize,
    check: fn(&Resolved) -> Result<(), String>,
}

fn clean(resolved: &Resolved) -> Result<(), String> {
    match resolved.diagnostics.as_slice() {
        [] => Ok(()),
        diagnostics => Err(format!("expected no diagnostics, got {diagnostics:?}")),
    }
}

fn anything(_: &Resolved) -> Result<(), String> {
    Ok(())
}

fn unresolvable(resolved: &Resolved) -> Result<(), String> {
    if has_code(&resolved.diagnostics, "FG503") {
        Ok(())
    } else {
        Err(format!("expected an FG503, got {:?}", resolved.diagnostics))
    }
}

fn body_not_read(resolved: &Resolved) -> Result<(), String> {
    if resolved
        .diagnostics
        .iter()
        .any(|d| d.code == "FG001" && d.message.contains("cannot read the body"))
    {
        Ok(())
    } else {
        Err(format!(
            "expected an FG001 for the body, got {:?}",
            resolved.diagnostics
        ))
    }
}

fn lib(text: String) -> Vec<(&'static str, String)> {
    vec![("src/lib.rs", text)]
}

/// `src/lib.rs` with the prelude and one query taking `arg`.
fn query_taking(items: &str, arg: &str) -> Vec<(&'static str, String)> {
    lib(format!(
        "{PRELUDE}{items}\n#[forge::query]\npub async fn h(ctx: &QueryContext, a: {arg}) -> Result<()> {{ Ok(()) }}\n"
    ))
}

/// `src/lib.rs` with one query whose body is `body`.
fn query_doing(body: &str) -> Vec<(&'static str, String)> {
    lib(format!(
        "{PRELUDE}#[forge::query]\npub async fn h(ctx: &QueryContext, a: i32) -> Result<i32> {{ {body} Ok(1) }}\n"
    ))
}

/// A 450-link method chain on a macro call holding `brackets` nested parentheses around
/// an operator chain of `links` links.
fn at_the_limits(brackets: usize, links: usize) -> String {
    format!(
        "let x = vec![{}{}1{}]{};",
        "(".repeat(brackets),
        "1 + ".repeat(links),
        ")".repeat(brackets),
        ".min(1)".repeat(450)
    )
}

fn cases() -> Vec<Case> {
    let vec_500 = format!("{}i32{}", "Vec<".repeat(500), ">".repeat(500));
    let one_line: String = (0..10_000)
        .map(|i| format!("pub struct S{i} {{ pub f: i32 }} "))
        .collect();
    let nested_mods = format!(
        "{PRELUDE}{}pub struct Inner {{ pub f: i32 }}\n\
         #[forge::query]\npub async fn inner(ctx: &QueryContext, a: Inner, b: super::m::Inner) -> Result<self::Inner> {{ Ok(a) }}\n{}\
         #[forge::query]\npub async fn outer(ctx: &QueryContext, a: {}Inner) -> Result<()> {{ Ok(()) }}\n",
        "pub mod m {\nuse forge::prelude::*;\n".repeat(500),
        "}\n".repeat(500),
        "m::".repeat(500),
    );
    let doubling: String = (1..=40)
        .map(|i| format!("type T{i} = (T{}, T{});\n", i - 1, i - 1))
        .collect();
    vec![
        Case {
            name: "empty file",
            files: lib(String::new()),
            stack: SMALL_STACK,
            check: clean,
        },
        Case {
            name: "only a byte order mark",
            files: lib("\u{feff}".to_owned()),
            stack: SMALL_STACK,
            check: clean,
        },
        Case {
            name: "10 000 structs and a handler on one line",
            files: lib(format!(
                "{PRELUDE}{one_line}#[forge::query] pub async fn h(ctx: &QueryContext, a: S9999) -> Result<S0> {{ Ok(S0 {{ f: 1 }}) }}"
            )),
            stack: SMALL_STACK,
            check: clean,
        },
        Case {
            name: "a 1 MB line of SQL",
            files: query_doing(&format!(
                "sqlx::query(\"SELECT 1 FROM t WHERE {}\").bind(a).fetch_all(ctx.db()).await?;",
                "x = 1 AND ".repeat(100_000)
            )),
            stack: SMALL_STACK,
            check: clean,
        },
        Case {
            name: "a 1 MB comment line",
            files: lib(format!("{PRELUDE}// {}\n", "a".repeat(1 << 20))),
            stack: SMALL_STACK,
            check: clean,
        },
        Case {
            name: "Vec nested 500 deep in a workflow's argument, output and a model",
            files: lib(format!(
                "{PRELUDE}#[forge::model]\npub struct M {{ pub f: {vec_500} }}\n\
                 #[forge::workflow]\npub async fn w(ctx: &WorkflowContext, a: {vec_500}) -> Result<{vec_500}> {{ Ok(a) }}\n"
            )),
            stack: LARGE_STACK,
            check: clean,
        },
        Case {
            name: "modules nested 500 deep",
            files: lib(nested_mods),
            stack: LARGE_STACK,
            check: clean,
        },
        Case {
            name: "a use cycle between modules",
            files: query_taking(
                "mod a { pub use super::b::X; }\nmod b { pub use super::a::X; }",
                "a::X",
            ),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "a glob use cycle between modules",
            files: query_taking(
                "mod a { pub use super::b::*; }\nmod b { pub use super::a::*; }",
                "a::X",
            ),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "a module importing its own name",
            files: query_taking("mod a { pub use self::X; }", "a::X"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "a type alias cycle",
            files: query_taking("type A = B;\ntype B = A;", "A"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "a type alias to itself",
            files: query_taking("type A = A;", "A"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "a type alias containing itself",
            files: query_taking("type L = Vec<L>;", "L"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        // Regression: these three once expanded 2^32 and more parts, and never finished.
        Case {
            name: "a type alias containing itself twice",
            files: query_taking("type A = (A, A);", "A"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "a generic alias applied to itself 64 deep",
            files: query_taking(
                "type P<T> = (T, T);",
                &format!("{}i32{}", "P<".repeat(64), ">".repeat(64)),
            ),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "40 aliases each twice the one before",
            files: query_taking(&format!("type T0 = i32;\n{doubling}"), "T40"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "an alias given too few type arguments",
            files: query_taking("type Pair<A, B> = (A, B);", "Pair<i32>"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "Vec without a type argument",
            files: query_taking("", "Vec"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "HashMap with one type argument",
            files: query_taking("use std::collections::HashMap;", "HashMap<String>"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "too many or too few type arguments elsewhere",
            files: lib(format!(
                "{PRELUDE}type Pair<A, B> = (A, B);\npub struct W<T> {{ pub f: T }}\n\
                 #[forge::query]\npub async fn h(ctx: &QueryContext, a: Pair<i32, i32, i32>, b: W, c: W<i32, i32>, d: Vec<i32, i32>, e: Option<>) -> Result<W<W>> {{ todo!() }}\n"
            )),
            stack: SMALL_STACK,
            check: anything,
        },
        Case {
            name: "super beyond the crate root",
            files: query_taking("use super::X;", "super::Y"),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "super beyond the crate root from a module",
            files: lib(format!(
                "{PRELUDE}mod a {{\nuse forge::prelude::*;\nuse super::super::X;\n\
                 #[forge::query]\npub async fn h(ctx: &QueryContext, a: X, b: super::super::super::Y) -> Result<()> {{ Ok(()) }}\n}}\n"
            )),
            stack: SMALL_STACK,
            check: unresolvable,
        },
        Case {
            name: "a body nesting 400 method calls",
            files: query_doing(&format!("let x = a{};", ".min(1)".repeat(400))),
            stack: SMALL_STACK,
            check: clean,
        },
        // Regression: syn parses these chains with a loop; forge's body visitor recursed
        // through them and overflowed the stack at about 2 000 links.
        Case {
            name: "a body with an operator chain 20 000 long",
            files: query_doing(&format!("let x = {}1;", "1 + ".repeat(20_000))),
            stack: SMALL_STACK,
            check: body_not_read,
        },
        Case {
            name: "a body with a method chain 20 000 long",
            files: query_doing(&format!("let x = a{};", ".min(1)".repeat(20_000))),
            stack: SMALL_STACK,
            check: body_not_read,
        },
        Case {
            name: "an sqlx call binding an operator chain 20 000 long",
            files: query_doing(&format!(
                "sqlx::query(\"SELECT 1\").bind({}a).execute(ctx.db()).await?;",
                "a + ".repeat(20_000)
            )),
            stack: SMALL_STACK,
            check: body_not_read,
        },
        // The limits that keep the body visitor's recursion bounded, all reached at once:
        // forge reads this body on a small stack.
        Case {
            name: "a body at every limit",
            files: query_doing(&at_the_limits(31, 20)),
            stack: SMALL_STACK,
            check: clean,
        },
        Case {
            name: "a macro argument nesting brackets 33 deep",
            files: query_doing(&at_the_limits(33, 1)),
            stack: SMALL_STACK,
            check: clean,
        },
        // The probe parses the largest macro body it accepts, deep in its own recursion,
        // before it finds the body too deep.
        Case {
            name: "the largest macro argument forge reads, 450 levels down",
            files: query_doing(&at_the_limits(0, 4000)),
            stack: SMALL_STACK,
            check: body_not_read,
        },
        Case {
            name: "a macro argument of 20 000 tokens",
            files: query_doing(&format!("let x = vec![{}];", "1, ".repeat(10_000))),
            stack: SMALL_STACK,
            check: clean,
        },
        Case {
            name: "a macro argument with an operator chain 20 000 long",
            files: query_doing(&format!("let x = vec![{}1];", "1 + ".repeat(20_000))),
            stack: SMALL_STACK,
            check: clean,
        },
        // syn's `Spanned::span` (through `ToTokens`) recurses where its parser loops, and
        // overflows a small stack near 9 000 links; forge takes the span of every type.
        Case {
            name: "an array length with an operator chain 20 000 long",
            files: query_taking("", &format!("[u8; {}1]", "1 + ".repeat(20_000))),
            stack: LARGE_STACK,
            check: anything,
        },
    ]
}

/// Parses and resolves a crate on a thread of its own, so that a case can have the stack
/// it needs and a hang is reported instead of stalling the test run.
fn run_case(case: &Case) -> Result<Resolved, String> {
    let files = case.files.clone();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(case.name.to_owned())
        .stack_size(case.stack)
        .spawn(move || {
            let result = catching(|| {
                let mut parsed: Vec<ParsedFile> = files
                    .iter()
                    .map(|(rel, text)| parse_one(rel, text))
                    .collect();
                parsed.sort_by(|a, b| a.file.cmp(&b.file));
                resolve::build(&parsed)
            });
            let _ = send.send(result);
        })
        .expect("a thread starts");
    match receive.recv_timeout(DEADLINE) {
        Ok(result) => result.map_err(|message| format!("panicked: {message}")),
        Err(_) => Err(format!("did not finish within {DEADLINE:?}")),
    }
}

#[test]
fn pathological_crates_never_panic() {
    let mut failures = Vec::new();
    for case in cases() {
        let started = Instant::now();
        let outcome = run_case(&case).and_then(|resolved| (case.check)(&resolved));
        eprintln!("{}: {:.1?}", case.name, started.elapsed());
        if let Err(problem) = outcome {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
