//! The adversarial search: sequences of public operations generated from a seed, each result
//! checked against a reference model, so that soundness bugs are found by search rather than
//! replayed from a catalogue.
//!
//! **What runs.** Operations (`adversarial_search/model.rs`) over main, toolkit own-GIL and
//! shared-GIL subinterpreters and interpreters made by `_interpreters.create()`, on two executor
//! threads that take them in lockstep: create; end from Rust (`SubInterpreter::end` with a
//! timeout); `_interpreters.destroy` and `_interpreters.exec` run in main; attach (direct, through
//! a held `InterpreterGuard`, nested); guards taken and dropped; inside a scope of one of the
//! checked strategies: eval, load+bind, clone, `to_handle`, drop, send to the other thread and
//! receive, once-cells (initialised fresh or from another slot's handle), `Shareable` out and in,
//! `SharedBytes`; drops of stored handles on unattached threads; and, under a tagged scope, a raw
//! C-API thread-state switch (foreign C code). Stored handles are `TaggedHandle`s whatever the
//! strategy, so storing with one strategy and loading with another is strategy mixing. Objects
//! made by eval are probes whose `ping` and `__del__` report through `_interpsafe.record` the
//! interpreter they ran in.
//!
//! **The model** (`Model::apply`) predicts each result: `Ok`, which `interpsafe::Error`
//! (variant and interpreter), or the Python exception, and the state after it:
//! - a stored handle may be used where its object lives, or anywhere if it is a runtime shared
//!   singleton (`None`); else `CrossInterpreter` (owner not ended) or `OwnerEnded`. Tagged and
//!   scoped check at bind and clone, branded and affine at load and receive (a refused load
//!   consumes the handle); a once-cell's initial value is checked the same way, for every
//!   strategy, and only when the cell is empty in that interpreter;
//! - the stored form's owner tag: kept by tagged, scoped and affine; branded re-tags with its
//!   brand's interpreter (observable on a shared singleton loaded elsewhere); `to_handle`,
//!   `Shareable::to_handle` and `SharedBytes::to_handle` make handles of the current one; under a
//!   raw switch a new object belongs to the interpreter switched into;
//! - a handle dropped outside its owner is queued for the owner (`pending_decrefs`), released by
//!   the next fresh attachment there, released at a toolkit end, discarded at a Python end;
//! - guards: refused once an end began (`Ending`) or finished (`Ended`); a guard (or a
//!   `SharedBytes`, which holds one) makes `SubInterpreter::end` refuse (`CallerHolds` on the
//!   holding thread, `Busy` after the timeout elsewhere);
//! - Python: `_interpreters.destroy`/`exec` refuse toolkit subinterpreters ("interpreter
//!   running", "already running") and unknown IDs; a Python-made interpreter's destroy does not
//!   wait for idle guards (they refuse afterwards: `Ending`, then `Ended`), and while any
//!   `SharedBytes` pins it, whichever thread holds it, Python's destroy and exec refuse it like a
//!   toolkit subinterpreter (the pin marks it as running main; the end's wait for pins, which
//!   only a destroy already past CPython's check reaches, is `python_ends.rs`'s).
//!
//! After every operation the interpreters' statuses, their queued releases and every stored
//! handle's owner are compared with the model; after the sequence everything is released, every
//! interpreter ended, and the pool must balance, every probe must have run and been finalised in
//! the interpreter that made it (the check that 3.13t's silence needs) and, on a debug build,
//! `sys.gettotalrefcount()` (read after a collection in main) must not move: unless a reference
//! outlived its interpreter or a once-cell was used (once-cells leak by design), when it must
//! only not fall. Each child first runs an unobserved warm-up sequence: CPython moves the total
//! once on the first use of some features (a legacy subinterpreter, for one).
//!
//! **Not generated** (declared undetected or outside a promise): the `unchecked` baseline (its
//! cross-interpreter use is undefined behaviour); an affine handle kept by a thread across
//! interpreters (every affine handle is stored at the end of its scope); scoped, branded and
//! affine under raw thread-state switches (only tagged promises to see those).
//!
//! **How it runs.** `adversarial_search` runs the bounded search: batches of seeds in child
//! processes (this binary again, `fuzz_child`), several sequences per child; a crashed child's
//! unfinished sequences run again, the one it died in alone. A failure (divergence, teardown
//! check, signal, `Fatal Python error`, sanitizer or glibc allocator report) is shrunk by greedy
//! deletion within a time cap and printed, with its seed, as a `run_sequence` test to paste
//! here. `seeded_holes_are_found` (a `--cfg interpsafe_seeds` build, `INTERPSAFE_FUZZ_HOLES`)
//! reopens each `interpsafe::seeds::Hole` in turn and requires the search to find it. The knobs
//! are environment variables (see `adversarial_search/driver.rs`); `cargo xtask test` and `cargo
//! xtask fuzz` set them.

