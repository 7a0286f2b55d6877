//! `affine`: handles are `!Send` (PyO3's `unsendable`, generalised); crossing threads needs an
//! explicit checked transfer.
//!
//! The handle cannot move to another thread, so no thread check is needed at all (PyO3's
//! `unsendable` checks a `ThreadId` on every access because a pyclass is reachable from Python
//! on any thread; a Rust-side handle is not). It records the interpreter it was made in (16
//! bytes), which bind and drop never consult. Moving to another thread goes through
//! [`Affine::send`], which tags the transfer with that owner, and [`Affine::receive`], which
//! refuses a different one. [`Affine::store`] tags with the recorded owner too, never with the
//! storing scope's interpreter: a kept handle can reach a scope of another interpreter on the
//! same thread, and the stored form is trusted by every strategy that loads it.
//!
//! What it misses: one thread can run several interpreters in turn. A handle made while attached
//! to interpreter A, kept by the thread, and used after the thread attaches to B is bound and
//! dropped in B without any check. `!Send` proves "same thread", never "same interpreter"; the
//! hazard suite shows the cases.

use std::marker::PhantomData;
use std::ptr::NonNull;

use interpsafe_protocol::InterpreterKey;

use super::handle_kit::{once_for, TaggedHandle, TaggedOnce};
use super::{OwnedRef, Strategy};
use crate::interpreter::runtime::scope_reading;
use crate::interpreter::Attached;
use crate::object::{ObjRef, RawStrong};
use crate::pyo3_compat::ffi;
use crate::tag::Tag;
use crate::Error;

/// Thread-affine handles with a checked transfer.
#[derive(Debug)]
pub enum Affine {}

/// An affine scope: the interpreter at entry (used by transfers and once-cells).
#[derive(Debug)]
pub struct AffineScope<'s> {
    key: InterpreterKey,
    tag: Tag,
    slot: Option<u32>,
    _not_send: PhantomData<(&'s (), *mut ())>,
}

/// A strong handle that cannot leave its thread: a pointer and the interpreter it was made in
/// (16 bytes).
///
/// The owner is recorded at creation and never consulted on bind or drop (those rely on `!Send`
/// alone, the design under test); it is what [`Affine::store`] and [`Affine::send`] tag the
/// stored form with. Tagging with the scope's interpreter instead would let a handle that
/// reached a scope of another interpreter on the same thread (out of a nested `attach`, through
/// a thread-local) be laundered into a stored handle that every strategy then trusts.
#[derive(Debug)]
pub struct AffineHandle {
    obj: RawStrong,
    owner: Tag,
    _not_send: PhantomData<*mut ()>,
}

/// A borrowed object of the affine strategy, with the interpreter it belongs to: the handle's
/// owner if it was bound in a scope of that interpreter, [`Tag::UNKNOWN`] if not (the design's
/// blind spot: a kept handle bound after the thread moved to another interpreter). Handles made
/// from it ([`Affine::to_handle`], objects derived from it) carry that owner, so the blind spot
/// cannot launder an object into a handle of the wrong interpreter: they are refused everywhere
/// and leaked.
pub type AffineRef<'a> = OwnedRef<'a, Affine>;

/// A handle on its way to another thread, with the interpreter it came from.
#[derive(Debug)]
pub struct AffineTransfer {
    inner: TaggedHandle,
}

impl Drop for AffineHandle {
    fn drop(&mut self) {
        // SAFETY: PyThreadState_GetUnchecked may be called in any state.
        let attached = !unsafe { ffi::PyThreadState_GetUnchecked() }.is_null();
        // A handle made from a reference bound outside its owner belongs to nobody: leaked.
        if attached && self.owner != Tag::UNKNOWN {
            // SAFETY: `!Send` keeps the handle on its thread, and this assumes the thread is
            // still attached to the interpreter that made it. That is the design's blind spot
            // (a thread can run several interpreters in turn), measured by the hazard suite.
            unsafe { ffi::Py_DECREF(self.obj.ptr().as_ptr()) };
        }
        // Not attached: the owner is unknown, so the reference is leaked rather than released
        // somewhere wrong.
    }
}

impl AffineHandle {
    fn from_raw(obj: RawStrong, owner: Tag) -> Self {
        AffineHandle { obj, owner, _not_send: PhantomData }
    }

    /// The interpreter this handle was made in.
    pub fn owner(&self) -> InterpreterKey {
        self.owner.key()
    }

    /// The stored form, tagged with the owner recorded at creation.
    fn into_tagged(self) -> TaggedHandle {
        let (ptr, owner) = (self.obj.ptr(), self.owner);
        // The reference moves into the tagged handle: this one must not release it.
        std::mem::forget(self);
        // SAFETY: the forgotten handle's strong reference is handed over exactly once, tagged
        // with the interpreter it was made in.
        unsafe { TaggedHandle::adopt(ptr, owner) }
    }
}

/// The handle as stored or sent: unchanged, unless the seeded hole
/// [`AffineStoreScopeOwner`](crate::seeds::Hole::AffineStoreScopeOwner) reopens the old
/// behaviour of taking the storing scope's interpreter as the owner.
fn seeded_owner(scope: &AffineScope<'_>, mut handle: AffineHandle) -> AffineHandle {
    if crate::seeds::active(crate::seeds::Hole::AffineStoreScopeOwner) {
        handle.owner = scope.tag;
    }
    handle
}

