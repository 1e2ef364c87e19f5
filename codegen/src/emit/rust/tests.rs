use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use forge_attrs::*;
use proc_macro2::TokenStream;
use quote::quote;

use super::layout::{self, Leaf};
use super::{
    arg_struct, emit, registration, targets, unparse, with_arg_structs, Chunk, ARGS_DOC, FILE_DOC,
    GENERATED_HEADER, REGISTER_DOC,
};
use crate::ir::*;

fn span(line: u32) -> Span {
    Span {
        file: "src/functions/mod.rs".to_owned(),
        line,
        column: 14,
        end_line: line,
        end_column: 24,
    }
}

fn arg(name: &str) -> Arg {
    Arg {
        name: name.to_owned(),
        ty: TypeRef::Scalar {
            scalar: Scalar::String,
        },
        span: span(1),
    }
}

/// A handler registered under its function's name; `path` is `module::function`.
fn handler(options: Options, path: &str, args: &[&str]) -> Handler {
    let (module, function) = path.rsplit_once("::").unwrap_or(("", path));
    Handler {
        name: function.to_owned(),
        function: function.to_owned(),
        module: module.to_owned(),
        kind: options.kind(),
        context: options.kind().context_type().map(str::to_owned),
        options,
        doc: None,
        is_async: true,
        args: args.iter().copied().map(arg).collect(),
        returns: TypeRef::Scalar {
            scalar: Scalar::Unit,
        },
        tables_read: Vec::new(),
        tables_written: Vec::new(),
        sql: Vec::new(),
        dispatches: Vec::new(),
        blocking_sleeps: Vec::new(),
        workflow: None,
        span: span(3),
    }
}

