//! Instruction counts: the `instructions` bench (gungraun driving callgrind) per interpreter.
//!
//! [`ensure_tools`] makes sure valgrind is installed (apt-get as root, else the line to run) and
//! installs `gungraun-runner` of exactly the version of the `gungraun` library in `Cargo.lock`
//! into `<cache>/tools` (the runner refuses a library of another version). [`stage`] runs
//! `cargo bench -p interpsafe --bench instructions` with that runner and gungraun's JSON
//! summaries switched on; [`read_summaries`] turns them into per-operation figures:
//! `(count(operation) - count(empty loop)) / N` (the method is in `benches/instructions.rs`).
//!
//! Not part of `cargo xtask test` (the bench target has `bench = false`, so
//! `cargo test --benches` skips it): valgrind runs are for `cargo xtask bench`.

use std::path::{Path, PathBuf};

use std::time::Duration;

use interpsafe_results::{BenchFigure, Environment, RecordData, ResultRecord};

use crate::cli::{cargo, with_python};
use crate::error::Error;
use crate::host;
use crate::paths::{self, Cache};
use crate::python::interpreter::Interpreter;
use crate::stage::{self, Outcome, Stage, StageLog, StageResult};
use crate::step::Step;

/// The bench target.
pub const BENCH: &str = "instructions";

/// The runner binary gungraun's benches hand their benchmarks to.
pub const RUNNER: &str = "gungraun-runner";

/// The library whose version the runner must match.
const LIBRARY: &str = "gungraun";

/// The file the bench's main setup writes into `<target>/tmp/`: strategy names in benchmark
/// order and the operations per measured region.
pub const NAMES_FILE: &str = "interpsafe-instructions.json";

/// The bench functions of the `reference` group and the CPython call each counts.
const REFERENCE_CALLS: [(&str, &str); 1] =
    [("thread_state_get_unchecked", "PyThreadState_GetUnchecked")];

/// The suffix of the bench functions measured with a second interpreter alive.
const SEVERAL_SUFFIX: &str = "_several";

/// The benchmark function of the empty loop subtracted from every figure.
pub const BASELINE: &str = "empty_loop";

/// The tools the instruction stage needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The `gungraun-runner` executable.
    pub runner: PathBuf,
}

/// The version of `package` in the text of a `Cargo.lock`.
pub fn locked_version(lock: &str, package: &str) -> Option<String> {
    let wanted = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(version.to_string());
        }
    }
    None
}

/// Where the runner is installed: `<cache>/tools` (its binary in `bin/`).
pub fn tools_root(cache: &Cache) -> PathBuf {
    cache.root().join("tools")
}

/// The version a runner executable reports (`gungraun-runner 0.20.0` -> `0.20.0`).
fn runner_version(runner: &Path) -> Option<String> {
    let out = Step::new(runner).arg("--version").command().output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).map(str::to_string)
}

/// The `cargo install` line for runner `version` into `root`.
pub fn install_step(version: &str, root: &Path) -> Step {
    cargo().args(["install", RUNNER, "--version", version, "--locked", "--root"]).arg(root)
}

/// Installs `gungraun-runner` of `version` into `<cache>/tools` unless it is already there.
pub fn ensure_runner(cache: &Cache, version: &str) -> Result<PathBuf, Error> {
    let root = tools_root(cache);
    let runner = root.join("bin").join(RUNNER);
    if host::is_executable(&runner) && runner_version(&runner).as_deref() == Some(version) {
        return Ok(runner);
    }
    println!(
        "[instructions] installing {RUNNER} {version} into {} (a few minutes, once)",
        root.display()
    );
    stage::logged(
        "instructions",
        "runner",
        &cache.log_path("gungraun-runner", "install"),
        |log: &mut StageLog| log.run(&install_step(version, &root)),
    )?;
    match runner_version(&runner) {
        Some(v) if v == version => Ok(runner),
        other => Err(Error::new(format!(
            "{} reports version {} after the install, not {version}",
            runner.display(),
            other.unwrap_or_else(|| "nothing".into())
        ))),
    }
}