#[path = "adversarial_search/driver.rs"]
mod driver;
#[path = "adversarial_search/exec.rs"]
mod exec;
#[path = "adversarial_search/model.rs"]
mod model;

use std::io::Write;
use std::sync::Mutex;

use interpsafe::results::ResultFile;
use interpsafe::seeds::{Hole, SEEDS_BUILD, SEEDS_ENV};

pub use model::{Act, Init, Kind, Obj, Op, Strat, Via};

use driver::{Config, CHILD_ENV, PREFIX};

/// A real bug the search found with no seeded hole on, kept until it is fixed: its failures
/// (recognised by `signature` in the failure text) are printed and recorded but do not fail the
/// search, and `known_findings` runs its minimal reproduction in a child.
#[derive(Debug)]
pub struct KnownFinding {
    /// A short name.
    pub name: &'static str,
    /// Text every failure it causes contains.
    pub signature: &'static str,
    /// What goes wrong, and where.
    pub what: &'static str,
    /// The minimal reproduction (`run_sequence` of it fails).
    pub reproduction: &'static [Op],
}

/// Real bugs the search found with no seeded hole on (see [`KnownFinding`]); empty while none
/// is open. Fixed ones become regular tests (`toolkit_end_on_a_debug_build`).
pub const KNOWN_FINDINGS: &[KnownFinding] = &[];

/// The known finding a failure text shows, if any.
pub fn known_finding(failure: &str) -> Option<&'static KnownFinding> {
    KNOWN_FINDINGS.iter().find(|k| failure.contains(k.signature))
}

/// Runs `ops` in this process against the model; panics with the first divergence or failed
/// teardown check. Paste a printed reproduction into a `#[test]` that calls this.
pub fn run_sequence(ops: &[Op]) {
    if let Err(e) = try_sequence(ops) {
        panic!("{e}");
    }
}

/// Sequences in one process must not overlap: they share main's deferred-release queue.
static IN_PROCESS: Mutex<()> = Mutex::new(());

/// [`run_sequence`] returning the failure.
pub fn try_sequence(ops: &[Op]) -> Result<usize, String> {
    let _one = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    warm_up();
    run_ops(ops, next_tag_base())
}

fn next_tag_base() -> i64 {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 1_000_000
}

fn run_ops(ops: &[Op], tag_base: i64) -> Result<usize, String> {
    let mut run = exec::Run::new(tag_base);
    for (i, op) in ops.iter().enumerate() {
        run.step(i, op)?;
    }
    let executed = run.executed;
    run.finish()?;
    Ok(executed)
}

