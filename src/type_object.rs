//! Type objects as a strategy keeps them: a heap type made from a spec, held in the strategy's
//! once-cell.
//!
//! PyO3 keeps each `#[pyclass]` type object in a process-global static, so every interpreter
//! instantiates the first interpreter's type (hazard H5). Held in a checked strategy's
//! per-interpreter once-cell, each interpreter creates and uses its own type; held in the
//! baseline's process-global cell, the first interpreter's type is handed to all.

use std::ffi::CStr;
use std::ptr::NonNull;

use crate::object::take_error;
use crate::pyo3_compat::ffi;
use crate::strategy::Strategy;
use crate::Error;

/// A minimal heap type: a named subclass of `object` with no extra state.
#[derive(Debug, Clone, Copy)]
pub struct TypeSpec {
    /// The qualified name, `module.Name`.
    pub name: &'static CStr,
}

impl TypeSpec {
    /// Creates the type in the scope's interpreter.
    pub fn create<'s, S: Strategy>(&self, scope: &S::Scope<'s>) -> Result<S::Handle<'s>, Error> {
        let mut slots = [ffi::PyType_Slot { slot: 0, pfunc: std::ptr::null_mut() }];
        let mut spec = ffi::PyType_Spec {
            name: self.name.as_ptr(),
            basicsize: 0,
            itemsize: 0,
            flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_BASETYPE) as _,
            slots: slots.as_mut_ptr(),
        };
        // SAFETY: a scope exists, so the thread is attached; the spec and its slots outlive the
        // call (CPython copies what it needs); the result is a new reference or NULL.
        let ty = unsafe { ffi::PyType_FromSpec(&mut spec) };
        match NonNull::new(ty) {
            // SAFETY: a new reference made in the scope's interpreter.
            Some(ty) => Ok(unsafe { S::adopt(scope, ty) }),
            None => {
                // SAFETY: attached; the failed call set an exception.
                let message = unsafe { take_error() };
                Err(Error::Python { interpreter: S::key(scope), message })
            }
        }
    }

    /// The type for the scope's interpreter, as the strategy's once-cell keeps it.
    pub fn get<'s, 'a, S: Strategy>(
        &self,
        cell: &'a S::Once,
        scope: &'a S::Scope<'s>,
    ) -> Result<S::Ref<'s, 'a>, Error> {
        S::once(cell, scope, |scope| self.create::<S>(scope))
    }

    /// A new instance of the type (calls it with no arguments).
    pub fn instantiate<'s, 'a, S: Strategy>(
        scope: &'a S::Scope<'s>,
        ty: S::Ref<'s, 'a>,
    ) -> Result<S::Handle<'s>, Error> {
        // SAFETY: attached (a scope exists); `ty` is a live type; new reference or NULL.
        let obj = unsafe { ffi::PyObject_CallNoArgs(S::as_obj(ty).as_ptr()) };
        match NonNull::new(obj) {
            // SAFETY: calling `ty` returned a new reference, on this thread.
            Some(obj) => Ok(unsafe { S::adopt_derived(scope, ty, obj) }),
            None => {
                // SAFETY: attached; the failed call set an exception.
                let message = unsafe { take_error() };
                Err(Error::Python { interpreter: S::key(scope), message })
            }
        }
    }
}
