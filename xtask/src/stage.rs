//! Running a stage: one named, timed unit of work reported on one line.
//!
//! Two flavours share the timing and reporting:
//! - [`logged`]: the work's commands write to a log file and the console shows one progress
//!   line (`[3.13t] build ... done in 65.2s`); on failure the log's last lines are shown.
//! - [`run_streamed`]: one command whose output streams to the console (cargo test runs),
//!   summarised as `stage <name> [<python>]: ok in 12.3s`, collected for [`print_summary`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::clock;
use crate::error::Error;
use crate::step::Step;

/// How many lines of a failed stage's log are printed.
pub const TAIL_LINES: usize = 30;

/// The log file of a running [`logged`] stage; commands run through it write into it.
#[derive(Debug)]
pub struct StageLog {
    path: PathBuf,
    file: File,
}

/// The result of a command whose output was captured (see [`StageLog::capture`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Whether the command exited with status 0.
    pub success: bool,
    /// The exit status as text, for messages (`exit status: 100`).
    pub status: String,
    /// Everything the command wrote to stdout.
    pub stdout: String,
    /// Everything the command wrote to stderr.
    pub stderr: String,
}

impl StageLog {
    /// Creates (or truncates) the log at `path`, creating its directory.
    pub fn create(path: &Path) -> Result<StageLog, Error> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io("create log directory", dir, &e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io("create log file", path, &e))?;
        Ok(StageLog { path: path.to_path_buf(), file })
    }

    /// Writes a line of xtask's own commentary into the log.
    ///
    /// Log writes are best effort: a full disk shows up in the commands' own failures.
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.file, "# {text}");
    }

    /// Runs `step` with stdout and stderr going into the log; a non-zero exit is an error.
    pub fn run(&mut self, step: &Step) -> Result<(), Error> {
        let _ = writeln!(self.file, "$ {step}");
        let _ = self.file.flush();
        let out =
            self.file.try_clone().map_err(|e| Error::io("reopen log file", &self.path, &e))?;
        let err =
            self.file.try_clone().map_err(|e| Error::io("reopen log file", &self.path, &e))?;
        let status = step
            .command()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| spawn_error(step, &e))?;
        let _ = writeln!(self.file, "# {}", describe(status));
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(format!("`{step}` failed ({})", describe(status))))
        }
    }

    /// Runs `step`, captures its output (also copied into the log) and returns it; a non-zero
    /// exit is returned in [`Captured::success`], not as an error.
    pub fn capture(&mut self, step: &Step) -> Result<Captured, Error> {
        let _ = writeln!(self.file, "$ {step}");
        let output =
            step.command().stdin(Stdio::null()).output().map_err(|e| spawn_error(step, &e))?;
        let _ = self.file.write_all(&output.stdout);
        let _ = self.file.write_all(&output.stderr);
        let _ = writeln!(self.file, "# {}", describe(output.status));
        Ok(Captured {
            success: output.status.success(),
            status: describe(output.status),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

impl StageLog {
    /// Like [`StageLog::capture`], but every occurrence of `secret` (e.g. a mirror URI that must
    /// not be written down) is replaced by `<mirror>`, in the log and in what is returned.
    pub fn capture_redacted(&mut self, step: &Step, secret: &str) -> Result<Captured, Error> {
        let hide = |text: &str| {
            if secret.is_empty() {
                text.to_string()
            } else {
                text.replace(secret, "<mirror>")
            }
        };
        let shown = hide(&step.to_string());
        let _ = writeln!(self.file, "$ {shown}");
        let output = step
            .command()
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::new(hide(&spawn_error(step, &e).to_string())))?;
        let captured = Captured {
            success: output.status.success(),
            status: describe(output.status),
            stdout: hide(&String::from_utf8_lossy(&output.stdout)),
            stderr: hide(&String::from_utf8_lossy(&output.stderr)),
        };
        let _ = self.file.write_all(captured.stdout.as_bytes());
        let _ = self.file.write_all(captured.stderr.as_bytes());
        let _ = writeln!(self.file, "# {}", captured.status);
        Ok(captured)
    }
}

/// The error for a command that could not even be started.
pub fn spawn_error(step: &Step, err: &io::Error) -> Error {
    let hint = if err.kind() == io::ErrorKind::NotFound {
        format!("; is `{}` installed and on PATH?", step.program())
    } else {
        String::new()
    };
    Error::new(format!("could not start `{step}`: {err}{hint}"))
}

/// `exit status: 2` or `killed by signal 9`, for messages.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "unknown exit status".to_string(),
    }
}

