//! `unchecked`: today's `Py<T>` and PyO3's process-global statics, no check. The baseline.
//!
//! The handle is a bare pointer, `Send + Sync`, as `Py<T>` is. Dropping it while attached
//! releases the reference in whatever interpreter the thread is attached to; dropping it with
//! nothing attached queues it in one process-wide pool that the next attach, into any
//! interpreter, drains (PyO3's `static POOL`, the cause of PyO3 #4570). Once-cells are process
//! global: the first interpreter to fill one wins and every other interpreter reads its object
//! (PyO3's `PyOnceLock`, `intern!`, type objects and exception types).
//!
//! It models PyO3 0.28 with raw pointers rather than wrapping `pyo3::Py`, so that every ratio is
//! taken against the absence of checks alone. The real `Py<T>`, with PyO3's own attach count and
//! pool, is the `pyo3` row ([`super::StockPyo3`]); where the two differ is said there.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::OnceLock;

use interpsafe_protocol::sync::atomic::{AtomicBool, Ordering};
use interpsafe_protocol::sync::Mutex;
use interpsafe_protocol::InterpreterKey;

use super::Strategy;
use crate::interpreter::Attached;
use crate::object::{ObjRef, RawStrong};
use crate::pyo3_compat::ffi;
use crate::Error;

/// The baseline strategy (no check).
#[derive(Debug)]
pub enum Unchecked {}

/// An unchecked scope: knows its interpreter only to word errors.
#[derive(Debug)]
pub struct UncheckedScope<'s> {
    at: InterpreterKey,
    // Not Send or Sync: a scope vouches for the thread that entered it, attached.
    _thread_bound: PhantomData<(&'s (), *mut ())>,
}

/// An unchecked handle: a strong pointer with no owner, like `Py<T>`.
#[derive(Debug)]
pub struct UncheckedHandle {
    obj: RawStrong,
}

// SAFETY: this is the baseline's (PyO3's) claim, not a proof: `Py<T>` is Send + Sync and so is
// this. Using it from another interpreter is exactly the hazard the toolkit measures.
unsafe impl Send for UncheckedHandle {}
// SAFETY: as above.
unsafe impl Sync for UncheckedHandle {}

/// PyO3's process-global pending-decref pool, drained by whichever interpreter attaches next.
/// `dirty` is set when it may hold something, so that entering a scope with an empty pool costs
/// one relaxed load (the flag PyO3's reference pool has had).
struct GlobalPool {
    pending: Mutex<Vec<usize>>,
    dirty: AtomicBool,
}

static GLOBAL_POOL: OnceLock<GlobalPool> = OnceLock::new();

fn global_pool() -> &'static GlobalPool {
    GLOBAL_POOL.get_or_init(|| GlobalPool {
        pending: Mutex::new(Vec::new()),
        dirty: AtomicBool::new(false),
    })
}

impl Drop for UncheckedHandle {
    fn drop(&mut self) {
        let ptr = self.obj.ptr();
        // SAFETY: PyThreadState_GetUnchecked may be called in any state.
        let attached = !unsafe { ffi::PyThreadState_GetUnchecked() }.is_null();
        if attached {
            // SAFETY: the baseline releases in whatever interpreter the thread is attached to.
            // That is sound only if it is the owner; that it may not be is the hazard measured.
            unsafe { ffi::Py_DECREF(ptr.as_ptr()) };
        } else {
            let pool = global_pool();
            pool.pending.lock().push(ptr.as_ptr() as usize);
            pool.dirty.store(true, Ordering::Release);
        }
    }
}

impl Clone for UncheckedHandle {
    /// `Py<T>: Clone` (PyO3's `py-clone` feature): an incref in whatever interpreter is attached.
    fn clone(&self) -> Self {
        // SAFETY: as in Drop: the baseline assumes the attached interpreter owns the object.
        unsafe { ffi::Py_INCREF(self.obj.ptr().as_ptr()) };
        // SAFETY: the incref above produced the reference adopted here.
        UncheckedHandle { obj: unsafe { RawStrong::adopt(self.obj.ptr()) } }
    }
}

