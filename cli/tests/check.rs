//! `forge check` as a subprocess: exit codes, output formats, `--explain`, `--deny`, `allow`.

mod support;

use support::*;

/// A project whose only finding is a warning: a field with a custom serde representation.
fn warning_only_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("forge.toml"),
        "[project]\nname = \"warn\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/main.rs"),
        "use forge::prelude::*;\n\n#[derive(serde::Serialize)]\npub struct Stamp {\n    #[serde(with = \"ts_seconds\")]\n    pub at: DateTime<Utc>,\n}\n\n#[forge::query(public)]\npub async fn stamp(ctx: &QueryContext) -> Result<Stamp> {\n    let _ = ctx;\n    todo!()\n}\n",
    )
    .unwrap();
    assert!(forge(dir.path(), &["generate"]).status.success());
    dir
}

#[test]
fn clean_after_generate_and_stale_before() {
    let project = copy_fixture("kitchen_sink");
    let before = forge(project.path(), &["check"]);
    assert_eq!(before.status.code(), Some(1));
    assert!(stdout(&before)
        .contains("error[FG701]: generated file `src/forge_generated.rs` is missing"));
    assert!(forge(project.path(), &["generate"]).status.success());
    let clean = forge(project.path(), &["check"]);
    assert_eq!(clean.status.code(), Some(0));
    assert!(
        stderr(&clean).contains("forge check: no problems in 20 handlers"),
        "{}",
        stderr(&clean)
    );
    let glue = project.path().join("src/forge_generated.rs");
    let text = std::fs::read_to_string(&glue).unwrap();
    std::fs::write(
        &glue,
        text.replacen("restart_ms: 5000", "restart_ms: 5001", 1),
    )
    .unwrap();
    let stale = forge(project.path(), &["check"]);
    assert_eq!(stale.status.code(), Some(1));
    let out = stdout(&stale);
    assert!(
        out.contains("error[FG701]: generated file `src/forge_generated.rs` is out of date"),
        "{out}"
    );
    assert!(
        out.contains("-            restart_ms: 5001,\n+            restart_ms: 5000,"),
        "{out}"
    );
}

#[test]
fn json_lines() {
    let project = copy_fixture("broken");
    let output = forge(project.path(), &["check", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    let first = lines
        .iter()
        .find(|d| d["code"] == "FG001")
        .expect("an FG001");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], "src/half_typed.rs");
    assert_eq!(first["line"], 6);
    assert_eq!(first["column"], 5);
    for key in ["message", "end_line", "end_column", "help"] {
        assert!(first.get(key).is_some(), "{key} missing");
    }
    assert!(lines.iter().any(|d| d["code"] == "FG002"));
    assert!(lines.iter().any(|d| d["code"] == "FG503"));
}

#[test]
fn github_annotations() {
    let project = copy_fixture("broken");
    let output = forge(project.path(), &["check", "--format", "github"]);
    let out = stdout(&output);
    assert!(
        out.lines().any(|l| l.starts_with("::error file=src/half_typed.rs,line=6,col=5,endLine=6,endColumn=7,title=FG001::this file does not parse")),
        "{out}"
    );
    // Newlines in messages are escaped so each annotation stays on one line.
    assert!(out.lines().all(|l| l.starts_with("::")), "{out}");
    assert!(out.contains("%0Ahelp: "));
}

