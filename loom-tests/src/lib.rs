//! loom-tests: the harness of the loom models of interpsafe's concurrency protocols.
//!
//! The models themselves live in `tests/models/`; they drive the real protocol code of
//! `interpsafe-protocol`, built with `--cfg interpsafe_loom` so that its sync facade is loom's.
//! This library is the part they share: [`check`] runs one model with its own [`Search`]
//! (exhaustive, or a preemption bound) and prints what loom explored; [`assert_model_fails`] runs
//! a model with a seeded bug and fails unless loom finds it; [`assert_model_aborts`] does the same
//! in a child process for a model whose failure aborts the process.
//!
//! Outside `--cfg interpsafe_loom` the crate is empty, so `cargo test --workspace` builds it
//! without loom. See `docs/loom.md` for the models, their searches and what loom reported.
#![cfg(interpsafe_loom)]

use std::any::Any;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use interpsafe_protocol::{Epoch, InterpreterId, InterpreterKey};

/// How deep loom searches one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// No preemption bound: every interleaving (up to loom's partial-order reduction). Used where
    /// it fits the stage's time budget; `LOOM_MAX_PREEMPTIONS` does not apply.
    Exhaustive,
    /// At most this many preemptions per interleaving: loom's bounded search. Lowered to
    /// `LOOM_MAX_PREEMPTIONS` when that is set lower (a quick run can ask for less; no model is
    /// searched deeper than it declares).
    Bounded(usize),
}

/// loom's usual depth, and the stage's `LOOM_MAX_PREEMPTIONS`: the bound of every bounded model
/// that fits the time budget at it.
pub const FULL_BOUND: Search = Search::Bounded(3);

impl Search {
    /// The search a model declared as `self` runs with, after `LOOM_MAX_PREEMPTIONS`.
    pub fn effective(self) -> Search {
        match self {
            Search::Exhaustive => Search::Exhaustive,
            Search::Bounded(bound) => {
                let env = std::env::var("LOOM_MAX_PREEMPTIONS")
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
                Search::Bounded(env.map_or(bound, |env| bound.min(env)))
            }
        }
    }

    /// loom's `Builder::preemption_bound`.
    pub fn preemption_bound(self) -> Option<usize> {
        match self {
            Search::Exhaustive => None,
            Search::Bounded(bound) => Some(bound),
        }
    }
}

impl std::fmt::Display for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Search::Exhaustive => f.write_str("preemption bound none (exhaustive)"),
            Search::Bounded(bound) => write!(f, "preemption bound {bound}"),
        }
    }
}

/// The environment variable that makes a test binary run as the child of
/// [`assert_model_aborts`]: it names the model the child runs.
pub const CHILD_ENV: &str = "INTERPSAFE_LOOM_CHILD";

/// The key of interpreter `id` in runtime epoch 0.
pub fn key(id: i64) -> InterpreterKey {
    InterpreterKey { epoch: Epoch(0), id: InterpreterId(id) }
}

/// What one model run explored.
#[derive(Debug, Clone, Copy)]
pub struct Explored {
    /// The search the model ran with.
    pub search: Search,
    /// How many interleavings (executions of the model body) loom ran.
    pub interleavings: usize,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// Writes one line to the process's stderr, bypassing the test harness's output capture, so the
/// per-model report shows in `cargo test` output (and in the xtask stage log) without
/// `--nocapture`.
pub fn report(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Runs `model` under loom with `search` (see [`Search::effective`]), counting the
/// interleavings, and catches the panic with which loom reports a failing one.
fn explore<F>(search: Search, model: F) -> (Explored, Result<(), Box<dyn Any + Send>>)
where
    F: Fn() + Sync + Send + 'static,
{
    let search = search.effective();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = search.preemption_bound();
    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            model();
        })
    }));
    let explored =
        Explored { search, interleavings: count.load(Ordering::Relaxed), elapsed: start.elapsed() };
    (explored, outcome)
}

/// Checks `model`, which must hold in every interleaving loom explores with `search`, and prints
/// `loom model NAME: preemption bound B, N interleavings, ok (T s)`.
pub fn check<F>(name: &str, search: Search, model: F) -> Explored
where
    F: Fn() + Sync + Send + 'static,
{
    let (explored, outcome) = explore(search, model);
    match outcome {
        Ok(()) => {
            report(&format!(
                "loom model {name}: {}, {} interleavings, ok ({:.2} s)",
                explored.search,
                explored.interleavings,
                explored.elapsed.as_secs_f64()
            ));
            explored
        }
        Err(payload) => {
            report(&format!(
                "loom model {name}: {}, FAILED in interleaving {}: {}",
                explored.search,
                explored.interleavings,
                one_line(&panic_message(&*payload))
            ));
            panic::resume_unwind(payload)
        }
    }
}

/// Runs `model`, built with the seeded bug `bug` switched on, and asserts that loom finds it: the
/// model must fail in some interleaving of `search`. Returns (and prints) what loom reported.
pub fn assert_model_fails<F>(name: &str, bug: &str, search: Search, model: F) -> String
where
    F: Fn() + Sync + Send + 'static,
{
    let (explored, outcome) = explore(search, model);
    match outcome {
        Ok(()) => {
            report(&format!(
                "loom model {name} with seeded bug {bug}: {}, {} interleavings, NOT FOUND",
                explored.search, explored.interleavings
            ));
            panic!(
                "loom did not find the seeded bug {bug} in model {name}: all {} interleavings \
                 ({}) passed, so this model cannot catch that bug",
                explored.interleavings, explored.search
            );
        }
        Err(payload) => {
            let message = one_line(&panic_message(&*payload));
            report(&format!(
                "loom model {name} with seeded bug {bug}: {}, found in interleaving {} \
                 ({:.2} s): {message}",
                explored.search,
                explored.interleavings,
                explored.elapsed.as_secs_f64()
            ));
            message
        }
    }
}

/// True when this process is the child that [`assert_model_aborts`] started for `name`.
pub fn is_child_for(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// For a seeded bug whose failure aborts the process (loom panics on a deadlock while the
/// protocol holds a lock guard; the guard's drop during unwinding panics again): re-runs this test
/// binary as a child process that runs only the test `child_test` with [`CHILD_ENV`] set to
/// `name`, and asserts that the child failed and its stderr contains `expect` (what loom reports,
/// e.g. `deadlock`). The child test must call [`check`] on the model only when
/// [`is_child_for`]`(name)` holds, and do nothing otherwise. Returns loom's report line.
pub fn assert_model_aborts(name: &str, bug: &str, child_test: &str, expect: &str) -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let start = Instant::now();
    let out = Command::new(exe)
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("run the test binary as a child");
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let found = stderr
        .lines()
        .chain(stdout.lines())
        .find(|l| l.contains(expect))
        .map(|l| l.trim().to_string());
    match (out.status.success(), found) {
        (false, Some(line)) => {
            report(&format!(
                "loom model {name} with seeded bug {bug}: found in a child process ({:.2} s, \
                 child {}): {line}",
                elapsed.as_secs_f64(),
                out.status
            ));
            line
        }
        (success, _) => {
            report(&format!("loom model {name} with seeded bug {bug}: NOT FOUND"));
            panic!(
                "loom did not find the seeded bug {bug} in model {name}: the child ({}) \
                 {}; expected a failure reporting {expect:?}\n--- child stdout ---\n{stdout}\n\
                 --- child stderr ---\n{stderr}",
                out.status,
                if success { "passed" } else { "failed without that report" },
            );
        }
    }
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "(non-string panic payload)".to_string()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
