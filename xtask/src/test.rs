//! `test`: every test stage, against each selected interpreter.
//!
//! Stages (each summarised as `stage <name> [<python>]: ok|FAILED in <secs>s`; a failure does
//! not stop the others, and fails the command):
//! 0. `layers`: no import circle in `src/` or `xtask/src/`, and ARCHITECTURE.md's layer drawing
//!    current ([`crate::layers`]; reads files only, so it runs first, before any install);
//!    then `fmt`: `cargo fmt --all -- --check` (rustfmt.toml);
//! 1. per interpreter, `test`: `cargo test --workspace --exclude loom-tests --exclude xtask
//!    --exclude interpsafe-ext` with `PYO3_PYTHON` and `CARGO_TARGET_DIR=target/py-NAME` (unit
//!    tests, doctests, interp-tests; the extension modules must not link libpython, and their
//!    `extension-module` feature would unify into the test binaries that must);
//!    then `benches (test mode)`: `cargo test -p interpsafe --benches` (each bench runs once),
//!    and `clippy`: `cargo clippy --workspace --all-targets -- -D warnings` (so the
//!    free-threaded cfgs are linted on 3.13t; clippy's `incompatible_msrv` holds the declared
//!    `rust-version` to the standard library it allows); then `ext-modules build` and
//!    `ext-modules driver` ([`crate::ext_modules`]): the extension modules built against the
//!    interpreter (`target/ext-NAME`) and imported by it into main, own-GIL and legacy
//!    subinterpreters;
//! 2. `xtask`: `cargo test -p xtask` (no Python involved, default target dir);
//! 3. `loom`: `cargo test -p loom-tests --release` with `--cfg interpsafe_loom`, in `target/loom`;
//! 4. `compile-fail`, if `compile-fail/` exists: its tests against each interpreter (the cells
//!    differ between GIL and free-threaded builds), and `own-gil rules`: the library's unit tests
//!    and static assertions with `--features own-gil-rules` on each GIL interpreter;
//! 5. without `--python` (the default set, as CI runs it): `hazards` on each of
//!    [`hazards::CHECKING_BUILDS`](crate::hazards::CHECKING_BUILDS) (3.13-asan, 3.13-debug),
//!    installed as needed: the hazard suite only (the default interpreters ran it in stage 1);
//! 6. without `--python`: `fuzz` on each of [`fuzz::CI_BUILDS`](crate::fuzz::CI_BUILDS) (3.13-asan,
//!    3.13-debug, 3.13t), a bounded adversarial search, and `fuzz seeded holes` on
//!    [`fuzz::SEEDS_BUILD`](crate::fuzz::SEEDS_BUILD) built with `--cfg interpsafe_seeds`
//!    (`target/seeds-NAME`): every seeded hole must be found;
//! 7. without `--python`: `peers build` ([`crate::peers::test_stage`]) on each of
//!    [`peers::TEST_BUILDS`](crate::peers::TEST_BUILDS) (3.13t, 3.13-debug; on 3.13t in stage 1,
//!    before its driver, so the driver runs the peers too; the wheelhouse is downloaded once if
//!    the cache lacks it), and on 3.13-debug, not a default interpreter, `ext-modules build` and
//!    `ext-modules driver` (refcount totals checked on the debug build);
//! 8. without `--python`: the newest interpreters, [`NEWEST_BUILDS`] (3.14 and 3.15 from Debian
//!    sid's binary packages, in a root under the cache built once): `test`, `clippy`, the
//!    extension modules and `hazards` on each; then their debug builds, [`NEWEST_DEBUG_BUILDS`]
//!    (Debian's `python3.X-dbg`, for the refcount totals): the extension modules and `hazards`.

use std::env;
use std::time::{Duration, Instant};

use crate::cli::{self, cargo, with_python};
use crate::error::Error;
use crate::paths::{self, Cache};
use crate::python::interpreter::{self, Interpreter, Spec};
use crate::stage::{self, Stage, StageResult};

/// Default for `LOOM_MAX_PREEMPTIONS` when the environment does not set it.
pub const LOOM_MAX_PREEMPTIONS: &str = "3";

/// The `--python` values of a `test` command line; an unknown option is a usage error.
pub fn parse_args(args: &[String]) -> Result<Vec<String>, Error> {
    Ok(cli::parse(args, "test", "[--python SPEC]...", &[], &[])?.pythons)
}

