//! Attaching any thread to a chosen interpreter: the PEP 788 contract, emulated on 3.12/3.13.
//!
//! PEP 788 splits the job in two, and so does this module:
//! - an [`InterpreterGuard`] keeps one interpreter from ending while it is held (the registry
//!   refuses to let an end proceed, and refuses new guards once an end has begun);
//! - [`InterpreterGuard::attach`] runs a closure with the calling thread attached to that
//!   interpreter: a fresh thread state from `PyThreadState_New`, swapped in with
//!   `PyEval_RestoreThread`, then cleared and deleted (`PyThreadState_DeleteCurrent`), and the
//!   thread state the thread had before, if any, swapped back. Deleting matters:
//!   `Py_EndInterpreter` aborts the process while any other thread state of the interpreter
//!   exists.
//!
//! A closure (not a guard object) delimits the attachment so that nested attachments unwind in
//! order, even on panic. A thread already attached to the chosen interpreter runs the closure in
//! place.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::null_mut;

use interpsafe_protocol::{GuardId, InterpreterKey};

use super::python_code;
use super::running_main::SuspendedMark;
use super::runtime::registry;
use super::thread_label::current_holder;
use crate::pyo3_compat::ffi;
use crate::Error;

/// Keeps an interpreter from ending while held; attach through it with [`InterpreterGuard::attach`].
///
/// It is `Send`: PEP 788 lets one thread take a guard and another use it. Dropping it releases
/// the hold (and wakes an end waiting for it).
#[derive(Debug)]
pub struct InterpreterGuard {
    key: InterpreterKey,
    guard: GuardId,
    interp: *mut ffi::PyInterpreterState,
    /// PEP 788's own guard (feature `pep788-native`): CPython's ends, Python's included, wait
    /// for it.
    #[cfg(feature = "pep788-native")]
    native: super::native_guard::NativeGuard,
}

// SAFETY: the guard is a registry token plus the interpreter's address. The address is only
// dereferenced by CPython inside `attach`, on the thread that calls it, and the held guard keeps
// the interpreter from ending meanwhile; nothing in the guard is tied to the creating thread.
unsafe impl Send for InterpreterGuard {}

impl InterpreterGuard {
    /// Takes a guard on `key`. Fails with [`Error::Attach`] if the interpreter is unknown, is
    /// being ended, or has ended.
    pub fn new(key: InterpreterKey) -> Result<Self, Error> {
        let (guard, handle) = registry().attach(key, current_holder())?;
        Self::with_native(key, guard, handle)
    }

    /// The guard for a registry guard just taken, with its native guard where the feature
    /// asks for one (the registry guard is released if CPython refuses it).
    fn with_native(key: InterpreterKey, guard: GuardId, handle: usize) -> Result<Self, Error> {
        #[cfg(feature = "pep788-native")]
        let native = match super::native_guard::NativeGuard::take(key) {
            Ok(native) => native,
            Err(e) => {
                registry().detach(key, guard);
                return Err(e);
            }
        };
        Ok(InterpreterGuard {
            key,
            guard,
            interp: handle as *mut ffi::PyInterpreterState,
            #[cfg(feature = "pep788-native")]
            native,
        })
    }

    /// A guard that also pins the interpreter's memory: every end waits for it, including one
    /// that Python code starts (`_interpreters.destroy`), which does not wait for ordinary
    /// guards on 3.13. For holders that read the interpreter's objects without attaching
    /// ([`SharedBytes`](crate::share::SharedBytes)). A thread that holds one and destroys the
    /// interpreter from Python waits for itself: keep pins short-lived.
    pub(crate) fn new_pinning(key: InterpreterKey) -> Result<Self, Error> {
        let (guard, handle) = registry().attach_pinning(key, current_holder())?;
        Self::with_native(key, guard, handle)
    }

    /// The interpreter this guard holds.
    pub fn key(&self) -> InterpreterKey {
        self.key
    }

