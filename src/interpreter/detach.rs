//! Waiting on another thread without holding an interpreter: the toolkit's `allow_threads`.
//!
//! Creating a subinterpreter imports builtin modules, and on 3.13 some of those imports switch
//! to the main interpreter for a moment; running a closure on a worker or ending an interpreter
//! may likewise need a GIL the waiting thread holds. Any toolkit call that blocks on another
//! thread therefore detaches the calling thread first and re-attaches the same thread state
//! afterwards, as `Py_BEGIN_ALLOW_THREADS` does. (Found by the strategy tests: a subinterpreter
//! created from a thread attached to main deadlocked in `switch_to_main_interpreter`.)

use crate::pyo3_compat::ffi;

/// Runs `f` with the calling thread detached from whatever interpreter it is attached to, then
/// re-attaches it.
pub(crate) fn detached<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: PyThreadState_GetUnchecked may be called in any state.
    if unsafe { ffi::PyThreadState_GetUnchecked() }.is_null() {
        return f();
    }
    struct Reattach(*mut ffi::PyThreadState);
    impl Drop for Reattach {
        fn drop(&mut self) {
            // SAFETY: the thread state was detached by PyEval_SaveThread on this thread below and
            // is restored exactly once, also on unwind.
            unsafe { ffi::PyEval_RestoreThread(self.0) };
        }
    }
    // SAFETY: the thread is attached (checked above); detaching it is always allowed.
    let _reattach = Reattach(unsafe { ffi::PyEval_SaveThread() });
    f()
}
