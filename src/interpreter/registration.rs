//! Registration on first entry: the first time toolkit code runs in an interpreter, the
//! registry records it and its end observer is installed, whoever created it.
//!
//! Code that CPython calls while attached (an extension module's functions and exec slot, in an
//! interpreter the toolkit neither started nor created) enters toolkit code through
//! [`attached_here`], which registers the interpreter the same way.

use interpsafe_protocol::{InterpreterId, InterpreterKey};

use super::end_observer;
use super::guard::Attached;
use super::runtime::registry;
use crate::pyo3_compat::ffi;

/// The interpreter the calling thread is attached to, or `None` if it is attached to none.
///
/// The first call from an interpreter the registry has not seen registers it and installs its
/// end observer (this is "registration on first entry").
pub fn current_interpreter() -> Option<InterpreterKey> {
    // SAFETY: PyThreadState_GetUnchecked may be called with or without an attached thread state;
    // it returns NULL when none is attached.
    let tstate = unsafe { ffi::PyThreadState_GetUnchecked() };
    if tstate.is_null() {
        return None;
    }
    // SAFETY: tstate is the attached thread state of this thread, so it and its interpreter are
    // alive for the duration of these calls.
    let (interp, id) = unsafe {
        let interp = ffi::PyThreadState_GetInterpreter(tstate);
        (interp, ffi::PyInterpreterState_GetID(interp))
    };
    Some(enter(InterpreterId(id), interp))
}

/// Runs `f` with proof that the calling thread is attached ([`Attached`]), for code that CPython
/// called while attached: an extension module's functions, its exec slot, `tp_*` slots. The
/// interpreter is registered on first entry (as [`current_interpreter`] does), so the strategies'
/// per-interpreter once-cells and owner tags work in interpreters the toolkit never created, in a
/// process the toolkit did not start. `None` if the thread is attached to no interpreter.
///
/// No guard is taken: the interpreter cannot end under a thread that is attached to it and
/// running code there (CPython ends an interpreter only from its last thread state, and
/// `_interpreters.destroy` refuses a running one). `f` must not switch the thread to another
/// interpreter with raw C-API calls, the caveat every scope carries; toolkit attaches inside it
/// nest and restore the thread, as everywhere.
pub fn attached_here<R>(f: impl FnOnce(&Attached<'_>) -> R) -> Option<R> {
    let key = current_interpreter()?;
    Some(f(&Attached::new(key)))
}

/// Records entry into `interp` (attached on this thread) and installs its end observer on first
/// entry.
pub(crate) fn enter(id: InterpreterId, interp: *mut ffi::PyInterpreterState) -> InterpreterKey {
    let seen = registry().observe(id, interp as usize);
    if seen.first_entry {
        // SAFETY: `interp` is the interpreter this thread is attached to (callers guarantee it).
        unsafe { end_observer::install(interp, seen.key) };
        #[cfg(feature = "pep788-native")]
        // SAFETY: as above: attached to `interp`, the interpreter `seen.key` names.
        unsafe {
            super::native_guard::remember_view(seen.key)
        };
    }
    seen.key
}
