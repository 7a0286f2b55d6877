//! Reading the head of CPython's list of interpreters without a call into libpython.
//!
//! The tagged strategy's fast path asks, on every bind, whether the main interpreter is the only
//! one alive (`runtime::only_main_alive`): `PyInterpreterState_Head() == main`. Through a shared
//! libpython that is an out-of-line call through the PLT, about 3 ns, most of the fast path.
//! CPython 3.13 and later publish where the head lives for out-of-process debuggers: `_PyRuntime` opens
//! with `_Py_DebugOffsets` (`Include/internal/pycore_runtime.h`), whose cookie is `xdebugpy` and
//! whose `runtime_state.interpreters_head` is the field's offset in `_PyRuntime`. This module
//! reads that offset once, checks it against the call, and then the head is one load. If the
//! cookie, the version or the check disagree, callers keep using the call.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::pyo3_compat::ffi;

extern "C" {
    /// CPython's runtime state; only its address and the debug offsets at its start are read.
    static _PyRuntime: [u8; 0];
}

/// The cookie `_Py_DebugOffsets` starts with.
const COOKIE: &[u8; 8] = b"xdebugpy";

/// Where `runtime_state.interpreters_head` sits in `_Py_DebugOffsets` on 3.13 to 3.15: after
/// the cookie, `version`, `free_threaded`, `runtime_state.size` and `runtime_state.finalizing`
/// (`Include/internal/pycore_runtime.h` on 3.13, `pycore_debug_offsets.h` from 3.14).
const HEAD_OFFSET_AT: usize = 40;

/// The `PY_VERSION_HEX` majors and minors whose debug offsets open this way (3.13, 3.14, 3.15).
const LAYOUT_VERSIONS: std::ops::RangeInclusive<u64> = 0x030d..=0x030f;

/// The address of the list head in `_PyRuntime`, once checked; null until then or if the
/// check failed.
static HEAD: AtomicPtr<AtomicUsize> = AtomicPtr::new(std::ptr::null_mut());

/// Locates the list head through the debug offsets and checks it against
/// `PyInterpreterState_Head`. Call once the runtime is initialised.
///
/// # Safety
/// The runtime must be initialised (so `_PyRuntime`'s debug offsets are written and the list is
/// not empty).
pub(crate) unsafe fn locate() {
    // SAFETY: `_PyRuntime` is libpython's exported runtime state, which starts with the debug
    // offsets (the cookie, then u64 fields, 8-byte aligned in a struct far larger than 48 bytes);
    // the head word at the offset it names is read atomically, as CPython writes it under a lock.
    unsafe {
        let base = std::ptr::addr_of!(_PyRuntime).cast::<u8>();
        if *base.cast::<[u8; 8]>() != *COOKIE {
            return;
        }
        let version = *base.add(8).cast::<u64>();
        if !LAYOUT_VERSIONS.contains(&(version >> 16)) {
            return;
        }
        let size = *base.add(24).cast::<u64>() as usize;
        let offset = *base.add(HEAD_OFFSET_AT).cast::<u64>() as usize;
        if offset < 48 || offset + 8 > size || offset % 8 != 0 {
            return;
        }
        let word = base.add(offset).cast::<AtomicUsize>().cast_mut();
        if (*word).load(Ordering::Relaxed) == ffi::PyInterpreterState_Head() as usize {
            HEAD.store(word, Ordering::Relaxed);
        }
    }
}

/// The head of CPython's interpreter list: one load once [`locate`] checked the field, else
/// `PyInterpreterState_Head()`. Only compared, never dereferenced.
#[inline(always)]
pub(crate) fn head() -> *mut ffi::PyInterpreterState {
    let word = HEAD.load(Ordering::Relaxed);
    if word.is_null() {
        // SAFETY: PyInterpreterState_Head only reads the runtime's list head.
        return unsafe { ffi::PyInterpreterState_Head() };
    }
    // SAFETY: `locate` checked that `word` is the list head inside `_PyRuntime`, which lives as
    // long as the process; read atomically (CPython writes it under the runtime's lock).
    unsafe { (*word).load(Ordering::Relaxed) as *mut ffi::PyInterpreterState }
}

/// Whether [`head`] reads the field in place (the debug offsets were found and checked).
pub(crate) fn read_in_place() -> bool {
    !HEAD.load(Ordering::Relaxed).is_null()
}
