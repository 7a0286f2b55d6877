//! The smoke check of a built peer: `peers/smoke.py` in a child process per probe (so a crash,
//! e.g. an abort when a second interpreter imports the module, is recorded, not fatal), with a
//! time limit.

use std::fs::{self, File};
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::build::sources_dir;
use super::venv::with_runtime_env;
use crate::error::Error;
use crate::hazards;
use crate::python::interpreter::Interpreter;
use crate::step::Step;

/// The probes, in the order they run and are reported (see `peers/smoke.py`).
pub const PROBES: &[&str] = &["main", "isolated", "isolated-first", "legacy"];

/// How long one probe may run before it is killed.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The module imported and every surface check passed.
    Ok,
    /// The import raised; the text is the exception.
    ImportError(String),
    /// It imported but a check failed; the text says which.
    CheckFailed(String),
    /// The process died or exited without a result: how, the last step it printed, and the
    /// first line of its error output.
    Crashed {
        /// `exit status 1` or `killed by signal 6 (SIGABRT)`.
        status: String,
        /// The last `step:` line, where it died.
        last_step: String,
        /// The first line on stderr (e.g. `free(): invalid pointer`).
        stderr: String,
    },
    /// It ran past the time limit and was killed; the last step it printed.
    TimedOut(String),
}

impl Outcome {
    /// Short text for the console.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Ok => "ok".to_string(),
            Outcome::ImportError(e) => format!("refused ({})", last_line(e)),
            Outcome::CheckFailed(e) => format!("CHECK FAILED ({})", last_line(e)),
            Outcome::Crashed { status, last_step, stderr } => {
                format!("CRASHED ({status}; {stderr}; at: {last_step})")
            }
            Outcome::TimedOut(step) => format!("TIMED OUT (at: {step})"),
        }
    }

    /// The outcome as a JSON object for `smoke.json`.
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Ok => json!({ "outcome": "ok" }),
            Outcome::ImportError(e) => json!({ "outcome": "import-error", "error": e }),
            Outcome::CheckFailed(e) => json!({ "outcome": "check-failed", "error": e }),
            Outcome::Crashed { status, last_step, stderr } => json!({
                "outcome": "crashed", "status": status, "last_step": last_step, "stderr": stderr
            }),
            Outcome::TimedOut(step) => json!({ "outcome": "timed-out", "last_step": step }),
        }
    }
}

/// The last non-empty line of `text` (a formatted exception's message).
fn last_line(text: &str) -> &str {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

/// Runs `probe` of `module` (built into `module_dir`) on `py`, in a child process. `scratch` is
/// a directory for the child's output files.
pub fn run(
    py: &Interpreter,
    module_dir: &Path,
    module: &str,
    probe: &str,
    scratch: &Path,
) -> Result<Outcome, Error> {
    fs::create_dir_all(scratch).map_err(|e| Error::io("create", scratch, &e))?;
    let out_path = scratch.join(format!("{module}-{probe}.out"));
    let err_path = scratch.join(format!("{module}-{probe}.err"));
    let open = |p: &Path| File::create(p).map_err(|e| Error::io("create", p, &e));
    let mut step = Step::new(&py.executable)
        .arg("-s")
        .arg(sources_dir().join("smoke.py"))
        .args([module, probe])
        .env("PYTHONPATH", module_dir)
        .env("PYTHONFAULTHANDLER", "1");
    if hazards::is_asan(py) {
        step = step.env("LD_PRELOAD", asan_preload()?);
    }
    let mut child = with_runtime_env(step.clone(), py)
        .command()
        .stdin(Stdio::null())
        .stdout(open(&out_path)?)
        .stderr(open(&err_path)?)
        .spawn()
        .map_err(|e| crate::stage::spawn_error(&step, &e))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) =
            child.try_wait().map_err(|e| Error::new(format!("waiting for `{step}`: {e}")))?
        {
            break Some(status);
        }
        if start.elapsed() > TIME_LIMIT {
            // Our own child, by its handle: nothing else is signalled.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    // Lossy: a crashing debug build prints raw bytes (e.g. a corrupted memory block's API id).
    let read = |p: &Path| fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned());
    let stdout = read(&out_path).unwrap_or_default();
    let stderr = read(&err_path).unwrap_or_default();
    Ok(match status {
        None => Outcome::TimedOut(last_step(&stdout)),
        Some(status) => judge(status.success(), &describe(status), &stdout, &stderr),
    })
}

/// What an AddressSanitizer interpreter must preload to run the C++ peers: the ASan runtime and
/// then libstdc++. Loaded later (with the first C++ module), libstdc++'s `__cxa_throw` escapes
/// ASan's interceptor, and the first C++ exception ends the process with `CHECK failed:
/// asan_interceptors.cpp ... real___cxa_throw`; the ASan runtime must come first in the list.
fn asan_preload() -> Result<String, Error> {
    Ok(format!("{} libstdc++.so.6", hazards::libasan()?.display()))
}

/// The outcome from what a probe printed and how it ended.
fn judge(success: bool, status: &str, stdout: &str, stderr: &str) -> Outcome {
    let result = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|r| serde_json::from_str::<Value>(r).ok());
    let field = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match result {
        Some(r) if success => match r.get("outcome").and_then(Value::as_str) {
            Some("ok") => Outcome::Ok,
            Some("import-error") => Outcome::ImportError(field(&r, "error")),
            _ => Outcome::CheckFailed(field(&r, "error")),
        },
        _ => Outcome::Crashed {
            status: status.to_string(),
            last_step: last_step(stdout),
            stderr: stderr
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no error output")
                .to_string(),
        },
    }
}

/// The last `step:` line a probe printed.
fn last_step(stdout: &str) -> String {
    stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("step: "))
        .unwrap_or("before the first step")
        .to_string()
}

/// `exit status 1` or `killed by signal 6 (SIGABRT)`.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => {
            let name = match sig {
                6 => " (SIGABRT)",
                11 => " (SIGSEGV)",
                7 => " (SIGBUS)",
                9 => " (SIGKILL)",
                _ => "",
            };
            format!("killed by signal {sig}{name}")
        }
        (None, None) => "unknown exit status".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_crashes_and_refusals_are_told_apart() {
        let ok = "step: import m in main\nRESULT {\"outcome\": \"ok\"}\nstep: exit\n";
        assert_eq!(judge(true, "exit status 0", ok, ""), Outcome::Ok);
        let refused = "RESULT {\"outcome\": \"import-error\", \"error\": \"ImportError: no\"}\n";
        assert_eq!(judge(true, "", refused, ""), Outcome::ImportError("ImportError: no".into()));
        let died = "step: import m in main\nstep: import m in interpreter 1\n";
        let crashed =
            judge(false, "killed by signal 6 (SIGABRT)", died, "\nfree(): invalid pointer\nFatal");
        assert_eq!(
            crashed,
            Outcome::Crashed {
                status: "killed by signal 6 (SIGABRT)".into(),
                last_step: "import m in interpreter 1".into(),
                stderr: "free(): invalid pointer".into(),
            }
        );
        assert!(crashed.summary().starts_with("CRASHED"));
        // A result followed by a crash at exit is a crash.
        assert!(matches!(judge(false, "exit status 1", ok, "boom"), Outcome::Crashed { .. }));
    }
}
