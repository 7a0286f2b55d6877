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
