//! `hazards`: the hazard suite (`interp-tests/tests/hazards.rs`) on each selected interpreter,
//! then its verdict matrix, read back from `target/interpsafe/hazards/<build>.json`.
//!
//! The suite is an ordinary test target, so `cargo xtask test` runs it on every interpreter of
//! the matrix; this command runs only it, and also on the sanitizer and debug builds
//! (`--python 3.13-asan`, `--python 3.13-debug`), which `cargo xtask test` adds as stages of their
//! own. On an AddressSanitizer build the test binary, and only it, runs with libasan preloaded:
//! cargo runs it through a runner (`env LD_PRELOAD=...`), so cargo and rustc never load it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use interpsafe_results::{RecordData, ResultFile, Verdict};

use crate::error::Error;
use crate::paths::{self, Cache};
use crate::python::interpreter::{self, Interpreter};
use crate::python::names;
use crate::stage::{self, Stage, StageResult};
use crate::step::Step;
use crate::cli::{self, cargo, with_python};

/// The builds `cargo xtask test` runs the hazard suite on, beyond the default interpreters.
pub const CHECKING_BUILDS: &[&str] = &["3.13-asan", "3.13-debug"];

/// The catalogue's titles (the suite's `interpsafe::hazard::Hazard::title`; xtask does not link
/// the library).
const TITLES: &[(&str, &str)] = &[
    ("H1", "bind in the wrong interpreter"),
    (
        "H2",
        "drop in the wrong interpreter, or with no thread attached",
    ),
    ("H3", "use after the owning interpreter ended"),
    (
        "H4",
        "a once-cell filled in one interpreter, read in another",
    ),
    ("H5", "one type object used from several interpreters"),
    (
        "H6",
        "a foreign thread's callback lands in main instead of the owner",
    ),
    ("H7", "immortal shared objects must not be flagged"),
    ("H8", "unsynchronised interior mutation from two threads"),
    ("H9", "a lazy init raced by two threads or two interpreters"),
    (
        "H10",
        "an exception class of one interpreter raised in another",
    ),
    ("H11", "a GIL-bound reference escaping its scope"),
    (
        "H12",
        "an interned-string static filled in one interpreter, used in another",
    ),
];

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
    let out = Step::new("gcc")
        .args(["-print-file-name=libasan.so"])
        .command()
        .output()
        .map_err(|e| Error::new(format!("cannot run gcc to find libasan ({e}); install gcc")))?;
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

/// The regression tests of the attacks on the checked strategies (issue 11), which `cargo xtask
/// test` runs on the checking builds too: memory errors there are reported, not silent.
pub const ATTACK_REGRESSIONS: &[&str] = &["adversary", "raw_switch", "python_ends", "share"];

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
        let runner = format!(
            "target.'cfg(all())'.runner=['env','LD_PRELOAD={}']",
            libasan()?.display()
        );
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
    paths::target_dir("interpsafe")
        .join("hazards")
        .join(format!("{name}.json"))
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

/// The word before the first `:` (verdict texts start with a category: `deferred: ...`).
fn category(text: &str) -> &str {
    text.split(':').next().unwrap_or(text).trim()
}

/// A cell of the table: the verdict in a few words.
pub fn short(v: &Verdict) -> String {
    match v {
        Verdict::CompileError { .. } => "compile error".to_string(),
        Verdict::RuntimeError { message } => {
            format!(
                "error@{}",
                category(message).split_whitespace().next().unwrap_or("?")
            )
        }
        Verdict::Undetected { how } => {
            // The most telling of what was seen, in this order.
            const ORDER: &[(&str, &str)] = &[
                ("asan", "ASan"),
                ("crash", "crash"),
                ("stderr", "abort"),
                ("hang", "hang"),
                ("wrong-interpreter", "wrong interp"),
                ("wrong-object", "wrong object"),
                ("wrong-result", "wrong result"),
                ("lost-updates", "lost updates"),
                ("refcount", "refcount"),
                ("pool", "pool"),
                ("leak", "leak"),
            ];
            let seen: Vec<&str> = how.split("; ").map(category).collect();
            let mut words: Vec<&str> = ORDER
                .iter()
                .filter(|(k, _)| seen.contains(k))
                .map(|(_, w)| *w)
                .take(2)
                .collect();
            if words.is_empty() && seen.contains(&"accepted") {
                words.push("accepted");
            }
            format!(
                "UNDETECTED {}",
                if words.is_empty() {
                    "?".to_string()
                } else {
                    words.join("+")
                }
            )
        }
        Verdict::NotApplicable { why } => format!("n/a {}", category(why)),
    }
}

