//! Save → outputs rewritten, measured from outside `forge generate --watch`.
//!
//! ```sh
//! python3 ../shared/bench/gen_corpus.py /tmp/corpus --files 1000
//! cargo build --release -p forge-cli --example watch_latency
//! target/release/examples/watch_latency /tmp/corpus [ITERATIONS]
//! ```
//!
//! Starts the watcher (the `forge` binary next to this example's directory) on the corpus,
//! then edits the doc comment of the first model in a different file each iteration and
//! polls the generated files' metadata every 100 µs until one is replaced. Prints the
//! distribution of that end-to-end time (which includes the watcher's 5 ms quiet period)
//! and of the regeneration time the watcher reports in its summary line. The corpus is
//! left as the last edit made it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

fn main() {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(
        args.next()
            .expect("usage: watch_latency CORPUS [ITERATIONS]"),
    );
    let iterations: usize = args.next().map_or(30, |n| n.parse().expect("a number"));
    let exe = std::env::current_exe().expect("current exe");
    let forge = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/examples")
        .join("forge");

    let mut child = Command::new(&forge)
        .args(["generate", "--watch", "--project"])
        .arg(&corpus)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", forge.display()));
    let (lines, received) = mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let ready = Instant::now();
    loop {
        let line = received
            .recv_timeout(Duration::from_secs(120))
            .expect("the watcher starts");
        println!("{line}");
        if line.contains("Ctrl-C stops") {
            break;
        }
    }
    println!(
        "started in {:.0} ms",
        ready.elapsed().as_secs_f64() * 1000.0
    );

    let outputs = outputs(&corpus);
    let mut end_to_end = Vec::new();
    let mut regeneration = Vec::new();
    for i in 0..iterations {
        let file = corpus.join(format!("src/functions/area_{:05}.rs", i % 1000));
        let text = std::fs::read_to_string(&file).expect("corpus file");
        let edited = edit(&text, i);
        let before: Vec<Option<SystemTime>> = outputs.iter().map(|p| modified(p)).collect();
        let saved = Instant::now();
        std::fs::write(&file, edited).expect("save");
        let deadline = saved + Duration::from_secs(10);
        loop {
            if outputs
                .iter()
                .zip(&before)
                .any(|(path, before)| modified(path) != *before)
            {
                break;
            }
            assert!(Instant::now() < deadline, "no output changed after 10 s");
            std::thread::sleep(Duration::from_micros(100));
        }
        end_to_end.push(saved.elapsed().as_secs_f64() * 1000.0);
        // The summary line follows the writes.
        let summary = received
            .recv_timeout(Duration::from_secs(10))
            .expect("a summary line");
        regeneration.push(summary_ms(&summary).unwrap_or(f64::NAN));
        // Let the watcher settle before the next save.
        std::thread::sleep(Duration::from_millis(150));
        while received.try_recv().is_ok() {}
    }
    let _ = nix_interrupt(child.id());
    let _ = child.wait();

    report(
        "save → output replaced (includes the 5 ms quiet period)",
        &mut end_to_end,
    );
    report("regeneration as the watcher reports it", &mut regeneration);
}

/// Changes the doc comment of the file's first model, which reaches the TypeScript types.
fn edit(text: &str, i: usize) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let doc = lines
        .iter_mut()
        .find(|line| line.starts_with("/// "))
        .expect("a doc comment");
    // The time makes every run's edits differ from the last run's, which a run may have
    // left in the file.
    let run = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    *doc = format!("/// Edited in iteration {i} of the watch benchmark run {run}.");
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn outputs(corpus: &Path) -> Vec<PathBuf> {
    let mut outputs = vec![
        corpus.join("src/forge_generated.rs"),
        corpus.join("forge.lock"),
    ];
    if let Ok(entries) = std::fs::read_dir(corpus.join("frontend/src/lib/forge")) {
        outputs.extend(entries.flatten().map(|e| e.path()));
    }
    outputs
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The `(12.3 ms)` at the end of a summary line.
fn summary_ms(line: &str) -> Option<f64> {
    let start = line.rfind('(')?;
    line[start + 1..].strip_suffix(" ms)")?.parse().ok()
}

fn report(what: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n={} min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        samples.len(),
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn nix_interrupt(pid: u32) -> nix::Result<()> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)
}
