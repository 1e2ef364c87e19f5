//! A long-running `forge` subprocess (`generate --watch`, `dev`) whose stderr the test reads
//! while it runs, and polling with deadlines.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub struct Running {
    child: Child,
    /// stdout and stderr, merged line by line as they arrive.
    output: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `command` with its output captured (stdin closed, no colour).
    pub fn start(mut command: Command) -> Running {
        command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("forge starts");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect(stdout, output.clone());
        collect(stderr, output.clone());
        Running { child, output }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }

    /// How many times `needle` was printed so far.
    pub fn count(&self, needle: &str) -> usize {
        self.output().matches(needle).count()
    }

    /// Polls `done` until it holds; panics with the output after `timeout`, or when the
    /// process exits first.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Running) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The last lines may still be in the pipes.
                std::thread::sleep(Duration::from_millis(200));
                if done(self) {
                    return;
                }
                panic!("forge exited ({status}) before {what}:\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `needle` was printed.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) {
        self.wait_until(&format!("{needle:?} in the output"), timeout, |r| {
            r.output().contains(needle)
        });
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Ctrl-C, and the exit status once it stopped (panics after `timeout`).
    pub fn interrupt(&mut self, timeout: Duration) -> ExitStatus {
        let _ = kill(pid(self.child.id()), Signal::SIGINT);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for forge") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "forge did not stop within {timeout:?} of SIGINT:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    /// A failed test must not leave forge (and whatever it started) running: Ctrl-C first,
    /// so it stops its children, then SIGKILL.
    fn drop(&mut self) {
        if self.is_running() {
            let _ = kill(pid(self.child.id()), Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(stream: impl std::io::Read + Send + 'static, output: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            output
                .lock()
                .expect("output lock")
                .push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    });
}

fn pid(id: u32) -> Pid {
    Pid::from_raw(i32::try_from(id).expect("pid fits in i32"))
}

/// Whether process `id` still runs (a zombie, dead but not reaped, does not).
pub fn alive(id: u32) -> bool {
    if kill(pid(id), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{id}/stat")) {
        // The state follows the command name in parentheses, which may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `done` every 50 ms until it holds or `timeout` passes; whether it held.
pub fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The file's content, or empty when it cannot be read (yet).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
