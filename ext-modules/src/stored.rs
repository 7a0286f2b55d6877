//! What the modules need of a strategy's stored form beyond the [`Strategy`] trait: a checked
//! duplicate, and the raw object for the garbage collector.
//!
//! Module state keeps the `Counter` type and the `Error` class in the strategy's stored form
//! (`Strategy::Stored`). A function uses one by duplicating it (a new strong reference, taken
//! only after the same owner check a bind makes) and loading the duplicate into its scope, which
//! is the strategy's own storage-boundary check; the kept one stays in the state. `m_traverse`
//! runs in no scope and only reports the object's address to the collector.

use interpsafe::pyo3_compat::ffi;
use interpsafe::strategy::{TaggedHandle, UncheckedHandle};
use interpsafe::{Error, Strategy};

/// A strategy's stored form as module state keeps it.
pub trait StoredForm: Sized + Send + Sync + 'static {
    /// A new stored handle to the same object, made while the thread is attached to the object's
    /// owner; refused (the strategy's owner error) anywhere else.
    fn duplicate(&self) -> Result<Self, Error>;

    /// The object, for `m_traverse` (the collector's visit reads it; it takes no reference).
    fn object(&self) -> *mut ffi::PyObject;
}

impl StoredForm for TaggedHandle {
    fn duplicate(&self) -> Result<Self, Error> {
        self.check_attached("module state")?;
        // SAFETY: checked just above: the thread is attached to the handle's owner.
        Ok(unsafe { self.clone_checked() })
    }

    fn object(&self) -> *mut ffi::PyObject {
        self.addr() as *mut ffi::PyObject
    }
}

impl StoredForm for UncheckedHandle {
    /// The baseline's clone: an incref in whatever interpreter is attached (`Py<T>::clone_ref`).
    fn duplicate(&self) -> Result<Self, Error> {
        Ok(self.clone())
    }

    fn object(&self) -> *mut ffi::PyObject {
        self.addr() as *mut ffi::PyObject
    }
}

/// A strategy whose stored form module state can keep.
pub trait ModuleStrategy: Strategy<Stored: StoredForm> {}

impl<S: Strategy<Stored: StoredForm>> ModuleStrategy for S {}
