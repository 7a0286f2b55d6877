//! `hazards`: the hazard suite (`interp-tests/tests/hazards.rs`) on each selected interpreter,
//! then its verdict matrix, read back from `target/interpsafe/hazards/<build>.json`.
//!
//! The suite is an ordinary test target, so `cargo xtask test` runs it on every interpreter of
//! the matrix; this command runs only it, and also on the sanitizer and debug builds
//! (`--python 3.13-asan`, `--python 3.13-debug`), which `cargo xtask test` adds as stages of their
//! own. On an AddressSanitizer build the test binary, and only it, runs with libasan preloaded:
//! cargo runs it through a runner (`env LD_PRELOAD=...`), so cargo and rustc never load it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use interpsafe_results::{RecordData, ResultFile};

use crate::cli::{self, cargo, with_python};
use crate::docs::snapshot::{Snapshot, Source};
use crate::docs::tables::{self, Context, Spec};
use crate::error::Error;
use crate::paths::{self, Cache};
use crate::python::interpreter::{self, Interpreter};
use crate::python::names;
use crate::render::{self, Block};
use crate::stage::{self, Stage, StageResult};
use crate::step::Step;

/// The builds `cargo xtask test` runs the hazard suite on, beyond the default interpreters.
pub const CHECKING_BUILDS: &[&str] = &["3.13-asan", "3.13-debug"];

/// The `--python` values of a `hazards` command line.
pub fn parse_args(args: &[String]) -> Result<Vec<String>, Error> {
    Ok(cli::parse(args, "hazards", "[--python SPEC]...", &[], &[])?.pythons)
}

/// Whether `py` is an AddressSanitizer build (a known name configured with it).
pub(crate) fn is_asan(py: &Interpreter) -> bool {
    names::find(&py.name).is_some_and(|k| k.configure_flags.contains(&"--with-address-sanitizer"))
}

/// The AddressSanitizer runtime to preload, as gcc reports it.
pub(crate) fn libasan() -> Result<PathBuf, Error> {
    let out =
        Step::new("gcc").args(["-print-file-name=libasan.so"]).command().output().map_err(|e| {
            Error::new(format!("cannot run gcc to find libasan ({e}); install gcc"))
        })?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_absolute() && path.exists() {
        Ok(path)
    } else {
        Err(Error::new(
            "gcc does not know libasan.so (it printed a bare name); install libasan (Debian: libasan8)",
        ))
    }
}

/// The stage running the hazard suite (and only it) against `py`.
pub fn hazard_stage(py: &Interpreter) -> Result<Stage, Error> {
    interp_tests_stage(py, "hazards", &["hazards"])
}

/// The regression tests of the attacks on the checked strategies (docs/threat-model.md), which `cargo xtask
/// test` runs on the checking builds too: memory errors there are reported, not silent.
pub const ATTACK_REGRESSIONS: &[&str] = &[
    "adversary",
    "raw_switch",
    "python_ends",
    "share",
    "attack_marks",
    "attack_holds",
    "attack_round3",
];

/// The stage running [`ATTACK_REGRESSIONS`] against `py`.
pub fn regressions_stage(py: &Interpreter) -> Result<Stage, Error> {
    interp_tests_stage(py, "attack regressions", ATTACK_REGRESSIONS)
}

/// A stage running interp-tests' `tests` against `py`, with the ASan runtime preloaded into the
/// test binaries on an AddressSanitizer build.
fn interp_tests_stage(py: &Interpreter, name: &str, tests: &[&str]) -> Result<Stage, Error> {
    let mut step = cargo().args(["test", "-p", "interp-tests"]);
    for t in tests {
        step = step.args(["--test", t]);
    }
    if is_asan(py) {
        // The test binary links an instrumented libpython, so the ASan runtime must come first;
        // the runner preloads it into the test binary only (its children inherit it).
        let runner =
            format!("target.'cfg(all())'.runner=['env','LD_PRELOAD={}']", libasan()?.display());
        step = step.args(["--config", &runner]);
    }
    Ok(Stage {
        name: name.to_string(),
        python: Some(py.name.clone()),
        step: with_python(step, py, &py.target_dir()),
    })
}

/// Resolves `spec` (installing a known interpreter if needed) and runs the attack regressions on
/// it.
pub fn run_regressions_for(spec: &str, cache: &Cache) -> StageResult {
    run_resolved(spec, cache, "attack regressions", regressions_stage)
}

/// Resolves `spec` (installing a known interpreter if needed) and runs the stage `build` makes
/// for it; a spec that cannot be resolved is a stage `name` that did not run.
fn run_resolved(
    spec: &str,
    cache: &Cache,
    name: &str,
    build: impl FnOnce(&Interpreter) -> Result<Stage, Error>,
) -> StageResult {
    let start = Instant::now();
    match interpreter::parse_spec(spec)
        .and_then(|s| interpreter::resolve_spec(&s, cache))
        .and_then(|py| build(&py))
    {
        Ok(stage) => stage::run_streamed(&stage),
        Err(err) => {
            eprintln!("error: {err}");
            let r = StageResult::not_run(name, Some(spec), err.to_string(), start.elapsed());
            println!("{r}");
            r
        }
    }
}

/// Resolves `spec` (installing a known interpreter if needed) and runs the hazard stage on it.
pub fn run_for(spec: &str, cache: &Cache) -> StageResult {
    run_with_results(spec, cache).0
}

