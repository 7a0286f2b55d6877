//! The one place that knows the PyO3 version: moving to a newer PyO3 is a change here.
//!
//! interpsafe pins pyo3 and pyo3-ffi to 0.28.x because 0.29 dropped free-threaded CPython 3.13
//! (3.13t), the build the benches target. Everything else in the crate reaches the C API through
//! [`ffi`] and PyO3's own runtime through the functions below.

pub use pyo3_ffi as ffi;

/// The PyO3 version this build links, as recorded in every result.
pub const PYO3_VERSION: &str = "0.28.3";

/// Initialises the embedded interpreter if nobody has, and leaves no thread attached.
///
/// PyO3 0.28 calls this `Python::initialize` (it was `prepare_freethreaded_python` before 0.26);
/// it runs `Py_InitializeEx(0)` once and releases the main thread state with
/// `PyEval_SaveThread`.
pub fn initialize_runtime() {
    pyo3::Python::initialize();
}

/// PyO3 glue for the toolkit's exception classes: marker types whose `type_object_raw` resolves
/// the class of the interpreter the exception is raised in.
pub mod pyerr {
    use pyo3::{PyErr, PyTypeInfo, Python};

    use super::ffi;
    use crate::exceptions::{class_object, ExceptionClass};
    use crate::Error;

    macro_rules! exception_marker {
        ($name:ident, $class:expr, $doc:literal) => {
            #[doc = $doc]
            #[derive(Debug)]
            pub struct $name;

            // SAFETY: `type_object_raw` always returns a live exception class: the toolkit's
            // class of the attached interpreter, or `RuntimeError`. PyO3 documents the pointer
            // as one instance per type; here it is one instance per interpreter, which is the
            // point (hazard H10), and PyO3 reads it only while attached to that interpreter.
            #[allow(deprecated)]
            unsafe impl PyTypeInfo for $name {
                const NAME: &'static str = stringify!($name);
                const MODULE: Option<&'static str> = Some("interpsafe");

                fn type_object_raw(_py: Python<'_>) -> *mut ffi::PyTypeObject {
                    class_object($class).cast()
                }
            }
        };
    }

    exception_marker!(
        PyInterpreterError,
        ExceptionClass::InterpreterError,
        "`interpsafe.InterpreterError`, as a PyO3 exception type."
    );
    exception_marker!(
        PyCrossInterpreterError,
        ExceptionClass::CrossInterpreterError,
        "`interpsafe.CrossInterpreterError`, as a PyO3 exception type."
    );
    exception_marker!(
        PyOwnerEndedError,
        ExceptionClass::OwnerEndedError,
        "`interpsafe.OwnerEndedError`, as a PyO3 exception type."
    );
    exception_marker!(
        PyNotAttachedError,
        ExceptionClass::NotAttachedError,
        "`interpsafe.NotAttachedError`, as a PyO3 exception type."
    );

    impl From<Error> for PyErr {
        fn from(error: Error) -> PyErr {
            let message = error.to_string();
            match ExceptionClass::of(&error) {
                ExceptionClass::CrossInterpreterError => {
                    PyErr::new::<PyCrossInterpreterError, _>(message)
                }
                ExceptionClass::OwnerEndedError => PyErr::new::<PyOwnerEndedError, _>(message),
                ExceptionClass::NotAttachedError => PyErr::new::<PyNotAttachedError, _>(message),
                ExceptionClass::InterpreterError => PyErr::new::<PyInterpreterError, _>(message),
            }
        }
    }
}
