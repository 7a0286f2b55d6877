//! The toolkit's own Python exception classes, created per interpreter.
//!
//! `interpsafe.InterpreterError(RuntimeError)` is the base; `CrossInterpreterError`,
//! `OwnerEndedError` and `NotAttachedError` derive from it. Each interpreter gets its own class
//! objects, kept in that interpreter's own dict, so an exception raised in one interpreter never
//! carries another interpreter's type object (hazard H10). [`Error::restore`] raises an
//! [`Error`] in the attached interpreter; the PyO3 conversion (`PyErr::from(Error)`, through
//! the marker types [`PyInterpreterError`] and its siblings, declared with the macro in
//! [`crate::pyo3_compat`]) resolves the class lazily, in the interpreter it is raised in.

use std::ffi::{CStr, CString};

use crate::interpreter::runtime::{current, current_tag};
use crate::pyo3_compat::{ffi, missing_ffi, new_err, per_interpreter_exceptions, PyErr};
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
}

/// The class object for `class` in the attached interpreter (a borrowed reference), falling
/// back to `RuntimeError` if it cannot be created or nothing is attached.
///
/// The classes live in the interpreter's own dict (`PyInterpreterState_GetDict`), under their
/// qualified names, as long as the interpreter: CPython clears that dict after the last Python
/// code of the interpreter ran, so a `__del__` or `atexit` callback raising at the end still
/// gets the toolkit's class. (Held in once-cells, they were released as the end began, and
/// every interpreter after the first fell back to `RuntimeError` in its teardown; found by
/// attack.)
pub fn class_object(class: ExceptionClass) -> *mut ffi::PyObject {
    // SAFETY: PyExc_RuntimeError is a static builtin exception type, valid in every interpreter.
    let fallback = unsafe { ffi::PyExc_RuntimeError };
    if current().is_none() {
        return fallback;
    }
    // SAFETY: attached (checked above): every call below needs only that. The dict owns the
    // class, and only CPython's final clear of the interpreter removes it, after which no code
    // of the interpreter runs; so the borrowed reference outlives the caller's use.
    unsafe {
        let dict = ffi::PyInterpreterState_GetDict(ffi::PyInterpreterState_Get());
        if dict.is_null() {
            return fallback;
        }
        let name = class.qualified_name();
        let found = ffi::PyDict_GetItemString(dict, name.as_ptr());
        if !found.is_null() {
            return found;
        }
        let base = match class {
            ExceptionClass::InterpreterError => fallback,
            _ => class_object(ExceptionClass::InterpreterError),
        };
        let created = ffi::PyErr_NewException(name.as_ptr(), base, std::ptr::null_mut());
        let key = ffi::PyUnicode_FromString(name.as_ptr());
        if created.is_null() || key.is_null() {
            ffi::Py_XDECREF(created);
            ffi::Py_XDECREF(key);
            ffi::PyErr_Clear();
            return fallback;
        }
        // Two threads creating at once (free-threaded builds) agree on the first stored.
        let stored = missing_ffi::PyDict_SetDefault(dict, key, created);
        ffi::Py_DECREF(key);
        ffi::Py_DECREF(created);
        if stored.is_null() {
            ffi::PyErr_Clear();
            return fallback;
        }
        stored
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