impl Strategy for Affine {
    const NAME: &'static str = "affine";
    const SUMMARY: &'static str =
        "handles are !Send; moving to another thread is a checked transfer";
    const CHECKED: bool = true;

    type Scope<'s> = AffineScope<'s>;
    type Ref<'s, 'a>
        = AffineRef<'a>
    where
        's: 'a;
    type Handle<'s> = AffineHandle;
    type Stored = TaggedHandle;
    type Sent = AffineTransfer;
    type Once = TaggedOnce;

    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R {
        let (tag, slot) = scope_reading(at.key());
        f(&AffineScope { key: at.key(), tag, slot, _not_send: PhantomData })
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        scope.key
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        let _ = scope;
        // SAFETY: the caller hands over a new reference owned by the scope's interpreter.
        AffineHandle::from_raw(unsafe { RawStrong::adopt(obj) }, scope.tag)
    }

    #[inline]
    fn bind<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        // Not a check: bind succeeds either way (the design's blind spot, measured by the hazard
        // suite). The compare only decides whom handles made from this reference belong to.
        let owner = if handle.owner == scope.tag { handle.owner } else { Tag::UNKNOWN };
        // SAFETY: same thread (the handle is !Send); assumed same interpreter, unchecked.
        Ok(AffineRef::new(unsafe { handle.obj.borrow() }, owner))
    }

    fn to_handle<'s, 'a>(_scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        AffineHandle::from_raw(RawStrong::new(obj.obj()), obj.owner())
    }

    fn owner_of<'s, 'a>(_scope: &'a Self::Scope<'s>, r: Self::Ref<'s, 'a>) -> Option<Tag> {
        Some(r.owner())
    }

    unsafe fn adopt_derived<'s, 'a>(
        _scope: &'a Self::Scope<'s>,
        from: Self::Ref<'s, 'a>,
        obj: NonNull<ffi::PyObject>,
    ) -> Self::Handle<'s> {
        // SAFETY: the caller hands over a new reference made from `from` on this thread; it
        // belongs where `from` does (nobody, if `from` was bound outside its owner).
        AffineHandle::from_raw(unsafe { RawStrong::adopt(obj) }, from.owner())
    }

    #[inline]
    fn clone_handle<'s>(
        _scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        // SAFETY: as in bind.
        Ok(AffineHandle::from_raw(RawStrong::new(unsafe { handle.obj.borrow() }), handle.owner))
    }

    fn store<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Stored {
        seeded_owner(scope, handle).into_tagged()
    }

    fn load<'s>(scope: &Self::Scope<'s>, stored: Self::Stored) -> Result<Self::Handle<'s>, Error> {
        stored.check(Some(scope.tag), "load")?;
        let (ptr, owner) = stored.into_raw();
        // SAFETY: checked: the stored handle belongs to the scope's interpreter (or is one of
        // the runtime's shared objects, which keep their recorded owner).
        Ok(AffineHandle::from_raw(unsafe { RawStrong::adopt(ptr) }, owner))
    }

    fn send<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Sent {
        AffineTransfer { inner: seeded_owner(scope, handle).into_tagged() }
    }

    fn receive<'s>(scope: &Self::Scope<'s>, sent: Self::Sent) -> Result<Self::Handle<'s>, Error> {
        sent.inner.check(Some(scope.tag), "receive")?;
        Self::load(scope, sent.inner)
    }

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        // SAFETY: attached to the scope's interpreter for the scope's borrow.
        let obj = unsafe {
            once_for(cell, scope.tag, scope.slot, || init(scope).map(AffineHandle::into_tagged))
        }?;
        Ok(AffineRef::new(obj, scope.tag))
    }

    #[inline]
    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        r.obj()
    }
}

impl crate::hazard::Expectations for Affine {
    /// Stored handles are checked when loaded, sent ones when received; a handle the thread
    /// keeps is `!Send` and unchecked, which proves "same thread", never "same interpreter".
    fn expected(cell: &crate::hazard::Cell) -> crate::hazard::Expected {
        use crate::hazard::{Expected, Form, Hazard};
        match (cell.case.hazard, cell.case.form) {
            (Hazard::H1, Some(Form::Kept)) | (Hazard::H2, Some(Form::Kept)) => {
                Expected::Undetected {
                    how:
                        "a thread can run several interpreters in turn: a kept handle is bound and \
                      dropped in whichever it is attached to",
                }
            }
            (Hazard::H1, None) => Expected::RuntimeError { at: "load", containing: "belongs to" },
            (Hazard::H3, _) => Expected::RuntimeError { at: "load", containing: "has ended" },
            (Hazard::H6, None) => {
                Expected::RuntimeError { at: "receive", containing: "belongs to" }
            }
            (Hazard::H13, _) => Expected::RuntimeError { at: "load", containing: "belongs to" },
            (Hazard::H14, None) if Expected::common(cell).is_none() => {
                Expected::RuntimeError { at: "load", containing: "has ended" }
            }
            (Hazard::H15, _) => Expected::Undetected {
                how: "a kept handle is bound unchecked: !Send proves the thread, and C code \
                      switched the thread's interpreter",
            },
            _ => Expected::checked(cell),
        }
    }
}
