//! `fuzz`: the adversarial search (`interp-tests/tests/adversarial_search.rs`), longer than the
//! bounded runs `cargo xtask test` makes, with its findings in `target/interpsafe/fuzz/<build>.json`.
//!
//! The search is an ordinary test target driven by environment variables
//! (`INTERPSAFE_FUZZ_CASES`, `_SECONDS`, `_SEED`, `_STRATEGIES`, `_OUT`, `_HOLES`); this module
//! sets them. `cargo xtask test` adds two kinds of stages: a bounded search on each of
//! [`CI_BUILDS`], and the seeded-holes check on [`SEEDS_BUILD`] built with `--cfg
//! interpsafe_seeds` in its own target directory, where every hole of `interpsafe::seeds` must be
//! found. On an AddressSanitizer build the test binary, and only it, runs with libasan preloaded.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use interpsafe_results::{RecordData, ResultFile};

use crate::cli::{self, cargo, with_python};
use crate::error::Error;
use crate::hazards::{is_asan, libasan};
use crate::paths::{self, Cache};
use crate::python::interpreter::{self, Interpreter};
use crate::stage::{self, Stage, StageResult};
use crate::step::Step;

/// The builds `cargo xtask test` runs a bounded search on, with the sequences each runs (sized
/// so that the three stages and the seeded-holes check stay near six minutes on two cores).
pub const CI_BUILDS: &[(&str, usize)] = &[("3.13-asan", 250), ("3.13-debug", 400), ("3.13t", 300)];

/// The build the seeded-holes check runs on (one build serves every hole).
pub const SEEDS_BUILD: &str = "3.13-asan";

/// At most this many sequences per hole in the seeded-holes check.
pub const SEEDS_CASES: usize = 120;

/// Seconds the seeded-holes check spends shrinking each hole's first failure.
pub const SEEDS_SHRINK_SECONDS: u64 = 15;

/// The strategies the search generates (the `unchecked` baseline never: its cross-interpreter
/// use is undefined behaviour, not a result to predict).
pub const STRATEGIES: &[&str] = &["tagged", "scoped", "branded", "affine"];

/// How long a search runs: a number of sequences or a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Budget {
    /// Sequences.
    Cases(usize),
    /// Seconds.
    Seconds(f64),
}

/// A parsed `fuzz` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// `--python` values.
    pub pythons: Vec<String>,
    /// `--strategy` values (validated).
    pub strategies: Vec<String>,
    /// `--cases` or `--seconds`.
    pub budget: Budget,
    /// `--seed`.
    pub seed: Option<u64>,
}

/// Parses the arguments after `fuzz`; bad input is a usage error naming the valid values.
pub fn parse_args(args: &[String]) -> Result<Args, Error> {
    let usage = "[--python SPEC]... [--strategy S]... [--cases N | --seconds S] [--seed N]";
    let a =
        cli::parse(args, "fuzz", usage, &[], &["--strategy", "--cases", "--seconds", "--seed"])?;
    let mut strategies: Vec<String> = Vec::new();
    for s in a.all("--strategy") {
        if !STRATEGIES.contains(&s) {
            return Err(Error::usage(format!(
                "unknown strategy `{s}`; valid: {} (the unchecked baseline is never generated: \
                 its cross-interpreter use is undefined behaviour)",
                STRATEGIES.join(", ")
            )));
        }
        if !strategies.iter().any(|x| x == s) {
            strategies.push(s.to_string());
        }
    }
    let budget = match (a.all("--cases").as_slice(), a.all("--seconds").as_slice()) {
        ([], []) => Budget::Seconds(300.0),
        ([v], []) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Budget::Cases(n),
            _ => return Err(Error::usage(format!("--cases takes a positive integer, not `{v}`"))),
        },
        ([], [v]) => match v.parse::<f64>() {
            Ok(s) if s > 0.0 && s.is_finite() => Budget::Seconds(s),
            _ => return Err(Error::usage(format!("--seconds takes a positive number, not `{v}`"))),
        },
        _ => {
            let why = "give one of --cases and --seconds, once";
            return Err(Error::usage(format!("{why}; usage: cargo xtask fuzz {usage}")));
        }
    };
    let seed =
        match a.all("--seed").last() {
            Some(v) => Some(v.parse().map_err(|_| {
                Error::usage(format!("--seed takes an unsigned integer, not `{v}`"))
            })?),
            None => None,
        };
    Ok(Args { pythons: a.pythons, strategies, budget, seed })
}

