//! Reading a thread state's interpreter without a call into libpython, and counting an
//! interpreter's other thread states (what `Py_EndInterpreter`'s last-thread check counts).
//!
//! `PyThreadState` is `struct _ts` in CPython's `Include/cpython/pystate.h`, whose first fields
//! are `prev`, `next` and `interp` on 3.12, 3.13 and 3.14. `PyThreadState_GetInterpreter` returns
//! that field through an out-of-line call; reading it in place saves the call on the hot path of
//! the current-interpreter lookup. The layout is checked once against the call
//! ([`layout_verified`]); if they ever disagree, callers use the call.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::pyo3_compat::ffi;

/// The prefix of `struct _ts` that this module reads.
#[repr(C)]
struct ThreadStatePrefix {
    prev: *mut ffi::PyThreadState,
    next: *mut ffi::PyThreadState,
    interp: *mut ffi::PyInterpreterState,
}

/// `tstate->interp`, read in place. Trust the value only after [`layout_verified`] returned
/// true (before that it is the third word of the thread state, whatever it holds).
///
/// # Safety
/// `tstate` must be a live thread state (the calling thread's attached one).
#[inline]
pub(crate) unsafe fn interpreter_of(
    tstate: *mut ffi::PyThreadState,
) -> *mut ffi::PyInterpreterState {
    // SAFETY: `tstate` is live (caller's contract), and `struct _ts` is far larger than three
    // pointers on every CPython this crate builds for, so this aligned pointer-sized read is in
    // bounds whatever the field order; whether the word is `interp` is what `layout_verified` checks.
    unsafe { (*tstate.cast::<ThreadStatePrefix>()).interp }
}

/// Whether the in-place read agrees with the call: [`UNKNOWN`] until first checked.
static LAYOUT: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const AGREES: u8 = 1;
const DISAGREES: u8 = 2;

/// True once the in-place read has been checked to agree with `PyThreadState_GetInterpreter`
/// (checked on the first call, with `tstate` attached; afterwards one relaxed load).
///
/// # Safety
/// `tstate` must be the calling thread's attached thread state.
#[inline]
pub(crate) unsafe fn layout_verified(tstate: *mut ffi::PyThreadState) -> bool {
    match LAYOUT.load(Ordering::Relaxed) {
        AGREES => true,
        DISAGREES => false,
        // SAFETY: caller's contract, passed on.
        _ => unsafe { verify_layout(tstate) },
    }
}

/// The one-time check behind [`layout_verified`]. Racing first callers all compute the same
/// answer (the layout is a property of the libpython loaded), so the last store wins harmlessly.
///
/// # Safety
/// `tstate` must be the calling thread's attached thread state.
#[cold]
unsafe fn verify_layout(tstate: *mut ffi::PyThreadState) -> bool {
    // SAFETY: `tstate` is live and attached (caller's contract).
    let agrees = unsafe { interpreter_of(tstate) == ffi::PyThreadState_GetInterpreter(tstate) };
    LAYOUT.store(if agrees { AGREES } else { DISAGREES }, Ordering::Relaxed);
    agrees
}

/// The interpreter's thread states other than `own`.
///
/// # Safety
/// The calling thread must be attached with `own`, a thread state of a live interpreter. The
/// list is walked under the GIL (or, free-threaded, while no other thread of the interpreter can
/// start one: none runs Python code once the count is zero).
pub(crate) unsafe fn others(own: *mut ffi::PyThreadState) -> usize {
    // SAFETY: attached with `own` (caller's contract): its interpreter and thread list are live.
    unsafe {
        let interp = ffi::PyThreadState_GetInterpreter(own);
        let mut count = 0;
        let mut t = ffi::PyInterpreterState_ThreadHead(interp);
        while !t.is_null() {
            if t != own {
                count += 1;
            }
            t = ffi::PyThreadState_Next(t);
        }
        count
    }
}