/// The line that installs valgrind.
pub const VALGRIND_INSTALL: &str = "apt-get install -y --no-install-recommends valgrind";

/// Makes sure valgrind is on PATH: as root installs it with apt-get, otherwise says what to run.
pub fn ensure_valgrind(cache: &Cache) -> Result<(), Error> {
    if host::find_in_path("valgrind").is_some() {
        return Ok(());
    }
    if !host::is_root() || host::find_in_path("apt-get").is_none() {
        return Err(Error::new(format!(
            "valgrind is not installed, so there are no instruction counts; install it with:\n  sudo {VALGRIND_INSTALL}"
        )));
    }
    println!("[instructions] installing valgrind: {VALGRIND_INSTALL}");
    stage::logged(
        "instructions",
        "valgrind",
        &cache.log_path("valgrind", "install"),
        |log: &mut StageLog| {
            let apt = |step: Step| step.env("DEBIAN_FRONTEND", "noninteractive");
            log.run(&apt(Step::new("apt-get").args(["-q", "update"])))?;
            log.run(&apt(Step::new("apt-get").args([
                "-q",
                "install",
                "-y",
                "--no-install-recommends",
                "valgrind",
            ])))
        },
    )?;
    if host::find_in_path("valgrind").is_none() {
        return Err(Error::new("apt-get installed valgrind but it is not on PATH"));
    }
    Ok(())
}

/// Valgrind and the runner of the locked gungraun version, installed if missing.
pub fn ensure_tools(cache: &Cache) -> Result<Tools, Error> {
    ensure_valgrind(cache)?;
    let lock_path = paths::workspace_root().join("Cargo.lock");
    let lock =
        std::fs::read_to_string(&lock_path).map_err(|e| Error::io("read", &lock_path, &e))?;
    let version = locked_version(&lock, LIBRARY).ok_or_else(|| {
        Error::new(format!(
            "{} has no `{LIBRARY}` package; is it a dev-dependency of interpsafe?",
            lock_path.display()
        ))
    })?;
    Ok(Tools { runner: ensure_runner(cache, &version)? })
}

/// Where gungraun writes its output for `py`.
pub fn home(py: &Interpreter) -> PathBuf {
    py.target_dir().join("gungraun")
}

/// The names file the bench writes for `py` (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
pub fn names_file(py: &Interpreter) -> PathBuf {
    py.target_dir().join("tmp").join(NAMES_FILE)
}

/// `PATH` with `dir` in front.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(host::path_dirs());
    std::env::join_paths(dirs).unwrap_or_default()
}

/// The stage: the instructions bench against `py`, summaries into [`home`].
pub fn stage(py: &Interpreter, tools: &Tools) -> Stage {
    let step = cargo().args(["bench", "-p", "interpsafe", "--bench", BENCH]);
    let mut step = with_python(step, py, &py.target_dir())
        // Read at compile time by gungraun's `main!`; PATH for anything that looks it up.
        .env("GUNGRAUN_RUNNER", &tools.runner)
        .env("GUNGRAUN_HOME", home(py))
        .env("GUNGRAUN_SAVE_SUMMARY", "json")
        // str hashes are randomised per process, and every benchmark is its own process: dict
        // probes (an attribute lookup's) would then differ by a few percent between strategies
        // doing the same Python work. A fixed seed makes the counts repeatable.
        .env("PYTHONHASHSEED", "0");
    if let Some(bin) = tools.runner.parent() {
        step = step.env("PATH", path_with(bin));
    }
    Stage { name: format!("bench {BENCH}"), python: Some(py.name.clone()), step }
}

