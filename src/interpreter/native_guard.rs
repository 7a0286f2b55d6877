//! PEP 788's native guards, under the `pep788-native` feature (CPython 3.15+): an
//! [`InterpreterGuard`](super::InterpreterGuard) also holds a `PyInterpreterGuard`, so CPython's
//! own ends wait for it.
//!
//! The model: the emulation's registry guard keeps every end the toolkit runs from proceeding,
//! but on 3.13 an end that Python code starts (`_interpreters.destroy`) does not wait for it; the
//! end observer then reports the end and later attaches are refused. A native guard makes every
//! end wait, Python's included: `Py_EndInterpreter` blocks until the last `PyInterpreterGuard`
//! of the interpreter is closed. CPython refuses new native guards only once that count reaches
//! zero; while an end waits it still grants them (measured on 3.15.2), so what stops new toolkit
//! guards meanwhile is the registry's `Ending`, which the end hook sets (and which Python code
//! that clears `atexit` can skip: then overlapping guards can keep an end waiting). Guards come
//! from views (`PyInterpreterView_FromCurrent`), which the toolkit takes once per interpreter on
//! first entry, while attached there, and keeps for the life of the process (a view holds only
//! the interpreter's ID, so it stays safe to use after the end: `PyInterpreterGuard_FromView`
//! then returns NULL).
//!
//! Limitation, by PEP 788's design and not yet handled here: an *idle* guard makes every end
//! wait, with no timeout and no way to interrupt it. A guard kept by an object of its own
//! interpreter (a class field, closed in `__del__`, which the waiting end never reaches), one
//! held by the thread that destroys the interpreter from Python, or one held by a thread that
//! waits on something else keeps the end, or the process's exit, waiting for ever; the emulation
//! let all three proceed. Taking the native guard only for the length of an attachment would
//! keep the wait to attachments in progress, as the emulated end does.

use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::Mutex;

use interpsafe_protocol::{AttachRefused, InterpreterKey};

use crate::pyo3_compat::{ffi, pep788};
use crate::Error;

/// The view of each interpreter the toolkit has entered (an address, for `Sync`).
static VIEWS: Mutex<Option<HashMap<InterpreterKey, usize>>> = Mutex::new(None);

/// Takes and keeps a view of `key`'s interpreter.
///
/// # Safety
/// The calling thread is attached to `key`'s interpreter.
pub(crate) unsafe fn remember_view(key: InterpreterKey) {
    // SAFETY: attached to `key`'s interpreter (caller's contract), which is what
    // `PyInterpreterView_FromCurrent` reads; on failure it sets an exception there, which is
    // cleared so that it does not surface in whatever code entered the toolkit.
    unsafe {
        let view = pep788::PyInterpreterView_FromCurrent();
        if view.is_null() {
            ffi::PyErr_Clear();
        }
        keep(key, view);
    }
}

/// Takes and keeps a view of the main interpreter, `key` (no thread state needed).
pub(crate) fn remember_main_view(key: InterpreterKey) {
    // SAFETY: callable from any thread once the runtime is initialised, which registering main
    // implies.
    keep(key, unsafe { pep788::PyInterpreterView_FromMain() });
}

/// Keeps `view` as `key`'s (the first one taken stays; a later one is closed).
fn keep(key: InterpreterKey, view: *mut pep788::PyInterpreterView) {
    if view.is_null() {
        // Out of memory: `NativeGuard::take` reports the missing view as an unknown interpreter.
        return;
    }
    let mut views = VIEWS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let kept = *views.get_or_insert_with(HashMap::new).entry(key).or_insert(view as usize);
    drop(views);
    if kept != view as usize {
        // SAFETY: `view` was just taken and is not kept anywhere.
        unsafe { pep788::PyInterpreterView_Close(view) };
    }
}

/// A `PyInterpreterGuard` on one interpreter, closed on drop.
#[derive(Debug)]
pub(crate) struct NativeGuard(NonNull<pep788::PyInterpreterGuard>);

// SAFETY: PEP 788 lets a guard be taken on one thread and used or closed on another; the guard
// is an allocation CPython owns until `PyInterpreterGuard_Close`, which only `Drop` calls.
unsafe impl Send for NativeGuard {}

impl NativeGuard {
    /// A guard on `key`: refused if the toolkit never entered it (no view), or if CPython
    /// refuses (its end has begun, or it is gone).
    pub(crate) fn take(key: InterpreterKey) -> Result<NativeGuard, Error> {
        let views = VIEWS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let view = views.as_ref().and_then(|v| v.get(&key).copied());
        drop(views);
        let view = view.ok_or(Error::Attach(AttachRefused::Unknown(key)))?;
        // SAFETY: `view` came from `PyInterpreterView_FromCurrent` and is never closed; taking a
        // guard from it needs no thread state and fails (NULL) once the interpreter finalizes.
        let guard = unsafe { pep788::PyInterpreterGuard_FromView(view as *mut _) };
        NonNull::new(guard).map(NativeGuard).ok_or(Error::Attach(AttachRefused::Ending(key)))
    }

    /// Runs `f` with the calling thread attached through `PyThreadState_Ensure` on this guard,
    /// then `PyThreadState_Release` (also on unwind). `None` if CPython could not attach.
    pub(crate) fn ensure<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        /// Releases the token when the attachment ends, also on unwind.
        struct Release(NonNull<pep788::PyThreadStateToken>);
        impl Drop for Release {
            fn drop(&mut self) {
                // SAFETY: the token came from `PyThreadState_Ensure` on this thread, attachments
                // nest (closures), and it is released exactly once, here.
                unsafe { pep788::PyThreadState_Release(self.0.as_ptr()) }
            }
        }
        // SAFETY: the guard is held (open until `self` drops), so its interpreter cannot
        // finalize; `PyThreadState_Ensure` may be called from a thread in any state.
        let token = unsafe { pep788::PyThreadState_Ensure(self.0.as_ptr()) };
        let _release = Release(NonNull::new(token)?);
        Some(f())
    }
}

impl Drop for NativeGuard {
    fn drop(&mut self) {
        // SAFETY: the guard came from `PyInterpreterGuard_FromView` and is closed once, here.
        unsafe { pep788::PyInterpreterGuard_Close(self.0.as_ptr()) }
    }
}
