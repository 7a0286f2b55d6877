//! Sending data between interpreters: the legitimate way across.
//!
//! A handle must not leave its interpreter, but data can. [`Shareable`] is the set PEP 734 shares
//! cheaply: `None`, `bool`, `int` (any size), `float`, `str`, `bytes`, and tuples of these. It is
//! read out of an object in the source interpreter ([`Shareable::from_object`]) into plain Rust
//! values, and re-created in the target ([`Shareable::to_handle`]): two copies of the payload
//! (source object to Rust, Rust to the target's allocator).
//!
//! Bytes can skip the first copy: [`SharedBytes`] keeps the source `bytes` object alive (a
//! tagged handle, plus an [`InterpreterGuard`] so the source interpreter cannot end under it) and
//! reads its buffer in place, from any thread, without a copy: `bytes` are immutable. Making a
//! `bytes` object in the target from it is then the one unavoidable copy. While a `SharedBytes`
//! lives, ending its source interpreter waits for it (its guard pins the interpreter), whoever
//! ends it, Python code included; a thread that holds one and destroys its source from Python
//! waits for itself.

use std::ffi::CStr;
use std::ptr::NonNull;

use crate::interpreter::running_main::PinMark;
use crate::interpreter::runtime::current_tag;
use crate::interpreter::InterpreterGuard;
use crate::object::{take_error, ObjRef};
use crate::pyo3_compat::ffi;
use crate::strategy::handle_kit::TaggedHandle;
use crate::strategy::Strategy;
use crate::Error;

/// An integer of any size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareableInt {
    /// Fits in an `i64`.
    Small(i64),
    /// Larger: its decimal digits (with sign).
    Big(String),
}

/// A value that can cross from one interpreter to another as data.
#[derive(Debug, Clone, PartialEq)]
pub enum Shareable {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(ShareableInt),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `tuple` of shareable values.
    Tuple(Vec<Shareable>),
}

/// The interpreter the thread is attached to, for error messages.
fn here(operation: &'static str) -> Result<crate::InterpreterKey, Error> {
    current_tag().map(|t| t.key()).ok_or(Error::NotAttached { operation })
}

fn python_error(operation: &'static str) -> Error {
    match here(operation) {
        // SAFETY: attached (here() found a thread state); the failing call set an exception.
        Ok(interpreter) => Error::Python { interpreter, message: unsafe { take_error() } },
        Err(e) => e,
    }
}

/// How deeply tuples may nest in a [`Shareable`]: reading and re-creating one recurse per level,
/// and a tuple nested a million deep (`t = (t,)` in a loop) would otherwise overflow the stack.
pub const MAX_TUPLE_DEPTH: usize = 256;