/// Once per process, unobserved: CPython moves its total reference count the first time some
/// features are used (the first interpreter of each kind, the first Python-side destroy), so a
/// measured sequence compares like with like.
fn warm_up() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        use Act::*;
        use Kind::*;
        use Obj::*;
        use Op::*;
        use Strat::*;
        use Via::*;
        let ops = [
            Create { t: 1, kind: SharedGil },
            Use { t: 1, via: Direct, interp: 1, strat: Tagged, act: Eval(Probe) },
            Use { t: 0, via: Direct, interp: 0, strat: Tagged, act: Bind(0) },
            DropUnattached { t: 1, slot: 0 },
            EndRust { t: 0, interp: 1 },
            Create { t: 0, kind: PythonMade },
            Create { t: 1, kind: PythonMade },
            Use { t: 0, via: Direct, interp: 2, strat: Tagged, act: Eval(Probe) },
            Use { t: 1, via: Direct, interp: 3, strat: Scoped, act: Eval(Data) },
            Use { t: 1, via: Direct, interp: 0, strat: Tagged, act: Bind(1) },
            Use { t: 0, via: Direct, interp: 3, strat: Branded, act: ShareOut(2) },
            Use { t: 0, via: Direct, interp: 0, strat: Affine, act: ShareIn(0) },
            Use { t: 0, via: Direct, interp: 0, strat: Tagged, act: Eval(Probe) },
            Use { t: 1, via: Nested(2), interp: 0, strat: Scoped, act: Dup(4) },
            Use { t: 0, via: Direct, interp: 0, strat: Branded, act: ToHandle(4) },
            Use { t: 0, via: Direct, interp: 0, strat: Affine, act: Bind(4) },
            Use {
                t: 1,
                via: Direct,
                interp: 2,
                strat: Tagged,
                act: RawSwitch { into: 0, slot: 4 },
            },
            Use {
                t: 1,
                via: Direct,
                interp: 0,
                strat: Tagged,
                act: RawSwitch { into: 3, slot: 4 },
            },
            Use { t: 0, via: Direct, interp: 0, strat: Scoped, act: Dup(7) },
            Use { t: 0, via: Direct, interp: 0, strat: Tagged, act: SendTo(5) },
            Use { t: 1, via: Direct, interp: 0, strat: Branded, act: Receive },
            Use { t: 1, via: Direct, interp: 0, strat: Affine, act: SendTo(6) },
            Use { t: 0, via: Direct, interp: 0, strat: Affine, act: Receive },
            Use { t: 0, via: Direct, interp: 3, strat: Tagged, act: Eval(Bytes) },
            Use { t: 0, via: Direct, interp: 3, strat: Scoped, act: BytesNew(12) },
            Use { t: 0, via: Direct, interp: 0, strat: Branded, act: BytesIn(0) },
            BytesDrop { t: 0, bytes: 0 },
            GuardNew { t: 1, interp: 0 },
            Use { t: 1, via: Guard, interp: 0, strat: Tagged, act: DropIn(4) },
            GuardDrop { t: 1, guard: 0 },
            DropUnattached { t: 1, slot: 1 },
            ExecPy { t: 0, interp: 3 },
            DestroyPy { t: 1, interp: 2 },
            DestroyPy { t: 0, interp: 3 },
        ];
        let _ = run_ops(&ops, 1);
        let _ = run_ops(&ops, 2);
    });
}

/// Prints one child report line (flushed: the child may crash next).
fn report(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{PREFIX}{}", text.replace(['\n', '\r'], " "));
    let _ = out.flush();
}

/// The child's entry point: a no-op unless `INTERPSAFE_FUZZ_CHILD` is set. It runs the
/// sequences, reports each, and exits at the first failure (the world is then inconsistent).
#[test]
fn fuzz_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let strategies = driver::strategies_from_env();
    let runs: Vec<(u64, Option<Vec<usize>>)> = match spec.split_once(':') {
        Some(("seeds", list)) => {
            list.split(',').filter_map(|s| s.parse().ok()).map(|s| (s, None)).collect()
        }
        Some((kind @ ("known" | "fixed"), which)) => {
            let ops = if kind == "known" {
                KNOWN_FINDINGS[which.parse::<usize>().expect("an index")].reproduction.to_vec()
            } else {
                fixed(which)
            };
            report("start 0");
            match try_sequence(&ops) {
                Ok(n) => report(&format!("pass 0 {n}")),
                Err(e) => report(&format!("fail 0 {e}")),
            }
            report("done");
            std::process::exit(0);
        }
        Some(("ops", rest)) => {
            let (seed, kept) = rest.split_once(':').expect("ops:SEED:I.J.K");
            let kept = kept.split('.').filter_map(|k| k.parse().ok()).collect();
            vec![(seed.parse().expect("a seed"), Some(kept))]
        }
        _ => panic!("{CHILD_ENV}={spec}: expected seeds:... or ops:..."),
    };
    exec::prepare_main();
    warm_up();
    for (k, (seed, kept)) in runs.into_iter().enumerate() {
        let ops = match &kept {
            None => model::generate(seed, &strategies),
            Some(kept) => driver::ops_of(seed, kept, &strategies),
        };
        report(&format!("start {seed}"));
        match run_ops(&ops, (k as i64 + 2) * 1_000_000) {
            Ok(executed) => report(&format!("pass {seed} {executed}")),
            Err(e) => {
                report(&format!("fail {seed} {e}"));
                report("done");
                std::process::exit(0);
            }
        }
    }
    report("done");
    std::process::exit(0);
}

