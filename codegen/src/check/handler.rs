//! FG501 and FG502: a handler's shape and its registered name. Also the documentation of the
//! codes the parser (FG001, FG002) and the resolver (FG503) report, which have no check here.

use std::collections::BTreeMap;
use std::sync::Arc;

use forge_attrs::Options;

use super::{Project, Rule};
use crate::ir::{Diagnostic, Handler, Span};

pub const RULES: &[Rule] = &[
    Rule {
        code: "FG001",
        title: "a source file does not parse",
        explanation: "forge reads the crate as source, file by file. A file with a syntax error (or one that is not UTF-8, or a handler body nested too deeply to analyse) cannot be read, so its handlers and types are missing from the IR and from everything generated from it. The rest of the crate is still read and checked, so that one typo does not hide every other finding; the file itself is reported at the position of the error.",
        example: r#"// refused: missing `;`
let user = ctx.user_id()?
Ok(user)

// accepted
let user = ctx.user_id()?;
Ok(user)"#,
    },
    Rule {
        code: "FG002",
        title: "a #[forge::…] attribute is invalid or misplaced",
        explanation: "The attributes are parsed by the same grammar in the proc-macros and in the CLI, so forge check refuses exactly what the compiler would: an unknown attribute or option, a value of the wrong type, a malformed duration, two handler attributes on one function, a handler attribute on a struct, or #[forge::model] on a function. The message names the option and what it accepts.",
        example: r#"// refused: unknown option `pubic`
#[forge::query(pubic)]
pub async fn ping(ctx: &QueryContext) -> Result<String> { Ok("pong".into()) }

// accepted
#[forge::query(public)]
pub async fn ping(ctx: &QueryContext) -> Result<String> { Ok("pong".into()) }"#,
    },
    Rule {
        code: "FG501",
        title: "a handler's signature does not fit its attribute",
        explanation: "The generated glue calls every handler the same way: `handler(&ctx, args…).await`, where `ctx` is the context of the handler's kind, and expects a `forge::Result<T>`. A handler that is not `async`, whose first parameter is not `&` the context its attribute implies (`&QueryContext` for a query, `&JobContext` for a job, …), that is a method, whose parameter is a pattern instead of a name (clients send arguments by name), or that does not return `Result<T>` would only fail later, in the generated code, with a compiler error that points there instead of at the handler.",
        example: r#"// refused: not async, and a query receives a QueryContext
#[forge::query]
pub fn me(ctx: &MutationContext) -> Result<User> { … }

// accepted
#[forge::query]
pub async fn me(ctx: &QueryContext) -> Result<User> { … }"#,
    },
    Rule {
        code: "FG502",
        title: "two handlers share a name",
        explanation: "Handlers are registered and called by name, so two with the same name would shadow each other at run time. Queries and mutations share one namespace (`POST /_api/rpc/{name}`); jobs, crons, daemons, webhooks and MCP tools each have their own; workflows are keyed by name and version, so several versions of one workflow are expected but the same version twice is not; two webhooks may not share a path. The duplicate is reported where it is defined, with the first definition's location.",
        example: r#"// refused: both are called `list` over RPC
// src/functions/users.rs
#[forge::query]
pub async fn list(ctx: &QueryContext) -> Result<Vec<User>> { … }
// src/functions/teams.rs
#[forge::query]
pub async fn list(ctx: &QueryContext) -> Result<Vec<Team>> { … }

// accepted
pub async fn list_users(ctx: &QueryContext) -> Result<Vec<User>> { … }
pub async fn list_teams(ctx: &QueryContext) -> Result<Vec<Team>> { … }"#,
    },
    Rule {
        code: "FG503",
        title: "an argument or return type cannot cross the wire",
        explanation: "Arguments arrive as JSON and results leave as JSON, and the generated clients must type them exactly. A type forge cannot find in the crate or among the well-known library types, one whose JSON form loses information (`usize`, `u64` and `i128` do not fit a JavaScript number), raw pointers and references (arguments are decoded into owned values) cannot be represented, so they are refused with the span of the offending type rather than typed as `any`.",
        example: r#"// refused: u64 does not fit a JavaScript number; the argument is a reference
#[forge::query]
pub async fn count(ctx: &QueryContext, prefix: &str) -> Result<u64> { … }

// accepted
#[forge::query]
pub async fn count(ctx: &QueryContext, prefix: String) -> Result<i64> { … }"#,
    },
];

