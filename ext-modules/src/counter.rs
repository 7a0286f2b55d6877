//! `Counter`: the per-interpreter heap type every interpsafe variant makes from one spec.
//!
//! The model: each module object (one per interpreter that imports the variant) creates its own
//! type with `PyType_FromModuleAndSpec`, so no type object is shared between interpreters (the
//! rpds-py class of bug: a static type whose instances cross interpreters). Instances are
//! GC-tracked and hold a reference to their type (a heap type's instances must, and must visit
//! it). The count is an atomic, so `incr()` from several threads of a free-threaded build loses
//! no increment. The spec's slots and method tables are process statics of plain data (function
//! pointers and C strings): CPython reads them, and no Python object is kept in them.

use std::ffi::{c_int, c_void, CStr};
use std::mem::size_of;
use std::ptr::{addr_of_mut, null_mut};
use std::sync::atomic::{AtomicI64, Ordering};

use crate::entry::{entry, quiet};
use interpsafe::pyo3_compat::ffi;

/// A `Counter` instance: the object header and the count.
#[repr(C)]
pub struct CounterObject {
    ob_base: ffi::PyObject,
    count: AtomicI64,
}

/// # Safety
/// CPython calls this with `slf` an instance of a `Counter` type (the method descriptor checks
/// it), attached.
unsafe extern "C" fn incr(
    slf: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    entry(|| {
        // SAFETY: `slf` is a live `CounterObject` (the descriptor checked its type; every
        // Counter type has this layout) and the count is only touched atomically.
        let counter = unsafe { &*slf.cast::<CounterObject>() };
        let new = counter.count.fetch_add(1, Ordering::SeqCst) + 1;
        // SAFETY: attached; a new reference or NULL with an exception set.
        Ok(unsafe { ffi::PyLong_FromLongLong(new) })
    })
}

/// # Safety
/// As [`incr`]: CPython's getset descriptor checked the type.
unsafe extern "C" fn value(slf: *mut ffi::PyObject, _closure: *mut c_void) -> *mut ffi::PyObject {
    entry(|| {
        // SAFETY: as in `incr`.
        let counter = unsafe { &*slf.cast::<CounterObject>() };
        // SAFETY: attached; a new reference or NULL with an exception set.
        Ok(unsafe { ffi::PyLong_FromLongLong(counter.count.load(Ordering::SeqCst)) })
    })
}

/// # Safety
/// CPython calls this with a Counter instance during a collection.
unsafe extern "C" fn traverse(
    slf: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: `slf` is live during the traversal; its type is a heap type it holds a reference
    // to, which a heap type's instances must report.
    quiet(0, || unsafe { visit(ffi::Py_TYPE(slf).cast(), arg) })
}

/// # Safety
/// CPython calls this once, when the last reference to a Counter instance goes.
unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    quiet((), || {
        // SAFETY: `slf` is a GC-tracked instance being destroyed; its memory came from the GC
        // allocator (the type has Py_TPFLAGS_HAVE_GC), and it held one reference to its heap
        // type, released after the memory is freed.
        unsafe {
            let ty = ffi::Py_TYPE(slf);
            ffi::PyObject_GC_UnTrack(slf.cast());
            ffi::PyObject_GC_Del(slf.cast());
            ffi::Py_DECREF(ty.cast());
        }
    })
}

static mut METHODS: [ffi::PyMethodDef; 2] = [
    ffi::PyMethodDef {
        ml_name: c"incr".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: incr },
        ml_flags: ffi::METH_NOARGS,
        ml_doc: c"Adds 1 and returns the new count.".as_ptr(),
    },
    ffi::PyMethodDef::zeroed(),
];

static mut GETSET: [ffi::PyGetSetDef; 2] = [
    ffi::PyGetSetDef {
        name: c"value".as_ptr(),
        get: Some(value),
        set: None,
        doc: c"The count.".as_ptr(),
        closure: null_mut(),
    },
    ffi::PyGetSetDef {
        name: std::ptr::null(),
        get: None,
        set: None,
        doc: std::ptr::null(),
        closure: null_mut(),
    },
];

static mut SLOTS: [ffi::PyType_Slot; 6] = [
    ffi::PyType_Slot { slot: ffi::Py_tp_doc, pfunc: c"A thread-safe counter.".as_ptr() as *mut _ },
    // Only the addresses are taken; CPython reads the tables when it makes a type.
    ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: addr_of_mut!(METHODS) as *mut _ },
    ffi::PyType_Slot { slot: ffi::Py_tp_getset, pfunc: addr_of_mut!(GETSET) as *mut _ },
    ffi::PyType_Slot { slot: ffi::Py_tp_traverse, pfunc: traverse as *mut _ },
    ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: dealloc as *mut _ },
    ffi::PyType_Slot { slot: 0, pfunc: null_mut() },
];

/// Makes the `Counter` type of `module`, named `name` (`<variant>.Counter`): a new reference,
/// or `NULL` with an exception set.
///
/// # Safety
/// The thread must be attached to `module`'s interpreter.
pub unsafe fn create(module: *mut ffi::PyObject, name: &'static CStr) -> *mut ffi::PyObject {
    let mut spec = ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: size_of::<CounterObject>() as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC | ffi::Py_TPFLAGS_IMMUTABLETYPE)
            as _,
        slots: addr_of_mut!(SLOTS).cast(),
    };
    // SAFETY: attached (caller's contract); the spec lives for the call, its name and slot tables
    // are statics; CPython only reads the tables. New instances come from the inherited
    // `object.__new__`, which zero-fills them: a zero count is a valid `AtomicI64`.
    unsafe { ffi::PyType_FromModuleAndSpec(module, &mut spec, null_mut()) }
}
