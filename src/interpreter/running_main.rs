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
//! The mark is never cleared, not even right before `Py_EndInterpreter`: a Python thread
//! spinning on `_interpreters.destroy(id)` got in through that gap (found by attack) and hung in
//! a thread state of the interpreter being freed. CPython reads the mark only through
//! `_PyInterpreterState_IsRunningMain` (destroy, exec), never dereferences it, and drops it with
//! the interpreter. Not covered: the moment between `Py_NewInterpreterFromConfig` adding the
//! interpreter to CPython's list and the worker marking it; `_interpreters.destroy` of an ID
//! guessed in that moment aborts the process ("not the last thread") while the interpreter is
//! still initialising (listed in `docs/threat-model.md`).
//!
//! The trade-off: `_interpreters.exec(id, ...)` refuses it too ("interpreter already running").
//! Python code cannot run code in a toolkit subinterpreter; toolkit code does that with
//! `SubInterpreter::run`, or any thread with `attach`. Interpreters created from Python are not
//! marked: their ends are handled by the end observer's handshake instead.

use crate::pyo3_compat::ffi;

extern "C" {
    fn _PyInterpreterState_SetRunningMain(interp: *mut ffi::PyInterpreterState) -> std::ffi::c_int;
}

/// Marks the calling thread as running `interp`'s main program, for the rest of the
/// interpreter's life. Returns false (with no Python error left) if someone else already runs it.
///
/// # Safety
/// The calling thread must be attached to `interp` with the thread state that stays the
/// interpreter's main thread until the interpreter ends.
pub(crate) unsafe fn mark(interp: *mut ffi::PyInterpreterState) -> bool {
    // SAFETY: attached to `interp` (caller's contract), which the call requires.
    if unsafe { _PyInterpreterState_SetRunningMain(interp) } == 0 {
        return true;
    }
    // SAFETY: attached; the failed call set an error.
    unsafe { ffi::PyErr_Clear() };
    false
}
