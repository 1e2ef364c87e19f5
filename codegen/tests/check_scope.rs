//! FG101–FG103 on fixture crates: a crate that follows the rules, one that breaks each of
//! them, and the kitchen sink.

mod support;

use forge_codegen::check::{check, Project};
use forge_codegen::config::CheckConfig;
use forge_codegen::ir::Diagnostic;
use forge_codegen::lock::Lock;

/// The FG1xx diagnostics of a fixture, which must otherwise resolve cleanly.
fn scope_findings(fixture: &str) -> Vec<Diagnostic> {
    let resolved = support::build_fixture(fixture);
    assert_eq!(resolved.diagnostics, [], "{fixture} resolves cleanly");
    let project = Project {
        ir: &resolved.ir,
        config: &CheckConfig::default(),
        lock: &Lock::default(),
        migrations: &[],
    };
    check(&project)
        .into_iter()
        .filter(|d| d.code.starts_with("FG1"))
        .collect()
}

fn locations(findings: &[Diagnostic]) -> Vec<(&str, &str, u32)> {
    findings
        .iter()
        .map(|d| {
            let span = d.span.as_ref().expect("scope findings have a span");
            (d.code.as_str(), span.file.as_str(), span.line)
        })
        .collect()
}

#[test]
fn scoped_queries_pass() {
    assert_eq!(scope_findings("check_scope_pass"), []);
}

#[test]
fn each_way_to_break_the_scope_rules_is_reported() {
    let findings = scope_findings("check_scope_fail");
    let dynamic = "src/functions/dynamic.rs";
    let leaks = "src/functions/leaks.rs";
    let spoofable = "src/functions/spoofable.rs";
    assert_eq!(
        locations(&findings),
        [
            ("FG103", dynamic, 11),   // format!
            ("FG103", dynamic, 21),   // QueryBuilder in an unscoped query without tables
            ("FG103", dynamic, 33),   // SQL that does not parse
            ("FG103", dynamic, 42),   // tables(...) but the SQL is in a helper
            ("FG101", leaks, 10),     // no WHERE
            ("FG101", leaks, 19),     // under an OR
            ("FG101", leaks, 29),     // IS NULL
            ("FG101", leaks, 38),     // another column
            ("FG101", leaks, 48),     // LEFT JOIN ON
            ("FG101", leaks, 62),     // one side of a UNION
            ("FG101", leaks, 75),     // uncorrelated EXISTS
            ("FG101", leaks, 87),     // a constant
            ("FG101", leaks, 97),     // the bind is not on the call
            ("FG102", spoofable, 13), // macro argument
            ("FG102", spoofable, 26), // field of an argument, via .bind
        ]
    );
    insta::assert_json_snapshot!(findings);
}

#[test]
fn kitchen_sink_is_scoped() {
    // `me` filters `users` by its primary key, which is no owner column: it says `unscoped`.
    assert_eq!(locations(&scope_findings("kitchen_sink")), []);
}
