//! `_interpsafe`: a builtin module through which Python code in any interpreter enters toolkit
//! code, so that interpreters created from Python (`_interpreters.create()`) are registered on
//! first entry.
//!
//! Written against the raw C API on purpose: a PyO3 `#[pymodule]` refuses to load in a second
//! interpreter (PyO3 issue #576). It uses multi-phase initialisation, declares
//! `Py_MOD_PER_INTERPRETER_GIL_SUPPORTED` (it keeps no per-module state) and, on free-threaded
//! builds, `Py_MOD_GIL_NOT_USED`. Its exec slot registers the importing interpreter.

use std::ffi::{c_int, CStr};
use std::ptr::{addr_of_mut, null_mut};

use super::registration::current_interpreter;
use crate::pyo3_compat::ffi;

/// The module's import name.
pub(crate) const NAME: &CStr = c"_interpsafe";

unsafe extern "C" fn exec_module(_module: *mut ffi::PyObject) -> c_int {
    // The exec slot runs attached to the importing interpreter: registering it is the point.
    current_interpreter();
    0
}

unsafe extern "C" fn interpreter_id(
    _module: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    match current_interpreter() {
        // SAFETY: CPython calls module functions attached to the module's interpreter.
        Some(key) => unsafe { ffi::PyLong_FromLongLong(key.id.0) },
        None => null_mut(),
    }
}

unsafe extern "C" fn runtime_epoch(
    _module: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    match current_interpreter() {
        // SAFETY: CPython calls module functions attached to the module's interpreter.
        Some(key) => unsafe { ffi::PyLong_FromUnsignedLongLong(key.epoch.0) },
        None => null_mut(),
    }
}

/// `record(tag, event)`: reports a probe event to the hazard suite's recorder
/// ([`super::probe::probe_events`]) with the ID of the interpreter the calling thread is
/// attached to, read from its thread state (not from the registry: a probe may be finalised in
/// an interpreter that is ending, or in one the registry has never seen, and the point is to
/// observe exactly where it ran).
unsafe extern "C" fn record(
    _module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a METH_FASTCALL function attached, with `nargs` valid arguments at
    // `args`; every call below needs only an attached thread state.
    unsafe {
        if nargs != 2 {
            ffi::PyErr_SetString(
                ffi::PyExc_TypeError,
                c"record(tag, event) takes two ints".as_ptr(),
            );
            return null_mut();
        }
        let tag = ffi::PyLong_AsLongLong(*args);
        let event = ffi::PyLong_AsLongLong(*args.add(1));
        if (tag == -1 || event == -1) && !ffi::PyErr_Occurred().is_null() {
            return null_mut();
        }
        let tstate = ffi::PyThreadState_GetUnchecked();
        let id = ffi::PyInterpreterState_GetID(ffi::PyThreadState_GetInterpreter(tstate));
        super::probe::record_probe(tag, event, id);
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

static mut METHODS: [ffi::PyMethodDef; 4] = [
    ffi::PyMethodDef {
        ml_name: c"interpreter_id".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: interpreter_id },
        ml_flags: ffi::METH_NOARGS,
        ml_doc: c"The ID of the calling interpreter as interpsafe's registry records it.".as_ptr(),
    },
    ffi::PyMethodDef {
        ml_name: c"runtime_epoch".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: runtime_epoch },
        ml_flags: ffi::METH_NOARGS,
        ml_doc: c"The runtime epoch of the calling interpreter's key.".as_ptr(),
    },
    ffi::PyMethodDef {
        ml_name: c"record".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunctionFast: record },
        ml_flags: ffi::METH_FASTCALL,
        ml_doc: c"record(tag, event): report a hazard-suite probe event with the calling interpreter's ID.".as_ptr(),
    },
    ffi::PyMethodDef::zeroed(),
];

const SLOT_COUNT: usize = 3 + cfg!(Py_GIL_DISABLED) as usize;

static mut SLOTS: [ffi::PyModuleDef_Slot; SLOT_COUNT] = [
    ffi::PyModuleDef_Slot { slot: ffi::Py_mod_exec, value: exec_module as *mut _ },
    ffi::PyModuleDef_Slot {
        slot: ffi::Py_mod_multiple_interpreters,
        value: ffi::Py_MOD_PER_INTERPRETER_GIL_SUPPORTED,
    },
    #[cfg(Py_GIL_DISABLED)]
    ffi::PyModuleDef_Slot { slot: ffi::Py_mod_gil, value: ffi::Py_MOD_GIL_NOT_USED },
    ffi::PyModuleDef_Slot { slot: 0, value: null_mut() },
];

static mut MODULE_DEF: ffi::PyModuleDef = ffi::PyModuleDef {
    m_base: ffi::PyModuleDef_HEAD_INIT,
    m_name: NAME.as_ptr(),
    m_doc: c"interpsafe's entry point for code running in any interpreter.".as_ptr(),
    m_size: 0,
    // Only the addresses are taken; CPython reads the arrays during module creation.
    m_methods: addr_of_mut!(METHODS).cast(),
    m_slots: addr_of_mut!(SLOTS).cast(),
    m_traverse: None,
    m_clear: None,
    m_free: None,
};

/// The `PyInit__interpsafe` function registered with `PyImport_AppendInittab`.
pub(crate) unsafe extern "C" fn init_entry_module() -> *mut ffi::PyObject {
    // SAFETY: MODULE_DEF is a static definition that CPython initialises once (PyModuleDef_Init
    // is idempotent) and only reads afterwards; multi-phase init returns the def itself.
    unsafe { ffi::PyModuleDef_Init(addr_of_mut!(MODULE_DEF)) }
}
