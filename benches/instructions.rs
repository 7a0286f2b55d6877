//! Instruction counts of the single-thread operations, strategy against strategy: callgrind
//! through gungraun, run by `cargo xtask bench` (which installs the runner of the exact gungraun
//! version and valgrind). Not part of `cargo xtask test` (`bench = false` in Cargo.toml keeps it
//! out of `cargo test --benches`).
//!
//! # Method
//!
//! Each benchmark runs in its own process under callgrind. Everything outside one function,
//! [`interpsafe_measured_region`], is excluded from the count: gungraun's entry point is set to
//! that function (callgrind's `--toggle-collect`), so interpreter start-up, attaching, entering
//! the scope, creating the handle and filling the once-cell happen inside the benchmark but are
//! not counted. The region runs the operation [`N`] times in a loop; the `baseline` group runs the
//! same loop with nothing in it, attached and in a scope the same way. Per operation:
//! `(count(operation) - count(baseline)) / N`, which removes the loop and the call into the
//! region. The `operations` group enters only the main interpreter (the tagged strategy's fast
//! path on), as in the `single_interpreter` criterion bench; the `several` group (functions named
//! `<op>_several`) measures the same operations in main with an own-GIL subinterpreter alive, as
//! in the `several_interpreters` criterion bench (the tagged strategy's per-access lookup).
//! Valgrind runs the free-threaded build too (3.13t with its mimalloc: callgrind does not
//! replace the allocator), so both builds are counted.
//!
//! # Names
//!
//! Benchmarks are generated per strategy from `for_each_strategy!` (gungraun's `iter`), so their
//! ids are `<op>.strategy_<index>`; the main setup writes the ordered strategy names and [`N`] to
//! [`NAMES_FILE`] (in `<target>/tmp/`), where `cargo xtask bench` reads them to turn gungraun's
//! summaries into per-operation figures.

// gungraun's macros generate public modules, functions and constants without docs.
#![allow(missing_docs)]

use std::hint::black_box;

use gungraun::prelude::*;
use gungraun::{Callgrind, EntryPoint};
use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::{lookup, only_main_seen};
use interpsafe::strategy::Unchecked;
use interpsafe::{attach, Isolation, Strategy, SubInterpreter};

/// Operations per measured region.
const N: usize = 1000;

/// Where the strategies' names (in `iter` order) and [`N`] are written, as JSON.
const NAMES_FILE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/interpsafe-instructions.json");

/// The only code callgrind counts (the toggle-collect entry point): runs `body` once.
#[inline(never)]
#[no_mangle]
pub fn interpsafe_measured_region(body: &mut dyn FnMut()) {
    body();
}

/// Runs `op` [`N`] times inside the measured region.
#[inline(always)]
fn measured(mut op: impl FnMut()) {
    let mut body = || {
        for i in 0..black_box(N) {
            black_box(i);
            op();
        }
    };
    interpsafe_measured_region(&mut body);
}

/// The operations measured.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// The empty loop (subtracted from every other figure).
    Baseline,
    /// `bind`: the check alone.
    Bind,
    /// `bind` then `getattr(obj, '__class__')` and the release of the result, as in the
    /// criterion bench: the per-operation target (`xtask/src/targets.rs`), counted.
    BindGetattr,
    /// Clone a handle and drop the clone.
    CloneDrop,
    /// Enter the strategy's scope on an attached thread.
    EnterScope,
    /// Read a once-cell filled in this interpreter.
    OnceGet,
}

/// How many interpreters are alive while an operation is measured (always in main).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alive {
    /// Only main: the tagged strategy's fast path.
    MainOnly,
    /// Main and an own-GIL subinterpreter.
    Two,
}

/// Runs `op` for strategy `S`: setup outside the region, `N` operations inside it.
fn run<S: Strategy>(op: Op, alive: Alive) {
    let key = main_interpreter();
    let other = match alive {
        Alive::MainOnly => None,
        Alive::Two => Some(SubInterpreter::new(Isolation::OwnGil).expect("a second interpreter")),
    };
    assert_eq!(only_main_seen(), alive == Alive::MainOnly, "interpreters alive: {alive:?}");
    attach(key, |at| match op {
        Op::EnterScope => measured(|| {
            black_box(S::enter(at, |scope| black_box(S::key(scope))));
        }),
        _ => S::enter(at, |scope| {
            let h = S::eval(scope, c"object()").expect("a handle");
            match op {
                Op::Baseline => measured(|| {}),
                Op::BindGetattr => measured(|| {
                    let r = S::bind(scope, black_box(&h)).expect("bind");
                    black_box(
                        interpsafe::ops::getattr::<S>(scope, r, c"__class__").expect("getattr"),
                    );
                }),
                Op::Bind => measured(|| {
                    black_box(S::bind(scope, black_box(&h)).is_ok());
                }),
                Op::CloneDrop => measured(|| {
                    drop(black_box(S::clone_handle(scope, black_box(&h)).expect("clone")));
                }),
                Op::OnceGet => {
                    let cell = S::Once::default();
                    S::once(&cell, scope, |scope| S::eval(scope, c"object()"))
                        .expect("fill the cell");
                    measured(|| {
                        black_box(S::as_obj(
                            S::once(&cell, scope, |_| unreachable!()).expect("get"),
                        ));
                    });
                    if !S::CHECKED {
                        // An unchecked row's global cell must not be dropped off its interpreter later.
                        std::mem::forget(cell);
                    }
                }
                Op::EnterScope => unreachable!(),
            }
        }),
    })
    .expect("attach for a benchmark");
    drop(other);
}

