//! Interpreters ended by Python code (`_interpreters.destroy`) while toolkit code holds them or
//! runs in them: the end must wait, or the toolkit must refuse with a clean `Error`, or Python
//! gets an exception. Never a fatal error, never a freed interpreter touched.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::{lookup, status};
use interpsafe::protocol::{AttachRefused, Status};
use interpsafe::share::SharedBytes;
use interpsafe::strategy::{Tagged, TaggedHandle};
use interpsafe::{
    attach, Error, InterpreterGuard, InterpreterKey, Isolation, Strategy, SubInterpreter,
};

use interp_tests::from_python::{in_main, python_created, python_destroy, HELPERS};

/// Python code destroying a toolkit subinterpreter gets an exception, not CPython's fatal
/// "not the last thread"; the interpreter keeps working and the toolkit can still end it.
#[test]
fn python_cannot_destroy_a_toolkit_subinterpreter() {
    for isolation in [Isolation::OwnGil, Isolation::SharedGil] {
        let mut sub = SubInterpreter::new(isolation).unwrap();
        let err = python_destroy(sub.key().id.0).expect_err("destroy must be refused");
        assert!(err.contains("running"), "{isolation:?}: {err}");
        assert_eq!(sub.run(|at| at.eval(c"6 * 7").unwrap()).unwrap(), "42");
        assert_eq!(status(sub.key()), Some(Status::Alive));
        sub.end(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(status(sub.key()), Some(Status::Ended));
    }
}

/// The trade-off of that mark: `_interpreters.exec` refuses a toolkit subinterpreter too, so
/// Python code cannot be running there when the toolkit ends it.
#[test]
fn python_cannot_exec_in_a_toolkit_subinterpreter() {
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let err = in_main(&format!(
        "_pe_call(__import__('_interpreters').exec, {}, 'import time; time.sleep(1)')",
        sub.key().id.0
    ));
    assert!(err.contains("running"), "{err}");
    sub.end(Some(Duration::from_secs(10))).unwrap();
}

/// A guard held by the thread that destroys the interpreter from Python cannot make the end
/// wait (it would wait for itself): afterwards it refuses to attach with a clean error, where it
/// used to attach to the freed interpreter.
// With PEP 788's native guards a Python-side destroy waits for the guard this thread holds,
// so this scenario would wait for itself: the native tests below take its place.
#[cfg(not(feature = "pep788-native"))]
#[test]
fn a_guard_refuses_after_its_own_thread_destroyed_the_interpreter_from_python() {
    let key = python_created();
    let guard = InterpreterGuard::new(key).unwrap();
    assert_eq!(guard.attach(|at| at.eval(c"1 + 1").unwrap()).unwrap(), "2");
    python_destroy(key.id.0).expect("a Python-created interpreter can be destroyed");
    assert_eq!(status(key), Some(Status::Ended));
    assert_refused_as_ended(guard.attach(|at| at.eval(c"1").unwrap()), key);
}

/// Asserts that an attach through a guard was refused because `key`'s end began or finished.
#[cfg_attr(feature = "pep788-native", allow(dead_code))]
fn assert_refused_as_ended<T: std::fmt::Debug>(attached: Result<T, Error>, key: InterpreterKey) {
    match attached {
        Err(Error::Attach(AttachRefused::Ended(k) | AttachRefused::Ending(k))) => {
            assert_eq!(k, key)
        }
        other => panic!("attached to a destroyed interpreter: {other:?}"),
    }
}

/// A guard held by another thread does not hold up a Python-side destroy on 3.13: once the end
/// begins it refuses to attach, with a clean error (a guard is `Send`, so the thread that took
/// it says nothing about who holds it now; the end does not guess).
// With PEP 788's native guards a Python-side destroy waits for the guard this thread holds,
// so this scenario would wait for itself: the native tests below take its place.
#[cfg(not(feature = "pep788-native"))]
#[test]
fn a_guard_held_elsewhere_refuses_once_a_python_destroy_began() {
    let key = python_created();
    let guard = InterpreterGuard::new(key).unwrap();
    python_destroy(key.id.0).expect("destroy");
    assert_eq!(status(key), Some(Status::Ended));
    let refused = std::thread::spawn(move || guard.attach(|at| at.eval(c"1").unwrap()).map(|_| ()))
        .join()
        .unwrap();
    assert_refused_as_ended(refused, key);
}

/// A `SharedBytes` reads its source's memory without attaching, so its guard pins the
/// interpreter. A Python-side destroy that got past CPython's running-main check before the pin
/// was taken (and its mark made, see the next test) waits until the pin is dropped (PEP 788's
/// wait, emulated for the one holder that needs it). To get there, the destroy starts while this
/// thread holds the interpreter's GIL, and the pin is taken before the GIL is let go; on a
/// free-threaded build nothing holds the destroy back, the end begins at once, and the pin is
/// refused instead.
#[test]
fn a_python_destroy_waits_for_shared_bytes_taken_after_it_began() {
    for attempt in 0.. {
        assert!(attempt < 5, "the destroy never got past the running-main check before the pin");
        let key = python_created();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (destroyer, pinned) = attach(key, move |at| {
            at.exec(c"payload = b'x' * 100000").unwrap();
            Tagged::enter(at, |s| {
                // No Python code runs from here until the pin is taken: bytecode would hand
                // the GIL to the waiting destroy at its next eval-breaker check.
                let h = Tagged::eval(s, c"payload").unwrap();
                let destroyer = std::thread::spawn(move || {
                    started_tx.send(()).unwrap();
                    python_destroy(key.id.0)
                });
                started_rx.recv().unwrap();
                std::thread::sleep(Duration::from_millis(200));
                (destroyer, SharedBytes::new::<Tagged>(s, Tagged::bind(s, &h).unwrap()))
            })
        })
        .unwrap();
        let bytes = match pinned {
            Ok(bytes) => bytes,
            Err(Error::Attach(_)) => {
                // The end began before the pin (no GIL held it back): refused, and the end ran.
                eprintln!("attempt {attempt}: the end began first; the pin was refused");
                destroyer.join().unwrap().expect("destroy");
                assert_eq!(status(key), Some(Status::Ended));
                return;
            }
            Err(other) => panic!("pin: {other:?}"),
        };
        let start = Instant::now();
        while status(key) != Some(Status::Ending) {
            if destroyer.is_finished() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "the end never began");
            std::thread::sleep(Duration::from_millis(5));
        }
        if destroyer.is_finished() {
            // Too slow to pass the check first: the pin's mark refused it. Try again.
            let err = destroyer.join().unwrap().expect_err("refused by the pin's mark");
            assert!(err.contains("running"), "{err}");
            eprintln!("attempt {attempt}: the pin's mark refused the destroy; again");
            continue;
        }
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(status(key), Some(Status::Ending), "the end did not wait for the SharedBytes");
        assert!(bytes.as_slice().iter().all(|&b| b == b'x'));
        drop(bytes);
        destroyer.join().unwrap().expect("destroy completes once the SharedBytes is dropped");
        assert_eq!(status(key), Some(Status::Ended));
        eprintln!("attempt {attempt}: the end waited for the pin");
        return;
    }
}

