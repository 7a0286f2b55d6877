//! Where a checked handle's reference is released: in its owner interpreter, now or later.
//!
//! A handle dropped while the thread is attached to its owner releases at once. Otherwise (the
//! thread is attached elsewhere, or to nothing) the reference is queued in the owner's deferred
//! decref pool and released the next time a thread attaches there ([`drain_for`]); if the owner
//! has ended, it is discarded without touching freed memory, and counted. This is the fix for the
//! process-global pool of PyO3 0.28 (`src/internal/state.rs`; PyO3 issue #4570, 2024), which is drained by whichever interpreter attaches
//! next.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Weak};

use interpsafe_protocol::{Deferred, InterpreterKey, SlottedOnce};

use crate::interpreter::runtime::{current_tag, decref_pool};
use crate::pyo3_compat::ffi;
use crate::tag::Tag;

/// Releases a strong reference owned by `owner`: now if attached there, else deferred.
pub(crate) fn release(owner: Tag, ptr: NonNull<ffi::PyObject>) {
    if owner == Tag::UNKNOWN {
        // Nobody's: no interpreter may release it, so it is leaked.
        return;
    }
    if current_tag() == Some(owner) {
        // SAFETY: the thread is attached to the owner interpreter, which owns the reference.
        unsafe { ffi::Py_DECREF(ptr.as_ptr()) };
        return;
    }
    match decref_pool().defer(owner.key(), ptr.as_ptr() as usize) {
        Deferred::Queued | Deferred::Discarded => {}
    }
}

/// Releases the references queued for `key`; the thread must be attached to `key`.
///
/// # Safety
/// The calling thread must be attached to the interpreter `key`.
pub(crate) unsafe fn drain_for(key: InterpreterKey) {
    for addr in decref_pool().take(key) {
        // SAFETY: the pool only hands out addresses deferred for `key`, each once, and the thread
        // is attached to `key` (caller's contract).
        unsafe { ffi::Py_DECREF(addr as *mut ffi::PyObject) };
    }
}

/// Releases what is queued for `key` and closes its queue, right before it ends.
///
/// # Safety
/// The calling thread must be attached to the interpreter `key`, which must not have ended.
pub(crate) unsafe fn close_for(key: InterpreterKey) {
    for addr in decref_pool().close(key) {
        // SAFETY: as in `drain_for`; the interpreter has not ended yet.
        unsafe { ffi::Py_DECREF(addr as *mut ffi::PyObject) };
    }
}

/// The once-cells that have held a value, and the interpreters whose values were retired.
///
/// Each `TaggedOnce` (the strategies' once-cell) registers its shared state here before its first
/// initialisation, held weakly, so a dropped cell simply drops out. An interpreter's end walks
/// the cells to release what each holds for that interpreter, and records the interpreter: a
/// cell first used after that end (registered later, so not walked) is retired for it as it
/// registers, or it would store a value for an ended interpreter that nothing releases (found by
/// attack: an `atexit` callback filling a never-used cache after the end had begun).
struct OnceCells {
    cells: Vec<Weak<SlottedOnce>>,
    /// Every interpreter retired so far, with its slot (slots are never reused).
    retired: Vec<(InterpreterKey, Option<u32>)>,
}

static ONCE_CELLS: Mutex<OnceCells> =
    Mutex::new(OnceCells { cells: Vec::new(), retired: Vec::new() });

fn once_cells() -> std::sync::MutexGuard<'static, OnceCells> {
    // A panic under this lock leaves the lists valid (a push or a retain), so poisoning is
    // ignored.
    ONCE_CELLS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds a once-cell to the cells whose values are released at interpreter ends (and drops the
/// entries of cells dropped since), retiring it for every interpreter whose end has begun.
pub(crate) fn register_once_cell(cell: &Arc<SlottedOnce>) {
    let retired = {
        let mut once = once_cells();
        once.cells.retain(|c| c.strong_count() > 0);
        once.cells.push(Arc::downgrade(cell));
        once.retired.clone()
    };
    // Registered in the same critical section that read the retired list: an end recorded after
    // it walks this cell itself.
    for (key, slot) in retired {
        // Nothing is stored yet (registration precedes the first initialisation), so there is
        // nothing to release.
        let _ = cell.retire(key, slot);
    }
}

/// Records `key` as retired and returns the live registered cells, held strongly for the walk
/// (the lock is not held while values are released: a release can run Python code that reaches
/// once-cells).
fn retire_and_list(key: InterpreterKey, slot: Option<u32>) -> Vec<Arc<SlottedOnce>> {
    let mut once = once_cells();
    once.retired.push((key, slot));
    once.cells.iter().filter_map(Weak::upgrade).collect()
}

/// Retires every once-cell's value for `key` (its slot `slot`) and releases it there, as `key`'s
/// end begins. From then on no cell stores or hands out a value for `key`.
///
/// # Safety
/// The calling thread must be attached to `key`, whose end has begun and which can still run
/// code; no other thread may be using a once-cell value of `key` (the end handshake waited for
/// the threads attached through guards).
pub(crate) unsafe fn release_once_cells(key: InterpreterKey, slot: Option<u32>) {
    for cell in retire_and_list(key, slot) {
        if let Some(addr) = cell.retire(key, slot) {
            // SAFETY: the cell held this strong reference for `key` (checked at initialisation),
            // retiring handed it to us alone, and the thread is attached to `key`.
            unsafe { ffi::Py_DECREF(addr as *mut ffi::PyObject) };
        }
    }
}

/// Retires every once-cell's value for `key` without releasing it: `key` ended without its
/// end-begins hook running (Python code cleared `atexit`), and mid-teardown nothing may be
/// released there. The references are given up (the same window as the decref pool's
/// discarded objects).
pub(crate) fn discard_once_cells(key: InterpreterKey, slot: Option<u32>) {
    for cell in retire_and_list(key, slot) {
        let _ = cell.retire(key, slot);
    }
}
