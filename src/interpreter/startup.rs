//! Starting the runtime: [`initialize`] registers the `_interpsafe` builtin module, initialises
//! CPython if nobody has, and registers the main interpreter (installing its end observer).
//!
//! Above everything else in `interpreter/` it starts: the registry (`runtime.rs`), the entry
//! module, the end observer and the thread-state helper of `guard.rs`.

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use interpsafe_protocol::{InterpreterId, InterpreterKey};

use super::guard::with_thread_state;
use super::runtime::{registry, MAIN_INTERP};
use super::{end_observer, entry_module, interpreter_list};
use crate::pyo3_compat::{self, ffi};

/// Initialises the embedded runtime if nobody has (registering the `_interpsafe` builtin module
/// first, so that code in any interpreter can `import _interpsafe` to enter toolkit code), then
/// registers the main interpreter. No thread is attached afterwards.
///
/// If the runtime was initialised by someone else, the builtin module is not available, and
/// interpreters are registered when toolkit code first runs in them.
pub fn initialize() {
    static INIT: Mutex<bool> = Mutex::new(false);
    let mut done = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    // SAFETY: Py_IsInitialized may be called at any time. PyImport_AppendInittab must be called
    // before Py_Initialize, which the check guarantees (the INIT lock serialises our callers; a
    // concurrent initialisation by an unrelated party is outside what this crate can guard).
    unsafe {
        if ffi::Py_IsInitialized() == 0 {
            ffi::PyImport_AppendInittab(
                entry_module::NAME.as_ptr(),
                Some(entry_module::init_entry_module),
            );
        }
    }
    pyo3_compat::initialize_runtime();
    // SAFETY: the runtime is initialised, so PyInterpreterState_Main returns the main
    // interpreter, valid until finalisation.
    let main = unsafe { ffi::PyInterpreterState_Main() };
    // SAFETY: the runtime is initialised.
    unsafe { interpreter_list::locate() };
    MAIN_INTERP.store(main, Ordering::Relaxed);
    let seen = registry().observe(InterpreterId::MAIN, main as usize);
    #[cfg(feature = "pep788-native")]
    super::native_guard::remember_main_view(seen.key);
    if seen.first_entry {
        // SAFETY: the main interpreter lives until the runtime is finalised, which cannot happen
        // while this thread runs toolkit code; inside the closure the thread is attached to it.
        // A thread-state allocation failure only means main's end goes unobserved.
        let _ =
            unsafe { with_thread_state(main, seen.key, |_| end_observer::install(main, seen.key)) };
    }
    *done = true;
}

/// The main interpreter's key (initialising the runtime if needed).
pub fn main_interpreter() -> InterpreterKey {
    initialize();
    // SAFETY: initialize() above guarantees an initialised runtime.
    let main = unsafe { ffi::PyInterpreterState_Main() };
    registry().observe(InterpreterId::MAIN, main as usize).key
}
