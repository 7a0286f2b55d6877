//! The toolkit's exception classes: raised per interpreter, never another interpreter's class.

use std::ffi::CStr;

use interpsafe::protocol::{Epoch, InterpreterId, InterpreterKey};
use interpsafe::{attach, Error, Isolation, SubInterpreter};
use pyo3_ffi as ffi;

fn sample() -> Error {
    let key = |id| InterpreterKey { epoch: Epoch(0), id: InterpreterId(id) };
    Error::CrossInterpreter { owner: key(1), current: Some(key(2)), operation: "bind" }
}

/// Takes the pending exception and returns (its type's address, `type.__qualname__`-style name,
/// whether it is a RuntimeError, its message).
unsafe fn take() -> (usize, String, bool, String) {
    // SAFETY: the caller is attached; every new reference is released.
    unsafe {
        let exc = ffi::PyErr_GetRaisedException();
        assert!(!exc.is_null(), "no exception was raised");
        let ty = ffi::Py_TYPE(exc);
        let name = CStr::from_ptr((*ty).tp_name).to_string_lossy().into_owned();
        let is_runtime = ffi::PyErr_GivenExceptionMatches(exc, ffi::PyExc_RuntimeError) != 0;
        let s = ffi::PyObject_Str(exc);
        let mut len = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(s, &mut len);
        let msg = String::from_utf8_lossy(std::slice::from_raw_parts(p.cast(), len as usize))
            .into_owned();
        ffi::Py_DECREF(s);
        ffi::Py_DECREF(exc);
        (ty as usize, name, is_runtime, msg)
    }
}

#[test]
fn errors_raise_the_toolkits_classes_created_in_each_interpreter() {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let raise_in = |key| {
        attach(key, |_| {
            sample().restore();
            // SAFETY: attached, with the exception just raised.
            unsafe { take() }
        })
        .unwrap()
    };
    let (ty_a, name_a, rt_a, msg_a) = raise_in(a.key());
    let (ty_a2, ..) = raise_in(a.key());
    let (ty_b, name_b, rt_b, _) = raise_in(b.key());
    assert_eq!(name_a, "CrossInterpreterError"); // tp_name of a heap type; __module__ is "interpsafe"
    assert_eq!(name_b, name_a);
    assert!(rt_a && rt_b, "the classes derive from RuntimeError");
    assert!(msg_a.contains("interpreter 1") && msg_a.contains("interpreter 2"), "{msg_a}");
    assert_eq!(ty_a, ty_a2, "one class per interpreter, created once");
    assert_ne!(ty_a, ty_b, "interpreter b raised interpreter a's class object");
}

#[test]
fn pyo3_errors_resolve_the_class_in_the_interpreter_they_are_raised_in() {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    // Made on a thread attached to nothing, raised in a, then in b.
    let raise = |key| {
        let err: pyo3::PyErr = sample().into();
        attach(key, move |_| {
            // SAFETY: this thread is attached to `key` for the whole closure.
            let py = unsafe { pyo3::Python::assume_attached() };
            err.restore(py);
            // SAFETY: attached, with the exception just raised.
            unsafe { take() }
        })
        .unwrap()
    };
    let (ty_a, name_a, ..) = raise(a.key());
    let (ty_b, name_b, ..) = raise(b.key());
    assert_eq!(
        (name_a.as_str(), name_b.as_str()),
        ("CrossInterpreterError", "CrossInterpreterError")
    );
    assert_ne!(ty_a, ty_b);
}

/// Called from Python through ctypes (`PYFUNCTYPE(py_object)`), attached: raises an
/// `OwnerEnded` error as the toolkit raises it, and returns NULL for ctypes to raise it on.
extern "C" fn raise_owner_ended() -> *mut ffi::PyObject {
    let owner = InterpreterKey { epoch: Epoch(0), id: InterpreterId(0) };
    Error::OwnerEnded { owner, operation: "late use" }.restore();
    std::ptr::null_mut()
}

/// An error raised while an interpreter ends (from a `__del__` in `__main__`, after the
/// toolkit's end hook ran) has the toolkit's class, in every interpreter that ends, not only the
/// first: the classes were once-cell values, released as each end began, so from the second
/// interpreter on the fallback `RuntimeError` was raised (found by attack).
#[test]
fn errors_raised_during_an_interpreters_end_keep_their_class() {
    use interp_tests::from_python::{in_main, python_destroy};
    use interpsafe::hazard::{probe_events, ProbeEventKind};
    let address = raise_owner_ended as extern "C" fn() -> *mut ffi::PyObject as usize;
    let setup = format!(
        "import _interpsafe, ctypes\n\
         _raise = ctypes.PYFUNCTYPE(ctypes.py_object)({address})\n\
         class Late:\n    def __del__(self):\n        try:\n            _raise()\n        \
         except BaseException as e:\n            _interpsafe.record(7300, 10 if type(e).__name__ == \
         'OwnerEndedError' else 11)\n_late = Late()\n"
    );
    for _ in 0..3 {
        let id: i64 = in_main(&format!(
            "(lambda i: (__import__('_interpreters').exec(i, {setup:?}), i)[1])\
             (__import__('_interpreters').create())"
        ))
        .parse()
        .unwrap();
        python_destroy(id).unwrap();
    }
    let seen: Vec<ProbeEventKind> =
        probe_events().iter().filter(|e| e.tag == 7300).map(|e| e.kind).collect();
    assert_eq!(seen, vec![ProbeEventKind::Other(10); 3], "10: OwnerEndedError, 11: another class");
}
