//! Seeing an interpreter end, whoever ends it: an `atexit` hook when the end begins, and a
//! capsule in the interpreter's dict when it is cleared.
//!
//! Two moments matter, because an end the toolkit does not drive (`_interpreters.destroy` from
//! Python, or runtime finalisation) gives no other notice:
//! - **The end begins.** `Py_EndInterpreter` (and `Py_FinalizeEx`) run the interpreter's
//!   Python-level `atexit` callbacks before CPython's "not the last thread" check and before
//!   anything is freed. A builtin function registered there reports
//!   [`Registry::end_begins`](interpsafe_protocol::Registry::end_begins): from then on guards
//!   refuse to attach, and the end waits (detached) until threads attached through guards have
//!   left and pinning guards (`SharedBytes`) are released. Idle guards are not waited for: on
//!   3.13 nothing may delay an end Python code started for long, so they refuse instead
//!   (PEP 788's native guards on 3.15 make the end wait). (C-level `PyUnstable_AtExit` callbacks would be cleaner, but 3.13 runs them inside
//!   `PyInterpreterState_Clear`, after that check.)
//! - **The end happens.** `PyInterpreterState_GetDict` returns a dict that CPython clears while
//!   the interpreter is being finalised (`PyInterpreterState_Clear`), which runs the capsule's
//!   destructor. The destructor only reports to the registry: it calls no Python API.
//!
//! Python code can unregister the `atexit` hook (`atexit._clear()`); the end then goes
//! unannounced until the capsule reports it, which is the window `docs/threat-model.md` lists.

use std::ffi::{c_void, CStr};

use interpsafe_protocol::{InterpreterKey, Status};

use super::runtime::{decref_pool, registry};
use super::thread_label::current_holder;
use crate::pyo3_compat::ffi;

const CAPSULE_NAME: &CStr = c"interpsafe.end_observer";

unsafe extern "C" fn on_interpreter_end(capsule: *mut ffi::PyObject) {
    // SAFETY: CPython calls this destructor with the capsule being freed; its name is ours.
    let ptr = unsafe { ffi::PyCapsule_GetPointer(capsule, CAPSULE_NAME.as_ptr()) };
    if ptr.is_null() {
        // SAFETY: the capsule API set an error; the destructor must not leave one behind.
        unsafe { ffi::PyErr_Clear() };
        return;
    }
    // SAFETY: `install` stored a `Box<InterpreterKey>` as the pointer and only this destructor,
    // run once, takes it back.
    let key = unsafe { Box::from_raw(ptr.cast::<InterpreterKey>()) };
    // Ended by someone other than the toolkit (or after the toolkit closed its queue): what is
    // still queued cannot be released safely mid-teardown, so it is discarded and counted.
    decref_pool().discard_ended(*key);
    // Once-cell values still held for it (its end-begins hook did not run) are given up too.
    crate::release::discard_once_cells(*key, registry().slot(*key));
    registry().ended(*key);
}

const BEGINS_CAPSULE_NAME: &CStr = c"interpsafe.end_begins";