/// Where a search on build `name` writes its results.
pub fn results_path(name: &str) -> PathBuf {
    paths::target_dir("interpsafe").join("fuzz").join(format!("{name}.json"))
}

/// `cargo test` of the search's test target against `py`: only the test function `test_fn`,
/// output shown, in `target_dir`, the test binary alone under libasan on an ASan build.
fn search_step(
    py: &Interpreter,
    test_fn: &str,
    target_dir: &std::path::Path,
) -> Result<Step, Error> {
    let mut step = cargo().args(["test", "-p", "interp-tests", "--test", "adversarial_search"]);
    if is_asan(py) {
        let runner =
            format!("target.'cfg(all())'.runner=['env','LD_PRELOAD={}']", libasan()?.display());
        step = step.args(["--config", &runner]);
    }
    Ok(with_python(step.args(["--", test_fn, "--exact", "--nocapture"]), py, target_dir))
}

/// The stage of a search on `py` with `budget`, `strategies` (empty: all) and `seed`.
pub fn search_stage(
    py: &Interpreter,
    budget: &Budget,
    strategies: &[String],
    seed: Option<u64>,
) -> Result<Stage, Error> {
    let mut step = search_step(py, "adversarial_search", &py.target_dir())?
        .env("INTERPSAFE_FUZZ_OUT", results_path(&py.name))
        .env("INTERPSAFE_FUZZ_STRATEGIES", strategies.join(","));
    step = match budget {
        Budget::Cases(n) => step.env("INTERPSAFE_FUZZ_CASES", n.to_string()),
        Budget::Seconds(s) => step.env("INTERPSAFE_FUZZ_SECONDS", s.to_string()),
    };
    if let Some(seed) = seed {
        step = step.env("INTERPSAFE_FUZZ_SEED", seed.to_string());
    }
    Ok(Stage { name: "fuzz".to_string(), python: Some(py.name.clone()), step })
}

/// The seeded-holes stage on `py`: a `--cfg interpsafe_seeds` build in its own target directory
/// (`target/seeds-NAME`), every hole reopened in turn and required to be found.
pub fn seeds_stage(py: &Interpreter) -> Result<Stage, Error> {
    let target = paths::target_dir(&format!("seeds-{}", py.name));
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} --cfg interpsafe_seeds"),
        _ => "--cfg interpsafe_seeds".to_string(),
    };
    let step = search_step(py, "seeded_holes_are_found", &target)?
        .env("RUSTFLAGS", rustflags)
        .env("INTERPSAFE_FUZZ_HOLES", "all")
        .env("INTERPSAFE_FUZZ_CASES", SEEDS_CASES.to_string())
        .env("INTERPSAFE_FUZZ_SHRINK_SECONDS", SEEDS_SHRINK_SECONDS.to_string())
        .env("INTERPSAFE_FUZZ_OUT", results_path(&format!("{}-seeds", py.name)));
    Ok(Stage { name: "fuzz seeded holes".to_string(), python: Some(py.name.clone()), step })
}

/// Resolves `spec` (installing it if needed) and runs the stage `make` builds for it.
fn run_on(
    spec: &str,
    cache: &Cache,
    name: &str,
    make: impl FnOnce(&Interpreter) -> Result<Stage, Error>,
) -> StageResult {
    let start = Instant::now();
    let planned = interpreter::parse_spec(spec)
        .and_then(|s| interpreter::resolve_spec(&s, cache))
        .and_then(|py| make(&py));
    match planned {
        Ok(stage) => stage::run_streamed(&stage),
        Err(err) => {
            eprintln!("error: {err}");
            let r = StageResult::not_run(name, Some(spec), err.to_string(), start.elapsed());
            println!("{r}");
            r
        }
    }
}