/// Runs [`stage`] against `py` (or records why it could not run) and appends its figures to
/// `records`, stamped with `env`. A run whose summaries cannot be read counts as failed.
pub fn run(
    py: &Interpreter,
    env: &Environment,
    tools: &Result<Tools, Error>,
    records: &mut Vec<ResultRecord>,
) -> StageResult {
    let name = format!("bench {BENCH}");
    let tools = match tools {
        Ok(tools) => tools,
        Err(e) => {
            return StageResult::not_run(&name, Some(&py.name), e.to_string(), Duration::ZERO)
        }
    };
    // Stale summaries or names from an earlier run must not mix with this one.
    let _ = std::fs::remove_dir_all(home(py));
    let _ = std::fs::remove_file(names_file(py));
    let mut result = stage::run_streamed(&stage(py, tools));
    if result.ok() {
        match read_summaries(&home(py), &names_file(py)) {
            Ok(figs) => records.extend(
                figs.into_iter()
                    .map(|f| ResultRecord { environment: env.clone(), data: RecordData::Bench(f) }),
            ),
            Err(e) => {
                eprintln!("error: instruction counts of {}: {e}", py.name);
                result.outcome = Outcome::Failed(format!("unreadable gungraun summaries: {e}"));
            }
        }
    }
    result
}

/// The instruction count (`Ir`) of one gungraun `summary.json`, with its function and id.
fn summary_ir(v: &serde_json::Value) -> Option<(String, Option<String>, f64)> {
    let function = v.get("function_name")?.as_str()?.to_string();
    let id = v.get("id").and_then(|i| i.as_str()).map(str::to_string);
    let profile = v
        .get("profiles")?
        .as_array()?
        .iter()
        .find(|p| p.get("tool").and_then(|t| t.as_str()) == Some("Callgrind"))?;
    let ir = profile.pointer("/data/total/metrics/Ir/values/new")?.as_f64()?;
    Some((function, id, ir))
}