/// Runs `work` as the stage `stage` of job `label`, logging to `log_path`.
///
/// Prints `[label] stage ... ` then `done in 1.2s`, or `FAILED after 1.2s` followed by the last
/// [`TAIL_LINES`] lines of the log (unless the error [is self-explanatory]). The error returned
/// names the stage and the log.
///
/// [is self-explanatory]: Error::is_self_explanatory
pub fn logged<T>(
    label: &str,
    stage: &str,
    log_path: &Path,
    work: impl FnOnce(&mut StageLog) -> Result<T, Error>,
) -> Result<T, Error> {
    print!("[{label}] {stage} ... ");
    let _ = io::stdout().flush();
    let start = Instant::now();
    let result = StageLog::create(log_path).and_then(|mut log| work(&mut log));
    let elapsed = clock::secs(start.elapsed());
    match result {
        Ok(value) => {
            println!("done in {elapsed}");
            Ok(value)
        }
        Err(err) => {
            println!("FAILED after {elapsed}");
            if !err.is_self_explanatory() {
                print_tail(log_path);
            }
            Err(err.reword(|msg| {
                format!("[{label}] {stage} failed: {msg}\n  full log: {}", log_path.display())
            }))
        }
    }
}

/// Prints the last [`TAIL_LINES`] lines of the log at `path` (reading at most its last 64 KiB).
pub fn print_tail(path: &Path) {
    let Some(text) = read_tail(path, 64 * 1024) else {
        println!("    (log {} is unreadable)", path.display());
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    println!("    --- last {} lines of {} ---", lines.len() - start, path.display());
    for line in &lines[start..] {
        println!("    | {line}");
    }
    println!("    --- end of log ---");
}

/// The last `max_bytes` of the file at `path`, lossily decoded.
fn read_tail(path: &Path, max_bytes: u64) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max_bytes))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// A stage whose single command streams its output to the console.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Short stage name, e.g. `test`, `loom`.
    pub name: String,
    /// The interpreter the stage runs against, if any (e.g. `3.13t`).
    pub python: Option<String>,
    /// The command to run.
    pub step: Step,
}

/// How a stage ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command exited with status 0.
    Ok,
    /// The stage failed; the text says how.
    Failed(String),
}

/// The record of one finished stage, for the summary table.
#[derive(Debug, Clone)]
pub struct StageResult {
    /// The stage name.
    pub name: String,
    /// The interpreter it ran against, if any.
    pub python: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

impl StageResult {
    /// A stage that failed before its command could run (e.g. its interpreter did not install).
    pub fn not_run(name: &str, python: Option<&str>, reason: String, elapsed: Duration) -> Self {
        StageResult {
            name: name.to_string(),
            python: python.map(str::to_string),
            outcome: Outcome::Failed(reason),
            elapsed,
        }
    }

    /// Whether the stage succeeded.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

impl fmt::Display for StageResult {
    /// `stage <name> [<python>]: ok|FAILED in <secs>s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stage {}", self.name)?;
        if let Some(py) = &self.python {
            write!(f, " [{py}]")?;
        }
        let verdict = if self.ok() { "ok" } else { "FAILED" };
        write!(f, ": {verdict} in {}", clock::secs(self.elapsed))
    }
}

/// Runs `stage` with inherited stdio, then prints and returns its one-line result.
pub fn run_streamed(stage: &Stage) -> StageResult {
    match &stage.python {
        Some(py) => println!("==> stage {} [{py}]: {}", stage.name, stage.step),
        None => println!("==> stage {}: {}", stage.name, stage.step),
    }
    let start = Instant::now();
    let outcome = match run_keeping_tail(&stage.step) {
        Ok((status, _)) if status.success() => Outcome::Ok,
        Ok((status, tail)) => Outcome::Failed(format!("{}\n{tail}", describe(status))),
        Err(e) => Outcome::Failed(spawn_error(&stage.step, &e).to_string()),
    };
    let result = StageResult {
        name: stage.name.clone(),
        python: stage.python.clone(),
        outcome,
        elapsed: start.elapsed(),
    };
    println!("{result}");
    result
}

/// Runs `step` with its stdout and stderr, merged in the order written (one channel, as `2>&1`),
/// passed through to our stdout, and returns its exit status with the last [`TAIL_LINES`] lines,
/// so a failure's cause can be repeated under the summary, where a log cut to its end shows it.
fn run_keeping_tail(step: &Step) -> io::Result<(ExitStatus, String)> {
    use std::collections::VecDeque;
    use std::io::BufRead;

    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    // A socket pair rather than a pipe: `std::io::pipe` is newer than the workspace's MSRV.
    let (reader, writer) = UnixStream::pair()?;
    let mut command = step.command();
    let out = OwnedFd::from(writer.try_clone()?);
    command.stdin(Stdio::null()).stdout(out).stderr(OwnedFd::from(writer));
    let mut child = command.spawn()?;
    // Our copies of the write end must go, or the reader never sees the end of the output.
    drop(command);
    let mut reader = io::BufReader::new(reader);
    let mut tail = VecDeque::with_capacity(TAIL_LINES + 1);
    let mut line = Vec::new();
    // Best effort: a console that went away must not stop the child's output from draining.
    while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        let _ = io::stdout().write_all(&line);
        tail.push_back(String::from_utf8_lossy(&line).trim_end().to_string());
        if tail.len() > TAIL_LINES {
            tail.pop_front();
        }
        line.clear();
    }
    let status = child.wait()?;
    Ok((status, Vec::from(tail).join("\n")))
}

