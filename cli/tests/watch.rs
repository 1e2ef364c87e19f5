//! `forge generate --watch` as a subprocess on a scratch copy of a fixture: saves
//! regenerate the glue and the client, a half-typed file is reported without stopping the
//! watcher, the next good save recovers, and Ctrl-C ends it cleanly.

mod running;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use running::{read, Running};

/// Generous: CI machines are shared, and a regeneration is milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);

fn probe(name: &str) -> String {
    format!(
        "\n/// Added while watching.\n#[forge::query(public)]\npub async fn {name}(ctx: &QueryContext) -> Result<String> {{\n    let _ = ctx;\n    Ok(String::new())\n}}\n"
    )
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("generated file exists")
}

fn start(project: &Path) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forge"));
    command
        .args(["generate", "--watch", "--project"])
        .arg(project);
    let mut watch = Running::start(command);
    watch.wait_for_output("Ctrl-C stops", TIMEOUT);
    watch
}

#[test]
fn saves_regenerate_and_a_syntax_error_does_not_stop_the_watcher() {
    let dir = support::copy_fixture("kitchen_sink");
    let project = dir.path();
    let glue = project.join("src/forge_generated.rs");
    let api = project.join("frontend/src/lib/forge/api.ts");
    let client = project.join("frontend/src/lib/forge/client.ts");
    let handler = project.join("src/functions/misc.rs");
    let original = read(&handler);

    let mut watch = start(project);
    assert!(
        watch.output().contains("6 of 6 files written"),
        "{}",
        watch.output()
    );
    // Never rewritten below: no edit changes it, and only changed outputs are written.
    let client_written = modified(&client);

    // A new handler reaches the glue and the TypeScript client.
    std::fs::write(&handler, format!("{original}{}", probe("watch_probe_one"))).expect("save");
    watch.wait_until(
        "the new handler in the glue and the client",
        TIMEOUT,
        |_| read(&glue).contains("watch_probe_one") && read(&api).contains("watch_probe_one"),
    );
    watch.wait_for_output("src/functions/misc.rs changed", TIMEOUT);
    // Writing the outputs must not trigger another regeneration (forge ignores its own
    // writes, and the reads of a regeneration are not changes).
    let regenerations = watch.count("forge generate:");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        watch.count("forge generate:"),
        regenerations,
        "{}",
        watch.output()
    );

    // Half-typed: reported as FG001 with a code frame; the watcher keeps running.
    std::fs::write(
        &handler,
        format!("{original}\npub async fn half_typed(ctx: &Qu"),
    )
    .expect("save");
    watch.wait_for_output("error[FG001]", TIMEOUT);
    watch.wait_for_output("src/functions/misc.rs:", TIMEOUT);
    assert!(watch.is_running(), "{}", watch.output());

    // The next good save recovers.
    std::fs::write(&handler, format!("{original}{}", probe("watch_probe_two"))).expect("save");
    watch.wait_until("recovery after the syntax error", TIMEOUT, |_| {
        let glue = read(&glue);
        glue.contains("watch_probe_two")
            && !glue.contains("watch_probe_one")
            && read(&api).contains("watch_probe_two")
    });

    // A new file is picked up; deleting it drops its handlers.
    let extra = project.join("src/functions/extra.rs");
    std::fs::write(
        &extra,
        format!("use forge::prelude::*;\n{}", probe("watch_probe_extra")),
    )
    .expect("new file");
    watch.wait_until("the new file's handler", TIMEOUT, |_| {
        read(&glue).contains("watch_probe_extra")
    });
    std::fs::remove_file(&extra).expect("delete");
    watch.wait_until("the deleted file's handler gone", TIMEOUT, |_| {
        !read(&glue).contains("watch_probe_extra")
    });

    assert_eq!(modified(&client), client_written, "client.ts was rewritten");

    // An output outside the watched places, edited by hand, is restored by the next
    // regeneration: forge does not take its record of what it wrote for the file's content
    // once the file changed.
    let client_text = read(&client);
    std::fs::write(&client, "// edited by hand\n").expect("edit client.ts");
    std::fs::write(
        &handler,
        format!("{original}{}", probe("watch_probe_three")),
    )
    .expect("save");
    watch.wait_until("client.ts restored", TIMEOUT, |_| {
        read(&glue).contains("watch_probe_three") && read(&client) == client_text
    });

    let status = watch.interrupt(TIMEOUT);
    assert!(status.success(), "Ctrl-C: {status}\n{}", watch.output());

    // What the watcher left is exactly what `forge generate` writes.
    let check = support::forge(project, &["generate", "--check"]);
    assert!(
        check.status.success(),
        "{}{}",
        support::stdout(&check),
        support::stderr(&check)
    );
}