/// Runs the `test` command with the arguments after `test`.
pub fn test_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    let pythons = parse_args(args)?;
    let checking_builds = pythons.is_empty();
    let specs = cli::or_defaults(pythons);
    let parsed: Vec<(String, Spec)> = specs
        .iter()
        .map(|s| interpreter::parse_spec(s).map(|p| (s.clone(), p)))
        .collect::<Result<_, _>>()?;

    let start = Instant::now();
    let mut results: Vec<StageResult> = vec![crate::layers::stage()];
    results.push(stage::run_streamed(&fmt_stage()));
    let mut pythons: Vec<Interpreter> = Vec::new();
    for (text, spec) in &parsed {
        let t = Instant::now();
        match interpreter::resolve_spec(spec, cache) {
            Ok(py) => pythons.push(py),
            Err(err) => {
                eprintln!("error: {err}");
                let r = StageResult::not_run("install", Some(text), err.to_string(), t.elapsed());
                println!("{r}");
                results.push(r);
            }
        }
    }
    for py in &pythons {
        results.push(stage::run_streamed(&workspace_stage(py)));
        results.push(stage::run_streamed(&benches_stage(py)));
        results.push(stage::run_streamed(&clippy_stage(py)));
        // The peers first, so the driver finds them and runs them beside the Rust variants.
        if checking_builds && crate::peers::TEST_BUILDS.contains(&py.name.as_str()) {
            results.push(crate::peers::test_stage(py, cache));
        }
        results.push(stage::run_streamed(&crate::ext_modules::build_stage(py)));
        results.push(stage::run_streamed(&crate::ext_modules::driver_stage(py)));
    }
    results.push(stage::run_streamed(&xtask_stage()));
    results.push(stage::run_streamed(&loom_stage()));
    if paths::workspace_root().join("compile-fail").is_dir() {
        if pythons.is_empty() {
            results.push(StageResult::not_run(
                "compile-fail",
                None,
                "no interpreter installed".to_string(),
                Duration::ZERO,
            ));
        }
        // Per build: the must-not-compile cells differ between GIL and free-threaded builds.
        for py in &pythons {
            results.push(stage::run_streamed(&compile_fail_stage(py)));
        }
    }
    // The own-GIL rule set of the Send/Sync model (a cargo feature), on GIL builds.
    for py in pythons.iter().filter(|p| !p.free_threaded) {
        results.push(stage::run_streamed(&own_gil_rules_stage(py)));
    }
    if checking_builds {
        for name in crate::hazards::CHECKING_BUILDS {
            results.push(crate::hazards::run_for(name, cache));
            results.push(crate::hazards::run_regressions_for(name, cache));
        }
        results.extend(crate::fuzz::test_stages(cache));
        results.extend(ext_modules_on_checking_builds(&pythons, cache));
        results.extend(newest_builds(&pythons, cache));
    }
    stage::print_summary(&results, start.elapsed());
    let failed = results.iter().filter(|r| !r.ok()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{failed} of {} stages failed (see the summary above)",
            results.len()
        )))
    }
}

/// Stage 7 (without `--python`): the extension modules on the peers' test builds that are not
/// default interpreters (3.13-debug, whose refcount totals the driver checks): `peers build`,
/// `ext-modules build` and `ext-modules driver`, installed as needed.
fn ext_modules_on_checking_builds(done: &[Interpreter], cache: &Cache) -> Vec<StageResult> {
    on_extra_builds(crate::peers::TEST_BUILDS, done, cache, "peers build", |py| {
        vec![
            crate::peers::test_stage(py, cache),
            stage::run_streamed(&crate::ext_modules::build_stage(py)),
            stage::run_streamed(&crate::ext_modules::driver_stage(py)),
        ]
    })
}

/// Each of `names` not among the interpreters already tested (`done`), installed as needed,
/// with the stages `run` gives it; one that cannot be installed is a single stage `first`, not
/// run, that says why.
fn on_extra_builds(
    names: &[&str],
    done: &[Interpreter],
    cache: &Cache,
    first: &str,
    run: impl Fn(&Interpreter) -> Vec<StageResult>,
) -> Vec<StageResult> {
    let mut results = Vec::new();
    for name in names.iter().filter(|n| !done.iter().any(|py| py.name == **n)) {
        let start = Instant::now();
        match interpreter::parse_spec(name).and_then(|spec| interpreter::resolve_spec(&spec, cache))
        {
            Ok(py) => results.extend(run(&py)),
            Err(err) => {
                eprintln!("error: {err}");
                let r = StageResult::not_run(first, Some(name), err.to_string(), start.elapsed());
                println!("{r}");
                results.push(r);
            }
        }
    }
    results
}

/// The newest interpreters, Debian sid's binary packages in a root under the cache (see
/// `python/root.rs`), which the test command covers by default beside the 3.13 builds.
pub const NEWEST_BUILDS: &[&str] = &["3.14", "3.15"];