/// The registered strategies' names, in registration order: the `iter` of every benchmark.
fn strategies() -> Vec<&'static str> {
    let mut names = Vec::new();
    macro_rules! one {
        ($s:ty) => {
            names.push(<$s as Strategy>::NAME);
        };
    }
    interpsafe::for_each_strategy!(one);
    names
}

/// Runs `op` for the strategy named `name`.
fn dispatch(name: &str, op: Op, alive: Alive) {
    macro_rules! one {
        ($s:ty) => {
            if <$s as Strategy>::NAME == name {
                return run::<$s>(op, alive);
            }
        };
    }
    interpsafe::for_each_strategy!(one);
    panic!("no strategy named {name}");
}

/// Writes [`NAMES_FILE`] (the main setup, run once before the benchmarks):
/// `{"operations_per_region": N, "strategies": ["unchecked", ...]}`.
fn write_names() {
    let names: Vec<String> = strategies().iter().map(|n| format!("\"{n}\"")).collect();
    let text =
        format!("{{\"operations_per_region\": {N}, \"strategies\": [{}]}}\n", names.join(", "));
    std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).expect("create the target tmp dir");
    std::fs::write(NAMES_FILE, text).expect("write the names file");
}

#[library_benchmark]
fn empty_loop() {
    run::<Unchecked>(Op::Baseline, Alive::MainOnly);
}

// `PyThreadState_GetUnchecked`: the CPython call that bounds the tagged strategy's lookup with
// several interpreters, counted the same way (attached to main, in the region, the empty loop
// subtracted). xtask reports it under the call's name (gungraun takes no doc attribute here).
#[library_benchmark]
fn thread_state_get_unchecked() {
    let key = main_interpreter();
    attach(key, |_| {
        measured(|| {
            // SAFETY: PyThreadState_GetUnchecked may be called in any state.
            black_box(unsafe { pyo3_ffi::PyThreadState_GetUnchecked() });
        });
    })
    .expect("attach for a benchmark");
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn bind(name: &'static str) {
    dispatch(name, Op::Bind, Alive::MainOnly);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn bind_getattr(name: &'static str) {
    dispatch(name, Op::BindGetattr, Alive::MainOnly);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn clone_drop(name: &'static str) {
    dispatch(name, Op::CloneDrop, Alive::MainOnly);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn enter_scope(name: &'static str) {
    dispatch(name, Op::EnterScope, Alive::MainOnly);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn once_get(name: &'static str) {
    dispatch(name, Op::OnceGet, Alive::MainOnly);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn bind_several(name: &'static str) {
    dispatch(name, Op::Bind, Alive::Two);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn bind_getattr_several(name: &'static str) {
    dispatch(name, Op::BindGetattr, Alive::Two);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn clone_drop_several(name: &'static str) {
    dispatch(name, Op::CloneDrop, Alive::Two);
}

#[library_benchmark]
#[benches::strategy(iter = strategies())]
fn once_get_several(name: &'static str) {
    dispatch(name, Op::OnceGet, Alive::Two);
}

library_benchmark_group!(name = baseline, benchmarks = [empty_loop]);
library_benchmark_group!(name = reference, benchmarks = [thread_state_get_unchecked]);
library_benchmark_group!(
    name = operations,
    benchmarks = [bind, bind_getattr, clone_drop, enter_scope, once_get]
);
library_benchmark_group!(
    name = several,
    benchmarks = [bind_several, bind_getattr_several, clone_drop_several, once_get_several]
);

main!(
    config = LibraryBenchmarkConfig::default()
        // The interpreter's run-time environment (LD_LIBRARY_PATH, PYTHON*) is kept.
        .env_clear(false)
        .tool(Callgrind::default().entry_point(EntryPoint::Custom("interpsafe_measured_region".into())));
    setup = write_names();
    library_benchmark_groups = baseline, reference, operations, several
);