    /// Runs `f` with the calling thread attached to this guard's interpreter, then restores the
    /// thread's previous state (attached elsewhere, or not attached).
    ///
    /// `f` and its result must be `Send`, as PyO3's `allow_threads` closure and result must be
    /// `Ungil`: a closure that runs attached to another interpreter must not capture `!Send`
    /// values of the current one (branded and affine handles, borrowed objects, scopes), and
    /// must not hand `!Send` values of the interpreter it ran in back out to the caller's, where
    /// they would be used, stored or dropped in the wrong interpreter (an affine handle returned
    /// out of a nested attach was laundered into another interpreter's stored form that way).
    ///
    /// Fails with [`Error::Attach`] once the interpreter's end has begun, whoever began it: the
    /// toolkit, Python code (`_interpreters.destroy`) or runtime finalisation. An end waits for
    /// attachments in progress (see `end_observer`).
    pub fn attach<R: Send>(&self, f: impl FnOnce(&Attached<'_>) -> R + Send) -> Result<R, Error> {
        if crate::seeds::active(crate::seeds::Hole::PythonEndUnguarded) {
            // SAFETY: none: the seeded hole reopens the unchecked attach through the stored
            // pointer, for the adversarial search to find (seeds builds only).
            return unsafe { with_thread_state(self.interp, self.key, f) };
        }
        let holder = current_holder();
        let interp = registry().enter_attached(self.key, self.guard, &holder)?;
        let _leave = LeaveAttached { key: self.key, holder };
        debug_assert_eq!(interp, self.interp as usize);
        #[cfg(feature = "pep788-native")]
        // SAFETY: PyThreadState_GetUnchecked may be called in any state.
        if unsafe { ffi::PyThreadState_GetUnchecked() }.is_null() {
            // A detached thread attaches the PEP 788 way. (A thread attached elsewhere keeps
            // the swap below, which marks the interpreter it suspends as running.)
            let key = self.key;
            let ran = self.native.ensure(move || {
                // SAFETY: attached to `key` by `PyThreadState_Ensure` just now.
                unsafe { crate::release::drain_for(key) };
                f(&Attached::new(key))
            });
            return ran.ok_or(Error::ThreadState { interpreter: key });
        }
        // SAFETY: `enter_attached` found the interpreter alive with this guard held, and every
        // end (toolkit, Python or finalisation) waits for this attachment to leave before
        // CPython frees anything, so `interp` stays live until `_leave` drops.
        unsafe { with_thread_state(interp as *mut ffi::PyInterpreterState, self.key, f) }
    }
}

/// Ends an attachment in the registry when the thread state it made is gone (also on unwind).
struct LeaveAttached {
    key: InterpreterKey,
    holder: interpsafe_protocol::Holder,
}

impl Drop for LeaveAttached {
    fn drop(&mut self) {
        registry().leave_attached(self.key, &self.holder);
    }
}

impl Drop for InterpreterGuard {
    fn drop(&mut self) {
        registry().detach(self.key, self.guard);
    }
}

/// Attaches the calling thread to `key` for the duration of `f`: an [`InterpreterGuard`] plus
/// [`InterpreterGuard::attach`].
pub fn attach<R: Send>(
    key: InterpreterKey,
    f: impl FnOnce(&Attached<'_>) -> R + Send,
) -> Result<R, Error> {
    InterpreterGuard::new(key)?.attach(f)
}

/// Proof, inside an attach closure, that this thread is attached to [`Attached::key`].
///
/// Not `Send`: it describes the calling thread.
#[derive(Debug)]
pub struct Attached<'a> {
    key: InterpreterKey,
    _thread_bound: PhantomData<(&'a (), *mut ())>,
}

impl Attached<'_> {
    pub(crate) fn new(key: InterpreterKey) -> Self {
        Attached { key, _thread_bound: PhantomData }
    }

    /// The interpreter this thread is attached to.
    pub fn key(&self) -> InterpreterKey {
        self.key
    }

    /// A safe point for code that waits while attached, on free-threaded builds: detaches and
    /// re-attaches this thread, so that a stop-the-world request can proceed. On 3.13t importing
    /// an extension that does not declare `Py_MOD_GIL_NOT_USED` stops the world of *every*
    /// interpreter, and the free-threaded collector stops its interpreter's; a thread that spins
    /// attached without a safe point blocks both (found by the own-GIL parallelism test). On GIL
    /// builds there is no stop-the-world and this does nothing (it does not release the GIL).
    pub fn safe_point(&self) {
        #[cfg(Py_GIL_DISABLED)]
        // SAFETY: this thread is attached (an `Attached` exists); the thread state saved here is
        // restored at once, on the same thread.
        unsafe {
            let tstate = ffi::PyEval_SaveThread();
            ffi::PyEval_RestoreThread(tstate);
        }
    }

    /// Executes Python statements in this interpreter's `__main__`.
    pub fn exec(&self, code: &CStr) -> Result<(), Error> {
        // SAFETY: an `Attached` exists only while this thread is attached to `key`.
        unsafe { python_code::exec(self.key, code) }
    }

    /// Evaluates a Python expression in `__main__` and returns its `str()`.
    pub fn eval(&self, expr: &CStr) -> Result<String, Error> {
        // SAFETY: an `Attached` exists only while this thread is attached to `key`.
        unsafe { python_code::eval_str(self.key, expr) }
    }
}

/// Restores the thread to its previous state when an attachment ends, also on unwind.
struct SwapBack {
    fresh: *mut ffi::PyThreadState,
    previous: *mut ffi::PyThreadState,
    /// The running-main mark on `previous`'s interpreter while it is suspended.
    suspended: Option<SuspendedMark>,
}

impl Drop for SwapBack {
    fn drop(&mut self) {
        // SAFETY: `fresh` is the thread state this thread attached in `with_thread_state`, and
        // attachments nest (closures), so it is the current one: clearing needs it attached and
        // DeleteCurrent deletes it and detaches. `previous`, if any, was detached by
        // PyEval_SaveThread on this thread and is restored exactly once; its mark was taken
        // with it current and is lifted with it current again.
        unsafe {
            ffi::PyThreadState_Clear(self.fresh);
            ffi::PyThreadState_DeleteCurrent();
            if !self.previous.is_null() {
                ffi::PyEval_RestoreThread(self.previous);
            }
            if let Some(mark) = self.suspended.take() {
                mark.lift();
            }
        }
    }
}

/// Runs `f` attached to `interp` with a fresh thread state (or in place if the thread is already
/// attached to it).
///
/// # Safety
/// `interp` must be a live interpreter that cannot end while this runs.
pub(crate) unsafe fn with_thread_state<R>(
    interp: *mut ffi::PyInterpreterState,
    key: InterpreterKey,
    f: impl FnOnce(&Attached<'_>) -> R,
) -> Result<R, Error> {
    // SAFETY: PyThreadState_GetUnchecked may be called in any state.
    let current = unsafe { ffi::PyThreadState_GetUnchecked() };
    // SAFETY: a non-NULL current thread state is attached to this thread and alive.
    if !current.is_null() && unsafe { ffi::PyThreadState_GetInterpreter(current) } == interp {
        return Ok(f(&Attached::new(key)));
    }
    let (previous, suspended) = if current.is_null() {
        (null_mut(), None)
    } else {
        // SAFETY: this thread is attached with `current` (non-NULL), which the mark needs, and
        // restores it before lifting the mark (`SwapBack`); detaching it releases that
        // interpreter's GIL (or lets a free-threaded stop-the-world proceed). The mark keeps
        // Python code from destroying the interpreter under the suspended thread state (see
        // `running_main`), or refuses the suspension where it cannot.
        unsafe {
            let mark = SuspendedMark::take()?;
            (ffi::PyEval_SaveThread(), Some(mark))
        }
    };
    // SAFETY: `interp` is live (caller's contract); PyThreadState_New does not need an attached
    // thread state (PyGILState_Ensure relies on the same).
    let fresh = unsafe { ffi::PyThreadState_New(interp) };
    if fresh.is_null() {
        if !previous.is_null() {
            // SAFETY: `previous` was detached just above on this thread, and the mark taken
            // with it current.
            unsafe {
                ffi::PyEval_RestoreThread(previous);
                if let Some(mark) = suspended {
                    mark.lift();
                }
            }
        }
        return Err(Error::ThreadState { interpreter: key });
    }
    // SAFETY: `fresh` belongs to this thread and is not attached anywhere; the thread is
    // detached, so attaching (and taking `interp`'s GIL on a GIL build) is allowed.
    unsafe { ffi::PyEval_RestoreThread(fresh) };
    let _swap_back = SwapBack { fresh, previous, suspended };
    // SAFETY: attached to `key` just above: release what was deferred for it.
    unsafe { crate::release::drain_for(key) };
    Ok(f(&Attached::new(key)))
}
