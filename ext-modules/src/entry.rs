//! The FFI edge: every function CPython calls goes through [`entry`] (or [`entry_int`]), which
//! enters a strategy scope on the attached thread, catches panics and raises failures as Python
//! exceptions, so nothing unwinds into CPython.
//!
//! A [`Failure`] is either an exception CPython code already set (left as it is, so that an
//! exception raised by a callback reaches the caller unchanged) or a toolkit [`Error`], raised
//! as the toolkit's per-interpreter exception class ([`Error::restore`]).

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{null_mut, NonNull};

use interpsafe::interpreter::attached_here;
use interpsafe::pyo3_compat::ffi;
use interpsafe::{Error, Strategy};

/// Why an entry point failed.
#[derive(Debug)]
pub enum Failure {
    /// A Python exception is set on this thread.
    Raised,
    /// A toolkit error, not raised yet.
    Toolkit(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Toolkit(error)
    }
}

impl Failure {
    /// Leaves a Python exception set on this thread, which must be attached.
    fn raise(self) {
        // SAFETY: entry points run attached (CPython calls them so); PyErr_Occurred only reads
        // the thread state's current exception.
        let pending = unsafe { !ffi::PyErr_Occurred().is_null() };
        match self {
            // A Python call inside a once-cell initialiser reports through `Error::Python` with
            // its exception still set: that exception is the one to raise.
            Failure::Toolkit(Error::Python { .. }) if pending => {}
            Failure::Toolkit(error) => error.restore(),
            Failure::Raised if pending => {}
            Failure::Raised => raise_system_error(c"interpsafe-ext: failure without an exception"),
        }
    }
}

fn raise_system_error(message: &std::ffi::CStr) {
    // SAFETY: attached (entry points run attached); PyExc_SystemError is a static type and the
    // message a static C string.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, message.as_ptr()) };
}

/// Wraps a new reference CPython handed back (`NULL` meaning an exception is set).
pub fn new_ref(obj: *mut ffi::PyObject) -> Result<NonNull<ffi::PyObject>, Failure> {
    NonNull::new(obj).ok_or(Failure::Raised)
}

/// Runs `f` in a scope of strategy `S` on the attached thread.
pub fn with_scope<S: Strategy, R>(
    f: impl for<'s> FnOnce(&S::Scope<'s>) -> Result<R, Failure>,
) -> Result<R, Failure> {
    attached_here(|at| S::enter(at, f))
        .unwrap_or(Err(Failure::Toolkit(Error::NotAttached { operation: "extension entry" })))
}

/// An entry point returning an object: `NULL` with an exception set on failure or panic.
pub fn entry(f: impl FnOnce() -> Result<*mut ffi::PyObject, Failure>) -> *mut ffi::PyObject {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(obj)) => obj,
        Ok(Err(failure)) => {
            failure.raise();
            null_mut()
        }
        Err(_) => {
            raise_system_error(c"interpsafe-ext: a panic reached the FFI boundary");
            null_mut()
        }
    }
}

/// An entry point returning a status (`0`, or `-1` with an exception set on failure or panic).
pub fn entry_int(f: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(failure)) => {
            failure.raise();
            -1
        }
        Err(_) => {
            raise_system_error(c"interpsafe-ext: a panic reached the FFI boundary");
            -1
        }
    }
}

/// A slot that must not raise (`tp_traverse`, `m_traverse`, `m_clear`, deallocators): a panic
/// becomes `fallback`, since nothing may unwind into CPython and no exception may be set there.
pub fn quiet<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}