pub fn check(project: &Project, out: &mut Vec<Diagnostic>) {
    for handler in &project.ir.handlers {
        out.extend(signature(handler));
    }
    duplicates(&project.ir.handlers, out);
}

/// FG501: `async` and the context. The parser reports the other signature problems
/// (methods, pattern parameters, a return type that is not `Result`).
fn signature(handler: &Handler) -> Option<Diagnostic> {
    let expected = handler.kind.context_type()?;
    let mut problems = Vec::new();
    let mut labels = Vec::new();
    if !handler.is_async {
        problems.push("is not `async`".to_owned());
        labels.push("not `async`".to_owned());
    }
    match handler.context.as_deref() {
        None => {
            problems.push(format!(
                "does not take `&{expected}` as its first parameter"
            ));
            labels.push("no context parameter".to_owned());
        }
        Some(context) if context != expected => {
            problems.push(format!(
                "takes `&{context}`, but a {} receives `&{expected}`",
                handler.kind.noun()
            ));
            labels.push(format!("expects `&{expected}`"));
        }
        Some(_) => {}
    }
    if problems.is_empty() {
        return None;
    }
    let rest = if handler.args.is_empty() { "" } else { ", …" };
    Some(
        Diagnostic::error(
            "FG501",
            format!(
                "{} `{}` {}",
                handler.kind.noun(),
                handler.function,
                problems.join(" and ")
            ),
            Some(handler.span.clone()),
        )
        .with_label(labels.join(", "))
        .with_help(format!(
            "write it as `pub async fn {}(ctx: &{expected}{rest}) -> Result<…>`",
            handler.function
        )),
    )
}

/// The namespaces handlers are registered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Namespace {
    Rpc,
    Job,
    Cron,
    Workflow,
    Daemon,
    Webhook,
    WebhookPath,
    McpTool,
}

impl Namespace {
    /// What a key of this namespace is called in a message.
    fn what(self, key: &str) -> String {
        match self {
            Namespace::Rpc => format!("RPC name `{key}`"),
            Namespace::Job => format!("job name `{key}`"),
            Namespace::Cron => format!("cron name `{key}`"),
            Namespace::Workflow => format!("workflow {key}"),
            Namespace::Daemon => format!("daemon name `{key}`"),
            Namespace::Webhook => format!("webhook name `{key}`"),
            Namespace::WebhookPath => format!("webhook path `{key}`"),
            Namespace::McpTool => format!("MCP tool name `{key}`"),
        }
    }

    fn help(self) -> &'static str {
        match self {
            Namespace::Rpc => "queries and mutations share one namespace (`POST /_api/rpc/{name}`): rename one of the functions",
            Namespace::Job | Namespace::Cron | Namespace::Daemon | Namespace::Webhook => {
                "rename one of the functions: it is registered by its function name"
            }
            Namespace::Workflow => "give one of them another `version` (or another `name`); to keep an old version for runs in flight, it needs a version of its own",
            Namespace::WebhookPath => "give one of them another `path`",
            Namespace::McpTool => "give one of them another `name = \"…\"`: agents call tools by name",
        }
    }
}