impl Shareable {
    /// Reads `obj` (in the interpreter the thread is attached to) into a value, or says which
    /// type cannot be shared (tuples nested deeper than [`MAX_TUPLE_DEPTH`] cannot).
    pub fn from_object<'a>(obj: impl Into<ObjRef<'a>>) -> Result<Shareable, Error> {
        Shareable::from_object_at(obj.into(), 0)
    }

    fn from_object_at(obj: ObjRef<'_>, depth: usize) -> Result<Shareable, Error> {
        let p = obj.as_ptr();
        // SAFETY: an ObjRef is a live object in the attached interpreter; every call below reads
        // it through the C API and checks for errors.
        unsafe {
            if p == ffi::Py_None() {
                return Ok(Shareable::None);
            }
            if ffi::PyBool_Check(p) != 0 {
                return Ok(Shareable::Bool(p == ffi::Py_True()));
            }
            if ffi::PyLong_CheckExact(p) != 0 {
                let mut overflow = 0;
                let v = ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow);
                if overflow == 0 {
                    if v == -1 && !ffi::PyErr_Occurred().is_null() {
                        return Err(python_error("share int"));
                    }
                    return Ok(Shareable::Int(ShareableInt::Small(v)));
                }
                let text = ffi::PyObject_Str(p);
                if text.is_null() {
                    return Err(python_error("share int"));
                }
                let digits = utf8(text);
                ffi::Py_DECREF(text);
                return Ok(Shareable::Int(ShareableInt::Big(digits?)));
            }
            if ffi::PyFloat_CheckExact(p) != 0 {
                return Ok(Shareable::Float(ffi::PyFloat_AsDouble(p)));
            }
            if ffi::PyUnicode_CheckExact(p) != 0 {
                return Ok(Shareable::Str(utf8(p)?));
            }
            if ffi::PyBytes_CheckExact(p) != 0 {
                let (ptr, len) = bytes_buffer(p);
                return Ok(Shareable::Bytes(std::slice::from_raw_parts(ptr, len).to_vec()));
            }
            if ffi::PyTuple_CheckExact(p) != 0 {
                if depth >= MAX_TUPLE_DEPTH {
                    return Err(too_deep(here("share tuple")?));
                }
                let n = ffi::PyTuple_Size(p);
                let mut items = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let item = NonNull::new(ffi::PyTuple_GetItem(p, i))
                        .ok_or_else(|| python_error("share tuple"))?;
                    items.push(Shareable::from_object_at(ObjRef::from_raw(item), depth + 1)?);
                }
                return Ok(Shareable::Tuple(items));
            }
            let type_name =
                CStr::from_ptr((*ffi::Py_TYPE(p)).tp_name).to_string_lossy().into_owned();
            Err(Error::NotShareable { type_name, interpreter: here("share")? })
        }
    }

    /// Re-creates the value in the scope's interpreter, as a handle of strategy `S` (refused for
    /// tuples nested deeper than [`MAX_TUPLE_DEPTH`], which a value built in Rust can be).
    pub fn to_handle<'s, S: Strategy>(&self, scope: &S::Scope<'s>) -> Result<S::Handle<'s>, Error> {
        let obj = self.to_raw(0)?;
        // SAFETY: `to_raw` made a new reference in the attached interpreter, the scope's.
        Ok(unsafe { S::adopt(scope, obj) })
    }

    fn to_raw(&self, depth: usize) -> Result<NonNull<ffi::PyObject>, Error> {
        if depth >= MAX_TUPLE_DEPTH && matches!(self, Shareable::Tuple(_)) {
            return Err(too_deep(here("share tuple")?));
        }
        // SAFETY: callers are attached (a scope exists); every constructor returns a new
        // reference or NULL with an exception set, turned into an error.
        let obj = unsafe {
            match self {
                Shareable::None => {
                    ffi::Py_INCREF(ffi::Py_None());
                    ffi::Py_None()
                }
                Shareable::Bool(b) => ffi::PyBool_FromLong(*b as std::ffi::c_long),
                Shareable::Int(ShareableInt::Small(v)) => ffi::PyLong_FromLongLong(*v),
                Shareable::Int(ShareableInt::Big(digits)) => {
                    let c = std::ffi::CString::new(digits.as_str())
                        .map_err(|_| Error::NotAttached { operation: "share int" })?;
                    ffi::PyLong_FromString(c.as_ptr(), std::ptr::null_mut(), 10)
                }
                Shareable::Float(f) => ffi::PyFloat_FromDouble(*f),
                Shareable::Str(s) => {
                    ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as ffi::Py_ssize_t)
                }
                Shareable::Bytes(b) => {
                    ffi::PyBytes_FromStringAndSize(b.as_ptr().cast(), b.len() as ffi::Py_ssize_t)
                }
                Shareable::Tuple(items) => {
                    let t = ffi::PyTuple_New(items.len() as ffi::Py_ssize_t);
                    if t.is_null() {
                        return Err(python_error("share tuple"));
                    }
                    for (i, item) in items.iter().enumerate() {
                        match item.to_raw(depth + 1) {
                            // PyTuple_SetItem steals the item's reference.
                            Ok(v) => {
                                ffi::PyTuple_SetItem(t, i as ffi::Py_ssize_t, v.as_ptr());
                            }
                            Err(e) => {
                                ffi::Py_DECREF(t);
                                return Err(e);
                            }
                        }
                    }
                    t
                }
            }
        };
        NonNull::new(obj).ok_or_else(|| python_error("share"))
    }
}

/// The refusal of a tuple nested deeper than [`MAX_TUPLE_DEPTH`].
fn too_deep(interpreter: crate::InterpreterKey) -> Error {
    Error::NotShareable {
        type_name: format!("tuple nested deeper than {MAX_TUPLE_DEPTH} levels"),
        interpreter,
    }
}

/// # Safety
/// Attached; `s` a live str.
unsafe fn utf8(s: *mut ffi::PyObject) -> Result<String, Error> {
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: caller's contract; the UTF-8 buffer lives as long as `s` and is copied at once.
    unsafe {
        let p = ffi::PyUnicode_AsUTF8AndSize(s, &mut len);
        if p.is_null() {
            return Err(python_error("share str"));
        }
        Ok(String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len as usize))
            .into_owned())
    }
}