/// Every `summary.json` under `dir`.
fn summaries(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "summary.json") {
                if let Some(v) =
                    std::fs::read_to_string(&p).ok().and_then(|t| serde_json::from_str(&t).ok())
                {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// Per-operation instruction figures from gungraun's summaries under `home` and the bench's
/// names file: operation = the benchmark function, strategy = the name at the id's index,
/// `(Ir - Ir(empty loop)) / N`.
pub fn read_summaries(home: &Path, names_file: &Path) -> Result<Vec<BenchFigure>, Error> {
    let text =
        std::fs::read_to_string(names_file).map_err(|e| Error::io("read", names_file, &e))?;
    let names: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::new(format!("{}: {e}", names_file.display())))?;
    let n = names.get("operations_per_region").and_then(|n| n.as_f64()).filter(|n| *n > 0.0);
    let strategies: Option<Vec<&str>> = names
        .get("strategies")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect());
    let (Some(n), Some(strategies)) = (n, strategies) else {
        return Err(Error::new(format!(
            "{}: no operations_per_region or strategies",
            names_file.display()
        )));
    };
    let counts: Vec<(String, Option<String>, f64)> =
        summaries(home).iter().filter_map(summary_ir).collect();
    let Some(&(_, _, baseline)) = counts.iter().find(|(f, _, _)| f == BASELINE) else {
        return Err(Error::new(format!("no `{BASELINE}` summary under {}", home.display())));
    };
    let mut out = Vec::new();
    for (function, id, ir) in &counts {
        if function == BASELINE {
            continue;
        }
        if let Some(&(_, call)) = REFERENCE_CALLS.iter().find(|(f, _)| f == function) {
            // A CPython call counted beside the strategies (the `reference` group), named as in
            // the criterion benches: operation `reference`, strategy = the call.
            out.push(BenchFigure {
                operation: interpsafe_results::REFERENCE.to_string(),
                strategy: call.to_string(),
                threads: 1,
                interpreters: 1,
                ns_per_op: None,
                instructions_per_op: Some((ir - baseline) / n),
                scaling: None,
                ns_interval: None,
            });
            continue;
        }
        let index = id
            .as_deref()
            .and_then(|i| i.rsplit_once('_'))
            .and_then(|(_, i)| i.parse::<usize>().ok());
        let Some(strategy) = index.and_then(|i| strategies.get(i)) else {
            return Err(Error::new(format!("summary {function} {id:?}: no strategy for this id")));
        };
        // `<op>_several`: the same operation with a second interpreter alive.
        let (operation, interpreters) = match function.strip_suffix(SEVERAL_SUFFIX) {
            Some(op) => (op.to_string(), 2),
            None => (function.clone(), 1),
        };
        out.push(BenchFigure {
            operation,
            strategy: strategy.to_string(),
            threads: 1,
            interpreters,
            ns_per_op: None,
            instructions_per_op: Some((ir - baseline) / n),
            scaling: None,
            ns_interval: None,
        });
    }
    out.sort_by(|a, b| {
        (a.interpreters, &a.operation, &a.strategy).cmp(&(
            b.interpreters,
            &b.operation,
            &b.strategy,
        ))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_locked_version() {
        let lock = "[[package]]\nname = \"gungraun-macros\"\nversion = \"0.10.0\"\n\n[[package]]\nname = \"gungraun\"\nversion = \"0.20.0\"\nsource = \"registry\"\n";
        assert_eq!(locked_version(lock, "gungraun").as_deref(), Some("0.20.0"));
        assert_eq!(locked_version(lock, "gungraun-runner"), None);
    }

    #[test]
    fn install_line_pins_the_version() {
        let s = install_step("0.20.0", Path::new("/c/tools")).to_string();
        assert!(
            s.ends_with("install gungraun-runner --version 0.20.0 --locked --root /c/tools"),
            "{s}"
        );
    }

    fn summary(function: &str, id: Option<&str>, ir: u64) -> String {
        let id = id.map_or("null".to_string(), |i| format!("\"{i}\""));
        format!(
            r#"{{"function_name":"{function}","id":{id},"profiles":[{{"tool":"Callgrind","data":{{"total":{{"metrics":{{"Ir":{{"values":{{"new":{ir}}}}}}}}}}}}}]}}"#
        )
    }

    #[test]
    fn summaries_become_per_operation_figures() {
        let dir = crate::testdir::TestDir::new("gungraun");
        let home = dir.path().join("home");
        for (sub, function, id, ir) in [
            ("baseline/empty_loop", "empty_loop", None, 4010),
            ("operations/bind.strategy_0", "bind", Some("strategy_0"), 7010),
            ("operations/bind.strategy_1", "bind", Some("strategy_1"), 22010),
            ("several/bind_several.strategy_1", "bind_several", Some("strategy_1"), 30010),
            ("reference/thread_state_get_unchecked", "thread_state_get_unchecked", None, 25010),
        ] {
            let d = home.join(sub);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("summary.json"), summary(function, id, ir)).unwrap();
        }
        let names = dir.path().join(NAMES_FILE);
        std::fs::write(
            &names,
            r#"{"operations_per_region": 1000, "strategies": ["unchecked", "tagged"]}"#,
        )
        .unwrap();
        let figs = read_summaries(&home, &names).unwrap();
        let got: Vec<(&str, &str, Option<f64>)> = figs
            .iter()
            .map(|f| (f.operation.as_str(), f.strategy.as_str(), f.instructions_per_op))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bind", "tagged", Some(18.0)),
                ("bind", "unchecked", Some(3.0)),
                ("reference", "PyThreadState_GetUnchecked", Some(21.0)),
                ("bind", "tagged", Some(26.0)),
            ]
        );
        let interpreters: Vec<u32> = figs.iter().map(|f| f.interpreters).collect();
        assert_eq!(interpreters, [1, 1, 1, 2]);
        assert!(figs.iter().all(|f| f.ns_per_op.is_none() && f.threads == 1));
        std::fs::remove_file(home.join("baseline/empty_loop/summary.json")).unwrap();
        assert!(read_summaries(&home, &names).is_err());
    }
}