fn named(name: &str, handler: Handler) -> Handler {
    Handler {
        name: name.to_owned(),
        ..handler
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().copied().map(str::to_owned).collect()
}

fn query(path: &str, args: &[&str]) -> Handler {
    handler(Options::Query(QueryOptions::default()), path, args)
}

fn mutation(path: &str, args: &[&str]) -> Handler {
    handler(Options::Mutation(MutationOptions::default()), path, args)
}

fn job(path: &str, args: &[&str]) -> Handler {
    handler(Options::Job(JobOptions::default()), path, args)
}

fn cron(path: &str, schedule: Schedule) -> Handler {
    let options = CronOptions {
        schedule,
        timezone: None,
        catch_up: 0,
        timeout_ms: None,
    };
    handler(Options::Cron(options), path, &[])
}

fn workflow(path: &str, args: &[&str], steps: &[&str], waits: &[&str]) -> Handler {
    let mut handler = handler(Options::Workflow(WorkflowOptions::default()), path, args);
    handler.workflow = Some(WorkflowContract {
        name: handler.name.clone(),
        version: DEFAULT_WORKFLOW_VERSION.to_owned(),
        timeout_ms: None,
        input: None,
        output: handler.returns.clone(),
        steps: strings(steps),
        waits: waits
            .iter()
            .map(|key| WaitKey {
                key: (*key).to_owned(),
                ty: None,
            })
            .collect(),
        dynamic_keys: Vec::new(),
        signature: "0123456789abcdef0123456789abcdef".to_owned(),
        types_digest: "fedcba9876543210fedcba9876543210".to_owned(),
    });
    handler
}

fn webhook(path: &str, url: &str, args: &[&str]) -> Handler {
    let options = WebhookOptions {
        path: url.to_owned(),
        signature: None,
        idempotency: None,
    };
    handler(Options::Webhook(options), path, args)
}

fn daemon(path: &str) -> Handler {
    handler(Options::Daemon(DaemonOptions::default()), path, &[])
}

fn mcp_tool(path: &str, args: &[&str]) -> Handler {
    handler(Options::McpTool(McpToolOptions::default()), path, args)
}

/// An IR of these handlers in the order given.
fn ir(handlers: Vec<Handler>) -> Ir {
    Ir {
        ir_version: IR_VERSION,
        handlers: handlers.into_iter().map(Arc::new).collect(),
        types: Vec::new(),
    }
}

/// The glue for `ir`, after checking what holds for every IR: it parses, the real rustfmt
/// leaves it unchanged, emitting again gives the same bytes, and formatting chunk by chunk
/// gives what formatting the whole file at once gives.
fn glue(ir: &Ir) -> String {
    let out = emit(ir);
    if let Err(error) = syn::parse_file(&out) {
        panic!("the glue does not parse: {error}\n{out}");
    }
    assert_rustfmt_clean(&out);
    assert_eq!(emit(&ir.clone()), out, "emitting twice differs");
    assert_eq!(
        formatted_whole(ir),
        out,
        "chunks format differently from the whole file"
    );
    out
}

/// The glue formatted as one file by prettyplease, as `emit` would without chunks.
fn formatted_whole(ir: &Ir) -> String {
    let targets = targets(ir);
    let mut leaves: Vec<Vec<Leaf>> = Vec::new();
    let mut take = |chunk: Chunk| {
        leaves.push(chunk.leaves);
        chunk.tokens
    };
    let statements: Vec<TokenStream> = targets
        .iter()
        .enumerate()
        .map(|(i, target)| take(registration(i, target)))
        .collect();
    let items: Vec<TokenStream> = with_arg_structs(&targets)
        .into_iter()
        .map(|(i, target, name)| take(arg_struct(i, target, name)))
        .collect();
    let doc = |text: &str| format!(" {text}");
    let (file_doc, register_doc) = (doc(FILE_DOC), doc(REGISTER_DOC));
    let args_doc = ARGS_DOC.map(doc);
    let register = if statements.is_empty() {
        quote!(
            pub fn register(_registry: &mut forge::Registry) {}
        )
    } else {
        quote!(pub fn register(registry: &mut forge::Registry) { #(#statements)* })
    };
    let args = (!items.is_empty()).then(|| quote!(#(#[doc = #args_doc])* mod args { #(#items)* }));
    let file = unparse(quote! {
        #![doc = #file_doc]
        #[doc = #register_doc]
        #register
        #args
    });
    let filled = layout::fill(&file, |chunk, index| leaves.get(chunk)?.get(index));
    format!("{GENERATED_HEADER}\n{filled}")
}

/// Runs `rustfmt --check` on `source` with rustfmt's default configuration: the file sits
/// next to an empty `rustfmt.toml`, which rustfmt finds before any other.
fn assert_rustfmt_clean(source: &str) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("forge-glue-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    std::fs::write(dir.join("rustfmt.toml"), "").expect("write an empty rustfmt.toml");
    let file: PathBuf = dir.join("forge_generated.rs");
    std::fs::write(&file, source).expect("write the glue to a temporary file");
    let output = Command::new("rustfmt")
        .args(["--edition", "2021", "--check"])
        .arg(&file)
        .output()
        .expect("run rustfmt (it comes with the Rust toolchain)");
    // Keep the file when rustfmt disagrees, so the failure can be reproduced.
    if output.status.success() {
        std::fs::remove_dir_all(&dir).expect("remove the temporary directory");
    }
    assert!(
        output.status.success(),
        "rustfmt would reformat {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[test]
fn one_handler_of_every_kind() {
    let list_items = Handler {
        options: Options::Query(QueryOptions {
            cache_ms: Some(30_000),
            timeout_ms: Some(5_000),
            ..QueryOptions::default()
        }),
        tables_read: strings(&["items", "users"]),
        ..query("functions::items::list_items", &["limit", "cursor"])
    };
    let health = Handler {
        options: Options::Query(QueryOptions {
            public: true,
            unscoped: true,
            ..QueryOptions::default()
        }),
        ..query("health", &[])
    };
    let create_item = Handler {
        options: Options::Mutation(MutationOptions {
            transactional: false,
            public: true,
            timeout_ms: Some(2_000),
            rate_limit: Some(RateLimit {
                count: 20,
                per_ms: 60_000,
            }),
        }),
        tables_written: strings(&["items"]),
        ..mutation("functions::items::create_item", &["input"])
    };
    let send_email = Handler {
        options: Options::Job(JobOptions {
            retry: RetryOptions {
                max_attempts: 5,
                backoff: Backoff::Linear,
                base_ms: 500,
                max_ms: 60_000,
            },
            timeout_ms: Some(3_600_000),
            queue: "mail".to_owned(),
            priority: -2,
        }),
        ..job("jobs::send_email", &["input"])
    };
    let daily_digest = Handler {
        options: Options::Cron(CronOptions {
            schedule: Schedule::Cron("0 9 * * *".to_owned()),
            timezone: Some("Europe/Berlin".to_owned()),
            catch_up: 10,
            timeout_ms: Some(60_000),
        }),
        ..cron("cron::daily_digest", Schedule::Cron(String::new()))
    };
    let mut onboarding = workflow(
        "workflows::onboarding",
        &["input"],
        &["create_account", "send_welcome"],
        &["email_verified"],
    );
    onboarding.options = Options::Workflow(WorkflowOptions {
        name: Some("onboarding".to_owned()),
        version: "2026-03".to_owned(),
        active: true,
        timeout_ms: Some(5_184_000_000),
    });
    let stripe = Handler {
        options: Options::Webhook(WebhookOptions {
            path: "/hooks/stripe".to_owned(),
            signature: Some(WebhookSignature::HmacSha256 {
                header: "Stripe-Signature".to_owned(),
                secret_env: "STRIPE_WEBHOOK_SECRET".to_owned(),
            }),
            idempotency: Some(Idempotency::Header {
                name: "Idempotency-Key".to_owned(),
            }),
        }),
        ..webhook("hooks::stripe", "/hooks/stripe", &["event"])
    };
    let tickets_list = Handler {
        options: Options::McpTool(McpToolOptions {
            name: Some("tickets.list".to_owned()),
            title: Some("List tickets".to_owned()),
            read_only: true,
            rate_limit: Some(RateLimit {
                count: 300,
                per_ms: 3_600_000,
            }),
        }),
        doc: Some("Lists the caller's open tickets.\n\nNewest first.".to_owned()),
        ..named("tickets.list", mcp_tool("mcp::list_tickets", &["status"]))
    };
    let ir = ir(vec![
        list_items,
        health,
        create_item,
        send_email,
        daily_digest,
        onboarding,
        daemon("daemons::ticker"),
        stripe,
        tickets_list,
    ]);
    insta::assert_snapshot!(glue(&ir));
}

#[test]
fn defaults_and_the_other_variants_of_each_option() {
    let mut replicated = daemon("daemons::replicated");
    replicated.options = Options::Daemon(DaemonOptions {
        mode: DaemonMode::Replicated,
        restart_ms: 250,
    });
    let mut fixed = job("jobs::fixed", &[]);
    fixed.options = Options::Job(JobOptions {
        retry: RetryOptions {
            backoff: Backoff::Fixed,
            ..RetryOptions::default()
        },
        ..JobOptions::default()
    });
    let ir = ir(vec![
        mutation("functions::touch", &[]),
        job("jobs::exponential", &[]),
        fixed,
        cron("cron::every", Schedule::EveryMs(900_000)),
        cron("cron::daily", Schedule::DailyAt("09:00".to_owned())),
        workflow("workflows::no_input", &[], &[], &[]),
        daemon("daemons::leader"),
        replicated,
        webhook("hooks::ping", "/hooks/ping", &[]),
        mcp_tool("ping", &[]),
    ]);
    insta::assert_snapshot!(glue(&ir));
}

/// Names reach the IR with or without `r#`; either way they are written raw exactly when
/// they are keywords (`gen` included, a keyword from edition 2024 on).
#[test]
fn keywords_are_spelled_as_raw_identifiers() {
    let ir = ir(vec![
        query(
            "functions::type::match",
            &["r#type", "async", "gen", "limit"],
        ),
        named("loop", mutation("r#mod::r#loop", &["r#struct"])),
        job("functions::r#use::in", &["move"]),
    ]);
    let out = glue(&ir);
    assert!(out.contains("use crate::functions::r#type::r#match as handler;"));
    assert!(out.contains("use crate::functions::r#use::r#in as handler;"));
    assert!(out.contains("handler(&ctx, args.r#type, args.r#async, args.r#gen, args.limit).await"));
    assert!(out.contains("pub(super) r#type: A0,"));
    insta::assert_snapshot!(out);
}

#[test]
fn colliding_struct_names_are_numbered_in_ir_order() {
    let ir = ir(vec![
        query("a::list_items", &["limit"]),
        query("b::list_items", &["page"]),
        named("listItems", mutation("c::list_items_camel", &["x"])),
        named("list_items2", query("d::list_items2", &["y"])),
        named("list.items", mcp_tool("e::list_items_dotted", &["z"])),
    ]);
    insta::assert_snapshot!(glue(&ir));
}

#[test]
fn handlers_the_glue_cannot_call_become_compile_errors() {
    let mut no_contract = workflow("workflows::broken", &[], &[], &[]);
    no_contract.workflow = None;
    let ir = ir(vec![
        job("jobs::two_inputs", &["a", "b"]),
        webhook("hooks::two_inputs", "/hooks/x", &["a", "b"]),
        handler(
            Options::Cron(CronOptions {
                schedule: Schedule::EveryMs(1_000),
                timezone: None,
                catch_up: 0,
                timeout_ms: None,
            }),
            "cron::with_input",
            &["a"],
        ),
        Handler {
            args: vec![arg("a")],
            ..daemon("daemons::with_input")
        },
        no_contract,
        handler(Options::Model(ModelOptions::default()), "schema::User", &[]),
        query("functions::self::weird", &[]),
        query("functions::not-an-ident", &[]),
        query("functions::fine", &["_"]),
        // A placeholder-like name in a message is text, not a placeholder.
        named("r#__forge_0_0", query("functions::self::x", &[])),
        query("functions::still_registered", &["x"]),
    ]);
    insta::assert_snapshot!(glue(&ir));
}

#[test]
fn an_empty_ir_registers_nothing() {
    insta::assert_snapshot!(glue(&ir(Vec::new())));
}

/// Handlers whose lines land on both sides of every width limit of rustfmt's and
/// prettyplease's, in every shape the glue emits, so that a disagreement between the two
/// shows here rather than in a user's `cargo fmt --check`.
#[test]
fn long_lines_are_formatted_as_rustfmt_formats_them() {
    let mut handlers = Vec::new();
    for length in 1..=110 {
        let word = "x".repeat(length);
        let path = format!("functions::{word}::{word}");
        let arity = length % 13;
        let args: Vec<String> = (0..arity)
            .map(|i| format!("{}{i}", &word[..length.min(12)]))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Names of one to eight characters make rustfmt fill lists rather than break them.
        let short: Vec<String> = (0..length % 40).map(|i| "t".repeat(i % 9)).collect();
        let long: Vec<String> = (0..length % 7).map(|i| format!("{word}{i}")).collect();
        let tables = if length % 2 == 0 { short } else { long };
        let text = format!("{word} {}", "y".repeat(length % 17));

        let mut q = named(&word, query(&path, &args));
        q.tables_read = tables.clone();
        let mut m = mutation(&path, &args[..arity.min(3)]);
        m.tables_written = tables.clone();
        let mut t = mcp_tool(&path, &args);
        t.doc = Some(text.clone());
        t.options = Options::McpTool(McpToolOptions {
            name: None,
            title: Some(text.clone()),
            read_only: false,
            rate_limit: None,
        });
        let schedule = match length % 3 {
            0 => Schedule::Cron(text.clone()),
            1 => Schedule::DailyAt(text.clone()),
            _ => Schedule::EveryMs(10u64.pow((length % 20) as u32)),
        };
        let mut c = cron(&path, schedule);
        if let Options::Cron(options) = &mut c.options {
            options.timezone = Some(text.clone());
        }
        let mut h = webhook(&path, &format!("/{word}"), &args[..arity.min(1)]);
        h.options = Options::Webhook(WebhookOptions {
            path: format!("/{text}"),
            signature: Some(WebhookSignature::HmacSha256 {
                header: text.clone(),
                secret_env: word.clone(),
            }),
            idempotency: Some(Idempotency::Header { name: text.clone() }),
        });
        let mut j = job(&path, &args[..arity.min(1)]);
        j.options = Options::Job(JobOptions {
            queue: text.clone(),
            priority: i32::MIN,
            timeout_ms: Some(u64::MAX),
            ..JobOptions::default()
        });
        let keys: Vec<&str> = tables.iter().map(String::as_str).collect();
        let w = workflow(&path, &args[..arity.min(1)], &keys, &keys);
        handlers.extend([q, m, t, c, h, j, w, daemon(&path)].map(|h| named(&word, h)));
    }
    glue(&ir(handlers));
}

/// Argument structs whose names and parameter counts put their headers on both sides of
/// the line limit.
#[test]
fn long_argument_structs_are_formatted_as_rustfmt_formats_them() {
    let mut handlers = Vec::new();
    for length in 1..=90 {
        for arity in [1, 2, 5, 9, 12] {
            let name = format!("{}_{arity}", "n".repeat(length));
            let args: Vec<String> = (0..arity)
                .map(|i| format!("{}{i}", "a".repeat(length)))
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            handlers.push(named(&name, query(&format!("m::f{length}_{arity}"), &args)));
        }
    }
    glue(&ir(handlers));
}

#[test]
fn non_ascii_text_is_escaped_and_identifiers_are_kept() {
    let mut tool = mcp_tool("outils::café", &["entrée"]);
    tool.doc = Some("Liste les tickets — ouverts, « récents » ✓ 日本語".to_owned());
    let out = glue(&ir(vec![tool]));
    let escaped = r#""Liste les tickets \u{2014} ouverts, \u{ab} r\u{e9}cents \u{bb} \u{2713}"#;
    assert!(out.contains(escaped), "{out}");
    assert!(out.contains("use crate::outils::café as handler;"), "{out}");
    assert!(out.contains("use args::Café as Args;"), "{out}");
    assert!(out.contains("pub(super) entrée: A0,"), "{out}");
}

fn synthetic_ir(handlers: usize) -> Ir {
    let mut all = Vec::with_capacity(handlers);
    for i in 0..handlers {
        let module = format!("functions::area_{}", i % 50);
        let path = format!("{module}::handler_{i}");
        let handler = match i % 8 {
            0 => query(&path, &["limit", "cursor", "filter"]),
            1 => mutation(&path, &["input"]),
            2 => job(&path, &["input"]),
            3 => cron(&path, Schedule::EveryMs(60_000)),
            4 => workflow(&path, &["input"], &["one", "two"], &["event"]),
            5 => daemon(&path),
            6 => webhook(&path, "/hooks/x", &["event"]),
            _ => mcp_tool(&path, &["query"]),
        };
        all.push(Handler {
            tables_read: strings(&["items", "users"]),
            ..handler
        });
    }
    ir(all)
}

#[test]
fn a_large_ir_gives_valid_identical_output() {
    glue(&synthetic_ir(1_000));
}

/// `cargo test --release -p forge-codegen -- --ignored --nocapture emission_time`
#[test]
#[ignore = "a measurement, not a check: run it in release"]
fn emission_time() {
    let ir = synthetic_ir(5_000);
    let time = |what: &str, emit: &dyn Fn(&Ir) -> String| {
        let runs = 5;
        let start = std::time::Instant::now();
        let bytes: usize = (0..runs).map(|_| emit(&ir).len()).sum();
        let each = start.elapsed() / runs;
        println!(
            "5000 handlers, {what}: {each:?} per emission, {} bytes",
            bytes / 5
        );
    };
    time("chunks in parallel", &emit);
    time("the whole file at once", &formatted_whole);
}
