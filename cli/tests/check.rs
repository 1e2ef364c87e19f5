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