#[test]
fn sarif_report() {
    let project = copy_fixture("broken");
    let output = forge(project.path(), &["check", "--format", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&output.stdout).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "forge");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(rules
        .iter()
        .any(|r| r["id"] == "FG701" && r["shortDescription"]["text"].is_string()));
    let results = run["results"].as_array().expect("results");
    let fg001 = results
        .iter()
        .find(|r| r["ruleId"] == "FG001")
        .expect("FG001 result");
    assert_eq!(fg001["level"], "error");
    let region = &fg001["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 6);
    assert_eq!(
        fg001["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "src/half_typed.rs"
    );
}

#[test]
fn warnings_pass_unless_denied_and_allow_silences() {
    let project = warning_only_project();
    let output = forge(project.path(), &["check"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("warning[FG503]"));
    let denied = forge(project.path(), &["check", "--deny", "warnings"]);
    assert_eq!(denied.status.code(), Some(1));
    std::fs::write(
        project.path().join("forge.toml"),
        "[project]\nname = \"warn\"\n\n[check]\nallow = [\"FG503\"]\n",
    )
    .unwrap();
    assert!(forge(project.path(), &["generate"]).status.success());
    let allowed = forge(project.path(), &["check", "--deny", "warnings"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stdout(&allowed));
    assert_eq!(stdout(&allowed), "");
}

#[test]
fn explain() {
    let dir = tempfile::tempdir().unwrap();
    let output = forge(dir.path(), &["check", "--explain", "FG701"]);
    assert!(output.status.success());
    assert!(stdout(&output).starts_with("FG701: a generated file is stale\n"));
    let unknown = forge(dir.path(), &["check", "--explain", "FG999"]);
    assert_eq!(unknown.status.code(), Some(2));
    let bad_flag = forge(dir.path(), &["check", "--deny", "errors"]);
    assert_eq!(bad_flag.status.code(), Some(2));
}

/// The human report for every check fixture, after `forge generate` (so FG701 stays out of
/// the picture unless the fixture is about it).
#[test]
fn human_reports() {
    for name in [
        "broken",
        "check_scope_fail",
        "check_dispatch_fail",
        "check_cron_fail",
        "check_workflow_fail",
        "check_handler_fail",
        "check_migration_fail",
    ] {
        let project = copy_fixture(name);
        forge(project.path(), &["generate"]);
        let output = forge(project.path(), &["check"]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        insta::assert_snapshot!(format!("human_{name}"), stdout(&output));
    }
    for name in [
        "kitchen_sink",
        "check_scope_pass",
        "check_dispatch_pass",
        "check_cron_pass",
        "check_workflow_pass",
        "check_handler_pass",
        "check_migration_pass",
    ] {
        let project = copy_fixture(name);
        forge(project.path(), &["generate"]);
        let output = forge(project.path(), &["check"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}:\n{}",
            stdout(&output)
        );
    }
}

/// Every code in DESIGN.md's table has an explanation.
#[test]
fn every_rule_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    for code in [
        "FG001", "FG002", "FG101", "FG102", "FG103", "FG201", "FG202", "FG301", "FG401", "FG402",
        "FG403", "FG501", "FG502", "FG503", "FG601", "FG602", "FG603", "FG701",
    ] {
        let output = forge(dir.path(), &["check", "--explain", code]);
        assert!(output.status.success(), "{code}");
        let text = stdout(&output);
        assert!(
            text.starts_with(&format!("{code}: ")) && text.contains("Example:"),
            "{text}"
        );
    }
}

/// A git repository holding `contract_before` as its first commit, with the work tree then
/// replaced by `after`'s source (uncommitted).
fn repository_with(after: &str) -> tempfile::TempDir {
    let dir = copy_fixture("contract_before");
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=forge",
                "-c",
                "user.email=forge@example.com",
            ])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "before"]);
    std::fs::copy(
        fixture(after).join("src/lib.rs"),
        dir.path().join("src/lib.rs"),
    )
    .expect("copy the later version");
    dir
}

fn git_status(dir: &std::path::Path) -> String {
    let output = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(dir)
        .output()
        .expect("git runs");
    stdout(&output)
}

/// Only the FG8xx findings of a JSON-lines report.
fn contract_findings(report: &str) -> Vec<serde_json::Value> {
    report
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|d| d["code"].as_str().is_some_and(|c| c.starts_with("FG8")))
        .collect()
}

