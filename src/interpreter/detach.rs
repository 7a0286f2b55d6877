//! Waiting on another thread without holding an interpreter: the toolkit's `allow_threads`.
//!
//! Creating a subinterpreter imports builtin modules, and on 3.13 some of those imports switch
//! to the main interpreter for a moment; running a closure on a worker or ending an interpreter
//! may likewise need a GIL the waiting thread holds. Any toolkit call that blocks on another
//! thread therefore detaches the calling thread first and re-attaches the same thread state
//! afterwards, as `Py_BEGIN_ALLOW_THREADS` does. (Found by the strategy tests: a subinterpreter
//! created from a thread attached to main deadlocked in `switch_to_main_interpreter`.)
//!
//! While detached, the thread state stays in its interpreter's list, so the interpreter is marked
//! as running main meanwhile ([`SuspendedMark`]): Python code that the awaited thread runs must
//! not be able to `_interpreters.destroy` it under the waiting thread.

use super::running_main::SuspendedMark;
use crate::pyo3_compat::ffi;
use crate::Error;

/// Runs `f` with the calling thread detached from whatever interpreter it is attached to, then
/// re-attaches it. Fails with [`Error::CannotSuspend`], without running `f`, where the thread's
/// interpreter cannot be held meanwhile (see [`SuspendedMark::take`]).
pub(crate) fn detached<R>(f: impl FnOnce() -> R) -> Result<R, Error> {
    // SAFETY: PyThreadState_GetUnchecked may be called in any state.
    if unsafe { ffi::PyThreadState_GetUnchecked() }.is_null() {
        return Ok(f());
    }
    struct Reattach(*mut ffi::PyThreadState, Option<SuspendedMark>);
    impl Drop for Reattach {
        fn drop(&mut self) {
            // SAFETY: the thread state was detached by PyEval_SaveThread on this thread below and
            // is restored exactly once, also on unwind; the mark was taken with it current.
            unsafe {
                ffi::PyEval_RestoreThread(self.0);
                if let Some(mark) = self.1.take() {
                    mark.lift();
                }
            }
        }
    }
    // SAFETY: the thread is attached (checked above), with the thread state the mark is taken
    // with, that PyEval_SaveThread detaches (always allowed), and that `Reattach` restores before
    // it lifts the mark.
    let _reattach = unsafe {
        let mark = SuspendedMark::take()?;
        Reattach(ffi::PyEval_SaveThread(), Some(mark))
    };
    Ok(f())
}