/// The stages `cargo xtask test` adds: a bounded search on each of [`CI_BUILDS`], then the
/// seeded-holes check on [`SEEDS_BUILD`].
pub fn test_stages(cache: &Cache) -> Vec<StageResult> {
    let mut out = Vec::new();
    for &(name, cases) in CI_BUILDS {
        let _ = std::fs::remove_file(results_path(name));
        out.push(run_on(name, cache, "fuzz", |py| {
            search_stage(py, &Budget::Cases(cases), &[], None)
        }));
    }
    out.push(run_on(SEEDS_BUILD, cache, "fuzz seeded holes", seeds_stage));
    out
}

/// One line per results file: cases, operations, failures.
fn summarise(path: &std::path::Path) -> String {
    match ResultFile::read(path) {
        Err(e) => format!("no results ({e})"),
        Ok(file) => file
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RecordData::FuzzSummary(s) => Some(format!(
                    "{}: {} sequences, {} operations, {} failure(s) in {:.0}s (strategies {}, seeds from {}); {}",
                    r.environment.interpreter.name,
                    s.cases,
                    s.ops,
                    s.failures,
                    s.seconds,
                    s.strategies.join(","),
                    s.base_seed,
                    path.display()
                )),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Runs the `fuzz` command.
pub fn fuzz_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    let mut a = parse_args(args)?;
    a.pythons = crate::cli::or_defaults(a.pythons);
    for spec in &a.pythons {
        interpreter::parse_spec(spec)?;
    }
    let seed = a.seed.unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64) >> 8
    });
    println!("fuzz: seeds from {seed}");
    let start = Instant::now();
    let mut results = Vec::new();
    let mut lines = Vec::new();
    for spec in &a.pythons {
        let mut path = None;
        let r = run_on(spec, cache, "fuzz", |py| {
            path = Some(results_path(&py.name));
            let _ = std::fs::remove_file(results_path(&py.name));
            search_stage(py, &a.budget, &a.strategies, Some(seed))
        });
        if let Some(path) = path {
            lines.push(summarise(&path));
        }
        results.push(r);
    }
    println!();
    for l in &lines {
        println!("{l}");
    }
    stage::print_summary(&results, start.elapsed());
    let failed = results.iter().filter(|r| !r.ok()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::new(format!("the search failed on {failed} of {} interpreters", results.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::args;

    #[test]
    fn parses_the_fuzz_command_line() {
        let a = parse_args(&args(&[
            "--python",
            "3.13t",
            "--strategy=tagged",
            "--cases",
            "50",
            "--seed",
            "7",
        ]))
        .unwrap();
        assert_eq!(a.pythons, ["3.13t"]);
        assert_eq!(a.strategies, ["tagged"]);
        assert_eq!(a.budget, Budget::Cases(50));
        assert_eq!(a.seed, Some(7));
        assert_eq!(parse_args(&[]).unwrap().budget, Budget::Seconds(300.0));
    }

    #[test]
    fn bad_fuzz_input_names_the_valid_values() {
        let err = parse_args(&args(&["--strategy", "unchecked"])).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message().contains("tagged, scoped, branded, affine"), "{}", err.message());
        for bad in [
            &["--cases", "0"][..],
            &["--cases", "5", "--seconds", "3"],
            &["--frob"],
            &["--seconds"],
        ] {
            assert_eq!(parse_args(&args(bad)).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn stages_use_per_build_target_dirs_and_results_paths() {
        let py = Interpreter {
            name: "3.13t".into(),
            executable: PathBuf::from("/c/python/3.13t/bin/python3.13t"),
            version: "3.13.15".into(),
            free_threaded: true,
            libdir: None,
            env: vec![],
        };
        let s = search_stage(&py, &Budget::Cases(9), &[], Some(3)).unwrap().step.to_string();
        assert!(s.contains("INTERPSAFE_FUZZ_CASES=9"), "{s}");
        assert!(s.contains(&format!("CARGO_TARGET_DIR={}", py.target_dir().display())), "{s}");
        assert!(s.contains("target/interpsafe/fuzz/3.13t.json"), "{s}");
        let s = seeds_stage(&py).unwrap().step.to_string();
        assert!(s.contains("--cfg interpsafe_seeds") && s.contains("target/seeds-3.13t"), "{s}");
        assert!(s.contains("INTERPSAFE_FUZZ_HOLES=all"), "{s}");
    }
}
