//! `pyo3`: the real `pyo3::Py<T>`, `Borrowed<'_, 'py, T>` and `PyOnceLock` of the PyO3 version
//! in use, with PyO3's own reference pool: the thing the `unchecked` model stands for.
//!
//! Where `unchecked` models PyO3 0.28 with raw pointers, this row *is* PyO3: a handle is a
//! `Py<PyAny>` (`Send + Sync`, no owner), a bind is `Py::bind_borrowed` (no check), a clone is
//! `Py::clone_ref`, a once-cell is a process-global `PyOnceLock`, and a drop is `Py<T>`'s own:
//! an immediate decref while PyO3 counts the thread as attached, else a push onto PyO3's
//! process-wide pool, which the next PyO3 attach drains into whatever interpreter that is.
//!
//! PyO3 counts a thread as attached only inside its own entry points, so a scope of this
//! strategy is entered through one of them, the one real PyO3 code would be running under:
//! - `Python::attach` where CPython's GIL-state API agrees with the thread (the thread state
//!   `PyGILState_Ensure` would pick is the current one): an embedder, as in the benches in main;
//! - otherwise (a thread the toolkit attached to a subinterpreter, where `PyGILState_Ensure`
//!   would switch back to the thread's first thread state) a call from Python into a
//!   `#[pyfunction]`, through PyO3's trampoline: how PyO3 code runs in a subinterpreter today.
//!
//! Both drain PyO3's pool into the current interpreter, as PyO3 does. Entering costs a
//! `PyGILState_Ensure`/`Release` pair (or a function call from Python), where `unchecked`'s
//! entry costs one flag load; the `enter_scope` bench shows it.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

use interpsafe_protocol::InterpreterKey;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyAnyMethods;
use pyo3::{Borrowed, Bound, Py, PyAny, Python};

use super::Strategy;
use crate::interpreter::Attached;
use crate::object::ObjRef;
use crate::pyo3_compat::ffi;
use crate::tag::Tag;
use crate::Error;

/// Stock PyO3: `Py<T>` and its pool, no check.
#[derive(Debug)]
pub enum StockPyo3 {}

/// A stock PyO3 scope: PyO3's `Python<'py>` token, and the interpreter at entry (for errors).
pub struct StockScope<'s> {
    py: Python<'s>,
    at: InterpreterKey,
    // Not Send or Sync: a scope vouches for the thread that entered it, attached.
    _thread_bound: PhantomData<*mut ()>,
}

impl std::fmt::Debug for StockScope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StockScope").field("at", &self.at).finish_non_exhaustive()
    }
}

/// A PyO3 `Py<PyAny>`: the handle of this row.
pub type StockHandle = Py<PyAny>;

/// A process-global `PyOnceLock`, as PyO3 code keeps one in a static.
pub struct StockOnce(PyOnceLock<StockHandle>);

impl Default for StockOnce {
    fn default() -> Self {
        StockOnce(PyOnceLock::new())
    }
}

/// A body for [`run_pending`], its lifetime erased (see [`through_python`]).
type Body = NonNull<dyn FnMut(Python<'_>) + 'static>;

thread_local! {
    /// The body [`run_pending`] runs: set by [`through_python`] for the duration of one call.
    static PENDING: Cell<Option<Body>> = const { Cell::new(None) };
}

/// The `#[pyfunction]` Python calls to enter PyO3 the way a subinterpreter enters PyO3 code:
/// through PyO3's trampoline, which counts the thread as attached and drains PyO3's pool.
#[pyo3::pyfunction]
fn run_pending(py: Python<'_>) {
    if let Some(mut body) = PENDING.with(Cell::take) {
        // SAFETY: `through_python` set this pointer to a closure on its own stack frame, which
        // outlives this call (it waits for the call to return), and took nothing else from it.
        unsafe { body.as_mut()(py) }
    }
}

/// Runs `f` with a PyO3 token on this (attached) thread, inside one of PyO3's entry points.
fn with_pyo3<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    // SAFETY: both functions may be called in any state; the thread is attached (a scope is
    // entered only from an `Attached`).
    let agrees = unsafe { ffi::PyGILState_GetThisThreadState() == ffi::PyThreadState_Get() };
    if agrees {
        return Python::attach(f);
    }
    through_python(f)
}

