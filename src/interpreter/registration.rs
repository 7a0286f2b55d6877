//! Registration on first entry: the first time toolkit code runs in an interpreter, the
//! registry records it and its end observer is installed, whoever created it.

use interpsafe_protocol::{InterpreterId, InterpreterKey};

use super::end_observer;
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

/// Records entry into `interp` (attached on this thread) and installs its end observer on first
/// entry.
pub(crate) fn enter(id: InterpreterId, interp: *mut ffi::PyInterpreterState) -> InterpreterKey {
    let seen = registry().observe(id, interp as usize);
    if seen.first_entry {
        // SAFETY: `interp` is the interpreter this thread is attached to (callers guarantee it).
        unsafe { end_observer::install(interp, seen.key) };
    }
    seen.key
}