/// The `atexit` callback: `self` is a capsule holding the interpreter's key.
unsafe extern "C" fn on_end_begins(
    capsule: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this attached to the interpreter that is ending, with the capsule
    // `install` bound as `self`; it lives as long as the function object.
    let key = unsafe { ffi::PyCapsule_GetPointer(capsule, BEGINS_CAPSULE_NAME.as_ptr()) };
    if key.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the capsule's pointer is a `Box<InterpreterKey>` that only its destructor frees.
    let key = unsafe { *key.cast::<InterpreterKey>() };
    if crate::seeds::active(crate::seeds::Hole::PythonEndUnguarded) {
        // The seeded hole: the end goes unannounced until the capsule reports it.
        // SAFETY: attached; Py_None is immortal, the returned reference is a new one.
        return unsafe {
            let none = ffi::Py_None();
            ffi::Py_INCREF(none);
            none
        };
    }
    // Python code can find this function (through `gc`) and call it; found by attack, a call
    // outside an end left the interpreter `Ending` for good, or hung a thread holding a pin.
    // It announces an end only while one is under way: CPython's (`finalizing` set) or the
    // toolkit's own (which runs the atexit callbacks itself, before `Py_EndInterpreter`).
    // SAFETY: attached (CPython calls it attached, from atexit or from Python code).
    let began = unsafe {
        super::running_main::cpython_end_began(ffi::PyThreadState_GetInterpreter(
            ffi::PyThreadState_Get(),
        ))
    };
    if began == Some(false) && registry().status(key) != Some(Status::Ending) {
        // SAFETY: attached; the message is a NUL-terminated literal.
        unsafe {
            ffi::PyErr_SetString(
                ffi::PyExc_RuntimeError,
                c"interpsafe: _interpsafe_end_begins runs when the interpreter ends; it is not for Python code to call".as_ptr(),
            );
        }
        return std::ptr::null_mut();
    }
    let mut saved: *mut ffi::PyThreadState = std::ptr::null_mut();
    registry().end_begins(key, &current_holder(), |detach| {
        if detach {
            // SAFETY: this thread is attached (CPython runs atexit callbacks attached); it
            // detaches so that threads attached through guards can finish.
            saved = unsafe { ffi::PyEval_SaveThread() };
        } else {
            // SAFETY: `saved` was detached on this thread just before; restored exactly once.
            unsafe { ffi::PyEval_RestoreThread(saved) };
        }
    });
    // The interpreter can still run code and no thread attached through a guard is left: release
    // what the once-cells hold for it here, in it (a value's finaliser runs here), and retire
    // their slots so that nothing is kept for it past its end.
    // SAFETY: attached again to `key`, whose end has begun; the handshake above waited for the
    // threads attached through guards, and CPython has joined its non-daemon threads.
    unsafe { crate::release::release_once_cells(key, registry().slot(key)) };
    // SAFETY: attached again; Py_None is immortal, the returned reference is a new one.
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

unsafe extern "C" fn free_begins_capsule(capsule: *mut ffi::PyObject) {
    // SAFETY: CPython calls this with the capsule being freed; its name is ours.
    let ptr = unsafe { ffi::PyCapsule_GetPointer(capsule, BEGINS_CAPSULE_NAME.as_ptr()) };
    if ptr.is_null() {
        // SAFETY: the capsule API set an error; the destructor must not leave one behind.
        unsafe { ffi::PyErr_Clear() };
        return;
    }
    // SAFETY: `install_end_begins` stored a `Box<InterpreterKey>`; only this destructor frees it.
    drop(unsafe { Box::from_raw(ptr.cast::<InterpreterKey>()) });
}

/// The method definition of the `atexit` hook (one for every interpreter; `self` differs).
struct HookDef(ffi::PyMethodDef);
// SAFETY: the definition is immutable after construction and only read by CPython.
unsafe impl Sync for HookDef {}

static END_BEGINS_DEF: HookDef = HookDef(ffi::PyMethodDef {
    ml_name: c"_interpsafe_end_begins".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer { PyCFunction: on_end_begins },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"interpsafe: this interpreter's end has begun (registered with atexit).".as_ptr(),
});

/// Registers the `atexit` hook that reports the start of `key`'s end. Returns false (with no
/// Python error left) if it could not be registered.
///
/// # Safety
/// The calling thread must be attached to the interpreter `key`.
unsafe fn install_end_begins(key: InterpreterKey) -> bool {
    let boxed = Box::into_raw(Box::new(key));
    // SAFETY: attached (caller's contract); the pointer is a live Box the destructor reclaims.
    let capsule = unsafe {
        ffi::PyCapsule_New(
            boxed.cast::<c_void>(),
            BEGINS_CAPSULE_NAME.as_ptr(),
            Some(free_begins_capsule),
        )
    };
    if capsule.is_null() {
        // SAFETY: the capsule was not created, so the Box is still ours; clear the error.
        unsafe {
            drop(Box::from_raw(boxed));
            ffi::PyErr_Clear();
        }
        return false;
    }
    // SAFETY: attached; the capsule is a new reference, released once the function object holds
    // its own.
    unsafe {
        let registered = atexit_register(&END_BEGINS_DEF, capsule);
        ffi::Py_DECREF(capsule);
        registered
    }
}

/// `atexit.register(f)` in the current interpreter, for a builtin function `f` made from `def`
/// with `self_` (borrowed; may be NULL) as its `self`. Returns false (with no Python error left)
/// if it failed.
///
/// # Safety
/// The calling thread must be attached; `self_` is NULL or a live object.
unsafe fn atexit_register(def: &'static HookDef, self_: *mut ffi::PyObject) -> bool {
    // SAFETY: attached (caller's contract); every object below is a new reference released
    // once, and the method definition is a static that outlives every interpreter (CPython only
    // reads it).
    unsafe {
        let hook = ffi::PyCFunction_NewEx(
            std::ptr::addr_of!(def.0).cast_mut(),
            self_,
            std::ptr::null_mut(),
        );
        if hook.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let atexit = ffi::PyImport_ImportModule(c"atexit".as_ptr());
        let registered = if atexit.is_null() {
            std::ptr::null_mut()
        } else {
            let register = ffi::PyObject_GetAttrString(atexit, c"register".as_ptr());
            ffi::Py_DECREF(atexit);
            if register.is_null() {
                std::ptr::null_mut()
            } else {
                let r = ffi::PyObject_CallOneArg(register, hook);
                ffi::Py_DECREF(register);
                r
            }
        };
        ffi::Py_DECREF(hook);
        if registered.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        ffi::Py_DECREF(registered);
        true
    }
}

/// How long a toolkit end waits, inside `Py_EndInterpreter`, for thread states that appeared
/// after it counted them, before it lets CPython's check run anyway.
const LATE_THREAD_STATES_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The `atexit` callback a toolkit end registers last (see [`register_late_thread_wait`]).
unsafe extern "C" fn wait_for_late_thread_states(
    _self: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let start = std::time::Instant::now();
    // SAFETY: CPython runs atexit callbacks attached to the ending interpreter; the thread list
    // is walked attached (as CPython's own check does), and the thread state detached for the
    // pause is restored on this thread before the next walk.
    unsafe {
        let own = ffi::PyThreadState_Get();
        while super::thread_state::others(own) > 0 && start.elapsed() < LATE_THREAD_STATES_LIMIT {
            let saved = ffi::PyEval_SaveThread();
            std::thread::sleep(std::time::Duration::from_micros(200));
            ffi::PyEval_RestoreThread(saved);
        }
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

static LATE_THREAD_WAIT_DEF: HookDef = HookDef(ffi::PyMethodDef {
    ml_name: c"_interpsafe_late_thread_wait".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer { PyCFunction: wait_for_late_thread_states },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"interpsafe: wait for thread states made after the end counted them.".as_ptr(),
});

/// Registers, as the last Python-level `atexit` callback of a toolkit end (the others were run
/// and cleared before), a wait for thread states that appeared after the end counted them: an
/// `_interpreters.exec` that passed its readiness check before the end closed the interpreter
/// makes one late, is refused by the running-main mark, and deletes it again once it gets the
/// interpreter (its GIL, on a GIL build). `Py_EndInterpreter` runs the callback right before its
/// "not the last thread" check, so the window shrinks to the instructions between the two.
/// Returns false if it could not be registered.
///
/// # Safety
/// The calling thread must be attached to the interpreter being ended.
pub(crate) unsafe fn register_late_thread_wait() -> bool {
    // SAFETY: attached (caller's contract); the function takes no `self`.
    unsafe { atexit_register(&LATE_THREAD_WAIT_DEF, std::ptr::null_mut()) }
}

/// Installs the end observers for `key` in `interp`: the `atexit` hook and the dict capsule.
/// Failure is tolerated (the interpreter then stays "alive" in the registry until the runtime
/// ends), and any Python error is cleared.
///
/// # Safety
/// The calling thread must be attached to `interp`.
pub(crate) unsafe fn install(interp: *mut ffi::PyInterpreterState, key: InterpreterKey) {
    // SAFETY: attached to `interp` (caller's contract). A failure leaves only the capsule.
    unsafe { install_end_begins(key) };
    // SAFETY: the caller guarantees this thread is attached to `interp`; the dict is borrowed.
    let dict = unsafe { ffi::PyInterpreterState_GetDict(interp) };
    if dict.is_null() {
        return;
    }
    let boxed = Box::into_raw(Box::new(key));
    // SAFETY: attached to `interp`; the pointer is a live Box that the destructor reclaims.
    let capsule = unsafe {
        ffi::PyCapsule_New(boxed.cast::<c_void>(), CAPSULE_NAME.as_ptr(), Some(on_interpreter_end))
    };
    if capsule.is_null() {
        // SAFETY: the capsule was not created, so the Box is still ours; clear the error.
        unsafe {
            drop(Box::from_raw(boxed));
            ffi::PyErr_Clear();
        }
        return;
    }
    // SAFETY: attached to `interp`; `dict` is its live interpreter dict and `capsule` a new
    // reference that the dict takes a reference of, so ours is released right after.
    unsafe {
        if ffi::PyDict_SetItemString(dict, CAPSULE_NAME.as_ptr(), capsule) != 0 {
            ffi::PyErr_Clear();
        } else {
            registry().mark_end_observed(key);
        }
        ffi::Py_DECREF(capsule);
    }
}