/// Shrinks and prints each failure; returns them with their reproductions.
fn shrink_and_print(
    cfg: &Config,
    found: &mut driver::Outcome,
    envs: &[(&str, &str)],
    hole: Option<&str>,
) -> Vec<(driver::Failure, String)> {
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    for f in &mut found.failures {
        let left = cfg.shrink.saturating_sub(start.elapsed());
        driver::shrink(f, envs, left);
        let code = driver::reproduction(f, &cfg.strategies, hole);
        println!(
            "\nFAILURE{} seed={} (strategies {}): {}\nminimal reproduction ({} of {} operations):\n{code}",
            hole.map_or(String::new(), |h| format!(" [hole {h}]")),
            f.seed,
            cfg.strategies.iter().map(|s| s.name()).collect::<Vec<_>>().join(","),
            f.message,
            f.kept.len(),
            f.generated
        );
        out.push((f.clone(), code));
    }
    out
}

/// The bounded search: `INTERPSAFE_FUZZ_CASES` sequences (6 when unset: a smoke run in the plain
/// test stage; `cargo xtask test` and `cargo xtask fuzz` ask for more), every one in a child.
#[test]
fn adversarial_search() {
    if std::env::var_os(CHILD_ENV).is_some() || std::env::var_os("INTERPSAFE_FUZZ_HOLES").is_some()
    {
        return;
    }
    let cfg = Config::from_env(6);
    let mut found = driver::search(&cfg, &[], false);
    // Failures of a known finding are reported, not shrunk again, and do not fail the run.
    let (known, new): (Vec<_>, Vec<_>) =
        found.failures.drain(..).partition(|f| known_finding(&f.message).is_some());
    found.failures = new;
    for f in &known {
        let k = known_finding(&f.message).expect("partitioned");
        println!("KNOWN FINDING {} hit by seed {}: {}", k.name, f.seed, k.what);
    }
    let mut repros = shrink_and_print(&cfg, &mut found, &[], None);
    println!(
        "adversarial search on {}: {} sequences, {} operations, {} failure(s), {} hit(s) of known findings in {:.1}s (seeds {}..)",
        interpsafe::environment::interpreter_build().name,
        found.cases,
        found.ops,
        found.failures.len(),
        known.len(),
        found.elapsed.as_secs_f64(),
        cfg.base
    );
    for f in known {
        let k = known_finding(&f.message).expect("partitioned");
        let code = format!("// KNOWN_FINDINGS: {}\nrun_sequence(&{:?});\n", k.name, k.reproduction);
        repros.push((
            driver::Failure { message: format!("known finding {}: {}", k.name, f.message), ..f },
            code,
        ));
    }
    if let Some(path) = &cfg.out {
        ResultFile::new(
            "interp-tests adversarial_search",
            driver::records(&cfg, &found, None, &repros),
        )
        .write(path)
        .expect("write the fuzz results");
        println!("results in {}", path.display());
    }
    assert!(
        found.failures.is_empty(),
        "the adversarial search found {} failure(s); see above",
        found.failures.len()
    );
}

