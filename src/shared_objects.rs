//! The objects every interpreter legitimately shares: the runtime's static singletons.
//!
//! `None`, `True`, `False`, `Ellipsis`, `NotImplemented`, the small ints (-5..=256), the empty
//! tuple, str and bytes, the Latin-1 one-character strs and one-byte bytes, and the static builtin
//! types (including the builtin exception types) live in the runtime, not in any interpreter, so a
//! handle to one may be used anywhere. They are recognised by address: the set is read once from
//! the running interpreter, and a type is recognised by CPython's static-builtin type flag.
//! Immortality is not the test: on 3.13t a subinterpreter's interned strings are immortal, yet
//! they belong to it and are freed when it ends.
//!
//! Checked strategies consult this only on the slow path, after an owner mismatch, so the common
//! case pays nothing for it.

use std::sync::OnceLock;

use crate::pyo3_compat::ffi;

/// `_Py_TPFLAGS_STATIC_BUILTIN` (CPython 3.12+): set on static builtin types, which the runtime
/// shares between interpreters. pyo3-ffi leaves it out because it is internal.
const STATIC_BUILTIN: std::ffi::c_ulong = 1 << 1;

static SINGLETONS: OnceLock<Vec<usize>> = OnceLock::new();

/// Collects the singletons' addresses.
///
/// # Safety
/// The thread must be attached to an interpreter.
unsafe fn collect() -> Vec<usize> {
    let mut addrs = Vec::with_capacity(5 + 262 + 3 + 256 + 256);
    let mut new_ref = |obj: *mut ffi::PyObject| {
        if obj.is_null() {
            // SAFETY: attached (caller's contract); a failed constructor set an error.
            unsafe { ffi::PyErr_Clear() };
            return;
        }
        addrs.push(obj as usize);
        // SAFETY: attached; `obj` is a new reference (to an immortal object, but balanced anyway).
        unsafe { ffi::Py_DECREF(obj) };
    };
    // SAFETY: attached (caller's contract): every constructor below returns a new reference or
    // NULL with an error set, which `new_ref` handles; the borrowed singletons are increfed first
    // so that `new_ref` can release them uniformly.
    unsafe {
        for borrowed in [
            ffi::Py_None(),
            ffi::Py_True(),
            ffi::Py_False(),
            ffi::Py_Ellipsis(),
            ffi::Py_NotImplemented(),
        ] {
            ffi::Py_INCREF(borrowed);
            new_ref(borrowed);
        }
        for i in -5..=256 {
            new_ref(ffi::PyLong_FromLong(i));
        }
        new_ref(ffi::PyTuple_New(0));
        new_ref(ffi::PyUnicode_FromStringAndSize(c"".as_ptr(), 0));
        new_ref(ffi::PyBytes_FromStringAndSize(c"".as_ptr(), 0));
        for c in 0..256 {
            new_ref(ffi::PyUnicode_FromOrdinal(c));
            let byte = [c as u8];
            new_ref(ffi::PyBytes_FromStringAndSize(byte.as_ptr().cast(), 1));
        }
    }
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// True if `addr` is one of the runtime's static singletons. Reads only the address set, never
/// the object, so it is safe for an object whose interpreter may have ended.
///
/// # Safety
/// The thread must be attached to an interpreter (the set is read from it the first time).
pub unsafe fn is_singleton(addr: usize) -> bool {
    // SAFETY: attached (caller's contract).
    let set = SINGLETONS.get_or_init(|| unsafe { collect() });
    set.binary_search(&addr).is_ok()
}

/// True if `obj` is a static builtin type (shared by every interpreter).
///
/// # Safety
/// The thread must be attached, and `obj` must be a live object: this reads its type.
pub unsafe fn is_static_builtin_type(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: `obj` is live (caller's contract); a type object's flags are read-only after
    // creation for static types.
    unsafe {
        ffi::PyType_Check(obj) != 0
            && ffi::PyType_GetFlags(obj.cast::<ffi::PyTypeObject>()) & STATIC_BUILTIN != 0
    }
}

/// True if `obj` is one of the runtime's shared static objects.
///
/// # Safety
/// The thread must be attached to an interpreter and `obj` must be a live object.
pub unsafe fn is_shared(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: the caller's contract covers both.
    unsafe { is_singleton(obj as usize) || is_static_builtin_type(obj) }
}

/// How many singleton addresses the set holds (for reports), if it has been read yet.
pub fn singleton_count() -> Option<usize> {
    SINGLETONS.get().map(Vec::len)
}
