//! The hazard suite: the catalogue (`interpsafe::hazard`, described in docs/hazards.md) against every
//! registered strategy, on the interpreter build this binary is linked with, with real own-GIL,
//! shared-GIL and Python-created subinterpreters and real threads.
//!
//! Every runtime cell runs in a child process (this binary again, with `INTERPSAFE_HAZARD` set,
//! running only `hazard_child`), so that the baseline's misuse (a crash, an abort, a corrupted
//! heap) ends the child, never the suite. The parent classifies each cell from what the child
//! reported and how it ended, compares it with the strategy's declared expectation
//! (`interpsafe::hazard::Expectations`, implemented in each strategy's file), writes
//! `target/interpsafe/hazards/<build>.json` (`interpsafe-results` schema) and fails on any
//! difference. Compile-time cells cite a compile-fail case, which must exist.
//!
//! On a sanitizer build that has pymalloc every runtime cell runs twice, the second time with
//! `PYTHONMALLOC=malloc` (AddressSanitizer cannot see inside pymalloc's arenas; CPython 3.13's
//! `--with-address-sanitizer` build compiles pymalloc out, so there one run already uses malloc).
//! The binary must run with libasan preloaded (`cargo xtask hazards --python 3.13-asan` does
//! that, for the test binary only). On a debug build each child compares
//! `sys.gettotalrefcount()` before and after its whole scenario (after one unobserved warm-up
//! run of the same scenario: CPython moves the total once on the first use of some features).
//!
//! `hazard_stress` runs each checked strategy through the stress run (see `hazards/stress.rs`),
//! also in a child.

#[path = "hazards/harness.rs"]
mod harness;
#[path = "hazards/scenarios.rs"]
mod scenarios;
#[path = "hazards/stress.rs"]
mod stress;
#[path = "hazards/world.rs"]
mod world;

use std::time::Instant;

use interpsafe::hazard::{Case, Setting};
use interpsafe::results::{ResultFile, Verdict};
use interpsafe::{for_each_strategy, Strategy};

use harness::{Build, CHILD_ENV};
use world::World;

/// The child's entry point: a no-op unless `INTERPSAFE_HAZARD` names a cell (`H2.kept:tagged:own-gil`)
/// or a stress run (`stress:tagged`). It never returns in a child: it exits, skipping the test
/// harness's report and the interpreter's finalisation.
#[test]
fn hazard_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (target, strategy) = (parts[0], parts.get(1).copied().unwrap_or(""));
    let setting = parts.get(2).and_then(|s| Setting::find(s));
    macro_rules! dispatch {
        ($s:ty) => {
            if <$s>::NAME == strategy {
                if target == "stress" {
                    let obs = stress::run::<$s>();
                    obs.print();
                    world::report("phase", "observed");
                    world::report("phase", "done");
                } else {
                    run_cell::<$s>(target, setting.expect("a setting"));
                }
                std::process::exit(0);
            }
        };
    }
    for_each_strategy!(dispatch);
    panic!("{CHILD_ENV}={spec}: no strategy named {strategy:?}");
}

fn run_cell<S: Strategy>(case: &str, setting: Setting) {
    let case = Case::find(case).unwrap_or_else(|| panic!("no case {case}"));
    let mut w = World::new(setting);
    if w.counts_references() {
        // CPython changes its total reference count once, the first time some features are used
        // in a process (the first Python-created interpreter, the first interning in a legacy
        // one): a first, unobserved run warms those up, so the measured run's count compares
        // like with like.
        let _ = scenarios::run::<S>(case, &mut w);
        let _ = w.finish(scenarios::uses_once_cells(case));
        w = World::new(setting);
    }
    let obs = scenarios::run::<S>(case, &mut w);
    w.observed(obs);
    w.teardown(scenarios::uses_once_cells(case));
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::CompileError { case } => format!("compile error ({case})"),
        Verdict::RuntimeError { message } => format!("runtime error: {message}"),
        Verdict::Undetected { how } => format!("undetected: {how}"),
        Verdict::NotApplicable { why } => format!("not applicable: {why}"),
    }
}

#[test]
fn hazard_suite() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let start = Instant::now();
    let build = Build::detect();
    let planned = harness::plan(&build);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    let outcomes = harness::run_all(planned, workers);
    let path = harness::results_path(&build);
    ResultFile::new("interp-tests hazards", harness::records(&build, &outcomes))
        .write(&path)
        .expect("write the hazard results");
    if build.asan && !build.pymalloc {
        println!(
            "{}: pymalloc is compiled out (WITH_PYMALLOC=0), so every allocation already goes \
             through malloc, where AddressSanitizer sees it: no separate PYTHONMALLOC=malloc run",
            build.name()
        );
    }
    println!(
        "hazards on {}: {} in {:.1}s; results in {}",
        build.name(),
        harness::summary(&outcomes),
        start.elapsed().as_secs_f64(),
        path.display()
    );
    let differing: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.matches())
        .map(|o| {
            format!(
                "{} ({}): expected {}, observed {}",
                o.planned.spec(),
                o.planned.isolation().unwrap_or_default(),
                describe(&o.planned.expected.verdict()),
                describe(&o.observed)
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} cells differ from their strategy's declared verdict:\n  {}",
        differing.len(),
        outcomes.len(),
        differing.join("\n  ")
    );
}

/// Every checked strategy (the unchecked rows' misuse is undefined behaviour) through the stress
/// run.
#[test]
fn hazard_stress() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let mut failures = Vec::new();
    macro_rules! stress {
        ($s:ty) => {
            if <$s>::CHECKED {
                let start = Instant::now();
                let run = harness::run_child(&format!("stress:{}", <$s>::NAME), false);
                let verdict = harness::classify(&run);
                println!(
                    "stress {}: {} ({:.1}s)",
                    <$s>::NAME,
                    describe(&verdict),
                    start.elapsed().as_secs_f64()
                );
                if !matches!(verdict, Verdict::NotApplicable { .. }) {
                    failures.push(format!("{}: {}", <$s>::NAME, describe(&verdict)));
                }
            }
        };
    }
    for_each_strategy!(stress);
    assert!(failures.is_empty(), "stress runs failed:\n  {}", failures.join("\n  "));
}