/// Prints the summary table of `results` and the total elapsed time.
pub fn print_summary(results: &[StageResult], total: Duration) {
    let name_w = results.iter().map(|r| r.name.len()).max().unwrap_or(0).max(5);
    let py_w =
        results.iter().map(|r| r.python.as_deref().map_or(1, str::len)).max().unwrap_or(0).max(6);
    println!();
    println!("summary:");
    println!("  {:name_w$}  {:py_w$}  {:6}  {:>8}  detail", "stage", "python", "result", "time");
    for r in results {
        let (verdict, detail) = match &r.outcome {
            Outcome::Ok => ("ok", ""),
            Outcome::Failed(why) => ("FAILED", why.as_str()),
        };
        let detail = detail.lines().next().unwrap_or("");
        let row = format!(
            "  {:name_w$}  {:py_w$}  {:6}  {:>8}  {detail}",
            r.name,
            r.python.as_deref().unwrap_or("-"),
            verdict,
            clock::secs(r.elapsed),
        );
        println!("{}", row.trim_end());
    }
    let failed = results.iter().filter(|r| !r.ok()).count();
    // What each failed stage last printed, repeated here: a run's log is often read from its end.
    for r in results {
        if let Outcome::Failed(why) = &r.outcome {
            let mut lines = why.lines().skip(1).peekable();
            if lines.peek().is_some() {
                println!();
                println!("last lines of {}:", r.to_string().trim_start_matches("stage "));
                lines.for_each(|l| println!("  | {l}"));
            }
        }
    }
    println!("total {}", clock::secs(total));
    // The closing line in the plain `N passed, N failed` form that CI runners read; it counts
    // stages (each stage prints its own test counts above).
    println!("stages: {} passed, {failed} failed", results.len() - failed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_line_has_the_documented_shape() {
        let r = StageResult {
            name: "test".into(),
            python: Some("3.13t".into()),
            outcome: Outcome::Ok,
            elapsed: Duration::from_millis(12_340),
        };
        assert_eq!(r.to_string(), "stage test [3.13t]: ok in 12.3s");
        let r = StageResult::not_run("loom", None, "boom".into(), Duration::ZERO);
        assert_eq!(r.to_string(), "stage loom: FAILED in 0.0s");
    }

    #[test]
    fn a_failed_streamed_stage_keeps_the_last_lines_of_both_streams() {
        let step = Step::new("sh").args([
            "-c",
            "i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo line$i; done; echo oops >&2; exit 3",
        ]);
        let (status, tail) = run_keeping_tail(&step).unwrap();
        assert_eq!(status.code(), Some(3));
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES, "{tail}");
        assert!(lines.contains(&"line50") && lines.contains(&"oops"), "{tail}");
        assert!(!lines.contains(&"line1"), "{tail}");
        let stage = Stage { name: "x".into(), python: None, step };
        match run_streamed(&stage).outcome {
            Outcome::Failed(why) => {
                assert!(why.starts_with("exit status 3\n") && why.contains("oops"), "{why}")
            }
            Outcome::Ok => panic!("exit 3 counted as ok"),
        }
    }
}
