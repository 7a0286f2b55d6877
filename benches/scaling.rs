//! Thread scaling: throughput of the same per-strategy operation on 1 and 2 threads, and on 1
//! and 2 own-GIL interpreters, beside a pure-Rust control loop measured in the same run.
//!
//! The operation is `bind` plus `clone_handle` and drop of the clone (a check, an incref and a
//! decref): it touches the object's reference count, so threads sharing one object contend on
//! it. Scenarios:
//! - `threads/independent`: each thread attached to the main interpreter with its own object
//!   (true parallelism only on a free-threaded build);
//! - `threads/shared`: each thread with its own handle to one shared object;
//! - `interpreters`: each thread attached to its own own-GIL subinterpreter (parallel on a GIL
//!   build too);
//! - `control`: a pure-Rust loop of similar length on thread-private data: the machine's own
//!   scaling ceiling (two vCPUs may be one core's two hyperthreads).
//!
//! Each scenario is measured as 5 back-to-back pairs (1 thread, then 2; 1 pair in smoke mode):
//! each throughput is the median of its 5, and `scaling` is the median of the 5 per-pair ratios
//! of the throughput with 2 threads over the throughput with 1 (1.0 on the 1-thread figures,
//! which marks them as scaling figures). Each figure's spread (`ns_interval`) is the min–max of
//! its ns/op over the 5 runs. Figures are printed and,
//! when `INTERPSAFE_SCALING_OUT` names a file, written there as interpsafe results records. Run
//! without `--bench` (as `cargo test --benches` does) it only smoke-tests each scenario.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use interpsafe::environment::current_environment;
use interpsafe::interpreter::main_interpreter;
use interpsafe::results::{BenchFigure, Interval, RecordData, ResultFile, ResultRecord};
use interpsafe::{attach, for_each_strategy, InterpreterKey, Isolation, Strategy, SubInterpreter};

/// How many times each throughput is measured; the median is reported (these machines are
/// noisy, and one short window can land on a busy moment of the other vCPU).
fn repetitions() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        5
    } else {
        1
    }
}

/// The median of `v`.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `runs` pairs of measurements, one thread then two, back to back: the 1-thread and 2-thread
/// throughputs of every run, and the median of the per-pair ratios as the scaling. Pairing keeps a
/// slow stretch of the machine (these are shared VMs) inside one ratio instead of skewing all
/// the 1-thread runs against all the 2-thread ones: the first full run measured them in two
/// blocks, and one block landing on a busy minute moved a ratio by 15%.
fn paired(
    runs: usize,
    mut one: impl FnMut() -> f64,
    mut two: impl FnMut() -> f64,
) -> (Vec<f64>, Vec<f64>, f64) {
    let (mut t1, mut t2, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (a, b) = (one(), two());
        t1.push(a);
        t2.push(b);
        ratio.push(b / a);
    }
    (t1, t2, median(ratio))
}

/// Iterations per thread per measurement: about 0.1-0.3 s per window for the strategies (2
/// million, the first choice, gave 10 ms windows, and ratios above 2 from noise alone).
fn iterations() -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        20_000_000
    } else {
        2_000
    }
}