/// With `INTERPSAFE_FUZZ_HOLES` (`all` or hole names) in a `--cfg interpsafe_seeds` build:
/// reopens each hole in turn (children get `INTERPSAFE_SEEDS`) and requires the search to find
/// it within `INTERPSAFE_FUZZ_CASES` sequences (the first failing seed must pass with the hole
/// closed, so the failure is the hole's). Prints how many sequences each needed.
#[test]
fn seeded_holes_are_found() {
    let Ok(which) = std::env::var("INTERPSAFE_FUZZ_HOLES") else {
        return;
    };
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if !SEEDS_BUILD {
        panic!("INTERPSAFE_FUZZ_HOLES needs a build with RUSTFLAGS=\"--cfg interpsafe_seeds\"");
    }
    let holes: Vec<Hole> = if which.trim() == "all" {
        Hole::ALL.to_vec()
    } else {
        which
            .split(',')
            .map(|n| {
                Hole::find(n.trim()).unwrap_or_else(|| {
                    panic!("unknown hole {n:?}; known: {}", Hole::ALL.map(Hole::name).join(", "))
                })
            })
            .collect()
    };
    let cfg = Config::from_env(200);
    let mut records = Vec::new();
    let mut missed = Vec::new();
    let mut lines = Vec::new();
    for hole in holes {
        let envs = [(SEEDS_ENV, hole.name())];
        let mut found = driver::search(&cfg, &envs, true);
        found.failures.truncate(1);
        let attributed = found.failures.first().map(|f| {
            matches!(driver::run_alone(f.seed, None, &[(SEEDS_ENV, "")]), driver::Verdict::Pass(_))
        });
        let repros = shrink_and_print(&cfg, &mut found, &envs, Some(hole.name()));
        let line = match (found.first_failure_at, attributed) {
            (Some(n), Some(true)) => format!(
                "{}: found after {n} sequence(s) in {:.1}s",
                hole.name(),
                found.elapsed.as_secs_f64()
            ),
            (Some(n), _) => {
                missed.push(hole.name());
                format!(
                    "{}: sequence {n} failed, but it fails with the hole closed too",
                    hole.name()
                )
            }
            (None, _) => {
                missed.push(hole.name());
                format!(
                    "{}: NOT found in {} sequences ({:.1}s)",
                    hole.name(),
                    found.cases,
                    found.elapsed.as_secs_f64()
                )
            }
        };
        println!("{line}");
        lines.push(line);
        records.extend(driver::records(&cfg, &found, Some(hole.name()), &repros));
    }
    println!("\nseeded holes:\n  {}", lines.join("\n  "));
    if let Some(path) = &cfg.out {
        ResultFile::new("interp-tests adversarial_search (seeded holes)", records)
            .write(path)
            .expect("write the fuzz results");
        println!("results in {}", path.display());
    }
    assert!(missed.is_empty(), "holes not found: {}", missed.join(", "));
}

/// Each known finding's reproduction, run in a child: printed with whether it still fails on
/// this build (some are build-specific, so this does not assert; a fixed one moves to a regular
/// `run_sequence` test).
#[test]
fn known_findings() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    for (i, k) in KNOWN_FINDINGS.iter().enumerate() {
        let v = driver::run_spec(&format!("known:{i}"), 0, &[]);
        let state = match v {
            driver::Verdict::Fail(m) if m.contains(k.signature) => "still reproduces on this build",
            driver::Verdict::Fail(_) => "fails differently on this build",
            driver::Verdict::Pass(_) => "does not reproduce on this build",
        };
        println!("known finding {}: {state}: {}", k.name, k.what);
    }
}

/// The model and the generator agree on what they generate: every generated operation resolves.
#[test]
fn generated_sequences_resolve_in_the_model() {
    for seed in 0..200 {
        let ops = model::generate(seed, &Strat::ALL);
        let mut m = model::Model::new(0);
        for op in &ops {
            assert_ne!(m.apply(op), model::Outcome::Skip, "seed {seed}: {op:?}");
        }
        assert_eq!(ops, model::generate(seed, &Strat::ALL), "generation is deterministic");
    }
}

