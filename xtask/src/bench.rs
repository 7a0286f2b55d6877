//! `bench`: the criterion benches on each selected interpreter, then the report.
//!
//! Per interpreter build (default 3.13t and 3.13, installed if missing) it runs the bench
//! binaries `single_interpreter` (only main ever entered: the tagged fast path on) and
//! `several_interpreters` (an own-GIL subinterpreter alive: the fast path off), each with its own
//! `CRITERION_HOME`, reads criterion's estimates back, and hands the figures to
//! [`crate::report`]. `--quick` shortens warm-up and measurement to a smoke run. `--only PART`
//! (repeatable: `scaling`, `single_interpreter`, `several_interpreters`, `instructions`,
//! `peers`) re-runs
//! just those parts and keeps the previous report's figures for everything else. Then the
//! instruction counts of the single-thread operations ([`crate::instructions`]: gungraun under
//! valgrind, one-shot, so the same with and without `--quick`). Then the extension-module
//! comparison against the peer bindings ([`crate::peer_bench`], part `peers`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use interpsafe_results::{
    BenchFigure, Environment, InterpreterBuild, Interval, Machine, RecordData, ResultFile,
    ResultRecord,
};

use crate::cli::{self, cargo, with_python};
use crate::error::Error;
use crate::paths::Cache;
use crate::python::interpreter::{self, Interpreter};
use crate::stage::{self, Stage, StageResult};

/// The bench binaries and how many interpreters exist while each runs.
pub const BENCHES: [(&str, u32); 2] = [("single_interpreter", 1), ("several_interpreters", 2)];

/// The parts of a bench run `--only` can select.
pub const PARTS: [&str; 5] = [
    "scaling",
    "single_interpreter",
    "several_interpreters",
    "instructions",
    crate::peer_bench::PART,
];

/// Which part of a bench run produced `record` (`None` for records a bench run does not make).
pub fn part_of(record: &ResultRecord) -> Option<&'static str> {
    match &record.data {
        RecordData::Bench(b) if b.scaling.is_some() => Some("scaling"),
        RecordData::Bench(b) if b.instructions_per_op.is_some() => Some("instructions"),
        RecordData::Bench(b) if b.interpreters == 1 => Some("single_interpreter"),
        RecordData::Bench(_) => Some("several_interpreters"),
        RecordData::HandleSize(_) => Some("single_interpreter"),
        RecordData::ExtBench(_) => Some(crate::peer_bench::PART),
        _ => None,
    }
}

/// The previous report's bench records that a partial run (`--only`) did not replace: those of
/// other builds, and of parts not run.
pub fn kept_from_previous(
    previous: Vec<ResultRecord>,
    builds: &[String],
    only: &[String],
) -> Vec<ResultRecord> {
    previous
        .into_iter()
        .filter(|r| match part_of(r) {
            None => false,
            Some(part) => {
                !(builds.contains(&r.environment.interpreter.name)
                    && only.iter().any(|o| o == part))
            }
        })
        .collect()
}

/// Parsed `bench` arguments.
#[derive(Debug, Default, PartialEq)]
pub struct BenchArgs {
    /// `--python` values.
    pub pythons: Vec<String>,
    /// `--quick`.
    pub quick: bool,
    /// `--only NAME`: run only these benches and keep the previous report's figures for the rest.
    pub only: Vec<String>,
}

/// Parses the arguments after `bench`.
pub fn parse_args(args: &[String]) -> Result<BenchArgs, Error> {
    let a = cli::parse(
        args,
        "bench",
        "[--python SPEC]... [--quick] [--only PART]...",
        &["--quick"],
        &["--only"],
    )?;
    let only: Vec<String> = a.all("--only").into_iter().map(str::to_string).collect();
    if let Some(v) = only.iter().find(|v| !PARTS.contains(&v.as_str())) {
        return Err(Error::usage(format!(
            "unknown bench `{v}` for --only; valid: {}",
            PARTS.join(", ")
        )));
    }
    Ok(BenchArgs { quick: a.has("--quick"), only, pythons: a.pythons })
}

