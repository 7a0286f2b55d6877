//! Marking a toolkit subinterpreter as running its main program, so Python code cannot end it
//! under the toolkit's worker.
//!
//! `_interpreters.destroy(id)` refuses an interpreter that is "running main" (InterpreterError:
//! "interpreter running"); without the mark it calls `Py_EndInterpreter` on a thread state of its
//! own, and CPython aborts the process ("not the last thread") because the toolkit's worker
//! thread keeps a thread state there. The worker therefore marks its own thread state as the
//! interpreter's main thread for the interpreter's whole life, through
//! `_PyInterpreterState_SetRunningMain`, the call `_interpreters.exec` itself makes (exported by
//! libpython 3.13; declared in an internal header, so pyo3-ffi does not have it).
//!
//! The mark must stay on until CPython removes the interpreter from its list: cleared earlier
//! (it was cleared just before `Py_EndInterpreter`), it let a Python thread spinning on
//! `_interpreters.destroy(id)` in (found by attack), which then hung in a thread state of the
//! interpreter being freed, or aborted the process. But CPython asserts (on `--with-pydebug`
//! builds) that no thread state it clears is the running main one. So the mark is made to point
//! at no thread state at all: the worker marks its own thread state through the API, then the
//! field is located by difference (the words of the interpreter that equal that thread state
//! while marked and turn null when unmarked through the API) and overwritten with a sentinel
//! address that is never a thread state. `_PyInterpreterState_IsRunningMain` then holds until
//! the interpreter is freed, and no thread state is the running main one when CPython clears
//! it. CPython only compares the field, never dereferences it (3.13's `pystate.c`).
//!
//! If the field cannot be located exactly once, the worker's thread state stays marked and a
//! process-wide audit hook (`PySys_AddAuditHook`) clears the mark when
//! `PyInterpreterState_Clear` raises `cpython.PyInterpreterState_Clear` (after the last-thread
//! check, before thread states are cleared): a destroy in the instant between that and the
//! interpreter leaving CPython's list then hangs the destroying thread.
//!
//! Not covered: the moment between `Py_NewInterpreterFromConfig` adding the interpreter to
//! CPython's list and the worker marking it; `_interpreters.destroy` of an ID guessed in that
//! moment aborts the process ("not the last thread") while the interpreter is still
//! initialising (listed in `docs/threat-model.md`).
//!
//! The trade-off: `_interpreters.exec(id, ...)` refuses it too ("interpreter already running").
//! Python code cannot run code in a toolkit subinterpreter; toolkit code does that with
//! `SubInterpreter::run`, or any thread with `attach`. Interpreters created from Python are not
//! marked: their ends are handled by the end observer's handshake instead.

use crate::pyo3_compat::ffi;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

extern "C" {
    fn _PyInterpreterState_SetRunningMain(interp: *mut ffi::PyInterpreterState) -> c_int;
    fn _PyInterpreterState_SetNotRunningMain(interp: *mut ffi::PyInterpreterState);
    fn _PyInterpreterState_IsRunningMain(interp: *mut ffi::PyInterpreterState) -> c_int;
    fn PySys_AddAuditHook(
        hook: unsafe extern "C" fn(*const c_char, *mut ffi::PyObject, *mut c_void) -> c_int,
        user_data: *mut c_void,
    ) -> c_int;
}

/// The interpreters (by address) whose worker this module marked and that have not been
/// cleared yet.
static MARKED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The audit event CPython raises at the start of `PyInterpreterState_Clear`.
const CLEAR_EVENT: &CStr = c"cpython.PyInterpreterState_Clear";

/// Clears the mark of a marked interpreter when CPython starts clearing it (see the module
/// docs). Every other event passes.
unsafe extern "C" fn unmark_on_clear(
    event: *const c_char,
    _args: *mut ffi::PyObject,
    _user: *mut c_void,
) -> c_int {
    // SAFETY: CPython passes a NUL-terminated event name.
    if event.is_null() || unsafe { CStr::from_ptr(event) } != CLEAR_EVENT {
        return 0;
    }
    // SAFETY: CPython raises this event on the thread that clears the interpreter, attached to
    // it with the thread state that ends it.
    let interp = unsafe { ffi::PyThreadState_GetInterpreter(ffi::PyThreadState_Get()) };
    let mut marked = MARKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = marked.iter().position(|&m| m == interp as usize) {
        marked.swap_remove(i);
        // SAFETY: `interp` was marked by its worker, whose thread state is the current one:
        // Py_EndInterpreter runs on the worker with its own thread state.
        unsafe { _PyInterpreterState_SetNotRunningMain(interp) };
    }
    0
}

