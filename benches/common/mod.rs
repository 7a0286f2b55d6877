//! The operations every bench binary measures, written once and generic over the strategy.
//!
//! Each benchmark attaches to one interpreter once, enters the strategy's scope once, and then
//! measures only the steady-state operation; entering the scope is its own benchmark.
//! Benchmark IDs are `<group>/<strategy>`, so strategies sit side by side in every group.

#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, Criterion};
use interpsafe::interpreter::main_interpreter;
use interpsafe::share::{Shareable, SharedBytes};
use interpsafe::{attach, InterpreterKey, Strategy};
use pyo3_ffi as ffi;

/// Runs `body` attached to `key`, inside a scope of `S`.
fn in_scope<S: Strategy, R: Send>(
    key: InterpreterKey,
    body: impl for<'s> FnOnce(&interpsafe::Attached<'_>, &S::Scope<'s>) -> R + Send,
) -> R {
    attach(key, |at| S::enter(at, |scope| body(at, scope))).expect("attach for a benchmark")
}

/// `bind`: the check alone.
pub fn bind<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(S::NAME, |b| {
        in_scope::<S, _>(key, |_, scope| {
            let h = S::eval(scope, c"object()").unwrap();
            b.iter(|| {
                black_box(S::bind(scope, black_box(&h)).is_ok());
            });
        })
    });
}

/// `bind` then `getattr(obj, '__class__')` and release of the result.
pub fn bind_getattr<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(S::NAME, |b| {
        in_scope::<S, _>(key, |_, scope| {
            let h = S::eval(scope, c"object()").unwrap();
            b.iter(|| {
                let r = S::bind(scope, black_box(&h)).unwrap();
                black_box(interpsafe::ops::getattr::<S>(scope, r, c"__class__").unwrap());
            });
        })
    });
}

/// `list.append(item)` through two handles (the list is emptied every 4096 appends).
pub fn list_append<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(S::NAME, |b| {
        in_scope::<S, _>(key, |_, scope| {
            let list = S::eval(scope, c"[]").unwrap();
            let item = S::eval(scope, c"object()").unwrap();
            let mut n = 0u32;
            b.iter(|| {
                let l = S::bind(scope, black_box(&list)).unwrap();
                let i = S::bind(scope, black_box(&item)).unwrap();
                interpsafe::ops::list_append::<S>(scope, l, i).unwrap();
                n += 1;
                if n == 4096 {
                    n = 0;
                    // SAFETY: attached to the list's interpreter (inside the scope).
                    unsafe {
                        ffi::PyList_SetSlice(
                            S::as_obj(l).as_ptr(),
                            0,
                            ffi::PY_SSIZE_T_MAX,
                            std::ptr::null_mut(),
                        );
                    }
                }
            });
        })
    });
}

/// Clone a handle and drop the clone (incref + decref, with the strategy's checks).
pub fn clone_drop<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(S::NAME, |b| {
        in_scope::<S, _>(key, |_, scope| {
            let h = S::eval(scope, c"object()").unwrap();
            b.iter(|| drop(black_box(S::clone_handle(scope, black_box(&h)).unwrap())));
        })
    });
}

/// Entering the strategy's scope on an attached thread (what a brand or a scope costs once).
pub fn enter_scope<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(S::NAME, |b| {
        attach(key, |at| {
            b.iter(|| S::enter(at, |scope| black_box(S::key(scope))));
        })
        .unwrap()
    });
}

/// A once-cell read after it was filled in this interpreter.
pub fn once_get<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(S::NAME, |b| {
        in_scope::<S, _>(key, |_, scope| {
            let cell = S::Once::default();
            S::once(&cell, scope, |scope| S::eval(scope, c"object()")).unwrap();
            b.iter(|| {
                black_box(S::as_obj(S::once(&cell, scope, |_| unreachable!()).unwrap()));
            });
            if !S::CHECKED {
                // An unchecked row's global cell must not be dropped off its interpreter later.
                std::mem::forget(cell);
            }
        })
    });
}

/// Send a small tuple as data: read it out of one object, re-create it (same interpreter, so the
/// number is the data path alone, not an interpreter switch).
pub fn send_small_tuple<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(S::NAME, |b| {
        in_scope::<S, _>(key, |_, scope| {
            let h = S::eval(scope, c"(1, 'two', 3.0, None)").unwrap();
            b.iter(|| {
                let v = Shareable::from_object(S::as_obj(S::bind(scope, &h).unwrap())).unwrap();
                black_box(v.to_handle::<S>(scope).unwrap());
            });
        })
    });
}

