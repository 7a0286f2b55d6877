//! Attacks on the holds (`running_main::Hold`: suspended thread states and `SharedBytes` pins,
//! counted together per interpreter, each keeping ID references), by a fresh-context attacker,
//! from safe Rust through the public API and from Python through `_interpreters`. Each test's doc
//! comment says what happened when it was written (RESULT: passed, or BROKEN: what, on which
//! builds). The breaks in the toolkit are fixed and run as regression tests; what stays
//! `#[ignore]`d is CPython's own (an interpreter ending itself), races that must run alone, and
//! diagnostics: run them one at a time with `-- --ignored --exact NAME --nocapture`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::status;
use interpsafe::protocol::Status;
use interpsafe::share::SharedBytes;
use interpsafe::strategy::Tagged;
use interpsafe::{attach, Error, InterpreterKey, Isolation, Strategy, SubInterpreter};

use interp_tests::from_python::{
    in_main, is_running, listed, pin, python_created, python_destroy, refused_as_running,
};

/// Calls `_interpreters.<call>` from main, e.g. `py("decref", "7")`; `''` or `ok:...` or the
/// exception.
fn py(call: &str, args: &str) -> String {
    in_main(&format!("_pe_call(__import__('_interpreters').{call}, {args})"))
}

/// Starts `_interpreters.exec(id, code)` in main on another thread and waits until the
/// interpreter reports running.
fn exec_elsewhere(id: i64, code: &str) -> std::thread::JoinHandle<String> {
    let code = code.to_string();
    let h = std::thread::spawn(move || py("exec", &format!("{id}, {code:?}")));
    let start = Instant::now();
    while !is_running(id).contains("True") {
        assert!(start.elapsed() < Duration::from_secs(10), "exec never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    h
}

/// Runs `f` on a new thread; `None` if it has not returned within `wait` (the thread is left).
fn within<R: Send + 'static>(wait: Duration, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(wait).ok()
}

// ------------------------------------------------------------------ exec against held marks

/// `_interpreters.exec` (and `call`, `run_string`, `set___main___attrs`) into an interpreter
/// while a thread's state is suspended there, and while it is pinned: refused "already running";
/// `is_running` says True. RESULT: passed (3.13, 3.13t, 3.13-debug, 3.13-asan).
#[test]
fn exec_and_kin_are_refused_while_held() {
    let x = python_created();
    let id = x.id.0;
    let calls = [
        format!("{id}, 'pass'"),
        format!("{id}, lambda: None"),
        format!("{id}, {{'a': 1}}"),
        format!("{id}, 'pass'"),
    ];
    let names = ["exec", "call", "set___main___attrs", "run_string"];
    let seen = attach(x, |_| {
        attach(main_interpreter(), |_| {
            let mut seen = vec![is_running(id)];
            for (n, a) in names.iter().zip(&calls) {
                seen.push(py(n, a));
            }
            seen
        })
        .unwrap()
    })
    .unwrap();
    assert!(seen[0].contains("True"), "{seen:?}");
    for s in &seen[1..] {
        assert!(s.contains("already running"), "{seen:?}");
    }
    let b = pin(x);
    for (n, a) in names.iter().zip(&calls) {
        assert!(py(n, a).contains("already running"));
    }
    drop(b);
    assert_eq!(py("exec", &format!("{id}, 'pass'")), "");
    python_destroy(id).expect("destroy after");
}

// -------------------------------------------------------------- CannotSuspend refusal paths

/// A thread attached to X while `_interpreters.exec` code runs in X on another thread: every
/// blocking toolkit call is refused with `CannotSuspend` (`SubInterpreter::new`, `run`, `end`,
/// a nested attach, `InterpreterGuard` attach elsewhere) and leaves nothing behind: no worker
/// spawned, no end begun; all of them work once the code returned. RESULT: passed (3.13, 3.13t,
/// 3.13-debug, 3.13-asan).
#[test]
fn cannot_suspend_refusals_leave_nothing_half_done() {
    let x = python_created();
    let id = x.id.0;
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let sub_key = sub.key();
    let execer = exec_elsewhere(id, "import time; time.sleep(1.5)");
    let (new, ran, ended, nested, guard) = attach(x, |_| {
        let new = SubInterpreter::new(Isolation::SharedGil).map(|s| s.key());
        let ran = sub.run(|at| at.eval(c"1").unwrap());
        let ended = sub.end(Some(Duration::from_secs(5)));
        let nested = attach(main_interpreter(), |_| ());
        let guard = interpsafe::InterpreterGuard::new(sub_key).unwrap().attach(|_| ()).map(|_| ());
        (new, ran, ended, nested, guard)
    })
    .unwrap();
    let is_cannot =
        |e: &Error| matches!(e, Error::CannotSuspend { interpreter } if *interpreter == x);
    assert!(matches!(&new, Err(e) if is_cannot(e)), "{new:?}");
    assert!(matches!(&ran, Err(e) if is_cannot(e)), "{ran:?}");
    assert!(matches!(&ended, Err(e) if is_cannot(e)), "{ended:?}");
    assert!(matches!(&nested, Err(e) if is_cannot(e)), "{nested:?}");
    assert!(matches!(&guard, Err(e) if is_cannot(e)), "{guard:?}");
    assert_eq!(execer.join().unwrap(), "");
    assert_eq!(status(sub_key), Some(Status::Alive));
    assert_eq!(sub.run(|at| at.eval(c"2 + 2").unwrap()).unwrap(), "4");
    // The same calls from X now succeed.
    attach(x, |_| {
        let mut other = SubInterpreter::new(Isolation::SharedGil).unwrap();
        assert_eq!(other.run(|at| at.eval(c"3").unwrap()).unwrap(), "3");
        other.end(Some(Duration::from_secs(10))).unwrap();
        sub.end(Some(Duration::from_secs(10))).unwrap();
    })
    .unwrap();
    assert_eq!(status(sub_key), Some(Status::Ended));
    python_destroy(id).expect("destroy after");
}

/// `drop(SubInterpreter)` on a thread that cannot suspend (attached to X while `exec` code runs
/// in X elsewhere): `Drop` cannot return the `CannotSuspend` error, so it leaks the interpreter
/// and parks its worker for the life of the process (the `Drop` comment only names "waits for
/// this very thread" and "worker gone" as reasons). RESULT: passed in the sense that nothing
/// crashes and the leaked interpreter stays protected (alive, Python's destroy refused), on 3.13,
/// 3.13t, 3.13-debug, 3.13-asan; but the subinterpreter is silently never ended.
#[test]
fn dropping_a_subinterpreter_where_it_cannot_suspend_leaks_it() {
    let x = python_created();
    let id = x.id.0;
    let sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let sub_key = sub.key();
    let execer = exec_elsewhere(id, "import time; time.sleep(0.5)");
    attach(x, move |_| drop(sub)).unwrap();
    execer.join().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    eprintln!("after the drop: {:?}", status(sub_key));
    assert_eq!(status(sub_key), Some(Status::Alive), "leaked, not ended");
    assert!(listed(sub_key.id.0));
    assert!(refused_as_running(&python_destroy(sub_key.id.0)), "the leaked one stays protected");
    python_destroy(id).expect("destroy after");
}

/// A pin taken under a foreign `exec` mark is unmarked (documented): once that code returned, a
/// destroy from another thread waits for it, and completes when the pin goes. RESULT: passed
/// (3.13, 3.13t, 3.13-debug, 3.13-asan).
#[test]
fn a_pin_under_a_foreign_exec_mark_makes_a_later_destroy_wait() {
    let x = python_created();
    let id = x.id.0;
    let execer = exec_elsewhere(id, "import time; time.sleep(0.3)");
    let b = pin(x);
    assert_eq!(execer.join().unwrap(), "");
    assert!(is_running(id).contains("False"), "documented: the pin is unmarked");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(python_destroy(id)));
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "the destroy waits for the pin");
    assert!(b.as_slice().starts_with(b"pinned"));
    drop(b);
    rx.recv_timeout(Duration::from_secs(10)).expect("completes").expect("destroyed");
    assert_eq!(status(x), Some(Status::Ended));
}