/// The verdict matrix of one results file: rows are cases (and settings), columns strategies;
/// a `!` marks a cell whose kind differs from the strategy's declared one.
pub fn table(file: &ResultFile, path: &Path) -> String {
    let mut strategies: Vec<String> = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut cells: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut build = String::new();
    let mut free_threaded = false;
    let mut differing = 0;
    for r in &file.records {
        let RecordData::Hazard(h) = &r.data else {
            continue;
        };
        build = format!(
            "{} ({})",
            r.environment.interpreter.name, r.environment.interpreter.version
        );
        free_threaded = r.environment.interpreter.free_threaded;
        if !strategies.contains(&h.strategy) {
            strategies.push(h.strategy.clone());
        }
        let row = (
            h.hazard.clone(),
            h.isolation.clone().unwrap_or_else(|| "-".into()),
        );
        if !rows.contains(&row) {
            rows.push(row.clone());
        }
        let mut text = short(&h.observed);
        if h.observed.kind() != h.expected.kind() {
            text.push_str(" !");
            differing += 1;
        }
        cells.insert((row.0, row.1, h.strategy.clone()), text);
    }
    let number = |id: &str| -> u32 {
        id.trim_start_matches('H')
            .split('.')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(99)
    };
    rows.sort_by_key(|(id, _)| number(id));
    let width = |col: &str| -> usize {
        cells
            .iter()
            .filter(|((_, _, s), _)| s == col)
            .map(|(_, t)| t.chars().count())
            .max()
            .unwrap_or(0)
            .max(col.len())
    };
    let widths: Vec<usize> = strategies.iter().map(|s| width(s)).collect();
    let malloc_runs = rows.iter().any(|(_, setting)| setting.ends_with("+malloc"));
    let mut out = String::new();
    let _ = writeln!(out, "hazard matrix on {build} ({})", path.display());
    let mut line = format!("{:<18} {:<18}", "case", "setting");
    for (s, w) in strategies.iter().zip(&widths) {
        let _ = write!(line, " {s:<w$}");
    }
    let _ = writeln!(out, "{}", line.trim_end());
    let mut last_hazard = "";
    for (id, setting) in &rows {
        let hazard = id.split('.').next().unwrap_or(id);
        if hazard != last_hazard {
            let title = TITLES
                .iter()
                .find(|(h, _)| *h == hazard)
                .map_or("", |(_, t)| t);
            let _ = writeln!(out, "{hazard}: {title}");
            last_hazard = hazard;
        }
        let mut line = format!("  {id:<16} {setting:<18}");
        for (s, w) in strategies.iter().zip(&widths) {
            let text = cells
                .get(&(id.clone(), setting.clone(), s.clone()))
                .map_or("-", String::as_str);
            let _ = write!(line, " {text:<w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if free_threaded {
        out.push_str(
            "note: free-threaded build: a subinterpreter's GIL setting changes nothing here (and the \
             legacy config forces check_multi_interp_extensions), so one toolkit setting (own-gil) and \
             one Python-created one (py-isolated) run; own- versus shared-GIL rows are meaningful on \
             GIL builds only.\n",
        );
    } else {
        out.push_str(
            "note: own-gil: PEP 684 subinterpreters (their own GIL and allocator); shared-gil: the \
             legacy config (main's GIL and allocator); py-*: interpreters made by \
             _interpreters.create('isolated' / 'legacy').\n",
        );
        if malloc_runs {
            out.push_str(
                "+malloc: run again with PYTHONMALLOC=malloc (ASan sees no pymalloc arena).\n",
            );
        }
    }
    out.push_str(
        "legend: error@op: a clear runtime error from op; n/a <why>: the hazard cannot arise (what \
         prevented it); UNDETECTED <what was seen>; compile error: shown by the cited compile-fail \
         case. Full texts in the JSON.\n",
    );
    if differing > 0 {
        let _ = writeln!(
            out,
            "{differing} cell(s) marked ! differ from their strategy's declared verdict"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use interpsafe_results::{Environment, HazardVerdict, InterpreterBuild, Machine, ResultRecord};

    #[test]
    fn cells_say_what_was_seen() {
        let v = Verdict::RuntimeError {
            message: "load into brand: the handle belongs to interpreter 1".into(),
        };
        assert_eq!(short(&v), "error@load");
        let v = Verdict::Undetected {
            how: "accepted: x; wrong-interpreter: y; crash: killed by SIGABRT during the scenario"
                .into(),
        };
        assert_eq!(short(&v), "UNDETECTED crash+wrong interp");
        assert_eq!(
            short(&Verdict::Undetected {
                how: "accepted: x".into()
            }),
            "UNDETECTED accepted"
        );
        assert_eq!(
            short(&Verdict::NotApplicable {
                why: "deferred: released in its owner".into()
            }),
            "n/a deferred"
        );
    }

    #[test]
    fn table_has_a_row_per_case_and_a_column_per_strategy() {
        let environment = Environment {
            interpreter: InterpreterBuild {
                name: "3.13".into(),
                version: "3.13.15".into(),
                free_threaded: false,
                variant: None,
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
        let und = || Verdict::Undetected {
            how: "wrong-object: b".into(),
        };
        let err = || Verdict::RuntimeError {
            message: "bind: x".into(),
        };
        let file = ResultFile::new(
            "test",
            vec![
                record("H10", "unchecked", und(), und()),
                record("H2", "unchecked", und(), und()),
                record("H2", "tagged", err(), und()),
            ],
        );
        let t = table(&file, Path::new("x.json"));
        assert!(t.contains("unchecked") && t.contains("tagged"), "{t}");
        assert!(
            t.find("H2:").unwrap() < t.find("H10:").unwrap(),
            "rows in catalogue order:\n{t}"
        );
        assert!(t.contains("error@bind !"), "{t}");
        assert!(t.contains("1 cell(s) marked !"), "{t}");
    }
}
