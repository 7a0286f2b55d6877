//! The toolkit's own Python exception classes, created per interpreter.
//!
//! `interpsafe.InterpreterError(RuntimeError)` is the base; `CrossInterpreterError`,
//! `OwnerEndedError` and `NotAttachedError` derive from it. Each interpreter gets its own class
//! objects, found through a per-interpreter once-cell, so an exception raised in one interpreter
//! never carries another interpreter's type object (hazard H10). [`Error::restore`] raises an
//! [`Error`] in the attached interpreter; the PyO3 conversion (`PyErr::from(Error)`, through
//! the marker types [`PyInterpreterError`] and its siblings, declared with the macro in
//! [`crate::pyo3_compat`]) resolves the class lazily, in the interpreter it is raised in.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::interpreter::runtime::{current, current_tag, Current};
use crate::pyo3_compat::{ffi, new_err, per_interpreter_exceptions, PyErr};
use crate::strategy::handle_kit::{once_for, TaggedHandle, TaggedOnce};
use crate::Error;

/// One of the toolkit's exception classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionClass {
    /// `interpsafe.InterpreterError`, the base (a `RuntimeError`).
    InterpreterError,
    /// `interpsafe.CrossInterpreterError`: a handle used in an interpreter that does not own it.
    CrossInterpreterError,
    /// `interpsafe.OwnerEndedError`: a handle whose interpreter has ended.
    OwnerEndedError,
    /// `interpsafe.NotAttachedError`: an operation that needs an attached thread.
    NotAttachedError,
}

impl ExceptionClass {
    const ALL: [ExceptionClass; 4] = [
        ExceptionClass::InterpreterError,
        ExceptionClass::CrossInterpreterError,
        ExceptionClass::OwnerEndedError,
        ExceptionClass::NotAttachedError,
    ];

    /// The qualified name, `interpsafe.<Class>`.
    pub fn qualified_name(self) -> &'static CStr {
        match self {
            ExceptionClass::InterpreterError => c"interpsafe.InterpreterError",
            ExceptionClass::CrossInterpreterError => c"interpsafe.CrossInterpreterError",
            ExceptionClass::OwnerEndedError => c"interpsafe.OwnerEndedError",
            ExceptionClass::NotAttachedError => c"interpsafe.NotAttachedError",
        }
    }

    /// The class an [`Error`] is raised as.
    pub fn of(error: &Error) -> Self {
        match error {
            Error::CrossInterpreter { .. } | Error::OwnerUnknown { .. } => {
                ExceptionClass::CrossInterpreterError
            }
            Error::OwnerEnded { .. } => ExceptionClass::OwnerEndedError,
            Error::NotAttached { .. } => ExceptionClass::NotAttachedError,
            _ => ExceptionClass::InterpreterError,
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

static CLASSES: OnceLock<[TaggedOnce; 4]> = OnceLock::new();

/// The class object for `class` in the attached interpreter (a borrowed reference, owned by the
/// per-interpreter cell), falling back to `RuntimeError` if it cannot be created or nothing is
/// attached.
pub fn class_object(class: ExceptionClass) -> *mut ffi::PyObject {
    // SAFETY: PyExc_RuntimeError is a static builtin exception type, valid in every interpreter.
    let fallback = unsafe { ffi::PyExc_RuntimeError };
    let Some(Current { tag, slot }) = current() else {
        return fallback;
    };
    let cells = CLASSES.get_or_init(Default::default);
    let init = || -> Result<TaggedHandle, Error> {
        let base = if class == ExceptionClass::InterpreterError {
            fallback
        } else {
            class_object(ExceptionClass::InterpreterError)
        };
        // SAFETY: attached to `tag`; PyErr_NewException returns a new reference or NULL.
        let created = unsafe {
            ffi::PyErr_NewException(class.qualified_name().as_ptr(), base, std::ptr::null_mut())
        };
        match NonNull::new(created) {
            // SAFETY: a new reference made in the attached interpreter `tag`.
            Some(ptr) => Ok(unsafe { TaggedHandle::adopt(ptr, tag) }),
            None => {
                // SAFETY: attached; the failed call set an error.
                unsafe { ffi::PyErr_Clear() };
                Err(Error::NotAttached { operation: "create exception class" })
            }
        }
    };
    // SAFETY: attached to `tag` while the returned borrow is used by the caller (who is attached).
    match unsafe { once_for(&cells[class.index()], tag, slot, init) } {
        Ok(obj) => obj.as_ptr(),
        Err(_) => fallback,
    }
}

impl Error {
    /// Raises this error as a Python exception in the attached interpreter (the toolkit's class
    /// for its kind, created in that interpreter). Does nothing if no thread is attached.
    pub fn restore(&self) {
        if current_tag().is_none() {
            return;
        }
        let class = class_object(ExceptionClass::of(self));
        let message = CString::new(self.to_string().replace('\0', " ")).unwrap_or_default();
        // SAFETY: attached (checked); `class` is a live exception class of this interpreter.
        unsafe { ffi::PyErr_SetString(class, message.as_ptr()) };
    }
}

per_interpreter_exceptions! {
    PyInterpreterError => class_object(ExceptionClass::InterpreterError),
        "`interpsafe.InterpreterError`, as a PyO3 exception type.";
    PyCrossInterpreterError => class_object(ExceptionClass::CrossInterpreterError),
        "`interpsafe.CrossInterpreterError`, as a PyO3 exception type.";
    PyOwnerEndedError => class_object(ExceptionClass::OwnerEndedError),
        "`interpsafe.OwnerEndedError`, as a PyO3 exception type.";
    PyNotAttachedError => class_object(ExceptionClass::NotAttachedError),
        "`interpsafe.NotAttachedError`, as a PyO3 exception type.";
}

impl From<Error> for PyErr {
    fn from(error: Error) -> PyErr {
        let message = error.to_string();
        match ExceptionClass::of(&error) {
            ExceptionClass::CrossInterpreterError => new_err::<PyCrossInterpreterError>(message),
            ExceptionClass::OwnerEndedError => new_err::<PyOwnerEndedError>(message),
            ExceptionClass::NotAttachedError => new_err::<PyNotAttachedError>(message),
            ExceptionClass::InterpreterError => new_err::<PyInterpreterError>(message),
        }
    }
}
