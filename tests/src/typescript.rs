//! Runs the TypeScript compiler pinned in `tests/typescript/package.json` on generated code,
//! and the OpenAPI tools pinned beside it (the official-schema validator and
//! `openapi-typescript`) on generated OpenAPI documents.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What every check compiles with: `--strict` and a modern browser-and-Node target, plus
/// the stricter options projects commonly turn on, which generated code must pass too.
const FLAGS: &[&str] = &[
    "--strict",
    "--target",
    "es2022",
    "--module",
    "es2022",
    "--moduleResolution",
    "bundler",
    "--lib",
    "es2022,dom",
    "--noUnusedLocals",
    "--noUnusedParameters",
    "--noImplicitOverride",
    "--noImplicitReturns",
    "--noPropertyAccessFromIndexSignature",
    "--noUncheckedIndexedAccess",
    "--verbatimModuleSyntax",
    "--pretty",
    "false",
];

/// What `npm ci` installs that the tests use; a checkout installed before one of them was
/// pinned is installed again.
const INSTALLED: &[&str] = &[
    "node_modules/.bin/tsc",
    "node_modules/.bin/openapi-typescript",
    "node_modules/openapi-fetch/package.json",
    "node_modules/@seriousme/openapi-schema-validator/package.json",
];

/// The npm package holding the pinned tools; its `node_modules` is what scripts compiled
/// elsewhere link to.
pub fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("typescript")
}

/// The path of `tsc`, installed with `npm ci` first if needed. Test processes run in
/// parallel, so the install happens under an exclusive lock and only once.
pub fn ensure_tsc() -> PathBuf {
    let dir = package_dir();
    let tsc = dir.join("node_modules/.bin/tsc");
    let lock_path = dir.join(".install.lock");
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if INSTALLED.iter().any(|path| !dir.join(path).exists()) {
        npm_ci(&dir);
    }
    tsc
}

/// Validates an OpenAPI document against the official OpenAPI 3.1 schema
/// (`@seriousme/openapi-schema-validator`) and checks that its references resolve; fails
/// with the validator's errors.
pub fn validate_openapi(document: &Path) {
    ensure_tsc();
    let output = Command::new("node")
        .arg(package_dir().join("openapi/validate.mjs"))
        .arg(document)
        .output()
        .unwrap_or_else(|e| panic!("could not run node: {e}"));
    assert!(
        output.status.success(),
        "{} is not a valid OpenAPI 3.1 document:\n{}",
        document.display(),
        text(&output)
    );
}

/// Generates TypeScript types from an OpenAPI document with `openapi-typescript`.
pub fn openapi_typescript(document: &Path, out: &Path) {
    ensure_tsc();
    let tool = package_dir().join("node_modules/.bin/openapi-typescript");
    let output = Command::new(&tool)
        .arg(document)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", tool.display()));
    assert!(
        output.status.success(),
        "openapi-typescript failed on {}:\n{}",
        document.display(),
        text(&output)
    );
}

fn npm_ci(dir: &Path) {
    let command = format!("npm ci (in {})", dir.display());
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run `{command}`: {e}; the TypeScript tests need Node.js 20+ and npm")
        });
    assert!(
        output.status.success(),
        "`{command}` failed with {}:\n{}",
        output.status,
        text(&output)
    );
}

/// Type-checks `files` (relative to `dir`, or absolute) and fails with tsc's full output.
pub fn check(dir: &Path, files: &[&Path]) {
    check_with(dir, files, &[]);
}

/// [`check`] with more compiler options, e.g. `--exactOptionalPropertyTypes`.
pub fn check_with(dir: &Path, files: &[&Path], options: &[&str]) {
    let mut args = vec!["--noEmit"];
    args.extend_from_slice(options);
    run_tsc(dir, files, &args);
}

/// Type-checks `files` and writes the JavaScript to `out_dir`.
pub fn compile(dir: &Path, files: &[&Path], out_dir: &Path) {
    let out_dir = out_dir
        .to_str()
        .unwrap_or_else(|| panic!("{out_dir:?} is not UTF-8"));
    run_tsc(dir, files, &["--outDir", out_dir]);
}

fn run_tsc(dir: &Path, files: &[&Path], args: &[&str]) {
    let tsc = ensure_tsc();
    let output = Command::new(&tsc)
        .args(FLAGS)
        .args(args)
        .args(files)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", tsc.display()));
    assert!(
        output.status.success(),
        "tsc {} failed in {}:\n{}",
        args.join(" "),
        dir.display(),
        text(&output)
    );
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
