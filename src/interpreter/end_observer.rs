//! Seeing an interpreter end, whoever ends it: a capsule in the interpreter's dict.
//!
//! `PyInterpreterState_GetDict` returns a dict that CPython clears while the interpreter is being
//! finalised (`PyInterpreterState_Clear`), which runs the capsule's destructor. The destructor
//! only reports to the registry: it calls no Python API.

use std::ffi::{c_void, CStr};

use interpsafe_protocol::InterpreterKey;

use super::runtime::{decref_pool, registry};
use crate::pyo3_compat::ffi;

const CAPSULE_NAME: &CStr = c"interpsafe.end_observer";

unsafe extern "C" fn on_interpreter_end(capsule: *mut ffi::PyObject) {
    // SAFETY: CPython calls this destructor with the capsule being freed; its name is ours.
    let ptr = unsafe { ffi::PyCapsule_GetPointer(capsule, CAPSULE_NAME.as_ptr()) };
    if ptr.is_null() {
        // SAFETY: the capsule API set an error; the destructor must not leave one behind.
        unsafe { ffi::PyErr_Clear() };
        return;
    }
    // SAFETY: `install` stored a `Box<InterpreterKey>` as the pointer and only this destructor,
    // run once, takes it back.
    let key = unsafe { Box::from_raw(ptr.cast::<InterpreterKey>()) };
    // Ended by someone other than the toolkit (or after the toolkit closed its queue): what is
    // still queued cannot be released safely mid-teardown, so it is discarded and counted.
    decref_pool().discard_ended(*key);
    registry().ended(*key);
}

/// Installs the end observer for `key` in `interp`'s dict. Failure is tolerated (the interpreter
/// then stays "alive" in the registry until the runtime ends), and any Python error is cleared.
///
/// # Safety
/// The calling thread must be attached to `interp`.
pub(crate) unsafe fn install(interp: *mut ffi::PyInterpreterState, key: InterpreterKey) {
    // SAFETY: the caller guarantees this thread is attached to `interp`; the dict is borrowed.
    let dict = unsafe { ffi::PyInterpreterState_GetDict(interp) };
    if dict.is_null() {
        return;
    }
    let boxed = Box::into_raw(Box::new(key));
    // SAFETY: attached to `interp`; the pointer is a live Box that the destructor reclaims.
    let capsule =
        unsafe { ffi::PyCapsule_New(boxed.cast::<c_void>(), CAPSULE_NAME.as_ptr(), Some(on_interpreter_end)) };
    if capsule.is_null() {
        // SAFETY: the capsule was not created, so the Box is still ours; clear the error.
        unsafe {
            drop(Box::from_raw(boxed));
            ffi::PyErr_Clear();
        }
        return;
    }
    // SAFETY: attached to `interp`; `dict` is its live interpreter dict and `capsule` a new
    // reference that the dict takes a reference of, so ours is released right after.
    unsafe {
        if ffi::PyDict_SetItemString(dict, CAPSULE_NAME.as_ptr(), capsule) != 0 {
            ffi::PyErr_Clear();
        } else {
            registry().mark_end_observed(key);
        }
        ffi::Py_DECREF(capsule);
    }
}
