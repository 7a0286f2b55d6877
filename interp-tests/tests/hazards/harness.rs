//! The parent's side: which cells run on this build, running each in a child process under a
//! timeout, classifying what happened, and writing the results file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use interpsafe::environment::current_environment;
use interpsafe::hazard::{Case, Cell, Expectations, Expected, Form, Hazard, Setting};
use interpsafe::interpreter::main_interpreter;
use interpsafe::results::{Environment, HazardVerdict, RecordData, ResultRecord, Verdict};
use interpsafe::{attach, for_each_strategy};

use interp_tests::child::run_test_in_child;

use super::world::PREFIX;

/// The environment variable that makes the test binary a child running one cell.
pub const CHILD_ENV: &str = "INTERPSAFE_HAZARD";

/// How long a child may run before it counts as hung and is killed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// The interpreter build the suite runs on.
#[derive(Debug, Clone)]
pub struct Build {
    /// Free-threaded (3.13t).
    pub free_threaded: bool,
    /// Built `--with-address-sanitizer`.
    pub asan: bool,
    /// Built with pymalloc (`WITH_PYMALLOC`); AddressSanitizer cannot see inside its arenas.
    pub pymalloc: bool,
    /// The environment every record carries.
    pub environment: Environment,
}

impl Build {
    /// Asks the running interpreter (in this process: nothing hazardous runs here).
    pub fn detect() -> Build {
        interpsafe::initialize();
        let (asan, pymalloc, debug) = attach(main_interpreter(), |at| {
            let asan = at
                .eval(c"'--with-address-sanitizer' in (__import__('sysconfig').get_config_var('CONFIG_ARGS') or '')")
                .unwrap();
            let pymalloc = at.eval(c"__import__('sysconfig').get_config_var('WITH_PYMALLOC')").unwrap();
            let debug = at.eval(c"hasattr(__import__('sys'), 'gettotalrefcount')").unwrap();
            (asan == "True", pymalloc == "1", debug == "True")
        })
        .unwrap();
        let mut environment = current_environment();
        let variant = if asan {
            Some("asan")
        } else if debug {
            Some("debug")
        } else {
            None
        };
        if std::env::var_os("INTERPSAFE_PYTHON_NAME").is_none() {
            if let Some(v) = variant {
                environment.interpreter.name = format!("{}-{v}", environment.interpreter.name);
            }
        }
        if environment.interpreter.variant.is_none() {
            environment.interpreter.variant = variant.map(str::to_string);
        }
        Build { free_threaded: cfg!(Py_GIL_DISABLED), asan, pymalloc, environment }
    }

    /// The build's name (`3.13t`, `3.13-asan`).
    pub fn name(&self) -> &str {
        &self.environment.interpreter.name
    }
}

/// The settings a case runs in on this build. Own- versus shared-GIL differs only on GIL builds
/// (on 3.13t the GIL setting of a subinterpreter changes nothing), so free-threaded builds run
/// one toolkit setting and one Python-created one. `None`: a compile-time cell.
pub fn settings(case: Case, free_threaded: bool) -> Vec<Option<Setting>> {
    let one = |s| vec![Some(s)];
    let two_toolkit = || {
        if free_threaded {
            vec![Some(Setting::OwnGil)]
        } else {
            vec![Some(Setting::OwnGil), Some(Setting::SharedGil)]
        }
    };
    match (case.hazard, case.form) {
        (Hazard::H11, _) => vec![None],
        (Hazard::H8, Some(Form::Payload)) if free_threaded => vec![None],
        (Hazard::H6, Some(Form::Attach))
        | (Hazard::H7, _)
        | (Hazard::H8, _)
        | (Hazard::H9, Some(Form::Threads)) => one(Setting::OwnGil),
        (Hazard::H14, Some(Form::Running)) | (Hazard::H16, _) => {
            vec![Some(Setting::OwnGil), Some(Setting::PythonIsolated)]
        }
        (Hazard::H1 | Hazard::H2 | Hazard::H3, None)
        | (Hazard::H13 | Hazard::H14 | Hazard::H15, _) => {
            let mut v = two_toolkit();
            v.push(Some(Setting::PythonIsolated));
            if !free_threaded {
                v.push(Some(Setting::PythonLegacy));
            }
            v
        }
        _ => two_toolkit(),
    }
}

/// One cell to run.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The strategy's name.
    pub strategy: &'static str,
    /// The cell.
    pub cell: Cell,
    /// What the strategy declares.
    pub expected: Expected,
    /// Run with `PYTHONMALLOC=malloc` (sanitizer builds that have pymalloc: AddressSanitizer
    /// cannot see inside its arenas, so those cells run under both allocators).
    pub malloc: bool,
}