/// Where a handler is registered; a webhook is also served at its path.
fn registrations(handler: &Handler) -> Vec<(Namespace, String)> {
    let name = handler.name.clone();
    match &handler.options {
        Options::Query(_) | Options::Mutation(_) => vec![(Namespace::Rpc, name)],
        Options::Job(_) => vec![(Namespace::Job, name)],
        Options::Cron(_) => vec![(Namespace::Cron, name)],
        Options::Workflow(options) => vec![(
            Namespace::Workflow,
            format!("`{name}` version \"{}\"", options.version),
        )],
        Options::Daemon(_) => vec![(Namespace::Daemon, name)],
        Options::Webhook(options) => vec![
            (Namespace::Webhook, name),
            (Namespace::WebhookPath, options.path.clone()),
        ],
        Options::McpTool(_) => vec![(Namespace::McpTool, name)],
        Options::Model(_) => Vec::new(),
    }
}

/// FG502. The first definition in source order (file, line, column) keeps the name; each
/// later one is reported.
fn duplicates(handlers: &[Arc<Handler>], out: &mut Vec<Diagnostic>) {
    let mut by_key: BTreeMap<(Namespace, String), Vec<&Handler>> = BTreeMap::new();
    for handler in handlers {
        for key in registrations(handler) {
            by_key.entry(key).or_default().push(handler);
        }
    }
    for ((namespace, key), mut group) in by_key {
        group.sort_by(|a, b| a.span.cmp(&b.span));
        let Some((first, rest)) = group.split_first() else {
            continue;
        };
        for duplicate in rest {
            out.push(
                Diagnostic::error(
                    "FG502",
                    format!(
                        "{} is already taken by {} `{}`",
                        namespace.what(&key),
                        first.kind.noun(),
                        first.function
                    ),
                    Some(duplicate.span.clone()),
                )
                .with_label(format!("first defined at {}", location(&first.span)))
                .with_help(namespace.help()),
            );
        }
    }
}

fn location(span: &Span) -> String {
    format!("{}:{}:{}", span.file, span.line, span.column)
}

/// Runs one rule family over a crate written inline, for the unit tests of every family.
#[cfg(test)]
pub(super) mod testing {
    use crate::check::Project;
    use crate::config::CheckConfig;
    use crate::ir::Diagnostic;
    use crate::lock::Lock;

    /// `source` is `src/functions.rs`; the resolver must find nothing wrong with it, so that
    /// the tests exercise the rules alone.
    pub fn run(
        source: &str,
        lock: &Lock,
        family: fn(&Project, &mut Vec<Diagnostic>),
    ) -> Vec<Diagnostic> {
        run_files(&[("src/functions.rs", source)], lock, family)
    }

