//! Machine-readable diagnostics: JSON lines, GitHub workflow commands, SARIF 2.1.0.

use forge_codegen::check;
use forge_codegen::ir::{Diagnostic, Severity};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// rustc-style reports with code frames.
    Human,
    /// One JSON object per line.
    Json,
    /// `::error file=…` workflow commands, shown as annotations on pull requests.
    Github,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

pub fn format(format: Format, diagnostics: &[Diagnostic]) -> String {
    match format {
        Format::Human => unreachable!("human output is rendered with code frames"),
        Format::Json => diagnostics
            .iter()
            .map(|d| format!("{}\n", json_line(d)))
            .collect(),
        Format::Github => diagnostics.iter().map(github).collect(),
        Format::Sarif => {
            let mut text =
                serde_json::to_string_pretty(&sarif(diagnostics)).expect("SARIF serialises");
            text.push('\n');
            text
        }
    }
}

fn severity(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn json_line(d: &Diagnostic) -> Value {
    let span = d.span.as_ref();
    json!({
        "code": d.code,
        "severity": severity(d),
        "message": d.message,
        "file": span.map(|s| s.file.as_str()),
        "line": span.map(|s| s.line),
        "column": span.map(|s| s.column),
        "end_line": span.map(|s| s.end_line),
        "end_column": span.map(|s| s.end_column),
        "help": d.help,
    })
}

/// GitHub's escaping for workflow command data and properties.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn github(d: &Diagnostic) -> String {
    let mut properties = Vec::new();
    if let Some(span) = &d.span {
        properties.push(format!("file={}", escape_property(&span.file)));
        properties.push(format!("line={}", span.line));
        properties.push(format!("col={}", span.column));
        properties.push(format!("endLine={}", span.end_line));
        properties.push(format!("endColumn={}", span.end_column));
    }
    properties.push(format!("title={}", escape_property(&d.code)));
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!(
        "::{} {}::{}\n",
        severity(d),
        properties.join(","),
        escape_data(&message)
    )
}

fn sarif(diagnostics: &[Diagnostic]) -> Value {
    let rules: Vec<Value> = check::rules()
        .map(|rule| {
            json!({
                "id": rule.code,
                "name": rule.code,
                "shortDescription": { "text": rule.title },
                "fullDescription": { "text": rule.explanation },
                "help": { "text": format!("{}\n\n{}", rule.explanation, rule.example) },
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            let mut result = json!({
                "ruleId": d.code,
                "level": severity(d),
                "message": { "text": message },
            });
            if let Some(span) = &d.span {
                result["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": { "uri": span.file },
                        "region": {
                            "startLine": span.line,
                            "startColumn": span.column,
                            "endLine": span.end_line,
                            "endColumn": span.end_column,
                        }
                    }
                }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "forge",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}