/// Strategy mixing across threads and interpreters, a blocked Python-side destroy and the
/// refusals, as one fixed sequence.
fn mixed_sequence() -> Vec<Op> {
    use Act::*;
    use Init::*;
    use Kind::*;
    use Obj::*;
    use Op::*;
    use Strat::*;
    use Via::*;
    vec![
        Create { t: 0, kind: OwnGil },
        Create { t: 1, kind: PythonMade },
        Use { t: 0, via: Direct, interp: 1, strat: Tagged, act: Eval(Probe) },
        Use { t: 1, via: Direct, interp: 0, strat: Branded, act: Bind(0) },
        Use { t: 1, via: Nested(2), interp: 1, strat: Scoped, act: Dup(0) },
        Use { t: 0, via: Direct, interp: 1, strat: Affine, act: SendTo(1) },
        Use { t: 1, via: Direct, interp: 2, strat: Affine, act: Receive },
        Use { t: 0, via: Direct, interp: 2, strat: Tagged, act: Eval(Singleton) },
        Use { t: 1, via: Direct, interp: 0, strat: Affine, act: Bind(2) },
        Use {
            t: 0,
            via: Direct,
            interp: 0,
            strat: Tagged,
            act: Once { cell: 0, init: FromSlot(0) },
        },
        GuardNew { t: 1, interp: 2 },
        Use { t: 1, via: Guard, interp: 2, strat: Tagged, act: Eval(Bytes) },
        Use { t: 1, via: Guard, interp: 2, strat: Branded, act: BytesNew(3) },
        DestroyPy { t: 0, interp: 2 },
        Use { t: 1, via: Guard, interp: 2, strat: Tagged, act: Eval(Probe) },
        Use { t: 0, via: Direct, interp: 0, strat: Scoped, act: BytesIn(0) },
        Use { t: 1, via: Direct, interp: 0, strat: Scoped, act: BytesIn(0) },
        BytesDrop { t: 1, bytes: 0 },
        Use { t: 1, via: Guard, interp: 2, strat: Tagged, act: Eval(Probe) },
        GuardDrop { t: 1, guard: 0 },
        Use { t: 0, via: Direct, interp: 1, strat: Tagged, act: RawSwitch { into: 0, slot: 0 } },
        EndRust { t: 1, interp: 1 },
        DestroyPy { t: 0, interp: 1 },
    ]
}

/// The fixed sequences, by name, for `fixed:NAME` children.
fn fixed(name: &str) -> Vec<Op> {
    match name {
        "mixed" => mixed_sequence(),
        "toolkit-end" => {
            vec![Op::Create { t: 0, kind: Kind::OwnGil }, Op::EndRust { t: 0, interp: 1 }]
        }
        other => panic!("no fixed sequence {other:?}"),
    }
}

/// The fixed mixed sequence matches the model (run in a child: a known finding may abort it).
#[test]
fn a_mixed_sequence_matches_the_model() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    match driver::run_spec("fixed:mixed", 0, &[]) {
        driver::Verdict::Pass(_) => {}
        driver::Verdict::Fail(m) => match known_finding(&m) {
            Some(k) => println!("known finding {} stops the mixed sequence on this build", k.name),
            None => panic!("{m}"),
        },
    }
}

/// A finding of the search (no hole on), fixed since: on a `--with-pydebug` build, ending any
/// toolkit subinterpreter aborted the process (`PyThreadState_Clear: Assertion
/// '!_PyThreadState_IsRunningMain(tstate)' failed`): the worker kept its thread state marked as
/// the interpreter's running main through `Py_EndInterpreter` (c0a82e5, fixed by 8131aab). Run
/// in a child, since a regression aborts.
#[test]
fn toolkit_end_on_a_debug_build() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    match driver::run_spec("fixed:toolkit-end", 0, &[]) {
        driver::Verdict::Pass(_) => {}
        driver::Verdict::Fail(m) => panic!("{m}"),
    }
}