/// A process-global once-cell, like PyO3's `PyOnceLock` in a static.
#[derive(Debug, Default)]
pub struct UncheckedOnce {
    cell: OnceLock<UncheckedHandle>,
}

impl Strategy for Unchecked {
    const NAME: &'static str = "unchecked";
    const SUMMARY: &'static str =
        "today's Py<T>: no check, process-global statics and decref pool (the baseline)";
    const CHECKED: bool = false;

    type Scope<'s> = UncheckedScope<'s>;
    type Ref<'s, 'a>
        = ObjRef<'a>
    where
        's: 'a;
    type Handle<'s> = UncheckedHandle;
    type Stored = UncheckedHandle;
    type Sent = UncheckedHandle;
    type Once = UncheckedOnce;

    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R {
        // PyO3 drains its global pool when a thread attaches: into this interpreter, whoever
        // owned the objects.
        let pool = global_pool();
        let pending =
            if pool.dirty.load(Ordering::Relaxed) && pool.dirty.swap(false, Ordering::Acquire) {
                std::mem::take(&mut *pool.pending.lock())
            } else {
                Vec::new()
            };
        for addr in pending {
            // SAFETY: the baseline's behaviour, deliberately: released in the interpreter that
            // happens to attach next (PyO3 #4570).
            unsafe { ffi::Py_DECREF(addr as *mut ffi::PyObject) };
        }
        f(&UncheckedScope { at: at.key(), _thread_bound: PhantomData })
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        scope.at
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        let _ = scope;
        // SAFETY: the caller hands over a new reference owned by the scope's interpreter.
        UncheckedHandle { obj: unsafe { RawStrong::adopt(obj) } }
    }

    #[inline]
    fn bind<'s, 'a>(
        _scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        // SAFETY: the baseline assumes the attached interpreter owns the object: no check.
        Ok(unsafe { handle.obj.borrow() })
    }

    fn to_handle<'s, 'a>(_scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        UncheckedHandle { obj: RawStrong::new(obj) }
    }

    /// The baseline records no owners.
    fn owner_of<'s, 'a>(
        _scope: &'a Self::Scope<'s>,
        _r: Self::Ref<'s, 'a>,
    ) -> Option<crate::tag::Tag> {
        None
    }

    #[inline]
    fn clone_handle<'s>(
        _scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        Ok(handle.clone())
    }

    super::handle_is_stored_and_sent!();

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        if cell.cell.get().is_none() {
            let value = init(scope)?;
            // A racing initialiser may have won: ours is then dropped here.
            let _ = cell.cell.set(value);
        }
        match cell.cell.get() {
            // SAFETY: the baseline hands the first filler's object to every interpreter.
            Some(h) => Ok(unsafe { h.obj.borrow() }),
            None => Err(Error::NotAttached { operation: "once-cell" }),
        }
    }

    #[inline]
    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        r
    }
}

impl UncheckedHandle {
    /// The object's address.
    pub fn addr(&self) -> usize {
        self.obj.addr()
    }
}

impl crate::hazard::Expectations for Unchecked {
    /// The baseline checks nothing: every cross-interpreter cell is undetected.
    fn expected(cell: &crate::hazard::Cell) -> crate::hazard::Expected {
        use crate::hazard::{compile_fail, Expected, Form, Hazard};
        if let Some(e) = Expected::common(cell) {
            return e;
        }
        match cell.case.hazard {
            Hazard::H7 => Expected::NotApplicable { why: "no check, so nothing is flagged" },
            Hazard::H12
                if cell.setting == Some(crate::hazard::Setting::SharedGil)
                    && !cell.free_threaded =>
            {
                Expected::NotApplicable {
                    why: "legacy interpreters share one interned-string table: B's own interned \
                          string is A's object",
                }
            }
            Hazard::H11 => Expected::CompileError { case: compile_fail::OBJREF_ESCAPES_SCOPE },
            Hazard::H13 if cell.case.form == Some(Form::Mixed) => Expected::NotApplicable {
                why: "its stored form is a bare pointer, not the checked strategies' TaggedHandle",
            },
            _ => Expected::Undetected {
                how: "no owner is recorded: handles, drops and process-global statics go wherever \
                      the thread is attached",
            },
        }
    }
}
