//! `stock_pyo3`: the same Python surface written the way PyO3 0.28 teaches, with nothing added.
//!
//! The model is PyO3's: `#[pymodule]` keeps its module object in a process-global static and
//! refuses to initialise in a second interpreter (PyO3 issue #576); `#[pyclass]` and
//! `create_exception!` keep their type objects in process-global statics; `intern!` and
//! `PyOnceLock` cache one object for the whole process. This variant is today's status quo, the
//! row the interpsafe variants are compared with: the driver records what CPython and PyO3 do
//! with it in each kind of interpreter and asserts nothing about it.

use std::sync::atomic::{AtomicI64, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;

pyo3::create_exception!(
    stock_pyo3,
    Error,
    pyo3::exceptions::PyException,
    "The module's exception."
);

/// A thread-safe counter (`frozen`: the count is an atomic, so no borrow flag is needed).
#[pyclass(frozen, module = "stock_pyo3")]
pub struct Counter {
    count: AtomicI64,
}

#[pymethods]
impl Counter {
    #[new]
    fn new() -> Self {
        Counter { count: AtomicI64::new(0) }
    }

    /// Adds 1 and returns the new count.
    fn incr(&self) -> i64 {
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The count.
    #[getter]
    fn value(&self) -> i64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// Returns `obj`.
#[pyfunction]
fn identity(obj: Bound<'_, PyAny>) -> Bound<'_, PyAny> {
    obj
}

/// Raises `Error(msg)`.
#[pyfunction]
fn raise_error(msg: Bound<'_, PyAny>) -> PyResult<()> {
    Err(Error::new_err(msg.unbind()))
}

/// The interned str "interpsafe" (`intern!`: a process-global cache).
#[pyfunction]
fn interned(py: Python<'_>) -> Bound<'_, pyo3::types::PyString> {
    pyo3::intern!(py, "interpsafe").clone()
}

/// A list made once (a `PyOnceLock` in a static: once per process).
#[pyfunction]
fn cached(py: Python<'_>) -> Bound<'_, PyList> {
    static CACHED: PyOnceLock<Py<PyList>> = PyOnceLock::new();
    CACHED.get_or_init(py, || PyList::empty(py).unbind()).bind(py).clone()
}

/// Returns `f(x)`.
#[pyfunction]
fn call<'py>(f: Bound<'py, PyAny>, x: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    f.call1((x,))
}

/// The module, as `#[pymodule]` generates it (its `PyInit_stock_pyo3` is exported).
#[pymodule]
fn stock_pyo3(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Counter>()?;
    m.add("Error", m.py().get_type::<Error>())?;
    m.add_function(wrap_pyfunction!(identity, m)?)?;
    m.add_function(wrap_pyfunction!(raise_error, m)?)?;
    m.add_function(wrap_pyfunction!(interned, m)?)?;
    m.add_function(wrap_pyfunction!(cached, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    Ok(())
}