/// The PyO3 version the workspace pins (`pyo3 = { version = "=X" ... }` in Cargo.toml).
pub fn pinned_pyo3_version(manifest: &str) -> Option<String> {
    let line = manifest.lines().find(|l| l.trim_start().starts_with("pyo3 ="))?;
    let start = line.find("\"=")? + 2;
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_string())
}

/// The environment stamped on the figures of `py`.
pub fn environment(py: &Interpreter) -> Environment {
    let manifest = std::fs::read_to_string(crate::paths::workspace_root().join("Cargo.toml"))
        .unwrap_or_default();
    Environment {
        interpreter: InterpreterBuild {
            name: py.name.clone(),
            version: py.version.clone(),
            free_threaded: py.free_threaded,
            variant: py.variant(),
            debian_version: py.debian_version(),
        },
        pyo3_version: pinned_pyo3_version(&manifest).unwrap_or_else(|| "unknown".into()),
        machine: Machine::detect(),
    }
}

/// Reads every `<group>/<function...>/new/estimates.json` under a criterion home into figures.
pub fn read_criterion(home: &Path, interpreters: u32) -> Vec<BenchFigure> {
    let mut out = Vec::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some(fig) = figure(&path, interpreters) {
                    out.push(fig);
                }
            } else if path
                .file_name()
                .is_some_and(|n| n != "base" && n != "change" && n != "report")
            {
                stack.push(path);
            }
        }
    }
    out.sort_by(|a, b| (&a.operation, &a.strategy).cmp(&(&b.operation, &b.strategy)));
    out
}

fn figure(new_dir: &Path, interpreters: u32) -> Option<BenchFigure> {
    let bench: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new_dir.join("benchmark.json")).ok()?)
            .ok()?;
    let est: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new_dir.join("estimates.json")).ok()?)
            .ok()?;
    let group = bench.get("group_id")?.as_str()?;
    let function = bench.get("function_id")?.as_str()?;
    // `send_1mib_bytes` + `tagged/copied` -> operation `send_1mib_bytes/copied`, strategy `tagged`.
    let (strategy, variant) = match function.split_once('/') {
        Some((s, v)) => (s, Some(v)),
        None => (function, None),
    };
    let operation = match variant {
        Some(v) => format!("{group}/{v}"),
        None => group.to_string(),
    };
    Some(BenchFigure {
        operation,
        strategy: strategy.to_string(),
        threads: 1,
        interpreters,
        ns_per_op: est.get("median")?.get("point_estimate")?.as_f64(),
        instructions_per_op: None,
        scaling: None,
        ns_interval: interval(est.get("median")?),
    })
}

/// Criterion's confidence interval of an estimate (`{"confidence_interval": {"lower_bound",
/// "upper_bound"}}`), if it has one.
fn interval(estimate: &serde_json::Value) -> Option<Interval> {
    let ci = estimate.get("confidence_interval")?;
    Some(Interval { low: ci.get("lower_bound")?.as_f64()?, high: ci.get("upper_bound")?.as_f64()? })
}

/// The criterion flags for a quick smoke run.
pub const QUICK_FLAGS: [&str; 6] =
    ["--warm-up-time", "0.1", "--measurement-time", "0.3", "--sample-size", "10"];

fn bench_stage(py: &Interpreter, bench: &str, home: &Path, quick: bool) -> Stage {
    let mut step = cargo().args(["bench", "-p", "interpsafe", "--bench", bench, "--"]);
    if quick {
        step = step.args(QUICK_FLAGS);
    }
    let step = with_python(step, py, &py.target_dir()).env("CRITERION_HOME", home);
    Stage { name: format!("bench {bench}"), python: Some(py.name.clone()), step }
}

