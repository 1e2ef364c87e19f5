//! The dispatch, cron, workflow and handler rule families on fixture crates: each pass
//! fixture (and the kitchen sink) gives none of their codes, each fail fixture exactly the
//! expected ones at the expected lines.

mod support;

use forge_codegen::check::{self, Project};
use forge_codegen::config::CheckConfig;
use forge_codegen::ir::Diagnostic;
use forge_codegen::lock::Lock;

/// The codes of these families, including those the parser (FG001, FG002) and the resolver
/// (FG503) report; other families' codes are left to their own tests.
const CODES: &[&str] = &[
    "FG001", "FG002", "FG201", "FG202", "FG301", "FG401", "FG402", "FG403", "FG501", "FG502",
    "FG503",
];

fn lock(name: &str) -> Lock {
    match std::fs::read_to_string(support::fixture_dir(name).join("forge.lock")) {
        Ok(text) => Lock::parse(&text).expect("the fixture's forge.lock parses"),
        Err(_) => Lock::default(),
    }
}

/// The parser's, the resolver's and the rules' diagnostics with one of [`CODES`], sorted
/// by place.
fn findings(name: &str) -> Vec<Diagnostic> {
    let resolved = support::build_fixture(name);
    let lock = lock(name);
    let config = CheckConfig::default();
    let project = Project {
        ir: &resolved.ir,
        config: &config,
        lock: &lock,
        migrations: &[],
    };
    let mut found = resolved.diagnostics.clone();
    found.extend(check::check(&project));
    found.retain(|d| CODES.contains(&d.code.as_str()));
    found.sort_by(|a, b| (&a.span, &a.code, &a.message).cmp(&(&b.span, &b.code, &b.message)));
    found
}

/// (code, file, line) of each finding.
fn places(found: &[Diagnostic]) -> Vec<(&str, &str, u32)> {
    found
        .iter()
        .map(|d| {
            let span = d.span.as_ref().expect("every finding has a span");
            (d.code.as_str(), span.file.as_str(), span.line)
        })
        .collect()
}

#[test]
fn pass_fixtures_and_the_kitchen_sink_are_clean() {
    for name in [
        "check_dispatch_pass",
        "check_cron_pass",
        "check_workflow_pass",
        "check_handler_pass",
        "kitchen_sink",
    ] {
        assert_eq!(findings(name), [], "{name}");
    }
}

#[test]
fn every_finding_is_an_error_with_a_label_and_a_help() {
    for name in [
        "check_dispatch_fail",
        "check_cron_fail",
        "check_workflow_fail",
        "check_handler_fail",
    ] {
        for d in findings(name) {
            assert_eq!(d.severity, forge_codegen::ir::Severity::Error, "{d:?}");
            assert!(d.label.is_some() && d.help.is_some(), "{d:?}");
        }
    }
}

#[test]
fn dispatch_fail() {
    let found = findings("check_dispatch_fail");
    let file = "src/handlers.rs";
    assert_eq!(
        places(&found),
        [
            ("FG201", file, 30),
            ("FG201", file, 37),
            ("FG202", file, 44),
            ("FG202", file, 45),
            ("FG202", file, 46),
            ("FG202", file, 47),
        ]
    );
    insta::assert_json_snapshot!(found);
}

#[test]
fn cron_fail() {
    let found = findings("check_cron_fail");
    let file = "src/handlers.rs";
    assert_eq!(
        places(&found),
        [
            ("FG301", file, 7),
            ("FG301", file, 14),
            ("FG301", file, 21),
            ("FG301", file, 28),
            ("FG301", file, 35),
            ("FG301", file, 42),
            ("FG301", file, 49),
            ("FG301", file, 56),
            ("FG301", file, 56),
        ]
    );
    insta::assert_json_snapshot!(found);
}

#[test]
fn workflow_fail() {
    let found = findings("check_workflow_fail");
    let file = "src/handlers.rs";
    assert_eq!(
        places(&found),
        [
            ("FG401", file, 24),
            ("FG401", file, 34),
            ("FG402", file, 52),
            ("FG402", file, 55),
            ("FG403", file, 56),
            ("FG403", file, 57),
            ("FG403", file, 58),
        ]
    );
    insta::assert_json_snapshot!(found);
}

#[test]
fn handler_fail() {
    let found = findings("check_handler_fail");
    assert_eq!(
        places(&found),
        [
            ("FG501", "src/handlers.rs", 7),
            ("FG501", "src/handlers.rs", 14),
            ("FG501", "src/handlers.rs", 21),
            ("FG502", "src/teams.rs", 5),
            ("FG502", "src/teams.rs", 12),
            ("FG502", "src/teams.rs", 19),
            ("FG502", "src/teams.rs", 26),
        ]
    );
    insta::assert_json_snapshot!(found);
}

#[test]
fn every_code_is_documented() {
    for code in CODES {
        let rule = check::explain(code).unwrap_or_else(|| panic!("{code} has no RULES entry"));
        assert!(!rule.title.is_empty() && !rule.explanation.is_empty());
        assert!(rule.example.contains("refused") && rule.example.contains("accepted"));
    }
}
