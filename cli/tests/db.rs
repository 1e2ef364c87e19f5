//! `forge db` as a subprocess against a real PostgreSQL. Every test that starts a server
//! stops it when it ends, pass or fail.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// A scratch project, searchable by everyone so that even as root its cluster lives in
/// it (and goes with it); its server is stopped on drop.
struct Project(tempfile::TempDir);

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::write(dir.path().join("forge.toml"), "[project]\nname = \"x\"\n")
            .expect("write forge.toml");
        Project(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = db(self.path(), &["stop"], &[]);
    }
}

fn db(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("db")
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("FORGE_PG_BIN_DIRS")
        .env_remove("FORGE_PG_DOWNLOAD")
        .envs(env.iter().copied())
        .output()
        .expect("forge runs")
}

fn ok(output: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
}

#[test]
fn start_status_url_reset_stop() {
    let project = Project::new();
    let dir = project.path();

    let (before, _) = ok(&db(dir, &["status"], &[]));
    assert!(
        field(&before, "status").starts_with("not created yet"),
        "{before}"
    );

    let (url, said) = ok(&db(dir, &["start"], &[]));
    let url = url.trim().to_owned();
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
    assert!(url.ends_with("/x"), "{url}");
    assert!(said.contains("PostgreSQL runs on 127.0.0.1:"), "{said}");

    let (status, _) = ok(&db(dir, &["status"], &[]));
    assert!(
        field(&status, "status").starts_with("running (pid "),
        "{status}"
    );
    assert!(
        url.contains(&format!(":{}/", field(&status, "port"))),
        "{status}"
    );
    assert_eq!(field(&status, "url"), url);
    assert!(
        field(&status, "data dir").ends_with(".forge/pg/data"),
        "{status}"
    );
    assert!(field(&status, "server").contains("PostgreSQL"), "{status}");
    let binaries = field(&status, "binaries");
    assert!(
        binaries == "installed" || binaries.starts_with("downloaded by forge ("),
        "{status}"
    );

    let (again, _) = ok(&db(dir, &["url"], &[]));
    assert_eq!(again.trim(), url, "the running cluster is reused");

    let (reset, said) = ok(&db(dir, &["reset"], &[]));
    assert!(said.contains("deleted the development cluster"), "{said}");
    assert!(
        reset.trim().starts_with("postgres://postgres@127.0.0.1:"),
        "{reset}"
    );

    let (_, said) = ok(&db(dir, &["stop"], &[]));
    assert!(said.contains("stopped the server on port"), "{said}");
    let (after, _) = ok(&db(dir, &["status"], &[]));
    assert_eq!(field(&after, "status"), "stopped");
    let (_, said) = ok(&db(dir, &["stop"], &[]));
    assert!(said.contains("not running"), "{said}");
}

#[test]
fn url_prints_database_url_untouched() {
    let project = Project::new();
    let given = "postgres://app:secret@db.internal:6543/prod";
    let (url, _) = ok(&db(project.path(), &["url"], &[("DATABASE_URL", given)]));
    assert_eq!(url, format!("{given}\n"));
    assert!(!project.path().join(".forge").exists());
}

#[test]
fn without_server_binaries_forge_says_both_ways_out() {
    let project = Project::new();
    let empty = tempfile::tempdir().expect("temp dir");
    let bin_dirs = empty.path().to_str().expect("utf-8 path");
    let output = db(
        project.path(),
        &["start"],
        &[
            ("FORGE_PG_BIN_DIRS", bin_dirs),
            ("FORGE_PG_DOWNLOAD", "false"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: no PostgreSQL server binaries"),
        "{stderr}"
    );
    assert!(stderr.contains("FORGE_PG_DOWNLOAD=false"), "{stderr}");
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

/// A cache holding the pinned package (here: links to whatever binaries this machine has,
/// which `postgres --version` follows) is used when nothing is installed, and `status`
/// says so; `FORGE_PG_DOWNLOAD=false` ignores it.
#[test]
fn status_says_the_binaries_were_downloaded() {
    let real = forge_db::BinSearch::from_env()
        .find()
        .expect("some binaries");
    let package = forge_db::package::Package::pinned().expect("a pinned package");
    let cache = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = cache
        .path()
        .join("postgres")
        .join(package.dir_name())
        .join("bin");
    std::fs::create_dir_all(&bin).expect("create");
    for tool in ["pg_ctl", "initdb", "postgres"] {
        std::os::unix::fs::symlink(real.dir().join(tool), bin.join(tool)).expect("link");
    }
    let project = Project::new();
    let cache_dir = cache.path().to_str().expect("utf-8 path");
    let nothing_installed = [("FORGE_PG_BIN_DIRS", ""), ("FORGE_CACHE_DIR", cache_dir)];
    let (status, _) = ok(&db(project.path(), &["status"], &nothing_installed));
    assert_eq!(
        field(&status, "binaries"),
        format!(
            "downloaded by forge ({} from {})",
            package.name(),
            package.url
        )
    );
    assert!(
        field(&status, "server").ends_with(&format!(" in {}", bin.display())),
        "{status}"
    );

    let off = [
        nothing_installed.as_slice(),
        &[("FORGE_PG_DOWNLOAD", "false")],
    ]
    .concat();
    let output = db(project.path(), &["status"], &off);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FORGE_PG_DOWNLOAD=false"), "{stderr}");
}

#[test]
fn outside_a_project_forge_cannot_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = db(dir.path(), &["status"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no forge.toml"));
}