/// Threads attaching and detaching through guards in a loop while Python destroys the
/// interpreter: every attachment either runs whole or is refused cleanly.
#[test]
fn attachments_racing_a_python_destroy_run_whole_or_are_refused() {
    for _ in 0..5 {
        let key = python_created();
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut ran = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let guard = match InterpreterGuard::new(key) {
                            Ok(g) => g,
                            Err(Error::Attach(_)) => break,
                            Err(e) => panic!("{e}"),
                        };
                        match guard.attach(|at| at.exec(c"_pe_x = [1, 2, 3]").unwrap()) {
                            Ok(()) => ran += 1,
                            Err(Error::Attach(_)) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    ran
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        python_destroy(key.id.0).expect("destroy");
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("a worker crashed");
        }
        assert_eq!(status(key), Some(Status::Ended));
    }
}

/// A legacy (shared-GIL) subinterpreter allows daemon threads, which `Py_EndInterpreter` does not
/// join: ending it under one used to abort the process ("not the last thread"). The end is now
/// refused with a clear error and the interpreter stays usable; once the thread is gone it ends.
#[test]
fn ending_under_a_daemon_thread_is_refused_then_succeeds() {
    let mut sub = SubInterpreter::new(Isolation::SharedGil).unwrap();
    sub.run(|at| {
        at.exec(c"import threading, time\n_stop = threading.Event()\n_d = threading.Thread(target=_stop.wait, daemon=True)\n_d.start()")
            .unwrap()
    })
    .unwrap();
    match sub.end(Some(Duration::from_secs(10))) {
        Err(Error::End(interpsafe::protocol::EndRefused::ThreadsRemain { key, count })) => {
            assert_eq!((key, count), (sub.key(), 1));
        }
        other => panic!("ending under a daemon thread: {other:?}"),
    }
    assert_eq!(status(sub.key()), Some(Status::Alive));
    sub.run(|at| at.exec(c"_stop.set()\n_d.join()").unwrap()).unwrap();
    sub.end(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(status(sub.key()), Some(Status::Ended));
}

/// A Python thread in main spins on `_interpreters.destroy(id)` while the toolkit ends that
/// subinterpreter: it must only ever get exceptions (found by attack: the running-main mark used
/// to be cleared just before `Py_EndInterpreter`, and a destroy that got through that gap hung in
/// a thread state of the interpreter being freed, or aborted the process).
///
/// The spinner runs exactly while the end is in `Py_EndInterpreter`'s `atexit` phase (an `atexit`
/// function in the subinterpreter signals through a pipe and holds the end there for 200 ms):
/// the gap was there. The mark is cleared later, when CPython starts clearing the interpreter;
/// a destroy in that last instant is a window CPython 3.13 leaves open (it hangs the destroying
/// thread; `docs/threat-model.md`), which this test stays out of.
#[test]
fn a_python_destroy_spinning_against_the_toolkits_end_never_gets_in() {
    for round in 0..6 {
        let isolation = if round % 2 == 0 { Isolation::OwnGil } else { Isolation::SharedGil };
        let mut sub = SubInterpreter::new(isolation).unwrap();
        let id = sub.key().id.0;
        let (begin_r, begin_w) = pipe();
        let (end_r, end_w) = pipe();
        let hold = std::ffi::CString::new(format!(
            "import atexit, os, time\n\
             def _pe_hold():\n    os.write({begin_w}, b'b')\n    time.sleep(0.2)\n    os.write({end_w}, b'e')\n\
             atexit.register(_pe_hold)"
        ))
        .unwrap();
        sub.run(move |at| at.exec(&hold).unwrap()).unwrap();
        let spin = std::ffi::CString::new(format!(
            "import threading, select, os, _interpreters\n\
             _pe_tries = []\n_pe_ok = []\n\
             def _pe_spin(i):\n    os.read({begin_r}, 1)\n\
             \x20   while not select.select([{end_r}], [], [], 0)[0]:\n\
             \x20       try:\n            _interpreters.destroy(i)\n            _pe_ok.append(i)\n            return\n\
             \x20       except Exception as e:\n            _pe_tries.append(str(e))\n\
             _pe_t = threading.Thread(target=_pe_spin, args=({id},))\n_pe_t.start()"
        ))
        .unwrap();
        attach(main_interpreter(), |at| at.exec(&spin).unwrap()).unwrap();
        sub.end(Some(Duration::from_secs(10))).unwrap();
        let (got_in, tries, refusal) = attach(main_interpreter(), |at| {
            at.exec(c"_pe_t.join()").unwrap();
            (
                at.eval(c"len(_pe_ok)").unwrap(),
                at.eval(c"len(_pe_tries)").unwrap().parse::<u64>().unwrap(),
                at.eval(c"_pe_tries[0] if _pe_tries else ''").unwrap(),
            )
        })
        .unwrap();
        assert_eq!(got_in, "0", "round {round}: Python's destroy got in");
        assert!(tries > 0, "round {round}: the spinner never ran during the end");
        assert!(refusal.contains("running"), "round {round}: {refusal}");
        for fd in [begin_r, begin_w, end_r, end_w] {
            // SAFETY: closes descriptors this test opened and no longer uses.
            unsafe { libc_close(fd) };
        }
    }
}

extern "C" {
    #[link_name = "pipe"]
    fn libc_pipe(fds: *mut i32) -> i32;
    #[link_name = "close"]
    fn libc_close(fd: i32) -> i32;
}

/// An OS pipe: (read end, write end).
fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc_pipe(fds.as_mut_ptr()) }, 0, "pipe(2)");
    (fds[0], fds[1])
}

