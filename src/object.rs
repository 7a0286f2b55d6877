//! Borrowed Python objects and the few raw C-API operations the strategies are compared on.
//!
//! The designs hold raw `PyObject*`, not `pyo3::Py` (whose drop defers to PyO3's process-wide
//! pool outside PyO3's own entry points); only the `pyo3` row, which is PyO3, holds `Py<T>`. The
//! operations read every strategy's borrowed objects as an [`ObjRef`]: a borrowed object, valid
//! for the borrow of the scope it came from, and not `Send`.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::pyo3_compat::ffi;

/// A borrowed reference to a Python object in the interpreter of the scope it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjRef<'a> {
    ptr: NonNull<ffi::PyObject>,
    _borrow: PhantomData<(&'a ffi::PyObject, *mut ())>,
}

impl<'a> ObjRef<'a> {
    /// Wraps a borrowed pointer.
    ///
    /// # Safety
    /// `ptr` must point to a live object that stays alive for `'a`, and the thread must stay
    /// attached to its interpreter for `'a`.
    pub unsafe fn from_raw(ptr: NonNull<ffi::PyObject>) -> Self {
        ObjRef { ptr, _borrow: PhantomData }
    }

    /// The raw pointer (borrowed).
    pub fn as_ptr(self) -> *mut ffi::PyObject {
        self.ptr.as_ptr()
    }

    /// The object's address, as the protocols and the shared-object set see it.
    pub fn addr(self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

/// A strong reference counted by hand: the building block of every strategy's handle.
///
/// It has no `Drop`: the owning handle decides where and when to release it (now, or deferred to
/// its owner interpreter); a `RawStrong` dropped as such is a leak, never a decref in an unknown
/// interpreter.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RawStrong(NonNull<ffi::PyObject>);

impl RawStrong {
    /// Takes a new strong reference to `obj`.
    pub(crate) fn new(obj: ObjRef<'_>) -> Self {
        // SAFETY: an ObjRef is a live object and the thread is attached to its interpreter
        // (ObjRef's invariant), which Py_INCREF requires.
        unsafe { ffi::Py_INCREF(obj.as_ptr()) };
        RawStrong(obj.ptr)
    }

    /// Adopts a new reference the caller owns.
    ///
    /// # Safety
    /// `ptr` must be a strong reference that the caller transfers.
    pub(crate) unsafe fn adopt(ptr: NonNull<ffi::PyObject>) -> Self {
        RawStrong(ptr)
    }

    pub(crate) fn ptr(&self) -> NonNull<ffi::PyObject> {
        self.0
    }

    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Borrows the object for `'a`.
    ///
    /// # Safety
    /// The thread must be attached to the object's interpreter for `'a`.
    pub(crate) unsafe fn borrow<'a>(&'a self) -> ObjRef<'a> {
        // SAFETY: the strong reference keeps the object alive while `self` is borrowed; the
        // caller guarantees the attachment.
        unsafe { ObjRef::from_raw(self.0) }
    }
}

/// Evaluates `expr` in the attached interpreter's `__main__` and returns a new reference.
///
/// # Safety
/// The thread must be attached.
pub(crate) unsafe fn eval_new(expr: &CStr) -> Result<NonNull<ffi::PyObject>, String> {
    // SAFETY: attached (caller's contract); __main__'s dict is borrowed; the result is new.
    unsafe {
        let main = ffi::PyImport_AddModule(c"__main__".as_ptr());
        if main.is_null() {
            return Err(take_error());
        }
        let globals = ffi::PyModule_GetDict(main);
        let result = ffi::PyRun_StringFlags(
            expr.as_ptr(),
            ffi::Py_eval_input,
            globals,
            globals,
            std::ptr::null_mut(),
        );
        NonNull::new(result).ok_or_else(|| take_error())
    }
}

/// `getattr(obj, name)` as a new reference.
///
/// # Safety
/// Attached to `obj`'s interpreter.
pub(crate) unsafe fn getattr_new(
    obj: ObjRef<'_>,
    name: &CStr,
) -> Result<NonNull<ffi::PyObject>, String> {
    // SAFETY: caller's contract.
    let r = unsafe { ffi::PyObject_GetAttrString(obj.as_ptr(), name.as_ptr()) };
    // SAFETY: attached; a NULL result set an exception.
    NonNull::new(r).ok_or_else(|| unsafe { take_error() })
}

/// `list.append(item)`.
///
/// # Safety
/// Attached to the objects' interpreter; `list` is a list.
pub(crate) unsafe fn list_append(list: ObjRef<'_>, item: ObjRef<'_>) -> Result<(), String> {
    // SAFETY: caller's contract.
    if unsafe { ffi::PyList_Append(list.as_ptr(), item.as_ptr()) } == 0 {
        Ok(())
    } else {
        // SAFETY: attached; the failure set an exception.
        Err(unsafe { take_error() })
    }
}

/// Formats and clears the pending exception as `Type: message`.
///
/// # Safety
/// Attached.
pub(crate) unsafe fn take_error() -> String {
    // SAFETY: attached (caller's contract); every new reference is released before returning.
    unsafe {
        let exc = ffi::PyErr_GetRaisedException();
        if exc.is_null() {
            return "an error without an exception set".to_string();
        }
        let type_name = CStr::from_ptr((*ffi::Py_TYPE(exc)).tp_name).to_string_lossy().into_owned();
        let text = ffi::PyObject_Str(exc);
        let message = if text.is_null() {
            ffi::PyErr_Clear();
            String::from("<unprintable>")
        } else {
            let mut len: ffi::Py_ssize_t = 0;
            let p = ffi::PyUnicode_AsUTF8AndSize(text, &mut len);
            let s = if p.is_null() {
                ffi::PyErr_Clear();
                String::from("<not utf-8>")
            } else {
                String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len as usize))
                    .into_owned()
            };
            ffi::Py_DECREF(text);
            s
        };
        ffi::Py_DECREF(exc);
        format!("{type_name}: {message}")
    }
}