/// Stage 8 (without `--python`): each of [`NEWEST_BUILDS`] not already tested, installed as
/// needed (the sid root is built once): the workspace tests, clippy, the extension modules and
/// the hazard suite, whose verdicts the docs' tables gain as columns. The benches in test mode,
/// the compile-fail cells and the own-GIL rule set stay with the 3.13 builds (the same code,
/// built the same way), which keeps the added time within budget.
fn newest_builds(done: &[Interpreter], cache: &Cache) -> Vec<StageResult> {
    let mut results = on_extra_builds(NEWEST_BUILDS, done, cache, "install", |py| {
        vec![
            stage::run_streamed(&workspace_stage(py)),
            stage::run_streamed(&clippy_stage(py)),
            stage::run_streamed(&crate::ext_modules::build_stage(py)),
            stage::run_streamed(&crate::ext_modules::driver_stage(py)),
            crate::hazards::run_for(&py.name, cache),
        ]
        .into_iter()
        // PEP 788's C API exists from 3.15 on.
        .chain((py.name == "3.15").then(|| stage::run_streamed(&pep788_native_stage(py))))
        .collect()
    });
    // The debug builds check refcount totals: the driver's three rounds that must not move
    // `sys.gettotalrefcount()`, and the hazard suite's leak observations.
    results.extend(on_extra_builds(NEWEST_DEBUG_BUILDS, done, cache, "install", |py| {
        vec![
            stage::run_streamed(&crate::ext_modules::build_stage(py)),
            stage::run_streamed(&crate::ext_modules::driver_stage(py)),
            crate::hazards::run_for(&py.name, cache),
        ]
    }));
    results
}

/// The debug builds of [`NEWEST_BUILDS`] (Debian's `python3.X-dbg`, in the same root), which the
/// test command runs the refcount-checking stages on.
pub const NEWEST_DEBUG_BUILDS: &[&str] = &["3.14-debug", "3.15-debug"];

/// Stage 1b: the criterion benches run once each in test mode against `py`, so they never rot
/// (the instruction-count benches stay out of the test command).
pub fn benches_stage(py: &Interpreter) -> Stage {
    let step = cargo().args(["test", "-p", "interpsafe", "--benches"]);
    Stage {
        name: "benches (test mode)".to_string(),
        python: Some(py.name.clone()),
        step: with_python(step, py, &py.target_dir()),
    }
}

/// Stage 0b: the workspace is formatted as `rustfmt.toml` says (no Python involved).
pub fn fmt_stage() -> Stage {
    Stage {
        name: "fmt".to_string(),
        python: None,
        step: cargo().args(["fmt", "--all", "--", "--check"]),
    }
}

/// Stage 1c: clippy over every target of the workspace against `py`, warnings denied (the
/// workspace's lints, `undocumented_unsafe_blocks` among them, and `incompatible_msrv`).
pub fn clippy_stage(py: &Interpreter) -> Stage {
    let step = cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    Stage {
        name: "clippy".to_string(),
        python: Some(py.name.clone()),
        step: with_python(step, py, &py.target_dir()),
    }
}

/// Stage 1: the workspace's tests (all but loom and xtask) against `py`.
pub fn workspace_stage(py: &Interpreter) -> Stage {
    let step =
        cargo().args(["test", "--workspace", "--exclude", "loom-tests", "--exclude", "xtask"]);
    let step = step.args(["--exclude", crate::ext_modules::PACKAGE]);
    Stage {
        name: "test".to_string(),
        python: Some(py.name.clone()),
        step: with_python(step, py, &py.target_dir()),
    }
}

/// The interp-tests files run against PEP 788's native guards (feature `pep788-native`) on the
/// interpreters that have them: those whose expectations hold on both paths, and `python_ends`,
/// whose Python-side destroys *wait* for a held guard there (its native tests say so). The hazard
/// suite and the adversarial search are not among them yet: scenarios that destroy an
/// interpreter from Python while the same thread holds a guard wait for themselves under native
/// guards (PEP 788's wait), and their expectations describe the emulation.
pub const PEP788_NATIVE_TESTS: &[&str] = &[
    "interpreters",
    "python_ends",
    "once_release",
    "exceptions",
    "share",
    "strategies",
    "attack_holds",
    "attack_marks",
    "attack_round3",
    "raw_switch",
    "model",
];