/// Runs `iters` operations of `S` on each of `keys.len()` threads (thread i attached to keys[i]);
/// `shared` gives every thread a handle to one object of keys[0]. Returns total ops per second.
fn run_strategy<S: Strategy>(keys: &[InterpreterKey], shared: bool, iters: u64) -> f64 {
    let n = keys.len();
    // Shared: one stored handle per thread, all to one object made here. Independent: each
    // worker makes its own object on its own thread (below), as independent work would: on 3.13t
    // that thread then owns the object's biased reference count, and the objects come from
    // per-thread heaps rather than neighbouring slots of one (made here, two `object()`s can
    // share a cache line, and their shared reference counts then contend: false sharing that
    // halved the 2-thread throughput of some strategies in the first full run).
    let mut stored: Vec<Option<S::Stored>> = Vec::new();
    if shared {
        let handles = attach(keys[0], move |at| {
            S::enter(at, |scope| {
                let h = S::eval(scope, c"object()").unwrap();
                (0..n)
                    .map(|_| S::store(scope, S::clone_handle(scope, &h).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .unwrap();
        stored.extend(handles.into_iter().map(Some));
    } else {
        stored.extend((0..n).map(|_| None));
    }
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut workers = Vec::new();
    for (i, &key) in keys.iter().enumerate() {
        let barrier = barrier.clone();
        let mine = stored[i].take();
        workers.push(std::thread::spawn(move || {
            attach(key, move |at| {
                S::enter(at, |scope| {
                    let h = match mine {
                        Some(stored) => S::load(scope, stored).unwrap(),
                        None => S::eval(scope, c"object()").unwrap(),
                    };
                    barrier.wait();
                    for _ in 0..iters {
                        black_box(S::bind(scope, black_box(&h)).is_ok());
                        drop(black_box(S::clone_handle(scope, &h).unwrap()));
                    }
                    barrier.wait();
                    drop(h);
                })
            })
            .unwrap();
        }));
    }
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let elapsed = start.elapsed();
    for w in workers {
        w.join().unwrap();
    }
    (n as u64 * iters) as f64 / elapsed.as_secs_f64()
}

/// The control: a pure-Rust loop on thread-private data, 1 or 2 threads.
fn run_control(threads: usize, iters: u64) -> f64 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut state = [0u64; 4];
                barrier.wait();
                for i in 0..iters {
                    // About the work of a check plus two reference-count updates.
                    state[(i & 3) as usize] = black_box(state[(i & 3) as usize].wrapping_add(i));
                    black_box(&mut state);
                }
                barrier.wait();
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let elapsed = start.elapsed();
    for w in workers {
        w.join().unwrap();
    }
    (threads as u64 * iters) as f64 / elapsed.as_secs_f64()
}

/// The record of one throughput measured `runs.len()` times (ops/s): the median as ns/op per
/// thread, and the min–max over the runs as its spread.
fn figure(
    operation: &str,
    strategy: &str,
    threads: u32,
    interpreters: u32,
    runs: &[f64],
    scaling: Option<f64>,
) -> ResultRecord {
    let ns = |ops: f64| 1e9 / ops * threads as f64;
    let (fastest, slowest) =
        runs.iter().fold((0.0_f64, f64::MAX), |(hi, lo), &v| (hi.max(v), lo.min(v)));
    ResultRecord {
        environment: current_environment(),
        data: RecordData::Bench(BenchFigure {
            operation: operation.to_string(),
            strategy: strategy.to_string(),
            threads,
            interpreters,
            ns_per_op: Some(ns(median(runs.to_vec()))),
            instructions_per_op: None,
            scaling,
            ns_interval: Some(Interval { low: ns(fastest), high: ns(slowest) }),
        }),
    }
}

fn main() {
    let iters = iterations();
    let main = main_interpreter();
    let mut records = Vec::new();
    let reps = repetitions();
    let (one, two, scaling) =
        paired(reps, || run_control(1, iters * 100), || run_control(2, iters * 100));
    let (m1, m2) = (median(one.clone()), median(two.clone()));
    println!("control: 1 thread {m1:.3e} ops/s, 2 threads {m2:.3e} ops/s, scaling {scaling:.2}");
    records.push(figure("control", "pure-rust", 1, 0, &one, Some(1.0)));
    records.push(figure("control", "pure-rust", 2, 0, &two, Some(scaling)));

    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let free_threaded = cfg!(Py_GIL_DISABLED);
    macro_rules! scenarios {
        ($s:ty) => {{
            let name = <$s>::NAME;
            let mut measure = |operation: &str, keys1: &[InterpreterKey], keys2: &[InterpreterKey], shared: bool, interps: (u32, u32)| {
                let (t1, t2, scaling) = paired(
                    reps,
                    || run_strategy::<$s>(keys1, shared, iters),
                    || run_strategy::<$s>(keys2, shared, iters),
                );
                let (m1, m2) = (median(t1.clone()), median(t2.clone()));
                println!("{operation} {name}: 1 thread {m1:.3e} ops/s, 2 threads {m2:.3e} ops/s, scaling {scaling:.2}");
                records.push(figure(operation, name, 1, interps.0, &t1, Some(1.0)));
                records.push(figure(operation, name, 2, interps.1, &t2, Some(scaling)));
            };
            if free_threaded {
                measure("threads/independent", &[main], &[main, main], false, (1, 1));
                measure("threads/shared", &[main], &[main, main], true, (1, 1));
            }
            measure("interpreters", &[a.key()], &[a.key(), b.key()], false, (1, 2));
        }};
    }
    for_each_strategy!(scenarios);
    drop((a, b));
    if let Ok(path) = std::env::var("INTERPSAFE_SCALING_OUT") {
        ResultFile::new("benches/scaling", records).write(std::path::Path::new(&path)).unwrap();
        println!("wrote {path}");
    }
}