/// # Safety
/// Attached; `b` a live exact bytes object.
unsafe fn bytes_buffer(b: *mut ffi::PyObject) -> (*const u8, usize) {
    // SAFETY: caller's contract: PyBytes_AsString and PyBytes_Size cannot fail on exact bytes.
    unsafe { (ffi::PyBytes_AsString(b).cast::<u8>(), ffi::PyBytes_Size(b) as usize) }
}

/// A `bytes` object of one interpreter, readable in place from any thread (no copy).
#[derive(Debug)]
pub struct SharedBytes {
    ptr: *const u8,
    len: usize,
    // Field order matters: the handle is released (deferred to its owner) and the running-main
    // mark lifted before the guard lets the owner end.
    _object: TaggedHandle,
    _refuse_python_destroy: PinMark,
    _owner_alive: InterpreterGuard,
}

// SAFETY: the buffer belongs to an immutable `bytes` object that `_object` keeps alive in an
// interpreter that `_owner_alive` keeps from ending; reading immutable memory from any thread is
// sound, and the handle and guard are themselves Send.
unsafe impl Send for SharedBytes {}
// SAFETY: only shared reads of immutable memory are offered.
unsafe impl Sync for SharedBytes {}

impl SharedBytes {
    /// Wraps a `bytes` object that strategy `S` bound in `scope`. It belongs to the interpreter
    /// `S` says it does ([`Strategy::owner_of`]); a strategy that records no owners (the
    /// baseline) cannot vouch for one, and a reference bound outside its owner is refused.
    pub fn new<'s, 'a, S: Strategy>(
        scope: &'a S::Scope<'s>,
        r: S::Ref<'s, 'a>,
    ) -> Result<Self, Error> {
        const OPERATION: &str = "SharedBytes::new";
        let here = current_tag().ok_or(Error::NotAttached { operation: OPERATION })?;
        let tag = match S::owner_of(scope, r) {
            Some(tag) if tag == here => tag,
            Some(tag) if tag == crate::tag::Tag::UNKNOWN => {
                return Err(Error::OwnerUnknown { operation: OPERATION })
            }
            Some(tag) => {
                return Err(Error::CrossInterpreter {
                    owner: tag.key(),
                    current: Some(here.key()),
                    operation: OPERATION,
                })
            }
            None => return Err(Error::OwnerUnknown { operation: OPERATION }),
        };
        let obj = S::as_obj(r);
        let p = obj.as_ptr();
        // SAFETY: an ObjRef is live in the attached interpreter.
        if unsafe { ffi::PyBytes_CheckExact(p) } == 0 {
            // SAFETY: as above.
            let type_name = unsafe { CStr::from_ptr((*ffi::Py_TYPE(p)).tp_name) }
                .to_string_lossy()
                .into_owned();
            return Err(Error::NotShareable { type_name, interpreter: tag.key() });
        }
        let guard = InterpreterGuard::new_pinning(tag.key())?;
        // SAFETY: attached to the owner (`tag == here`), which `guard` pins until after the mark
        // is dropped (field order).
        let mark = unsafe { PinMark::take() };
        // SAFETY: checked to be an exact bytes object, live and attached.
        let (ptr, len) = unsafe { bytes_buffer(p) };
        Ok(SharedBytes {
            ptr,
            len,
            _object: TaggedHandle::new(obj, tag),
            _refuse_python_destroy: mark,
            _owner_alive: guard,
        })
    }

    /// The bytes, read in place.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: see the Send impl: immutable memory kept alive by the handle and the guard.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// A `bytes` object in the scope's interpreter with the same content (one copy).
    pub fn to_handle<'s, S: Strategy>(&self, scope: &S::Scope<'s>) -> Result<S::Handle<'s>, Error> {
        // SAFETY: a scope exists, so the thread is attached; a new reference or NULL.
        let obj =
            unsafe { ffi::PyBytes_FromStringAndSize(self.ptr.cast(), self.len as ffi::Py_ssize_t) };
        let obj = NonNull::new(obj).ok_or_else(|| python_error("SharedBytes::to_handle"))?;
        // SAFETY: a new reference made in the scope's interpreter.
        Ok(unsafe { S::adopt(scope, obj) })
    }
}