impl Planned {
    /// The child's `INTERPSAFE_HAZARD` value: `H2.kept:tagged:own-gil`.
    pub fn spec(&self) -> String {
        let setting = self.cell.setting.map_or("-", Setting::label);
        format!("{}:{}:{setting}", self.cell.case.id(), self.strategy)
    }

    /// The record's isolation column: the setting, plus `+malloc` for the malloc runs.
    pub fn isolation(&self) -> Option<String> {
        self.cell
            .setting
            .map(|s| format!("{}{}", s.label(), if self.malloc { "+malloc" } else { "" }))
    }
}

fn plan_for<S: Expectations>(build: &Build, out: &mut Vec<Planned>) {
    for &case in Case::ALL {
        for setting in settings(case, build.free_threaded) {
            let cell = Cell { case, setting, free_threaded: build.free_threaded };
            let expected = S::expected(&cell);
            let runs: &[bool] = match expected {
                Expected::CompileError { .. } => &[false],
                _ if build.asan && build.pymalloc => &[false, true],
                _ => &[false],
            };
            for &malloc in runs {
                out.push(Planned { strategy: S::NAME, cell, expected, malloc });
            }
        }
    }
}

/// Every cell on this build, for every registered strategy.
pub fn plan(build: &Build) -> Vec<Planned> {
    let mut out = Vec::new();
    macro_rules! each {
        ($s:ty) => {
            plan_for::<$s>(build, &mut out);
        };
    }
    for_each_strategy!(each);
    out
}