/// Python code in an ending subinterpreter runs after the end observer reported the end (a
/// finalizer that `PyInterpreterState_Clear` runs later, here one in `_warnings`' registry) and
/// enters toolkit code. Found by attack: the registry took that for a re-initialised runtime,
/// marked every live interpreter ended and registered the dead one again, alive, at its freed
/// address. Now it stays ended and nothing else moves.
#[test]
fn code_running_after_an_end_was_reported_changes_nothing() {
    let other = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let (key, id) = (sub.key(), sub.key().id);
    sub.run(|at| {
        at.exec(c"import _warnings, _interpsafe\nclass _Late:\n    def __del__(self, f=_interpsafe.interpreter_id):\n        f()\n_warnings._onceregistry['k'] = _Late()")
            .unwrap()
    })
    .unwrap();
    sub.end(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(lookup(id), Some(key), "re-registered under a new key");
    assert_eq!(status(key), Some(Status::Ended));
    assert!(matches!(attach(key, |_| ()), Err(Error::Attach(_))));
    assert_eq!(status(main_interpreter()), Some(Status::Alive));
    assert_eq!(status(other.key()), Some(Status::Alive));
    assert_eq!(other.run(|at| at.eval(c"1 + 1").unwrap()).unwrap(), "2");
}

/// Threads started by Python code that the end itself runs: an atexit callback, and a `__del__`
/// of a handle whose release was deferred to the end. Found by attack: they started after the
/// thread count and aborted the process ("not the last thread"). Now the end runs that code
/// first, counts, and refuses; once the threads are gone it ends.
#[test]
fn threads_started_by_the_end_itself_are_counted() {
    use interpsafe::protocol::EndRefused;
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    sub.run(|at| {
        at.exec(c"import atexit, threading, time\natexit.register(lambda: threading.Thread(target=time.sleep, args=(0.3,)).start())")
            .unwrap()
    })
    .unwrap();
    // The end runs the callback, joins the thread it started (non-daemon), and ends.
    sub.end(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(status(sub.key()), Some(Status::Ended));
    let mut shared = SubInterpreter::new(Isolation::SharedGil).unwrap();
    let h: TaggedHandle = shared
        .run(|at| {
            at.exec(c"import threading\n_stop = threading.Event()\nclass D:\n    def __del__(self):\n        threading.Thread(target=_stop.wait, daemon=True).start()")
                .unwrap();
            Tagged::enter(at, |s| Tagged::eval(s, c"D()").unwrap())
        })
        .unwrap();
    drop(h); // deferred to the owner's queue: released by the end
    match shared.end(Some(Duration::from_secs(10))) {
        Err(Error::End(EndRefused::ThreadsRemain { count, .. })) => assert_eq!(count, 1),
        other => panic!("the __del__'s daemon thread was not counted: {other:?}"),
    }
    shared.run(|at| at.exec(c"_stop.set()\nimport time\ntime.sleep(0.05)").unwrap()).unwrap();
    shared.end(Some(Duration::from_secs(10))).unwrap();
}

/// A panic payload whose own `Drop` panics, thrown in `SubInterpreter::run`: the worker must
/// survive it, attached state restored (found by attack: it died holding the interpreter's GIL,
/// and every later attach hung; for a shared-GIL interpreter, attaches to main too).
#[test]
fn a_panic_payload_that_panics_on_drop_does_not_kill_the_worker() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the payload's drop panics");
        }
    }
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let sub = SubInterpreter::new(Isolation::SharedGil).unwrap();
    let r = sub.run(|_| -> () { std::panic::panic_any(Bomb) });
    std::panic::set_hook(quiet);
    assert!(matches!(r, Err(Error::Panicked { .. })), "{r:?}");
    assert_eq!(sub.run(|at| at.eval(c"1 + 1").unwrap()).unwrap(), "2");
    assert_eq!(attach(main_interpreter(), |at| at.eval(c"2 + 2").unwrap()).unwrap(), "4");
}