/// Runs `f` inside a call from Python into [`run_pending`]. If the call cannot be made (no
/// memory for the function object), `f` runs with a bare token instead: still sound, with every
/// drop deferred to PyO3's pool.
fn through_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    let mut f = Some(f);
    let mut out: Option<std::thread::Result<R>> = None;
    {
        let mut body = |py: Python<'_>| {
            if let Some(f) = f.take() {
                out = Some(panic::catch_unwind(AssertUnwindSafe(|| f(py))));
            }
        };
        let body: &mut (dyn FnMut(Python<'_>) + '_) = &mut body;
        // SAFETY: only the lifetime is erased: the pointer is taken back (by `run_pending`, or
        // below) before this block ends and `body` goes out of scope.
        let body: Body = unsafe { std::mem::transmute(NonNull::from(body)) };
        PENDING.with(|p| p.set(Some(body)));
        // SAFETY: the thread is attached (see `with_pyo3`); the token lives only for this call.
        let py = unsafe { Python::assume_attached() };
        if let Ok(function) = pyo3::wrap_pyfunction!(run_pending, py) {
            let _ = function.call0();
        }
        PENDING.with(Cell::take);
    }
    match (f, out) {
        // SAFETY: the thread is attached (see `with_pyo3`); `f` was not run: the call did not
        // happen.
        (Some(f), _) => f(unsafe { Python::assume_attached() }),
        (None, Some(Ok(r))) => r,
        (None, Some(Err(payload))) => panic::resume_unwind(payload),
        (None, None) => unreachable!("the body records a result whenever it takes `f`"),
    }
}

impl Strategy for StockPyo3 {
    const NAME: &'static str = "pyo3";
    const SUMMARY: &'static str =
        "the real pyo3::Py<T> and PyOnceLock with PyO3's own reference pool: no check";
    const CHECKED: bool = false;

    type Scope<'s> = StockScope<'s>;
    type Ref<'s, 'a>
        = Borrowed<'a, 's, PyAny>
    where
        's: 'a;
    type Handle<'s> = StockHandle;
    type Stored = StockHandle;
    type Sent = StockHandle;
    type Once = StockOnce;

    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R {
        let at = at.key();
        with_pyo3(|py| f(&StockScope { py, at, _thread_bound: PhantomData }))
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        scope.at
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        // SAFETY: the caller hands over a new reference; the scope's token says the thread is
        // attached.
        unsafe { Bound::from_owned_ptr(scope.py, obj.as_ptr()) }.unbind()
    }

    #[inline]
    fn bind<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        Ok(handle.bind_borrowed(scope.py))
    }

    fn to_handle<'s, 'a>(_scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        obj.to_owned().unbind()
    }

    /// PyO3 records no owners.
    fn owner_of<'s, 'a>(_scope: &'a Self::Scope<'s>, _r: Self::Ref<'s, 'a>) -> Option<Tag> {
        None
    }

    #[inline]
    fn clone_handle<'s>(
        scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        Ok(handle.clone_ref(scope.py))
    }

    super::handle_is_stored_and_sent!();

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        let h = cell.0.get_or_try_init(scope.py, || init(scope))?;
        Ok(h.bind_borrowed(scope.py))
    }

    #[inline]
    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        // SAFETY: a `Borrowed` is a live object, borrowed for `'a`, on a thread attached for
        // `'s: 'a`; its pointer is never null.
        unsafe { ObjRef::from_raw(NonNull::new_unchecked(r.as_ptr())) }
    }
}

impl crate::hazard::Expectations for StockPyo3 {
    /// PyO3 checks what `unchecked` checks: nothing. The two differ in the drop: the model
    /// releases at once whenever CPython says a thread state is attached, `Py<T>` only inside
    /// PyO3's own entry points; elsewhere it goes to PyO3's process-wide pool, which whichever
    /// interpreter PyO3 code attaches to next releases. `H2` and `H16.del` let B attach before
    /// the owner, so the pool's release lands in B, as the model's immediate one does.
    fn expected(cell: &crate::hazard::Cell) -> crate::hazard::Expected {
        <super::Unchecked as crate::hazard::Expectations>::expected(cell)
    }
}