/// Times `op` once per iteration, its result dropped inside the timed region, and lets the
/// thread pass a quiescent state between iterations, outside it.
///
/// Free-threaded builds allocate objects with mimalloc, and a page freed in an object heap is
/// reused only once every thread has passed a QSBR quiescent state since (lock-free readers may
/// still look at it). CPython passes one at every detach and eval-breaker check; a Rust loop that
/// never detaches passes none, so each iteration's 1 MiB `bytes` lands on a fresh page: 256 page
/// faults when mimalloc takes new memory, cold caches when it does not, and which of the two
/// depended on what ran before (on 3.13t the first strategies measured faulted, the later ones did
/// not: 0.9-1.3 ms against 160-250 µs copied). Detaching and re-attaching the same thread state
/// between iterations, as any Python caller would, lets the freed page be reused; that costs
/// about a microsecond and is not timed. On GIL builds it only releases and takes the GIL.
fn iter_quiescent<O>(b: &mut Bencher<'_, WallTime>, mut op: impl FnMut() -> O) {
    b.iter_custom(|iters| {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            drop(black_box(op()));
            timed += start.elapsed();
            // SAFETY: the thread is attached (inside a scope); the same thread state is
            // re-attached at once, and nothing runs meanwhile that could end its interpreter.
            unsafe { ffi::PyEval_RestoreThread(ffi::PyEval_SaveThread()) };
        }
        timed
    });
}

/// Send 1 MiB of bytes: copied through Rust (`Shareable`) or read in place (`SharedBytes`).
/// Both allocate 1 MiB per iteration (the copied path 2 MiB), so their figures depend on the
/// allocator's state; see [`settle_allocator`] and [`iter_quiescent`] for how every strategy
/// gets the same one.
pub fn send_mib_bytes<S: Strategy>(g: &mut BenchmarkGroup<'_, WallTime>, key: InterpreterKey) {
    g.bench_function(format!("{}/copied", S::NAME), |b| {
        in_scope::<S, _>(key, |_, scope| {
            let h = S::eval(scope, c"bytes(1 << 20)").unwrap();
            iter_quiescent(b, || {
                let v = Shareable::from_object(S::as_obj(S::bind(scope, &h).unwrap())).unwrap();
                v.to_handle::<S>(scope).unwrap()
            });
        })
    });
    // In place needs an owner to keep alive; a strategy that records none (the baseline) cannot
    // vouch for one, and SharedBytes refuses it. The baseline's in-place send is then what PyO3
    // code does today: keep the object alive with a strong reference of its own (SharedBytes
    // keeps a handle too), read the buffer where it is, copy it into a new `bytes`. The data
    // work is the same; what it leaves out (the owner check, the interpreter guard, the pin
    // mark) is what SharedBytes costs over it, which is what the ratio is to show.
    let records_owners = in_scope::<S, _>(key, |_, scope| {
        let h = S::eval(scope, c"b''").unwrap();
        S::owner_of(scope, S::bind(scope, &h).unwrap()).is_some()
    });
    if !records_owners {
        g.bench_function(format!("{}/in-place", S::NAME), |b| {
            in_scope::<S, _>(key, |_, scope| {
                let h = S::eval(scope, c"bytes(1 << 20)").unwrap();
                iter_quiescent(b, || {
                    let kept = S::clone_handle(scope, &h).unwrap();
                    let p = S::as_obj(S::bind(scope, &kept).unwrap()).as_ptr();
                    // SAFETY: attached, inside the scope; `p` is an exact bytes object that
                    // `kept` holds alive until the copy is made; a new reference or NULL.
                    let copy = unsafe {
                        let (data, len) = (ffi::PyBytes_AsString(p), ffi::PyBytes_Size(p));
                        ffi::PyBytes_FromStringAndSize(data, len)
                    };
                    let copy = std::ptr::NonNull::new(copy).expect("PyBytes_FromStringAndSize");
                    // SAFETY: a new reference made in the scope's interpreter.
                    unsafe { S::adopt(scope, copy) }
                });
            })
        });
        return;
    }
    g.bench_function(format!("{}/in-place", S::NAME), |b| {
        in_scope::<S, _>(key, |_, scope| {
            let h = S::eval(scope, c"bytes(1 << 20)").unwrap();
            iter_quiescent(b, || {
                let v = SharedBytes::new::<S>(scope, S::bind(scope, &h).unwrap()).unwrap();
                v.to_handle::<S>(scope).unwrap()
            });
        })
    });
}

