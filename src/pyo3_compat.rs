//! The one place that knows the PyO3 version: moving to a newer PyO3 is a change here.
//!
//! interpsafe pins pyo3 and pyo3-ffi to 0.28.x because 0.29 dropped free-threaded CPython 3.13
//! (3.13t), the build the benches target. Everything else in the crate reaches the C API through
//! [`ffi`] and PyO3's own runtime through the functions below.

pub use pyo3_ffi as ffi;

/// C API that pyo3-ffi 0.28 does not declare, as CPython's headers give it.
pub mod missing_ffi {
    use super::ffi::PyObject;

    extern "C" {
        /// `PyDict_SetDefault` (`cpython/dictobject.h`): `mp[key]` if present, else `default`
        /// stored there; a borrowed reference, NULL with an exception set on error. Atomic
        /// under the dict's own lock on free-threaded builds.
        pub fn PyDict_SetDefault(
            mp: *mut PyObject,
            key: *mut PyObject,
            default: *mut PyObject,
        ) -> *mut PyObject;
    }
}

/// PEP 788's C API (`pystate.h` of CPython 3.15), which pyo3-ffi 0.28 does not declare: the
/// declarations as the header gives them, for the `pep788-native` feature (see
/// `interpreter/native_guard.rs`). A pyo3-ffi that declares them replaces this module.
#[cfg(feature = "pep788-native")]
pub mod pep788 {
    /// `PyInterpreterGuard`: keeps an interpreter from finalizing while it exists (opaque).
    #[repr(C)]
    pub struct PyInterpreterGuard {
        _opaque: [u8; 0],
    }

    /// `PyInterpreterView`: names an interpreter without keeping it alive (opaque).
    #[repr(C)]
    pub struct PyInterpreterView {
        _opaque: [u8; 0],
    }

    /// `PyThreadStateToken`: what `PyThreadState_Ensure` returns and `PyThreadState_Release`
    /// takes back (`typedef void PyThreadStateToken`).
    pub type PyThreadStateToken = std::ffi::c_void;

    extern "C" {
        /// A guard on the interpreter of the attached thread state (NULL with an exception set
        /// if it is finalizing).
        pub fn PyInterpreterGuard_FromCurrent() -> *mut PyInterpreterGuard;
        /// Releases a guard; its interpreter may finalize once no guard is left.
        pub fn PyInterpreterGuard_Close(guard: *mut PyInterpreterGuard);
        /// A guard on the interpreter `view` names, or NULL if it is finalizing or gone (no
        /// exception set; no thread state needed).
        pub fn PyInterpreterGuard_FromView(view: *mut PyInterpreterView)
            -> *mut PyInterpreterGuard;
        /// A view of the interpreter of the attached thread state (NULL with an exception set
        /// on failure).
        pub fn PyInterpreterView_FromCurrent() -> *mut PyInterpreterView;
        /// Frees a view.
        pub fn PyInterpreterView_Close(view: *mut PyInterpreterView);
        /// A view of the main interpreter (no thread state needed).
        pub fn PyInterpreterView_FromMain() -> *mut PyInterpreterView;
        /// Attaches the calling thread to `guard`'s interpreter (a thread state made for it if
        /// needed, the previous one saved), NULL on failure.
        pub fn PyThreadState_Ensure(guard: *mut PyInterpreterGuard) -> *mut PyThreadStateToken;
        /// Undoes the `PyThreadState_Ensure` that returned `token`, restoring what it saved.
        pub fn PyThreadState_Release(token: *mut PyThreadStateToken);
    }
}

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

/// PyO3's error type, which [`crate::Error`] converts into (the conversion is in
/// [`crate::exceptions`]).
pub use pyo3::PyErr;

/// A `PyErr` of the exception type `T`, with `message` as its argument (created lazily, when
/// PyO3 raises it).
pub fn new_err<T: pyo3::PyTypeInfo>(message: String) -> PyErr {
    PyErr::new::<T, _>(message)
}

/// Declares each `$name`, a PyO3 exception type whose type object is whatever `$class`
/// evaluates to in the interpreter the exception is raised in (one class object per
/// interpreter).
///
/// `$class` must evaluate to a live exception class (`*mut ffi::PyObject`) of the attached
/// interpreter on every call.
macro_rules! per_interpreter_exceptions {
    ($($name:ident => $class:expr, $doc:literal;)*) => {$(
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name;

        // SAFETY: `type_object_raw` returns `$class`, which the macro's contract makes a live
        // exception class of the attached interpreter. PyO3 documents the pointer as one
        // instance per type; here it is one instance per interpreter, which is the point
        // (hazard H10), and PyO3 reads it only while attached to that interpreter.
        #[allow(deprecated)]
        unsafe impl ::pyo3::PyTypeInfo for $name {
            const NAME: &'static str = stringify!($name);
            const MODULE: Option<&'static str> = Some("interpsafe");

            fn type_object_raw(_py: ::pyo3::Python<'_>) -> *mut ::pyo3_ffi::PyTypeObject {
                let class: *mut ::pyo3_ffi::PyObject = $class;
                class.cast()
            }
        }
    )*};
}
pub(crate) use per_interpreter_exceptions;