/// The open window's edge (docs/threat-model.md): Python code removes the toolkit's `atexit`
/// hook, then destroys the interpreter. The end goes unannounced until the dict capsule reports
/// it, so only an attachment racing the end itself is exposed; a guard used after the destroy is
/// still refused cleanly, and the registry says ended.
// With PEP 788's native guards a Python-side destroy waits for the guard this thread holds,
// so this scenario would wait for itself: the native tests below take its place.
#[cfg(not(feature = "pep788-native"))]
#[test]
fn a_destroy_after_the_end_hook_was_removed_is_still_seen() {
    let key = python_created();
    in_main(&format!(
        "_pe_call(__import__('_interpreters').exec, {}, 'import atexit; atexit._clear()')",
        key.id.0
    ));
    let guard = InterpreterGuard::new(key).unwrap();
    python_destroy(key.id.0).expect("destroy");
    assert_eq!(status(key), Some(Status::Ended));
    assert_refused_as_ended(guard.attach(|at| at.eval(c"1").unwrap()), key);
}

/// A thread that suspends its thread state in an interpreter (a nested attach elsewhere) and
/// then destroys that interpreter from Python: its own suspended thread state is still there,
/// and CPython aborted the process ("not the last thread"; found by attack). The interpreter is
/// marked as running main while the thread state is suspended, so the destroy gets Python's
/// `InterpreterError`; once the thread is back, the mark is gone and a destroy succeeds.
#[test]
fn python_cannot_destroy_an_interpreter_suspended_under_a_nested_attach() {
    let key = python_created();
    let guard = InterpreterGuard::new(key).unwrap();
    let destroy = std::ffi::CString::new(format!(
        "_pe_call(__import__('_interpreters').destroy, {})",
        key.id.0
    ))
    .unwrap();
    let err = guard
        .attach(|_| {
            attach(main_interpreter(), |at| {
                at.exec(HELPERS).unwrap();
                at.eval(&destroy).unwrap()
            })
            .unwrap()
        })
        .unwrap();
    assert!(err.contains("InterpreterError") && err.contains("running"), "{err}");
    assert_eq!(status(key), Some(Status::Alive));
    assert_eq!(guard.attach(|at| at.eval(c"2 + 2").unwrap()).unwrap(), "4");
    // Dropped first: with PEP 788's native guards the destroy would wait for it.
    drop(guard);
    python_destroy(key.id.0).expect("no mark is left once the thread came back");
    assert_eq!(status(key), Some(Status::Ended));
}