/// Never a thread state: what the running-main field of a marked interpreter points at.
static SENTINEL: u8 = 0;

/// How far into `PyInterpreterState` the running-main field is looked for, in words: it sits in
/// the `threads` group, after the eval state (whose pending-call table alone is about 7 KiB on
/// 3.13), well inside the first 32 KiB of a struct that is far larger.
const SCAN_WORDS: usize = 4096;

/// The word offsets of `interp` that hold `value`.
///
/// # Safety
/// `interp` must be a live interpreter (its struct is far larger than `SCAN_WORDS` words).
unsafe fn words_equal(interp: *mut ffi::PyInterpreterState, value: usize) -> Vec<usize> {
    let words = interp.cast::<AtomicUsize>();
    (0..SCAN_WORDS)
        // SAFETY: in bounds of the live struct (caller's contract); read atomically, as CPython
        // reads and writes the running-main field atomically.
        .filter(|&i| unsafe { (*words.add(i)).load(Ordering::Relaxed) } == value)
        .collect()
}

/// Points the marked interpreter's running-main field at [`SENTINEL`]. Returns false (the mark
/// left on the current thread state) if the field is not found exactly once.
///
/// # Safety
/// The calling thread must be attached to `interp` with the thread state `_PyInterpreterState_
/// SetRunningMain` just marked.
unsafe fn point_mark_at_sentinel(interp: *mut ffi::PyInterpreterState) -> bool {
    // SAFETY: attached to `interp` with the marked thread state (caller's contract): the API
    // calls below toggle the mark off and on with that same thread state, and the scans read
    // the live struct.
    unsafe {
        let tstate = ffi::PyThreadState_Get() as usize;
        let marked = words_equal(interp, tstate);
        _PyInterpreterState_SetNotRunningMain(interp);
        let field: Vec<usize> =
            marked.into_iter().filter(|&i| (*interp.cast::<AtomicUsize>().add(i)).load(Ordering::Relaxed) == 0).collect();
        if _PyInterpreterState_SetRunningMain(interp) != 0 {
            ffi::PyErr_Clear();
            return false;
        }
        let [i] = field[..] else { return false };
        let word = &*interp.cast::<AtomicUsize>().add(i);
        if word.load(Ordering::Relaxed) != tstate {
            return false;
        }
        word.store(std::ptr::addr_of!(SENTINEL) as usize, Ordering::Relaxed);
        _PyInterpreterState_IsRunningMain(interp) == 1
    }
}

/// Installs the audit hook once per process.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: the hook is a plain function with CPython's audit hook signature that calls
        // only thread-safe C API; a failure to install leaves debug builds asserting at the end
        // of a toolkit subinterpreter, which the test suite would show.
        unsafe { PySys_AddAuditHook(unmark_on_clear, std::ptr::null_mut()) };
    });
}

/// Marks the calling thread as running `interp`'s main program until CPython starts clearing
/// the interpreter. Returns false (with no Python error left) if someone else already runs it.
///
/// # Safety
/// The calling thread must be attached to `interp` with the thread state that stays the
/// interpreter's main thread until the interpreter ends.
pub(crate) unsafe fn mark(interp: *mut ffi::PyInterpreterState) -> bool {
    // SAFETY: attached to `interp` (caller's contract), which the call requires.
    if unsafe { _PyInterpreterState_SetRunningMain(interp) } == 0 {
        // SAFETY: attached with the thread state just marked.
        if !unsafe { point_mark_at_sentinel(interp) } {
            install_hook();
            MARKED.lock().unwrap_or_else(|e| e.into_inner()).push(interp as usize);
        }
        return true;
    }
    // SAFETY: attached; the failed call set an error.
    unsafe { ffi::PyErr_Clear() };
    false
}