/// The scaling bench: a plain harness that writes its figures to `out`. `--quick` runs it in its
/// smoke mode (no `--bench` flag: a few thousand iterations).
fn scaling_stage(py: &Interpreter, out: &Path, quick: bool) -> Stage {
    let mut step = cargo().args(["bench", "-p", "interpsafe", "--bench", "scaling"]);
    if quick {
        // Built as a bench, run through `cargo test`'s convention: without `--bench`.
        step = cargo().args(["test", "--release", "-p", "interpsafe", "--bench", "scaling"]);
    }
    let step = with_python(step, py, &py.target_dir()).env("INTERPSAFE_SCALING_OUT", out);
    Stage { name: "bench scaling".to_string(), python: Some(py.name.clone()), step }
}

/// Runs the `bench` command.
pub fn bench_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    let args = parse_args(args)?;
    let specs = cli::or_defaults(args.pythons.clone());
    let start = Instant::now();
    let mut results: Vec<StageResult> = Vec::new();
    let mut records: Vec<ResultRecord> = Vec::new();
    let mut builds: Vec<String> = Vec::new();
    // Valgrind and the gungraun runner for the instruction counts (installed once if missing).
    let tools = crate::instructions::ensure_tools(cache);
    if let Err(e) = &tools {
        eprintln!("error: no instruction counts: {e}");
    }
    for spec in &specs {
        let parsed = interpreter::parse_spec(spec)?;
        let py = match interpreter::resolve_spec(&parsed, cache) {
            Ok(py) => py,
            Err(err) => {
                eprintln!("error: {err}");
                results.push(StageResult::not_run(
                    "install",
                    Some(spec),
                    err.to_string(),
                    start.elapsed(),
                ));
                continue;
            }
        };
        let env = environment(&py);
        builds.push(py.name.clone());
        let runs = |part: &str| args.only.is_empty() || args.only.iter().any(|o| o == part);
        if runs("scaling") {
            let scaling_out = py.target_dir().join("interpsafe-scaling.json");
            let _ = std::fs::remove_file(&scaling_out);
            let result = stage::run_streamed(&scaling_stage(&py, &scaling_out, args.quick));
            if result.ok() {
                match ResultFile::read(&scaling_out) {
                    Ok(file) => records.extend(file.records),
                    Err(e) => eprintln!("warning: no scaling figures: {e}"),
                }
            }
            results.push(result);
        }
        for (bench, interpreters) in BENCHES.into_iter().filter(|(b, _)| runs(b)) {
            let home: PathBuf = py.target_dir().join("criterion").join(bench);
            // Stale figures from an earlier run must not mix with this one.
            let _ = std::fs::remove_dir_all(&home);
            let result = stage::run_streamed(&bench_stage(&py, bench, &home, args.quick));
            let ok = result.ok();
            results.push(result);
            if ok {
                if let Ok(file) = ResultFile::read(&home.join("handle-sizes.json")) {
                    records.extend(file.records);
                }
                for fig in read_criterion(&home, interpreters) {
                    records.push(ResultRecord {
                        environment: env.clone(),
                        data: RecordData::Bench(fig),
                    });
                }
            }
        }
        if runs("instructions") {
            results.push(crate::instructions::run(&py, &env, &tools, &mut records));
        }
        if runs(crate::peer_bench::PART) {
            results.extend(crate::peer_bench::run(&py, &env, args.quick, cache, &mut records));
        }
    }
    if !args.only.is_empty() {
        let previous = crate::paths::workspace_root().join("target/interpsafe/report/results.json");
        match ResultFile::read(&previous) {
            Ok(file) => {
                let mut merged = kept_from_previous(file.records, &builds, &args.only);
                merged.append(&mut records);
                records = merged;
            }
            Err(e) => eprintln!("warning: --only without a previous report to complete: {e}"),
        }
    }
    let report = crate::report::write(&records, args.quick)?;
    stage::print_summary(&results, start.elapsed());
    println!("\n{}", report.console_table);
    println!("report: {}", report.dir.display());
    let failed = results.iter().filter(|r| !r.ok()).count();
    if failed > 0 {
        return Err(Error::new(format!("{failed} bench stage(s) failed (see the summary above)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quick_and_pythons() {
        let a = parse_args(&["--quick".into(), "--python".into(), "3.13".into()]).unwrap();
        assert_eq!(a, BenchArgs { pythons: vec!["3.13".into()], quick: true, only: vec![] });
        let b = parse_args(&["--only".into(), "scaling".into()]).unwrap();
        assert_eq!(b.only, vec!["scaling".to_string()]);
        assert!(parse_args(&["--only".into(), "bogus".into()]).is_err());
        assert!(parse_args(&["--fast".into()]).is_err());
    }

    #[test]
    fn a_partial_run_replaces_only_its_parts_of_its_builds() {
        let env = |name: &str| Environment {
            interpreter: InterpreterBuild {
                name: name.into(),
                version: "3.13.15".into(),
                free_threaded: false,
                variant: None,
                debian_version: None,
            },
            pyo3_version: "0.28.3".into(),
            machine: Machine {
                os: "linux".into(),
                arch: "x86_64".into(),
                cpus: 2,
                cpu_model: None,
                threads_per_core: None,
            },
        };
        let fig = |name: &str, scaling: Option<f64>| ResultRecord {
            environment: env(name),
            data: RecordData::Bench(BenchFigure {
                operation: "op".into(),
                strategy: "tagged".into(),
                threads: 1,
                interpreters: 1,
                ns_per_op: Some(1.0),
                instructions_per_op: None,
                scaling,
                ns_interval: None,
            }),
        };
        let previous = vec![fig("3.13t", Some(1.0)), fig("3.13t", None), fig("3.13", Some(1.0))];
        let kept = kept_from_previous(previous, &["3.13t".into()], &["scaling".into()]);
        let parts: Vec<(String, &str)> = kept
            .iter()
            .map(|r| (r.environment.interpreter.name.clone(), part_of(r).unwrap()))
            .collect();
        assert_eq!(parts, vec![("3.13t".into(), "single_interpreter"), ("3.13".into(), "scaling")]);
    }

    #[test]
    fn reads_the_pinned_pyo3_version() {
        let m = "[workspace.dependencies]\npyo3 = { version = \"=0.28.3\", default-features = false }\n";
        assert_eq!(pinned_pyo3_version(m).as_deref(), Some("0.28.3"));
    }

    #[test]
    fn reads_criterion_estimates() {
        let dir = crate::testdir::TestDir::new("criterion");
        let f = dir.path().join("send_1mib_bytes/tagged/copied/new");
        std::fs::create_dir_all(&f).unwrap();
        std::fs::write(
            f.join("benchmark.json"),
            r#"{"group_id":"send_1mib_bytes","function_id":"tagged/copied"}"#,
        )
        .unwrap();
        std::fs::write(f.join("estimates.json"), r#"{"median":{"point_estimate":12.5}}"#).unwrap();
        let figs = read_criterion(dir.path(), 2);
        assert_eq!(figs.len(), 1);
        assert_eq!(figs[0].ns_interval, None);
        let ci = r#"{"median":{"point_estimate":12.5,"confidence_interval":{"confidence_level":0.95,"lower_bound":12.0,"upper_bound":13.5}}}"#;
        std::fs::write(f.join("estimates.json"), ci).unwrap();
        let figs = read_criterion(dir.path(), 2);
        assert_eq!(figs[0].ns_interval, Some(Interval { low: 12.0, high: 13.5 }));
        assert_eq!(figs[0].operation, "send_1mib_bytes/copied");
        assert_eq!(figs[0].strategy, "tagged");
        assert_eq!(figs[0].ns_per_op, Some(12.5));
        assert_eq!(figs[0].interpreters, 2);
    }
}