#[test]
fn a_migration_or_forge_toml_change_regenerates_and_a_touch_does_not() {
    let dir = support::copy_fixture("kitchen_sink");
    let project = dir.path();
    let mut watch = start(project);
    let regenerations = watch.count("forge generate:");

    // Saving a file without changing it (or reading it) regenerates nothing.
    let handler = project.join("src/functions/misc.rs");
    std::fs::write(&handler, read(&handler)).expect("save unchanged");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        watch.count("forge generate:"),
        regenerations,
        "{}",
        watch.output()
    );

    // A new migration is an input of forge.lock.
    std::fs::write(
        project.join("migrations/0002_more.sql"),
        "CREATE TABLE more (id bigint);\n",
    )
    .expect("new migration");
    watch.wait_until("forge.lock to record the migration", TIMEOUT, |_| {
        read(&project.join("forge.lock")).contains("0002_more.sql")
    });

    // forge.toml moves the TypeScript client.
    let config = project.join("forge.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[generate]\ntypescript_out = \"web/api\"\n",
            read(&config)
        ),
    )
    .expect("edit forge.toml");
    watch.wait_until("the client in its new place", TIMEOUT, |_| {
        project.join("web/api/api.ts").is_file()
    });
    let status = watch.interrupt(TIMEOUT);
    assert!(status.success(), "Ctrl-C: {status}\n{}", watch.output());
}

/// Every file `forge generate` writes in a project with all four targets, with its bytes.
fn outputs(project: &Path) -> Vec<(String, String)> {
    let mut files = vec![
        "src/forge_generated.rs".to_owned(),
        "forge.lock".to_owned(),
        "schema/forge.schema.json".to_owned(),
        "frontend/src/forge/mod.rs".to_owned(),
    ];
    files.extend(
        ["api.ts", "client.ts", "index.ts", "types.ts"]
            .map(|f| format!("frontend/src/lib/forge/{f}")),
    );
    files
        .into_iter()
        .map(|rel| {
            let text = read(&project.join(&rel));
            (rel, text)
        })
        .collect()
}

#[test]
fn after_edits_in_watch_mode_the_outputs_are_those_of_a_cold_generate() {
    let dir = support::copy_fixture("kitchen_sink");
    let project = dir.path();
    let config = project.join("forge.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[generate]\ntargets = [\"rust\", \"typescript\", \"dioxus\", \"jsonschema\"]\n",
            read(&config)
        ),
    )
    .expect("edit forge.toml");
    let misc = project.join("src/functions/misc.rs");
    let original = read(&misc);
    let extra = project.join("src/functions/extra.rs");
    let mut watch = start(project);

    // Each edit reaches a different part of what the watcher keeps between regenerations:
    // a doc comment (types only), an argument (the handler's glue), a field of a handler's
    // input type, a handler that takes another's argument-struct name, a file deleted, a
    // half-typed file.
    let misc_edits = [
        original.replace(
            "A ticket as MCP tools see it.",
            "A ticket, as tools see it.",
        ),
        original.replace(
            "status: Option<String>) -> Result<Vec<Ticket>>",
            "status: Option<String>, limit: i32) -> Result<Vec<Ticket>>",
        ),
        original.replace(
            "    pub kind: String,\n}",
            "    pub kind: String,\n    pub livemode: bool,\n}",
        ),
    ];
    let mut edits: Vec<(&Path, Option<String>)> = misc_edits
        .into_iter()
        .map(|text| (misc.as_path(), Some(text)))
        .collect();
    edits.push((
        &extra,
        Some(
            "use forge::prelude::*;\n\n/// Sorts before `tickets.list`, so it takes the name `TicketsList`.\n#[forge::mcp_tool(name = \"tickets-list\")]\npub async fn other_tickets(ctx: &McpToolContext, page: i32) -> Result<i32> {\n    let _ = ctx;\n    Ok(page)\n}\n"
                .to_owned(),
        ),
    ));
    edits.push((
        &misc,
        Some(format!("{original}\npub async fn half_typed(ctx: &Qu")),
    ));
    edits.push((
        &misc,
        Some(original.replace("List the caller's open tickets.", "Lists tickets.")),
    ));
    edits.push((&extra, None));
    for (path, text) in edits {
        let before = watch.count("forge generate:");
        match text {
            Some(text) => std::fs::write(path, text).expect("save"),
            None => std::fs::remove_file(path).expect("delete"),
        }
        watch.wait_until("the regeneration", TIMEOUT, |watch| {
            watch.count("forge generate:") > before
        });
    }
    let status = watch.interrupt(TIMEOUT);
    assert!(status.success(), "Ctrl-C: {status}\n{}", watch.output());
    let watched = outputs(project);
    assert!(
        watched[0].1.contains("\"Lists tickets.\"") && !watched[0].1.contains("other_tickets"),
        "{}",
        watched[0].1
    );

    // A cold run: no outputs, no caches.
    for (rel, _) in &watched {
        std::fs::remove_file(project.join(rel)).expect("remove output");
    }
    let _ = std::fs::remove_dir_all(project.join("target"));
    let cold = support::forge(project, &["generate"]);
    assert!(cold.status.success(), "{}", support::stderr(&cold));
    for ((rel, watched), (_, cold)) in watched.iter().zip(outputs(project)) {
        assert!(
            *watched == cold,
            "{rel} differs from a cold `forge generate`"
        );
    }
}