// ------------------------------------------------------ `_interpreters.decref` more than incref

/// `decref`, then `incref(implieslink=True)`, then `decref`: two decrefs for one incref (the
/// misuse the docs leave open), under a thread state suspended in X. The first decref takes the
/// hold's ID reference (1 -> 0; `requires_idref` is still 0, so nothing ends), the pair then
/// ends X at zero under the suspended thread state.
///
/// BROKEN when written: the process aborted, `Fatal Python error: Py_EndInterpreter: not the last
/// thread`, on 3.13, 3.13t, 3.13-debug, 3.13-asan (no ASAN report before the abort). Fixed: a
/// hold keeps a reserve of 2^48 ID references, not one. On the
/// debug build CPython's `assert(interp->id_refcount != 0)` does NOT fire, contrary to
/// `running_main`'s docs ("CPython's own debug build asserts on that misuse"): the toolkit's own
/// reference absorbs the unmatched decref, so the misuse is invisible to that assertion exactly
/// when a hold is present.
#[test]
fn unbalanced_decref_ends_a_suspended_interpreter() {
    let x = python_created();
    let id = x.id.0;
    let r = attach(x, |_| {
        attach(main_interpreter(), |_| {
            let a = py("decref", &id.to_string());
            let b = py("incref", &format!("{id}, implieslink=True"));
            eprintln!("decref {a:?} incref {b:?}; now the second decref");
            let c = py("decref", &id.to_string());
            (a, b, c)
        })
        .unwrap()
    })
    .unwrap();
    eprintln!("survived: {r:?}");
    assert!(listed(id), "X ended under the suspension");
    python_destroy(id).expect("destroy after");
}

