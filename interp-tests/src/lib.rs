//! Shared helpers for interpsafe's tests against real CPython builds.
//!
//! The tests themselves live in `tests/`: one file per subject (interpreter lifecycle and
//! attach today; the hazard catalogue and free-threaded stress as they arrive).

pub mod child;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A rendezvous of `parties` threads that gives up after a deadline instead of hanging, so a test
/// can assert that threads did (or did not) reach a point at the same time.
#[derive(Debug)]
pub struct Rendezvous {
    parties: usize,
    arrived: AtomicUsize,
}

impl Rendezvous {
    /// A rendezvous for `parties` threads.
    pub fn new(parties: usize) -> Self {
        Rendezvous { parties, arrived: AtomicUsize::new(0) }
    }

    /// Arrives and waits for the others; true if all arrived within `timeout`.
    pub fn meet(&self, timeout: Duration) -> bool {
        self.meet_with(timeout, || {})
    }

    /// Like [`Rendezvous::meet`], calling `safe_point` on every spin (pass
    /// `Attached::safe_point` when waiting attached, so that a free-threaded build can stop the
    /// world meanwhile).
    pub fn meet_with(&self, timeout: Duration, safe_point: impl Fn()) -> bool {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        while self.arrived.load(Ordering::SeqCst) < self.parties {
            if start.elapsed() > timeout {
                return false;
            }
            safe_point();
            std::thread::yield_now();
        }
        true
    }
}

/// True when the crate was built for a free-threaded interpreter (3.13t).
pub const FREE_THREADED: bool = cfg!(Py_GIL_DISABLED);

/// Foreign C code, as the raw-switch tests model it: finding an interpreter by ID in CPython's
/// list, and switching the thread into it with raw thread-state calls.
pub mod raw_switch {
    use pyo3_ffi as ffi;

    /// The `PyInterpreterState*` of interpreter `id`, found in CPython's list (null if none).
    ///
    /// # Safety
    /// The thread must be attached, and the interpreter kept from ending while the pointer is
    /// used.
    pub unsafe fn interpreter_by_id(id: i64) -> *mut ffi::PyInterpreterState {
        // SAFETY: attached (caller's contract); the list is walked read-only.
        unsafe {
            let mut interp = ffi::PyInterpreterState_Head();
            while !interp.is_null() && ffi::PyInterpreterState_GetID(interp) != id {
                interp = ffi::PyInterpreterState_Next(interp);
            }
            interp
        }
    }

    /// Runs `f` with the thread switched, raw, into `interp` (`PyEval_SaveThread`,
    /// `PyThreadState_New`, `PyEval_RestoreThread`), then switches back.
    ///
    /// # Safety
    /// The thread must be attached; `interp` must stay alive during `f`.
    pub unsafe fn switched_into<R>(
        interp: *mut ffi::PyInterpreterState,
        f: impl FnOnce() -> R,
    ) -> R {
        // SAFETY: attached (caller's contract): detach, attach a fresh thread state of the live
        // `interp`, run, then clear and delete it and restore the saved one, on this thread.
        unsafe {
            let saved = ffi::PyEval_SaveThread();
            let fresh = ffi::PyThreadState_New(interp);
            assert!(!fresh.is_null(), "PyThreadState_New failed");
            ffi::PyEval_RestoreThread(fresh);
            let out = f();
            ffi::PyThreadState_Clear(fresh);
            ffi::PyThreadState_DeleteCurrent();
            ffi::PyEval_RestoreThread(saved);
            out
        }
    }
}

/// Python code in main driving `_interpreters`, as the tests of interpreters ended by Python code
/// do (`python_ends.rs`, `attack_marks.rs`).
pub mod from_python {
    use interpsafe::interpreter::main_interpreter;
    use interpsafe::interpreter::runtime::lookup;
    use interpsafe::{attach, InterpreterId, InterpreterKey};

    /// Helpers defined in main's `__main__`. Tests run in parallel, so each call's state stays in
    /// the call's own frame (redefining them is harmless: every test defines the same code).
    /// `_pe_call` returns `''` for a call that returned `None`, `ok:` and the `repr` of any
    /// other result, or the exception as `Type: message`.
    pub const HELPERS: &std::ffi::CStr = c"
def _pe_create():
    import _interpreters
    i = _interpreters.create()
    _interpreters.exec(i, 'import _interpsafe')
    return i

def _pe_call(f, *args, **kw):
    try:
        r = f(*args, **kw)
        return '' if r is None else 'ok:' + repr(r)
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
";

    /// Evaluates `expr` in main after defining the helpers.
    pub fn in_main(expr: &str) -> String {
        let expr = std::ffi::CString::new(expr).unwrap();
        attach(main_interpreter(), |at| {
            at.exec(HELPERS).unwrap();
            at.eval(&expr).unwrap()
        })
        .unwrap()
    }

    /// Creates an interpreter from Python and enters toolkit code there once
    /// (`import _interpsafe`), which registers it. Returns its key.
    pub fn python_created() -> InterpreterKey {
        let id: i64 = in_main("_pe_create()").parse().unwrap();
        lookup(InterpreterId(id)).expect("registered on first entry")
    }

    /// `_interpreters.is_running(id)` through `_pe_call`: `ok:True`, `ok:False` or the error.
    pub fn is_running(id: i64) -> String {
        in_main(&format!("_pe_call(__import__('_interpreters').is_running, {id})"))
    }

    /// Whether `_interpreters` still lists the interpreter.
    pub fn listed(id: i64) -> bool {
        let expr =
            format!("str({id} in [int(i) for i, *_ in __import__('_interpreters').list_all()])");
        in_main(&expr) == "True"
    }

    /// Whether a Python call was refused because the interpreter runs main (the running-main
    /// mark: `InterpreterError: interpreter running`).
    pub fn refused_as_running(r: &Result<(), String>) -> bool {
        matches!(r, Err(e) if e.contains("InterpreterError") && e.contains("running"))
    }

    /// A `SharedBytes` pinning `key`, made there through `attach` and the tagged strategy.
    pub fn pin(key: InterpreterKey) -> interpsafe::share::SharedBytes {
        use interpsafe::strategy::Tagged;
        use interpsafe::Strategy;
        attach(key, |at| {
            Tagged::enter(at, |s| {
                let b = Tagged::eval(s, c"b'pinned' * 1000")?;
                interpsafe::share::SharedBytes::new::<Tagged>(s, Tagged::bind(s, &b)?)
            })
            .unwrap()
        })
        .unwrap()
    }

    /// Runs `_interpreters.destroy(id)` in main; `Ok(())`, or the exception as `Type: message`.
    pub fn python_destroy(id: i64) -> Result<(), String> {
        let err = in_main(&format!("_pe_call(__import__('_interpreters').destroy, {id})"));
        if err.is_empty() {
            Ok(())
        } else {
            Err(err)
        }
    }
}
