//! Running this test binary again as a child process, for experiments that may crash it.
//!
//! The hazard catalogue and the adversarial search both run their cases in children, so that an
//! abort, a sanitizer report or a hang is recorded instead of taking the harness down. A child is
//! the same test binary, asked to run one test (the one that reads its work from an environment
//! variable), with stdout and stderr captured and a time limit.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a child printed, and how it ended.
#[derive(Debug)]
pub struct ChildOutput {
    /// Its exit status (`None`: killed after the time limit, or cancelled).
    pub status: Option<ExitStatus>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl ChildOutput {
    /// The stdout lines that carry `prefix`, with everything up to and including it cut off
    /// (the test harness may print its own text before a line's start).
    pub fn reported<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.stdout.lines().filter_map(move |l| l.find(prefix).map(|i| &l[i + prefix.len()..]))
    }
}

/// Runs the test `test` of this test binary in a child, one test thread, with `envs` set and
/// backtraces off; kills the child (by its own handle) after `timeout` or once `cancel` turns
/// true.
pub fn run_test_in_child(
    test: &str,
    envs: &[(&str, &str)],
    timeout: Duration,
    cancel: &AtomicBool,
) -> ChildOutput {
    let start = Instant::now();
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn a child of the test binary");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let (status, stdout, stderr) = std::thread::scope(|sc| {
        let o = sc.spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            s
        });
        let e = sc.spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            s
        });
        let status = loop {
            match child.try_wait().expect("wait for the child") {
                Some(status) => break Some(status),
                None if start.elapsed() > timeout || cancel.load(Ordering::Relaxed) => {
                    // The child this test started, by its own handle.
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        (status, o.join().expect("stdout reader"), e.join().expect("stderr reader"))
    });
    ChildOutput {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}