/// The same through a wait: a thread attached to a Python-made interpreter runs a closure on a
/// toolkit subinterpreter's worker (detached while it waits), and that closure destroys the
/// waiting thread's interpreter from Python. Refused while the thread waits.
#[test]
fn python_cannot_destroy_an_interpreter_whose_thread_waits_on_a_worker() {
    let key = python_created();
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let code = std::ffi::CString::new(format!(
        "import _interpreters\ntry:\n    _interpreters.destroy({})\n    r = ''\nexcept Exception as e:\n    r = type(e).__name__ + ': ' + str(e)",
        key.id.0
    ))
    .unwrap();
    let err = attach(key, |_| {
        sub.run(move |at| {
            at.exec(&code).unwrap();
            at.eval(c"r").unwrap()
        })
        .unwrap()
    })
    .unwrap();
    assert!(err.contains("InterpreterError") && err.contains("running"), "{err}");
    assert_eq!(status(key), Some(Status::Alive));
    python_destroy(key.id.0).expect("no mark is left once the thread came back");
    sub.end(Some(Duration::from_secs(10))).unwrap();
}

/// A thread that holds a `SharedBytes` and destroys its source from Python: the end waits for
/// pins, so it would wait for itself (a deadlock). While pinned, the interpreter is marked as
/// running main, so the destroy raises instead; once the last pin goes, it succeeds.
#[test]
fn python_cannot_destroy_an_interpreter_while_shared_bytes_pin_it() {
    let key = python_created();
    let pin = |at: &interpsafe::Attached<'_>| {
        Tagged::enter(at, |s| {
            let b = Tagged::eval(s, c"b'pinned' * 1000")?;
            SharedBytes::new::<Tagged>(s, Tagged::bind(s, &b)?)
        })
        .unwrap()
    };
    let first = attach(key, pin).unwrap();
    let second = attach(key, pin).unwrap();
    let err = python_destroy(key.id.0).expect_err("destroy must be refused while pinned");
    assert!(err.contains("InterpreterError") && err.contains("running"), "{err}");
    drop(first);
    let err = python_destroy(key.id.0).expect_err("one pin is left");
    assert!(err.contains("running"), "{err}");
    assert_eq!(&second.as_slice()[..6], b"pinned");
    drop(second);
    python_destroy(key.id.0).expect("no pin left, no mark left");
    assert_eq!(status(key), Some(Status::Ended));
}

