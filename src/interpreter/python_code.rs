//! Running Python source in the attached interpreter through the raw C API.
//!
//! The toolkit's own tests and probes use this instead of PyO3's `Python::run`: PyO3 keeps
//! interned strings and type objects in process-wide statics, exactly the hazards under study,
//! and using them from a subinterpreter would contaminate every observation.

use std::ffi::CStr;

use interpsafe_protocol::InterpreterKey;

use crate::pyo3_compat::ffi;
use crate::Error;

/// Formats and clears the pending exception as `Type: message`.
///
/// # Safety
/// The calling thread must be attached to an interpreter.
unsafe fn take_exception() -> String {
    // SAFETY: attached (caller's contract); PyErr_GetRaisedException returns a new reference or
    // NULL, and every object below is released before returning.
    unsafe {
        let exc = ffi::PyErr_GetRaisedException();
        if exc.is_null() {
            return "an error without an exception set".to_string();
        }
        let ty = ffi::Py_TYPE(exc);
        let type_name = CStr::from_ptr((*ty).tp_name).to_string_lossy().into_owned();
        let text = ffi::PyObject_Str(exc);
        let message = if text.is_null() {
            ffi::PyErr_Clear();
            String::from("<unprintable>")
        } else {
            let s = utf8(text);
            ffi::Py_DECREF(text);
            s
        };
        ffi::Py_DECREF(exc);
        format!("{type_name}: {message}")
    }
}

/// # Safety
/// Attached, and `s` a live str object.
unsafe fn utf8(s: *mut ffi::PyObject) -> String {
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: caller's contract; the buffer lives as long as `s`, and is copied before return.
    unsafe {
        let p = ffi::PyUnicode_AsUTF8AndSize(s, &mut len);
        if p.is_null() {
            ffi::PyErr_Clear();
            return String::from("<not utf-8>");
        }
        String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len as usize))
            .into_owned()
    }
}

/// Runs `code` with `start` (`Py_file_input` or `Py_eval_input`) in `__main__`'s namespace and
/// returns the new reference CPython produced.
///
/// # Safety
/// The calling thread must be attached to `interp`.
unsafe fn run(
    interp: InterpreterKey,
    code: &CStr,
    start: std::ffi::c_int,
) -> Result<*mut ffi::PyObject, Error> {
    // SAFETY: attached (caller's contract). __main__'s dict is borrowed from a module that lives
    // as long as the interpreter; the result is a new reference handed to the caller.
    unsafe {
        let main = ffi::PyImport_AddModule(c"__main__".as_ptr());
        if main.is_null() {
            return Err(Error::Python { interpreter: interp, message: take_exception() });
        }
        let globals = ffi::PyModule_GetDict(main);
        let result = ffi::PyRun_StringFlags(code.as_ptr(), start, globals, globals, std::ptr::null_mut());
        if result.is_null() {
            return Err(Error::Python { interpreter: interp, message: take_exception() });
        }
        Ok(result)
    }
}

/// Executes statements in `__main__`.
///
/// # Safety
/// The calling thread must be attached to `interp`.
pub(crate) unsafe fn exec(interp: InterpreterKey, code: &CStr) -> Result<(), Error> {
    // SAFETY: caller's contract; the result (None) is released at once.
    unsafe {
        let result = run(interp, code, ffi::Py_file_input)?;
        ffi::Py_DECREF(result);
    }
    Ok(())
}

/// Evaluates an expression in `__main__` and returns `str()` of the result.
///
/// # Safety
/// The calling thread must be attached to `interp`.
pub(crate) unsafe fn eval_str(interp: InterpreterKey, expr: &CStr) -> Result<String, Error> {
    // SAFETY: caller's contract; both new references are released before returning.
    unsafe {
        let result = run(interp, expr, ffi::Py_eval_input)?;
        let text = ffi::PyObject_Str(result);
        ffi::Py_DECREF(result);
        if text.is_null() {
            return Err(Error::Python { interpreter: interp, message: take_exception() });
        }
        let s = utf8(text);
        ffi::Py_DECREF(text);
        Ok(s)
    }
}
