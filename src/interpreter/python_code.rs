//! Running Python source in the attached interpreter through the raw C API.
//!
//! The toolkit's own tests and probes use this instead of PyO3's `Python::run`: PyO3 keeps
//! interned strings and type objects in process-wide statics, exactly the hazards under study,
//! and using them from a subinterpreter would contaminate every observation.

use std::ffi::CStr;

use interpsafe_protocol::InterpreterKey;

use crate::object::{eval_new, take_error};
use crate::pyo3_compat::ffi;
use crate::Error;

/// Executes statements in `__main__`.
///
/// # Safety
/// The calling thread must be attached to `interp`.
pub(crate) unsafe fn exec(interp: InterpreterKey, code: &CStr) -> Result<(), Error> {
    // SAFETY: attached (caller's contract). __main__'s dict is borrowed from a module that lives
    // as long as the interpreter; the result (None) is released at once.
    unsafe {
        let main = ffi::PyImport_AddModule(c"__main__".as_ptr());
        if main.is_null() {
            return Err(Error::Python { interpreter: interp, message: take_error() });
        }
        let globals = ffi::PyModule_GetDict(main);
        let result = ffi::PyRun_StringFlags(
            code.as_ptr(),
            ffi::Py_file_input,
            globals,
            globals,
            std::ptr::null_mut(),
        );
        if result.is_null() {
            return Err(Error::Python { interpreter: interp, message: take_error() });
        }
        ffi::Py_DECREF(result);
    }
    Ok(())
}

/// Evaluates an expression in `__main__` and returns `str()` of the result.
///
/// # Safety
/// The calling thread must be attached to `interp`.
pub(crate) unsafe fn eval_str(interp: InterpreterKey, expr: &CStr) -> Result<String, Error> {
    let python = |message| Error::Python { interpreter: interp, message };
    // SAFETY: attached (caller's contract); both new references are released before returning.
    unsafe {
        let result = eval_new(expr).map_err(python)?;
        let text = ffi::PyObject_Str(result.as_ptr());
        ffi::Py_DECREF(result.as_ptr());
        if text.is_null() {
            return Err(python(take_error()));
        }
        let mut len: ffi::Py_ssize_t = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(text, &mut len);
        let s = if p.is_null() {
            Err(python(take_error()))
        } else {
            Ok(String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len as usize))
                .into_owned())
        };
        ffi::Py_DECREF(text);
        s
    }
}