    pub fn run_files(
        files: &[(&str, &str)],
        lock: &Lock,
        family: fn(&Project, &mut Vec<Diagnostic>),
    ) -> Vec<Diagnostic> {
        let parsed: Vec<_> = files
            .iter()
            .map(|(path, text)| {
                let module = crate::parse::module_path(path).expect("a crate source path");
                crate::parse::parse_file(path, &module, text)
            })
            .collect();
        let resolved = crate::resolve::build(&parsed);
        assert_eq!(resolved.diagnostics, [], "the test crate resolves cleanly");
        let config = CheckConfig::default();
        let project = Project {
            ir: &resolved.ir,
            config: &config,
            lock,
            migrations: &[],
        };
        let mut out = Vec::new();
        family(&project, &mut out);
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{run, run_files};
    use super::*;
    use crate::lock::Lock;

    fn messages(source: &str) -> Vec<String> {
        run(source, &Lock::default(), check)
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    #[test]
    fn fg501_accepts_async_handlers_with_their_context() {
        let source = r#"
use forge::prelude::*;
#[forge::query]
pub async fn q(ctx: &QueryContext, id: Uuid) -> Result<()> { Ok(()) }
#[forge::mcp_tool(name = "t")]
pub async fn t(ctx: &forge::McpToolContext) -> Result<()> { Ok(()) }
"#;
        assert_eq!(messages(source), Vec::<String>::new());
    }

    #[test]
    fn fg501_not_async_missing_or_wrong_context() {
        let source = r#"
use forge::prelude::*;
#[forge::query]
pub fn not_async(ctx: &QueryContext) -> Result<()> { Ok(()) }
#[forge::job]
pub async fn wrong(ctx: &QueryContext, id: Uuid) -> Result<()> { Ok(()) }
#[forge::cron(every = "1m")]
pub fn neither() -> Result<()> { Ok(()) }
"#;
        let found = run(source, &Lock::default(), check);
        let summary: Vec<(&str, Option<&str>, Option<&str>)> = found
            .iter()
            .map(|d| (d.message.as_str(), d.label.as_deref(), d.help.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "cron `neither` is not `async` and does not take `&CronContext` as its first parameter",
                    Some("not `async`, no context parameter"),
                    Some("write it as `pub async fn neither(ctx: &CronContext) -> Result<…>`"),
                ),
                (
                    "job `wrong` takes `&QueryContext`, but a job receives `&JobContext`",
                    Some("expects `&JobContext`"),
                    Some("write it as `pub async fn wrong(ctx: &JobContext, …) -> Result<…>`"),
                ),
                (
                    "query `not_async` is not `async`",
                    Some("not `async`"),
                    Some("write it as `pub async fn not_async(ctx: &QueryContext) -> Result<…>`"),
                ),
            ]
        );
    }

    #[test]
    fn fg502_namespaces() {
        let a = r#"
use forge::prelude::*;
#[forge::query]
pub async fn list(ctx: &QueryContext) -> Result<()> { Ok(()) }
#[forge::job]
pub async fn sync(ctx: &JobContext) -> Result<()> { Ok(()) }
#[forge::workflow(name = "flow", version = "1")]
pub async fn flow_v1(ctx: &WorkflowContext) -> Result<()> { Ok(()) }
#[forge::workflow(name = "flow", version = "2")]
pub async fn flow_v2(ctx: &WorkflowContext) -> Result<()> { Ok(()) }
#[forge::webhook(path = "/hooks/a")]
pub async fn hook(ctx: &WebhookContext) -> Result<()> { Ok(()) }
"#;
        let b = r#"
use forge::prelude::*;
#[forge::mutation]
pub async fn list(ctx: &MutationContext) -> Result<()> { Ok(()) }
#[forge::cron(every = "1m")]
pub async fn sync(ctx: &CronContext) -> Result<()> { Ok(()) }
#[forge::workflow(name = "flow", version = "2")]
pub async fn flow_again(ctx: &WorkflowContext) -> Result<()> { Ok(()) }
#[forge::webhook(path = "/hooks/a")]
pub async fn other_hook(ctx: &WebhookContext) -> Result<()> { Ok(()) }
#[forge::mcp_tool(name = "tickets")]
pub async fn t1(ctx: &McpToolContext) -> Result<()> { Ok(()) }
#[forge::mcp_tool(name = "tickets")]
pub async fn t2(ctx: &McpToolContext) -> Result<()> { Ok(()) }
"#;
        let found = run_files(&[("src/a.rs", a), ("src/b.rs", b)], &Lock::default(), check);
        let summary: Vec<(&str, &str, u32)> = found
            .iter()
            .map(|d| {
                let span = d.span.as_ref().expect("a span");
                (d.message.as_str(), span.file.as_str(), span.line)
            })
            .collect();
        // A job and a cron may share a name; a query and a mutation may not.
        assert_eq!(
            summary,
            [
                (
                    "MCP tool name `tickets` is already taken by MCP tool `t1`",
                    "src/b.rs",
                    14
                ),
                (
                    "RPC name `list` is already taken by query `list`",
                    "src/b.rs",
                    4
                ),
                (
                    "webhook path `/hooks/a` is already taken by webhook `hook`",
                    "src/b.rs",
                    10
                ),
                (
                    "workflow `flow` version \"2\" is already taken by workflow `flow_v2`",
                    "src/b.rs",
                    8
                ),
            ]
        );
        assert_eq!(
            found[1].label.as_deref(),
            Some("first defined at src/a.rs:4:14")
        );
    }
}