/// The same two-for-one on a toolkit subinterpreter (whose worker keeps a thread state there
/// for the interpreter's life, and an ID reference it never gives back).
///
/// BROKEN when written: aborted, `Fatal Python error: Py_EndInterpreter: not the last thread`
/// (the decref ended the interpreter on the calling thread under the worker's thread state), on
/// 3.13, 3.13t, 3.13-debug, 3.13-asan. No debug assertion fired first. Fixed: the reserve.
#[test]
fn unbalanced_decref_ends_a_toolkit_subinterpreter() {
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let id = sub.key().id.0;
    let a = py("decref", &id.to_string());
    let b = py("incref", &format!("{id}, implieslink=True"));
    eprintln!("decref {a:?} incref {b:?}; now the second decref");
    let c = py("decref", &id.to_string());
    eprintln!("survived: {c:?}");
    assert!(listed(id));
    sub.end(Some(Duration::from_secs(10))).unwrap();
}

/// The same two-for-one from the thread holding a pin of X: the end that the last decref starts
/// waits for the pin its own thread holds.
///
/// BROKEN when written: hung (the decref never returned; the test gives up after 10 s and
/// fails), on 3.13, 3.13t, 3.13-debug. Fixed: the reserve.
#[test]
fn unbalanced_decref_from_the_pin_holder_hangs() {
    let x = python_created();
    let id = x.id.0;
    let r = within(Duration::from_secs(10), move || {
        let b = pin(x);
        let r = (
            py("decref", &id.to_string()),
            py("incref", &format!("{id}, implieslink=True")),
            py("decref", &id.to_string()),
        );
        drop(b);
        r
    });
    assert!(r.is_some(), "the decref hung (waits for the pin its own thread holds)");
}

/// Balanced Python reference games on a toolkit subinterpreter, ended by the toolkit while
/// Python still holds ID references, then `decref`ed and `destroy`ed by Python afterwards: no
/// crash, clean Python errors. RESULT: passed (3.13, 3.13t, 3.13-debug, 3.13-asan).
#[test]
fn toolkit_end_while_python_holds_id_references() {
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let id = sub.key().id.0;
    assert_eq!(py("incref", &format!("{id}, implieslink=True")), "");
    assert_eq!(py("incref", &id.to_string()), "");
    assert!(refused_as_running(&python_destroy(id)));
    assert_eq!(py("decref", &id.to_string()), "");
    assert!(listed(id));
    sub.end(Some(Duration::from_secs(10))).unwrap();
    assert!(!listed(id));
    let late = py("decref", &id.to_string());
    assert!(
        late.contains("NotFound") || late.contains("not found") || late.contains("Error"),
        "{late}"
    );
    assert!(python_destroy(id).is_err());
}

// -------------------------------------------------------------------------------- leaked pins