/// A pin taken while `_interpreters.exec` code runs its interpreter on another thread cannot
/// share that code's mark (CPython clears it when the code returns), so it marks nothing: once
/// the code returned, a Python destroy is not refused but waits for the pin (PEP 788's wait), and
/// completes when the pin goes. The documented behaviour of docs/threat-model.md, as a test.
#[test]
fn a_pin_taken_under_exec_code_elsewhere_makes_a_later_destroy_wait() {
    let key = python_created();
    let id = key.id.0;
    let running = move || in_main(&format!("str(__import__('_interpreters').is_running({id}))"));
    let execer = std::thread::spawn(move || {
        in_main(&format!(
            "_pe_call(__import__('_interpreters').exec, {id}, 'import time; time.sleep(0.5)')"
        ))
    });
    let start = Instant::now();
    while running() != "True" {
        assert!(start.elapsed() < Duration::from_secs(10), "exec never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let bytes = attach(key, |at| {
        Tagged::enter(at, |s| {
            let b = Tagged::eval(s, c"b'under exec' * 100")?;
            SharedBytes::new::<Tagged>(s, Tagged::bind(s, &b)?)
        })
    })
    .unwrap()
    .expect("a pin is never refused for exec code elsewhere");
    assert_eq!(execer.join().unwrap(), "", "the exec code ran to its end");
    assert_eq!(running(), "False", "the pin marked nothing");
    let destroyer = std::thread::spawn(move || python_destroy(id));
    let start = Instant::now();
    while status(key) != Some(Status::Ending) {
        assert!(!destroyer.is_finished(), "the destroy did not wait: {:?}", destroyer.join());
        assert!(start.elapsed() < Duration::from_secs(20), "the end never began");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(!destroyer.is_finished(), "the end did not wait for the pin");
    assert_eq!(&bytes.as_slice()[..10], b"under exec");
    drop(bytes);
    destroyer.join().unwrap().expect("the destroy completes once the pin is dropped");
    assert_eq!(status(key), Some(Status::Ended));
}

/// Once the toolkit's end of a subinterpreter has counted its thread states, `_interpreters.exec`
/// refuses it before it makes a thread state there ("not ready"), where it used to make one
/// first and be refused by the running-main mark only afterwards: an `exec` spinning against the
/// end then left a thread state behind the end's count, and CPython aborted ("not the last
/// thread") or hung the thread (found by attack; docs/threat-model.md keeps the race that
/// remains). The interpreter's `threading._shutdown`, which the toolkit's end runs before its
/// count and `Py_EndInterpreter` runs again after it, tries `exec` each time.
/// Ends a fresh own-GIL subinterpreter after running the Python code `setup` makes from the
/// subinterpreter's ID and a file path; returns what that code wrote to the file during the end.
fn written_during_end(setup: impl FnOnce(i64, &std::path::Path) -> String) -> String {
    let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let id = sub.key().id.0;
    let path =
        std::env::temp_dir().join(format!("interpsafe-during-end-{}-{id}", std::process::id()));
    let code = std::ffi::CString::new(setup(id, &path)).unwrap();
    sub.run(move |at| at.exec(&code).unwrap()).unwrap();
    sub.end(Some(Duration::from_secs(10))).unwrap();
    let seen = std::fs::read_to_string(&path).expect("the code ran during the end");
    let _ = std::fs::remove_file(&path);
    seen
}

#[test]
fn once_the_toolkits_end_counted_exec_is_refused_before_it_makes_a_thread_state() {
    let seen = written_during_end(|id, path| {
        format!(
            "import threading, _interpreters\n\
             _shutdown = threading._shutdown\n\
             def _try_exec():\n\
             \x20   try:\n\
             \x20       _interpreters.exec({id}, 'pass')\n\
             \x20       r = 'ran'\n\
             \x20   except Exception as e:\n\
             \x20       r = type(e).__name__ + ': ' + str(e)\n\
             \x20   open({path:?}, 'a').write(r + '\\n')\n\
             \x20   _shutdown()\n\
             threading._shutdown = _try_exec"
        )
    });
    let lines: Vec<&str> = seen.lines().collect();
    assert!(lines.len() >= 2, "{seen}");
    assert!(lines[0].contains("already running"), "before the count: {seen}");
    let last = lines.last().unwrap();
    assert!(last.contains("InterpreterError") && last.contains("not ready"), "after: {seen}");
}

/// Python code that the toolkit's end runs in the interpreter (its `atexit` callbacks, and a
/// `__del__` during the deferred releases) may ask `_interpreters` about the interpreter it
/// runs in: `get_current()` asserts (on a debug build) that the interpreter is ready, so the end
/// must not look closed to that code. Closing for `_interpreters.exec` comes after it.
#[test]
fn code_the_end_runs_can_still_ask_interpreters_about_itself() {
    let mut id_seen = 0;
    let seen = written_during_end(|id, path| {
        id_seen = id;
        format!(
            "import atexit, _interpreters\n\
             def _current():\n\
             \x20   open({path:?}, 'w').write(str(_interpreters.get_current()[0]))\n\
             atexit.register(_current)"
        )
    });
    assert_eq!(seen, id_seen.to_string());
}

/// With PEP 788's native guards (3.15, feature `pep788-native`) a Python-side destroy *waits*
/// for a held guard instead of going ahead: it blocks until the guard is dropped, then the end
/// runs, and the guard's interpreter refuses new guards.
#[cfg(feature = "pep788-native")]
#[test]
fn native_a_python_destroy_blocks_until_the_guard_closes() {
    for hold_attached in [false, true] {
        let key = python_created();
        let guard = InterpreterGuard::new(key).unwrap();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
        // The holder: keeps the guard (attached through it, or merely holding it) until told.
        let holder = std::thread::spawn(move || {
            if hold_attached {
                guard
                    .attach(move |_| {
                        entered_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                    })
                    .unwrap();
            } else {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            }
            drop(guard);
        });
        entered_rx.recv().unwrap();
        let destroyer = std::thread::spawn(move || python_destroy(key.id.0));
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !destroyer.is_finished(),
            "attached {hold_attached}: the destroy did not wait for the held guard"
        );
        // The toolkit's end hook may have run (CPython 3.15 runs `atexit` before it waits for
        // guards), so the registry may say ending; it must not say ended.
        assert_ne!(status(key), Some(Status::Ended), "attached {hold_attached}");
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        // Blocks until the guard closes, then completes (bounded: a hang fails the test run).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !destroyer.is_finished() {
            assert!(std::time::Instant::now() < deadline, "the destroy never completed");
            std::thread::sleep(Duration::from_millis(20));
        }
        destroyer.join().unwrap().expect("the destroy completes once the guard closes");
        assert_eq!(status(key), Some(Status::Ended));
        assert!(matches!(InterpreterGuard::new(key), Err(Error::Attach(_))));
    }
}
