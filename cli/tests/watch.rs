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