#[test]
fn against_a_git_ref_reports_breaks_in_the_current_source_without_touching_the_work_tree() {
    let repo = repository_with("contract_after_fail");
    let status_before = git_status(repo.path());
    let output = forge(
        repo.path(),
        &["check", "--against", "HEAD", "--format", "json"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let findings = contract_findings(&stdout(&output));
    let codes: std::collections::BTreeSet<&str> =
        findings.iter().filter_map(|d| d["code"].as_str()).collect();
    assert_eq!(
        codes.into_iter().collect::<Vec<_>>(),
        ["FG801", "FG802", "FG803", "FG804"]
    );
    let tag = findings
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .unwrap()
                .contains("tagging of enum `Event`")
        })
        .expect("the renamed tag is reported");
    assert_eq!(tag["file"], "src/lib.rs");
    assert_eq!(tag["line"], 23);
    assert_eq!(
        git_status(repo.path()),
        status_before,
        "the work tree is untouched"
    );

    // Every format carries them.
    let human = forge(repo.path(), &["check", "--against", "HEAD"]);
    let text = stdout(&human);
    assert!(
        text.contains("error[FG803]: variant `Archived` of enum `Status` was removed"),
        "{text}"
    );
    assert!(text.contains("--> src/lib.rs:16"), "{text}");
    let github = stdout(&forge(
        repo.path(),
        &["check", "--against", "HEAD", "--format", "github"],
    ));
    assert!(
        github.contains("::warning file=src/lib.rs,line=36"),
        "{github}"
    );
    assert!(github.contains("title=FG801"), "{github}");
    let sarif = stdout(&forge(
        repo.path(),
        &["check", "--against", "HEAD", "--format", "sarif"],
    ));
    let sarif: serde_json::Value = serde_json::from_str(&sarif).expect("SARIF is JSON");
    let rules: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["ruleId"].as_str())
        .collect();
    assert!(
        rules.contains(&"FG802") && rules.contains(&"FG804"),
        "{rules:?}"
    );
    assert_eq!(
        git_status(repo.path()),
        status_before,
        "the work tree is untouched"
    );
}

#[test]
fn against_compatible_changes_or_an_ir_file_is_clean() {
    let repo = repository_with("contract_after_pass");
    let output = forge(
        repo.path(),
        &["check", "--against", "main", "--format", "json"],
    );
    assert_eq!(
        contract_findings(&stdout(&output)),
        Vec::<serde_json::Value>::new()
    );

    // The earlier IR as a file, written by `forge generate --emit-ir`.
    let before = copy_fixture("contract_before");
    let ir = repo.path().join("before.ir.json");
    let emitted = forge(
        before.path(),
        &[
            "generate",
            "--target",
            "openapi",
            "--emit-ir",
            ir.to_str().unwrap(),
        ],
    );
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    let output = forge(
        repo.path(),
        &["check", "--against", "before.ir.json", "--format", "json"],
    );
    assert_eq!(
        contract_findings(&stdout(&output)),
        Vec::<serde_json::Value>::new()
    );
    std::fs::copy(
        fixture("contract_after_fail").join("src/lib.rs"),
        repo.path().join("src/lib.rs"),
    )
    .unwrap();
    let output = forge(
        repo.path(),
        &["check", "--against", "before.ir.json", "--format", "json"],
    );
    assert_eq!(
        contract_findings(&stdout(&output)).len(),
        13,
        "{}",
        stdout(&output)
    );
}

#[test]
fn against_a_bad_ref_or_an_unparsable_tree_exits_2() {
    let repo = repository_with("contract_after_pass");
    let output = forge(repo.path(), &["check", "--against", "no-such-branch"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--against `no-such-branch`: no such file or git revision"),
        "{}",
        stderr(&output)
    );
    let output = forge(repo.path(), &["check", "--against", "--version"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    // A commit whose source does not parse.
    std::fs::write(repo.path().join("src/lib.rs"), "pub fn broken( {\n").unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args([
                "-c",
                "user.name=forge",
                "-c",
                "user.email=forge@example.com",
            ])
            .args(args)
            .current_dir(repo.path())
            .output()
            .expect("git runs")
    };
    assert!(git(&["commit", "-qam", "broken"]).status.success());
    std::fs::copy(
        fixture("contract_after_pass").join("src/lib.rs"),
        repo.path().join("src/lib.rs"),
    )
    .unwrap();
    let output = forge(repo.path(), &["check", "--against", "HEAD"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("--against `HEAD`: its source does not parse")
            && message.contains("src/lib.rs:1:"),
        "{message}"
    );

    // An IR file that is not one.
    std::fs::write(repo.path().join("bad.json"), "{}").unwrap();
    let output = forge(repo.path(), &["check", "--against", "bad.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not an IR written by `forge generate --emit-ir`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn every_contract_rule_has_an_explanation() {
    for code in ["FG801", "FG802", "FG803", "FG804"] {
        let output = forge(std::path::Path::new("."), &["check", "--explain", code]);
        assert_eq!(output.status.code(), Some(0), "{code}");
        assert!(
            stdout(&output).starts_with(&format!("{code}: ")),
            "{}",
            stdout(&output)
        );
    }
}