/// Stage 8 on 3.15: [`PEP788_NATIVE_TESTS`] with the library over PEP 788's native guards.
pub fn pep788_native_stage(py: &Interpreter) -> Stage {
    let mut step = cargo().args(["test", "-p", "interp-tests", "--features", "pep788-native"]);
    for test in PEP788_NATIVE_TESTS {
        step = step.args(["--test", test]);
    }
    Stage {
        name: "test (PEP 788 native)".to_string(),
        python: Some(py.name.clone()),
        step: with_python(step, py, &py.target_dir()),
    }
}

/// Stage 2: xtask's own tests (no Python involved).
pub fn xtask_stage() -> Stage {
    Stage { name: "xtask".to_string(), python: None, step: cargo().args(["test", "-p", "xtask"]) }
}

/// Stage 3: the loom models, in release mode with `--cfg interpsafe_loom`.
pub fn loom_stage() -> Stage {
    let rustflags = match env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} --cfg interpsafe_loom"),
        _ => "--cfg interpsafe_loom".to_string(),
    };
    let preemptions =
        env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| LOOM_MAX_PREEMPTIONS.to_string());
    Stage {
        name: "loom".to_string(),
        python: None,
        step: cargo()
            .args(["test", "-p", "loom-tests", "--release"])
            .env("RUSTFLAGS", rustflags)
            .env("LOOM_MAX_PREEMPTIONS", preemptions)
            .env("CARGO_TARGET_DIR", paths::target_dir("loom")),
    }
}

/// Stage 5: the Send/Sync model's own-GIL rule set: the library's static assertions and unit
/// tests built with `--features own-gil-rules` (GIL builds only).
pub fn own_gil_rules_stage(py: &Interpreter) -> Stage {
    let step = cargo().args(["test", "-p", "interpsafe", "--lib", "--features", "own-gil-rules"]);
    Stage {
        name: "own-gil rules".to_string(),
        python: Some(py.name.clone()),
        step: with_python(step, py, &paths::target_dir(&format!("py-{}-own-gil", py.name))),
    }
}

/// Stage 4: the compile-fail tests against `py` (run for every interpreter: the cells differ
/// between GIL and free-threaded builds).
pub fn compile_fail_stage(py: &Interpreter) -> Stage {
    let step = cargo().args(["test", "--manifest-path", "compile-fail/Cargo.toml"]);
    Stage {
        name: "compile-fail".to_string(),
        python: Some(py.name.clone()),
        step: with_python(step, py, &paths::target_dir(&format!("compile-fail-{}", py.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn py() -> Interpreter {
        Interpreter {
            name: "3.13t".into(),
            executable: PathBuf::from("/c/python/3.13t/bin/python3.13t"),
            version: "3.13.15".into(),
            free_threaded: true,
            libdir: None,
            env: vec![],
        }
    }

    #[test]
    fn parses_python_options() {
        let args: Vec<String> = ["--python", "3.13t", "--python=/usr/bin/python3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(parse_args(&args).unwrap(), ["3.13t", "/usr/bin/python3"]);
        assert_eq!(parse_args(&["--python".into()]).unwrap_err().exit_code(), 2);
        assert_eq!(parse_args(&["--fast".into()]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn stages_carry_interpreter_and_target_dir() {
        let py = py();
        assert_eq!(py.target_dir(), paths::target_dir("py-3.13t"));
        let s = workspace_stage(&py).step.to_string();
        assert!(s.contains("PYO3_PYTHON=/c/python/3.13t/bin/python3.13t"), "{s}");
        assert!(s.contains(&format!("CARGO_TARGET_DIR={}", py.target_dir().display())), "{s}");
        assert!(
            s.ends_with(
                "test --workspace --exclude loom-tests --exclude xtask --exclude interpsafe-ext"
            ),
            "{s}"
        );
        let s = compile_fail_stage(&py).step.to_string();
        assert!(s.contains("target/compile-fail-3.13t"), "{s}");
        let s = pep788_native_stage(&py).step.to_string();
        assert!(s.contains("test -p interp-tests --features pep788-native --test interpreters"));
        assert!(s.contains("--test python_ends") && !s.contains("--test hazards"), "{s}");
        let s = loom_stage().step.to_string();
        assert!(s.contains("--cfg interpsafe_loom"), "{s}");
        assert!(s.contains("target/loom"), "{s}");
        assert!(s.ends_with("test -p loom-tests --release"), "{s}");
        let s = clippy_stage(&py).step.to_string();
        assert!(s.contains("PYO3_PYTHON=/c/python/3.13t/bin/python3.13t"), "{s}");
        assert!(s.ends_with("clippy --workspace --all-targets -- -D warnings"), "{s}");
        assert!(fmt_stage().step.to_string().ends_with("fmt --all -- --check"));
    }
}