/// CPython's own ways to reach per-interpreter state, beside the once-cells:
/// `PyInterpreterState_GetDict` plus a dict lookup, and the bare `PyThreadState_GetUnchecked`
/// call that bounds the tagged strategy's slow path.
pub fn cpython_references(c: &mut Criterion, key: InterpreterKey) {
    let mut g = c.benchmark_group("reference");
    g.bench_function("PyThreadState_GetUnchecked", |b| {
        attach(key, |_| {
            // SAFETY: may be called in any state.
            b.iter(|| black_box(unsafe { ffi::PyThreadState_GetUnchecked() }));
        })
        .unwrap()
    });
    g.bench_function("PyInterpreterState_GetDict+lookup", |b| {
        attach(key, |_| {
            // SAFETY: attached; the dict is borrowed from the interpreter; the key string is new
            // and released at the end; the value stored is None (immortal).
            unsafe {
                let tstate = ffi::PyThreadState_GetUnchecked();
                let dict =
                    ffi::PyInterpreterState_GetDict(ffi::PyThreadState_GetInterpreter(tstate));
                let k = ffi::PyUnicode_FromString(c"interpsafe.bench".as_ptr());
                ffi::PyDict_SetItem(dict, k, ffi::Py_None());
                b.iter(|| {
                    let t = ffi::PyThreadState_GetUnchecked();
                    let d = ffi::PyInterpreterState_GetDict(ffi::PyThreadState_GetInterpreter(t));
                    black_box(ffi::PyDict_GetItemWithError(d, k));
                });
                ffi::Py_DECREF(k);
            }
        })
        .unwrap()
    });
    g.finish();
}

/// Fixes glibc malloc's thresholds for the whole bench process, before any group runs.
///
/// glibc adjusts two thresholds at run time: the first free of an mmapped chunk (1 MiB is above
/// the default 128 KiB mmap threshold) raises the mmap threshold to that chunk's size and the
/// trim threshold to twice that. From then on, whether `send_1mib_bytes/copied` (a 1 MiB `Vec` and
/// a 1 MiB `bytes` from glibc on GIL builds, both freed each iteration) hands its 2 MiB back to
/// the kernel every iteration (`brk` down, then about 480 page faults to take it back: 0.55 to 2.8
/// ms on this machine) or reuses it (about 85 µs) depends on whether some earlier allocation
/// happens to sit above it at the top of the heap: on which benchmark ran before, not on the
/// strategy. It made the baseline, which runs first, six times slower than the others in some
/// runs and every strategy that slow in others. Fixed thresholds (no trimming below 256 MiB of
/// free top, no mmap below 16 MiB) make every strategy reuse the same warm memory, whatever ran
/// before it. The other groups allocate nothing this large, so they are unaffected.
fn settle_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's <malloc.h>.
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // SAFETY: mallopt only sets malloc parameters, under glibc's own lock.
        let ok = unsafe {
            mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1 && mallopt(M_MMAP_THRESHOLD, 16 << 20) == 1
        };
        assert!(ok, "mallopt refused the bench's malloc thresholds");
    }
}

/// Runs every group for every registered strategy, attached to `key`.
pub fn all_groups(c: &mut Criterion, key: InterpreterKey) {
    settle_allocator();
    macro_rules! group {
        ($name:literal, $f:ident) => {{
            let mut g = c.benchmark_group($name);
            macro_rules! one {
                ($s:ty) => {
                    $f::<$s>(&mut g, key);
                };
            }
            interpsafe::for_each_strategy!(one);
            g.finish();
        }};
    }
    group!("bind", bind);
    group!("bind_getattr", bind_getattr);
    group!("list_append", list_append);
    group!("clone_drop", clone_drop);
    group!("enter_scope", enter_scope);
    group!("once_get", once_get);
    group!("send_small_tuple", send_small_tuple);
    group!("send_1mib_bytes", send_mib_bytes);
    cpython_references(c, key);
}

/// The main interpreter (initialising the runtime).
pub fn main_key() -> InterpreterKey {
    main_interpreter()
}
