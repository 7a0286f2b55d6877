//! Where a checked handle's reference is released: in its owner interpreter, now or later.
//!
//! A handle dropped while the thread is attached to its owner releases at once. Otherwise (the
//! thread is attached elsewhere, or to nothing) the reference is queued in the owner's deferred
//! decref pool and released the next time a thread attaches there ([`drain_for`]); if the owner
//! has ended, it is discarded without touching freed memory, and counted. This is the fix for the
//! process-global pool of PyO3 0.28 (`src/internal/state.rs`; PyO3 issue #4570, 2024), which is drained by whichever interpreter attaches
//! next.

use std::ptr::NonNull;

use interpsafe_protocol::{Deferred, InterpreterKey};

use crate::interpreter::runtime::{current_tag, decref_pool};
use crate::pyo3_compat::ffi;
use crate::tag::Tag;

/// Releases a strong reference owned by `owner`: now if attached there, else deferred.
pub(crate) fn release(owner: Tag, ptr: NonNull<ffi::PyObject>) {
    if owner == Tag::UNKNOWN {
        // Nobody's: no interpreter may release it, so it is leaked.
        return;
    }
    if current_tag() == Some(owner) {
        // SAFETY: the thread is attached to the owner interpreter, which owns the reference.
        unsafe { ffi::Py_DECREF(ptr.as_ptr()) };
        return;
    }
    match decref_pool().defer(owner.key(), ptr.as_ptr() as usize) {
        Deferred::Queued | Deferred::Discarded => {}
    }
}

/// Releases the references queued for `key`; the thread must be attached to `key`.
///
/// # Safety
/// The calling thread must be attached to the interpreter `key`.
pub(crate) unsafe fn drain_for(key: InterpreterKey) {
    for addr in decref_pool().take(key) {
        // SAFETY: the pool only hands out addresses deferred for `key`, each once, and the thread
        // is attached to `key` (caller's contract).
        unsafe { ffi::Py_DECREF(addr as *mut ffi::PyObject) };
    }
}

/// Releases what is queued for `key` and closes its queue, right before it ends.
///
/// # Safety
/// The calling thread must be attached to the interpreter `key`, which must not have ended.
pub(crate) unsafe fn close_for(key: InterpreterKey) {
    for addr in decref_pool().close(key) {
        // SAFETY: as in `drain_for`; the interpreter has not ended yet.
        unsafe { ffi::Py_DECREF(addr as *mut ffi::PyObject) };
    }
}