/// `mem::forget` of a `SharedBytes`: its pin and hold are never released. X stays marked
/// ("running") for the life of the process: Python's destroy and exec are refused forever, and
/// the ID reference is never given back (an incref/decref pair no longer ends it). RESULT:
/// passed (a leak, no crash): 3.13, 3.13t, 3.13-debug, 3.13-asan.
#[test]
fn a_forgotten_shared_bytes_keeps_its_interpreter_forever() {
    let x = python_created();
    let id = x.id.0;
    std::mem::forget(pin(x));
    assert!(refused_as_running(&python_destroy(id)));
    assert!(py("exec", &format!("{id}, 'pass'")).contains("already running"));
    assert_eq!(py("incref", &format!("{id}, implieslink=True")), "");
    assert_eq!(py("decref", &id.to_string()), "");
    assert!(listed(id));
    // Other holds on X still compose with the leaked one.
    let r = attach(x, |_| attach(main_interpreter(), |_| python_destroy(id)).unwrap()).unwrap();
    assert!(refused_as_running(&r));
    assert!(refused_as_running(&python_destroy(id)));
    assert_eq!(status(x), Some(Status::Alive));
}

// ------------------------------------------------- CPython's check-then-set against the hold

/// `_PyInterpreterState_SetRunningMain` (what `_interpreters.exec` calls) is a check-then-set
/// (`if (get_main_thread(interp) != NULL) fail; ... set_main_thread(interp, tstate);`), not a
/// compare-and-swap. The hold's mark is a compare-and-swap 0 -> sentinel. On a GIL build both run
/// under the interpreter's GIL, so they cannot interleave. On the free-threaded build nothing
/// orders them: `exec` can read NULL, the hold swap in its sentinel, and `exec` overwrite it with
/// its own thread state; `exec`'s code runs although a suspension is counted, and when it returns
/// CPython clears the field, leaving the suspended thread state with no mark.
///
/// A thread suspends its thread state in X (nested attach to main) over and over while another
/// thread spins `_interpreters.exec(X, 'pass')` from main; inside each suspension the holder
/// asks `is_running(X)` and counts the `exec` calls that succeeded meanwhile. Any False, or any
/// success, is the hold's promise failing.
///
/// RESULT: not observed (the race is real in CPython's source, but the window is a few
/// instructions): 3.13t, 20 s, 3500 suspensions held, 923 refused (`CannotSuspend`), 3016 of
/// 26600 `exec` calls ran (all outside holds), `is_running(X)` never False under a hold. GIL
/// builds cannot interleave the two (both under X's GIL). Ignored only because it runs 20 s.
#[test]
#[ignore = "race: run alone"]
fn exec_check_then_set_races_the_holds_mark() {
    let x = python_created();
    let id = x.id.0;
    let stop = Arc::new(AtomicBool::new(false));
    let execs = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut ok = 0u64;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = in_main(&format!(
                    "str(sum(1 for _ in range(200) if _pe_call(__import__('_interpreters').exec, {id}, 'pass') == ''))"
                ));
                ok += r.parse::<u64>().unwrap();
                n += 200;
            }
            (ok, n)
        })
    };
    let unmarked = AtomicUsize::new(0);
    let (mut held, mut refused_n) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) && unmarked.load(Ordering::Relaxed) == 0 {
        let r = attach(x, |_| {
            attach(main_interpreter(), |_| {
                for _ in 0..3 {
                    if !is_running(id).contains("True") {
                        unmarked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .unwrap();
        match r {
            Ok(()) => held += 1,
            Err(Error::CannotSuspend { .. }) => refused_n += 1,
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, n) = execs.join().unwrap();
    eprintln!(
        "suspensions held {held}, refused {refused_n}; exec ran {ok} of {n}; \
         is_running(X) False while held: {}",
        unmarked.load(Ordering::Relaxed)
    );
    assert_eq!(unmarked.load(Ordering::Relaxed), 0, "X unmarked while a suspension was counted");
    python_destroy(id).expect("destroy after");
}

/// The consequence of the race above: once it hits, the suspended thread (from its nested
/// attach to main) destroys X, which `Py_EndInterpreter` ends under the thread's own suspended
/// thread state.
///
/// RESULT: not observed on 3.13t in 30 s (X never seen unmarked under a hold). Ignored only
/// because it runs 30 s.
#[test]
#[ignore = "race: run alone"]
fn exec_check_then_set_race_then_destroy_from_the_suspended_thread() {
    let x = python_created();
    let id = x.id.0;
    let stop = Arc::new(AtomicBool::new(false));
    let execs = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                in_main(&format!(
                    "[_pe_call(__import__('_interpreters').exec, {id}, 'pass') for _ in range(200)]"
                ));
            }
        })
    };
    let start = Instant::now();
    let mut outcome = None;
    while start.elapsed() < Duration::from_secs(30) && outcome.is_none() {
        let r = attach(x, |_| {
            attach(main_interpreter(), |_| {
                if is_running(id).contains("True") {
                    return None;
                }
                stop.store(true, Ordering::Relaxed);
                eprintln!("X unmarked under a counted suspension: destroying it from here");
                Some(python_destroy(id))
            })
        })
        .unwrap();
        if let Ok(Some(d)) = r {
            outcome = Some(d);
        }
    }
    stop.store(true, Ordering::Relaxed);
    execs.join().unwrap();
    eprintln!("outcome: {outcome:?}");
    if let Some(d) = outcome {
        assert!(refused_as_running(&d), "destroyed under a suspension: {d:?}");
    }
}

// ------------------------------------------------------------ locating the running-main field

/// The running-main field is located once per process, by its neighbours, on the first hold (or
/// toolkit subinterpreter); `locate` gives up after three scans whose `threads.head` or running
/// state moved meanwhile, and the hold then falls back to marking through the API with no ID
/// reference and no count: the uncounted scheme that was broken before (a suspension under
/// foreign `exec` code holds nothing, and an `incref`/`decref` pair ends a suspended interpreter).
/// On the free-threaded build, thread states come and go in X without any lock the scan holds.
///
/// Run alone, so that this is the process's first locate: threads churn thread states in X
/// (toolkit attaches from unattached threads, and Python threads started by `exec` code), then
/// the test thread suspends in X and runs an `incref(implieslink=True)`/`decref` pair on X from
/// its nested attach. With the field located, the hold's ID reference keeps X; if `locate`
/// failed, the pair ends X under the suspended thread state (abort: "not the last thread").
///
/// RESULT: passed, 18 runs on 3.13t (2 and 6 churning threads, ~5-14k churning attaches per
/// run): the field was located every time. See `locate_replica_failure_rate_under_churn`.
#[test]
#[ignore = "must be the first locate in the process: run alone"]
fn first_locate_under_thread_state_churn() {
    let x = python_created();
    let id = x.id.0;
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = attach(x, |_| ());
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let r = attach(x, |_| {
        attach(main_interpreter(), |_| {
            let before = is_running(id);
            let pair = in_main(&format!(
                "_pe_call(__import__('_interpreters').incref, {id}, implieslink=True) + '|' + _pe_call(__import__('_interpreters').decref, {id})"
            ));
            (before, pair)
        })
    })
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let n: u64 = churners.into_iter().map(|c| c.join().unwrap()).sum();
    eprintln!("{n} churning attaches; nested: {r:?}");
    let (before, _) = r.expect("suspended");
    assert!(before.contains("True"), "the suspension left X unmarked: {before}");
    assert!(listed(id));
    python_destroy(id).expect("destroy after");
}

/// A replica of `running_main::locate`'s scan (same neighbours, same three attempts), run in the
/// test under the same churn as above, to measure how often the real one would give up.
/// Diagnostic only. RESULT (3.13t): with 0 or 2 churners no scan missed (0/900); with 6, 12/900
/// single scans missed and 0/300 locates (three scans in a row) gave up.
#[test]
#[ignore = "diagnostic: measures the locate scan under churn"]
fn locate_replica_failure_rate_under_churn() {
    use pyo3_ffi as ffi;
    use std::sync::atomic::{AtomicI32, AtomicI64};
    extern "C" {
        fn _PyInterpreterState_IsReady(interp: *mut ffi::PyInterpreterState) -> i32;
        fn _PyInterpreterState_GetWhence(interp: *mut ffi::PyInterpreterState) -> std::ffi::c_long;
        fn _PyInterpreterState_IsRunningMain(interp: *mut ffi::PyInterpreterState) -> i32;
        fn _PyInterpreterState_RequiresIDRef(interp: *mut ffi::PyInterpreterState) -> i32;
    }
    /// # Safety
    /// The calling thread must be attached to the live `interp`.
    unsafe fn scan(interp: *mut ffi::PyInterpreterState) -> usize {
        // SAFETY: attached to the live `interp` (caller's contract): the words read lie in its
        // first 4096 words, aligned, and are read atomically; the API calls read the same struct.
        unsafe {
            let head = ffi::PyInterpreterState_ThreadHead(interp) as usize;
            let running = _PyInterpreterState_IsRunningMain(interp) != 0;
            let words = interp.cast::<usize>();
            (10..4096)
                .filter(|&i| {
                    let m = words.add(i).cast::<u8>();
                    let f = |b: usize| m.sub(b);
                    ((*m.cast::<AtomicUsize>()).load(Ordering::Relaxed) != 0) == running
                        && (*f(80).cast::<AtomicI64>()).load(Ordering::Relaxed)
                            == ffi::PyInterpreterState_GetID(interp)
                        && (*f(48).cast::<AtomicI64>()).load(Ordering::Relaxed)
                            == _PyInterpreterState_GetWhence(interp) as i64
                        && (*f(36).cast::<AtomicI32>()).load(Ordering::Relaxed)
                            == _PyInterpreterState_IsReady(interp)
                        && (*f(64).cast::<AtomicI32>()).load(Ordering::Relaxed)
                            == _PyInterpreterState_RequiresIDRef(interp)
                        && (*f(8).cast::<AtomicUsize>()).load(Ordering::Relaxed) == head
                })
                .count()
        }
    }
    let x = python_created();
    let id = x.id.0;
    for churn in [0, 2, 6] {
        let stop = Arc::new(AtomicBool::new(false));
        let churners: Vec<_> = (0..churn)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = attach(x, |_| ());
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        let (scans, misses, all3) = attach(x, |_| {
            // SAFETY: attached to the live X.
            unsafe {
                let interp = ffi::PyThreadState_GetInterpreter(ffi::PyThreadState_Get());
                let (mut misses, mut all3) = (0, 0);
                for _ in 0..300 {
                    let r: Vec<usize> = (0..3).map(|_| scan(interp)).collect();
                    misses += r.iter().filter(|&&c| c != 1).count();
                    all3 += usize::from(r.iter().all(|&c| c != 1));
                }
                (900, misses, all3)
            }
        })
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        for c in churners {
            c.join().unwrap();
        }
        eprintln!("{churn} churners: {misses}/{scans} scans missed, {all3}/300 locates gave up");
    }
    python_destroy(id).expect("destroy after");
}

// ------------------------------------------------------------ many holds, many interpreters

/// Holds of three Python-created interpreters taken and released from four threads at once
/// (random nested attach chains, pins kept across chains and dropped on other threads, attached
/// elsewhere or not), while Python threads in main spin `_interpreters.exec` and `destroy` on
/// all three. A destroy may succeed only when nothing holds the interpreter; one that gets in
/// under a hold aborts the process ("not the last thread") or hangs. Each round ends once every
/// interpreter has been destroyed. RESULT: passed on 3.13, 3.13t, 3.13-debug, 3.13-asan (no
/// abort, no hang).
#[test]
fn holds_across_interpreters_and_threads_against_python_destroy_and_exec() {
    for round in 0..2 {
        let keys: Arc<Vec<InterpreterKey>> = Arc::new((0..3).map(|_| python_created()).collect());
        let ids: Vec<i64> = keys.iter().map(|k| k.id.0).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (pin_tx, pin_rx) = mpsc::channel::<SharedBytes>();
        let pin_rx = Arc::new(std::sync::Mutex::new(pin_rx));
        let holders: Vec<_> = (0..4)
            .map(|t| {
                let (keys, stop, pin_tx, pin_rx) =
                    (keys.clone(), stop.clone(), pin_tx.clone(), pin_rx.clone());
                std::thread::spawn(move || {
                    let mut seed = 0x9e3779b9u64.wrapping_mul(t as u64 + 1 + round as u64 * 7);
                    let mut next = move || {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed
                    };
                    let (mut ok, mut refused_n) = (0u32, 0u32);
                    while !stop.load(Ordering::Relaxed) {
                        let a = keys[(next() % 3) as usize];
                        let b = keys[(next() % 3) as usize];
                        let choice = next() % 4;
                        let r = attach(a, |at| {
                            let p = Tagged::enter(at, |s| {
                                let o = Tagged::eval(s, c"b'held' * 64")?;
                                SharedBytes::new::<Tagged>(s, Tagged::bind(s, &o)?)
                            });
                            let inner = attach(b, |_| {
                                attach(main_interpreter(), |_| {
                                    if choice == 0 {
                                        if let Ok(p) = pin_rx.lock().unwrap().try_recv() {
                                            drop(p);
                                        }
                                    }
                                })
                            });
                            if let Ok(p) = p {
                                if choice == 1 {
                                    let _ = pin_tx.send(p);
                                }
                            }
                            inner
                        });
                        match r {
                            Ok(Ok(Ok(()))) => ok += 1,
                            Err(Error::Attach(_)) | Ok(Err(Error::Attach(_))) => {}
                            Err(Error::CannotSuspend { .. })
                            | Ok(Err(Error::CannotSuspend { .. }))
                            | Ok(Ok(Err(Error::CannotSuspend { .. }))) => refused_n += 1,
                            Ok(Ok(Err(Error::Attach(_)))) => {}
                            other => panic!("{other:?}"),
                        }
                        if keys.iter().all(|k| status(*k) == Some(Status::Ended)) {
                            break;
                        }
                    }
                    (ok, refused_n)
                })
            })
            .collect();
        drop(pin_tx);
        std::thread::sleep(Duration::from_millis(30));
        let spin = format!(
            "import _interpreters as I, time\n\
             _left = set({ids:?}); _t0 = time.time(); _ex = 0; _ref = 0\n\
             while _left and time.time() - _t0 < 8:\n\
             \x20   for _i in list(_left):\n\
             \x20       if _pe_call(I.exec, _i, 'pass') == '': _ex += 1\n\
             \x20       r = _pe_call(I.destroy, _i)\n\
             \x20       if r == '': _left.discard(_i)\n\
             \x20       elif 'NotFound' in r: _left.discard(_i)\n\
             \x20       else: _ref += 1\n\
             \x20   time.sleep(0.001)\n"
        );
        let spin = std::ffi::CString::new(spin).unwrap();
        let (left, ex, refd) = attach(main_interpreter(), |at| {
            at.exec(interp_tests::from_python::HELPERS).unwrap();
            at.exec(&spin).unwrap();
            (
                at.eval(c"sorted(_left)").unwrap(),
                at.eval(c"_ex").unwrap(),
                at.eval(c"_ref").unwrap(),
            )
        })
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        let counts: Vec<_> = holders.into_iter().map(|h| h.join().unwrap()).collect();
        // Pins still queued keep their interpreters: drop them, then finish the destroys.
        drop(pin_rx);
        for id in &ids {
            let _ = python_destroy(*id);
        }
        eprintln!(
            "round {round}: left after spin {left}, exec ran {ex}, destroy refused {refd}; holders {counts:?}"
        );
        for k in keys.iter() {
            assert_eq!(status(*k), Some(Status::Ended));
        }
    }
}

/// Python code run by the toolkit in a Python-created interpreter X (`attach(X).exec`) ends X
/// with a balanced `incref(X, implieslink=True)`/`decref(X)` pair: the count reaches zero and
/// CPython ends X on that thread, under the toolkit's attached thread state. No hold is taken
/// (nothing is suspended), so nothing keeps the count up. CPython does the same to
/// `_interpreters.exec(X, <that code>)` with no toolkit involved.
///
/// BROKEN, but CPython's own: aborts (`Fatal Python error: Py_EndInterpreter: not the last
/// thread`) on 3.13, 3.13t, 3.13-debug. Plain `python3.13 -c` with
/// `I.exec(x, 'import _interpreters as I; I.incref(x, implieslink=True); I.decref(x)')` aborts
/// the same way with no toolkit loaded.
#[test]
#[ignore = "aborts: X ended from code the toolkit runs in X (incref(implieslink)/decref pair on itself)"]
fn python_in_x_ends_x_with_a_balanced_reference_pair() {
    let x = python_created();
    let id = x.id.0;
    let code = std::ffi::CString::new(format!(
        "import _interpreters as I\nI.incref({id}, implieslink=True)\nI.decref({id})"
    ))
    .unwrap();
    let r = attach(x, |at| at.exec(&code));
    eprintln!("survived: {r:?}");
}