/// What a child did.
#[derive(Debug)]
pub struct ChildRun {
    /// The lines it reported, as (kind, text).
    pub lines: Vec<(String, String)>,
    /// How it ended (`None`: killed after the timeout).
    pub status: Option<ExitStatus>,
    /// Its stderr.
    pub stderr: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// Runs the test binary again as a child for `spec`, under [`CHILD_TIMEOUT`].
pub fn run_child(spec: &str, malloc: bool) -> ChildRun {
    let mut envs = vec![(CHILD_ENV, spec)];
    if malloc {
        envs.push(("PYTHONMALLOC", "malloc"));
    }
    let out = run_test_in_child("hazard_child", &envs, CHILD_TIMEOUT, &AtomicBool::new(false));
    let lines = out
        .reported(PREFIX)
        .map(|l| match l.split_once(' ') {
            Some((k, t)) => (k.to_string(), t.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    ChildRun { lines, status: out.status, stderr: out.stderr, elapsed: out.elapsed }
}

/// The signal's name, for messages.
fn signal_name(sig: i32) -> String {
    match sig {
        4 => "SIGILL".into(),
        6 => "SIGABRT".into(),
        7 => "SIGBUS".into(),
        8 => "SIGFPE".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        other => format!("signal {other}"),
    }
}

/// What the child's stderr says went wrong: a sanitizer report, a CPython fatal error or failed
/// assertion, a glibc heap check, a Rust panic.
fn stderr_findings(stderr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lines: Vec<&str> = stderr.lines().map(str::trim).collect();
    if let Some(l) = lines.iter().find(|l| l.contains("ERROR: AddressSanitizer:")) {
        let kind = l
            .split("ERROR: AddressSanitizer:")
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        let summary = lines
            .iter()
            .find_map(|l| l.strip_prefix("SUMMARY: AddressSanitizer:"))
            .map(|s| s.rsplit(" in ").next().unwrap_or(s).trim().to_string())
            .unwrap_or_default();
        found.push(format!("asan: AddressSanitizer {kind} in {summary}"));
    }
    for l in &lines {
        if l.starts_with("Fatal Python error:")
            || (l.contains("Assertion") && l.contains("failed"))
            || l.starts_with("free():")
            || l.starts_with("double free")
            || l.starts_with("malloc():")
            || l.starts_with("munmap_chunk()")
            || l.starts_with("corrupted ")
            || l.contains("Debug memory block at address")
        {
            // Printable text only, and CPython source paths from their `src/` on.
            let l: String =
                l.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
            let l = l.rsplit_once("/src/").map_or(l.as_str(), |(_, rest)| rest);
            found.push(format!("stderr: {l}"));
            if found.len() >= 4 {
                break;
            }
        }
    }
    if let Some(i) = lines.iter().position(|l| l.contains("panicked at")) {
        let message = lines.get(i + 1).copied().unwrap_or("");
        found.push(format!("panic: {message}"));
    }
    found
}

/// Classifies a child run into a verdict: any misbehaviour seen (by the scenario, the probes,
/// the sanitizer, the debug build, or the OS ending the process) makes it undetected; else the
/// strategy's refusal makes it a runtime error; else the hazard did not arise.
pub fn classify(run: &ChildRun) -> Verdict {
    let mut refused = None;
    let mut anomalies = Vec::new();
    let mut notes = Vec::new();
    let mut safe = None;
    let mut phase = "scenario";
    for (kind, text) in &run.lines {
        match kind.as_str() {
            "refused" => refused = refused.or(Some(text.clone())),
            "anomaly" => anomalies.push(text.clone()),
            "note" => notes.push(text.clone()),
            "safe" => safe = Some(text.clone()),
            "phase" if text == "observed" => phase = "teardown",
            "phase" if text == "done" => phase = "done",
            _ => {}
        }
    }
    let findings = stderr_findings(&run.stderr);
    use std::os::unix::process::ExitStatusExt;
    match run.status {
        None => anomalies
            .push(format!("hang: killed after {}s during the {phase}", CHILD_TIMEOUT.as_secs())),
        Some(status) if status.success() && phase == "done" => {}
        Some(status) => {
            let how = match (status.code(), status.signal()) {
                (_, Some(sig)) => format!("killed by {}", signal_name(sig)),
                (Some(code), _) => format!("exit status {code}"),
                _ => "ended abnormally".to_string(),
            };
            anomalies.push(format!("crash: {how} during the {phase}"));
        }
    }
    anomalies.extend(findings);
    let with_notes = |s: String| {
        if notes.is_empty() {
            s
        } else {
            format!("{s} [{}]", notes.join("; "))
        }
    };
    if !anomalies.is_empty() {
        anomalies.dedup();
        Verdict::Undetected { how: with_notes(anomalies.join("; ")) }
    } else if let Some(message) = refused {
        Verdict::RuntimeError { message }
    } else if let Some(why) = safe {
        Verdict::NotApplicable { why: with_notes(why) }
    } else {
        Verdict::Undetected { how: with_notes("the child reported no outcome".to_string()) }
    }
}

/// The workspace root (interp-tests' parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// The observed verdict of a compile-time cell: the cited compile-fail case must exist (the
/// compile-fail stage shows that it fails to compile).
fn compile_time(case: &str) -> Verdict {
    if workspace_root().join(case).is_file() {
        Verdict::CompileError { case: case.to_string() }
    } else {
        Verdict::NotApplicable {
            why: format!("unverified: the compile-fail case {case} does not exist"),
        }
    }
}

/// One finished cell.
#[derive(Debug)]
pub struct Outcome {
    /// What ran.
    pub planned: Planned,
    /// What was seen.
    pub observed: Verdict,
    /// How long its child ran.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether the observation is what the strategy declared.
    pub fn matches(&self) -> bool {
        self.planned.expected.matches(&self.observed)
    }
}

/// Runs every planned cell, `workers` children at a time.
pub fn run_all(planned: Vec<Planned>, workers: usize) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(planned.len()));
    std::thread::scope(|sc| {
        for _ in 0..workers.max(1) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = planned.get(i) else { break };
                let (observed, elapsed) = match p.expected {
                    Expected::CompileError { case } => (compile_time(case), Duration::ZERO),
                    _ => {
                        let run = run_child(&p.spec(), p.malloc);
                        (classify(&run), run.elapsed)
                    }
                };
                done.lock().unwrap().push((i, Outcome { planned: p.clone(), observed, elapsed }));
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

/// The results file of `build`: `target/interpsafe/hazards/<build>.json`.
pub fn results_path(build: &Build) -> PathBuf {
    workspace_root().join("target/interpsafe/hazards").join(format!("{}.json", build.name()))
}

/// The records of `outcomes`, each with the build's environment.
pub fn records(build: &Build, outcomes: &[Outcome]) -> Vec<ResultRecord> {
    outcomes
        .iter()
        .map(|o| ResultRecord {
            environment: build.environment.clone(),
            data: RecordData::Hazard(HazardVerdict {
                hazard: o.planned.cell.case.id(),
                strategy: o.planned.strategy.to_string(),
                isolation: o.planned.isolation(),
                observed: o.observed.clone(),
                expected: o.planned.expected.verdict(),
                threat: Some(o.planned.cell.case.threat().label().to_string()),
            }),
        })
        .collect()
}

/// A short account of the run: counts per verdict kind and the slowest cells.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outcomes {
        let k = match o.observed {
            Verdict::CompileError { .. } => "compile-error",
            Verdict::RuntimeError { .. } => "runtime-error",
            Verdict::Undetected { .. } => "undetected",
            Verdict::NotApplicable { .. } => "not-applicable",
        };
        *kinds.entry(k).or_default() += 1;
    }
    let total: Duration = outcomes.iter().map(|o| o.elapsed).sum();
    let slowest = outcomes.iter().max_by_key(|o| o.elapsed);
    format!(
        "{} cells ({}); children ran {:.1}s in all{}",
        outcomes.len(),
        kinds.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "),
        total.as_secs_f64(),
        slowest.map_or(String::new(), |o| format!(
            ", slowest {} {:.1}s",
            o.planned.spec(),
            o.elapsed.as_secs_f64()
        ))
    )
}