/// [`run_for`], also returning where the suite wrote its results (removed first, so that a
/// stage that fails before writing leaves no stale file behind).
fn run_with_results(spec: &str, cache: &Cache) -> (StageResult, Option<PathBuf>) {
    let mut path = None;
    let result = run_resolved(spec, cache, "hazards", |py| {
        let stage = hazard_stage(py)?;
        let p = results_path(&py.name);
        let _ = std::fs::remove_file(&p);
        path = Some(p);
        Ok(stage)
    });
    (result, path)
}

/// Where the suite writes the results of build `name`.
pub fn results_path(name: &str) -> PathBuf {
    paths::target_dir("interpsafe").join("hazards").join(format!("{name}.json"))
}

/// Runs the `hazards` command.
pub fn hazards_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    let specs = cli::or_defaults(parse_args(args)?);
    // A typo fails before anything is built.
    for spec in &specs {
        interpreter::parse_spec(spec)?;
    }
    let start = Instant::now();
    let mut results = Vec::new();
    let mut tables = Vec::new();
    for spec in &specs {
        let (result, path) = run_with_results(spec, cache);
        // The suite writes its file before it fails on a differing cell: show the matrix anyway.
        if let Some(path) = path {
            match ResultFile::read(&path) {
                Ok(file) => tables.push(table(&file, &path)),
                Err(e) => eprintln!("warning: no hazard results for {spec}: {e}"),
            }
        }
        results.push(result);
    }
    for t in &tables {
        println!("\n{t}");
    }
    stage::print_summary(&results, start.elapsed());
    let failed = results.iter().filter(|r| !r.ok()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::new(format!(
            "the hazard suite failed on {failed} of {} interpreters",
            results.len()
        )))
    }
}

/// The verdict matrix of one results file on the console: the docs' `hazard-matrix` table
/// (cases and settings by strategies, "≠ declared" where a cell differs from its strategy's
/// declaration) through the console back-end, with what the settings mean on this build.
pub fn table(file: &ResultFile, path: &Path) -> String {
    let source = Source { file: path.display().to_string(), result: file.clone() };
    let snapshot = Snapshot { sources: vec![source] };
    let root = paths::workspace_root();
    let cx = Context { snapshot: &snapshot, root: &root, page: "" };
    let spec = Spec::parse("hazard-matrix").expect("a valid table spec");
    let mut blocks = tables::render(&spec, &cx).unwrap_or_else(|e| vec![Block::Text(e)]);
    let hazards = || {
        file.records.iter().filter_map(|r| match &r.data {
            RecordData::Hazard(h) => Some((r, h)),
            _ => None,
        })
    };
    let note = if hazards().any(|(r, _)| r.environment.interpreter.free_threaded) {
        "Settings: on a free-threaded build a subinterpreter's GIL setting changes nothing (and the \
         legacy config forces check_multi_interp_extensions), so one toolkit setting (own-gil) and \
         one Python-created one (py-isolated) run."
    } else {
        "Settings: own-gil: PEP 684 subinterpreters (their own GIL and allocator); shared-gil: the \
         legacy config (main's GIL and allocator); py-*: interpreters made by \
         _interpreters.create('isolated' / 'legacy'); +malloc: run again with PYTHONMALLOC=malloc \
         (ASan sees no pymalloc arena)."
    };
    blocks.push(Block::Text(note.into()));
    let differing = hazards().filter(|(_, h)| h.observed.kind() != h.expected.kind()).count();
    if differing > 0 {
        let why = "differ from their strategy's declared verdict (marked ≠ declared)";
        blocks.push(Block::Text(format!("{differing} cell(s) {why}")));
    }
    render::console(&blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use interpsafe_results::{
        Environment, HazardVerdict, InterpreterBuild, Machine, ResultRecord, Verdict,
    };

    #[test]
    fn table_has_a_row_per_case_and_a_column_per_strategy() {
        let environment = Environment {
            interpreter: InterpreterBuild {
                name: "3.13".into(),
                version: "3.13.15".into(),
                free_threaded: false,
                variant: None,
                debian_version: None,
            },
            pyo3_version: "0.28.3".into(),
            machine: Machine::detect(),
        };
        let record =
            |hazard: &str, strategy: &str, observed: Verdict, expected: Verdict| ResultRecord {
                environment: environment.clone(),
                data: RecordData::Hazard(HazardVerdict {
                    hazard: hazard.into(),
                    strategy: strategy.into(),
                    isolation: Some("own-gil".into()),
                    observed,
                    expected,
                    threat: None,
                }),
            };
        let und = || Verdict::Undetected { how: "wrong-object: b".into() };
        let err = || Verdict::RuntimeError { message: "bind: x".into() };
        let file = ResultFile::new(
            "test",
            vec![
                record("H10", "unchecked", und(), und()),
                record("H2", "unchecked", und(), und()),
                record("H2", "tagged", err(), und()),
            ],
        );
        let t = table(&file, Path::new("x.json"));
        assert!(t.contains("case  setting  unchecked"), "{t}");
        assert!(t.find("H2 ").unwrap() < t.find("H10 ").unwrap(), "rows in catalogue order:\n{t}");
        assert!(t.contains("error at bind ≠ declared"), "{t}");
        assert!(t.contains("undetected: wrong object"), "{t}");
        assert!(t.contains("1 cell(s) differ"), "{t}");
        assert!(!t.contains('`') && !t.contains("**"), "{t}");
    }
}
