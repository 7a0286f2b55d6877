//! `tagged`: every handle records its owner interpreter; every bind compares it with the
//! current one.
//!
//! The handle is a pointer plus a [`Tag`] (interpreter ID and runtime epoch in one word): 16
//! bytes. `bind` reads the current interpreter each time, trusting nothing about the scope but
//! that the thread is attached: while main is the only interpreter ever entered and the only one
//! in existence, that is one relaxed load of the registry's fast-path word, a compare
//! ([`Registry::fast_owner`](interpsafe_protocol::Registry::fast_owner)) and one call that reads
//! CPython's interpreter list head; with several
//! interpreters it is one `PyThreadState_GetUnchecked` call, an in-place read of the thread
//! state's interpreter and a thread-local cache hit (see `interpreter::runtime::current`). Drops
//! outside the owner are deferred to the owner's pool. Once-cells are per interpreter.
//!
//! The fast path needs two facts, because the registry only knows the interpreters toolkit code
//! has entered: the handle's owner is main as the registry's word says (every toolkit entry
//! observes its interpreter, which clears the word under the registry's lock before code there
//! can hold a scope; a loom model checks it), and CPython's own list holds main alone
//! (`runtime::only_main_alive`), which also covers foreign C code that switched the thread into
//! an interpreter toolkit code never entered. New handles are tagged with the interpreter the
//! thread is in when the object is made (`runtime::attached_tag`), not the scope's, for the same
//! reason. So tagged sees a raw thread-state switch (hazard `H15`).

use std::marker::PhantomData;
use std::ptr::NonNull;

use interpsafe_protocol::InterpreterKey;

use super::handle_kit::{once_for, TaggedHandle, TaggedOnce};
use super::{OwnedRef, Strategy};
use crate::interpreter::runtime::{attached_tag, current, current_tag, only_main_alive, registry};
use crate::interpreter::Attached;
use crate::object::ObjRef;
use crate::pyo3_compat::ffi;
use crate::tag::Tag;
use crate::Error;

/// Owner-tagged handles checked on every bind.
#[derive(Debug)]
pub enum Tagged {}

/// A tagged scope: proof that the thread is attached, plus the interpreter at entry, which only
/// words errors. Owner tags, binds and once-cells all read the interpreter the thread is
/// attached to at that moment, so a raw thread-state switch inside the scope is seen.
#[derive(Debug)]
pub struct TaggedScope<'s> {
    pub(crate) key: InterpreterKey,
    // Not Send or Sync: a scope vouches for the thread that entered it, attached.
    _thread_bound: PhantomData<(&'s (), *mut ())>,
}

/// A borrowed object of the tagged strategy, with the interpreter it belongs to: the handle's
/// owner, or, for one of the runtime's shared objects, the interpreter it was bound in.
pub type TaggedRef<'a> = OwnedRef<'a, Tagged>;

/// [`TaggedHandle::check`] for a thread inside a scope (so attached): while main is the
/// only interpreter toolkit code has entered *and* the only one CPython's list holds, the
/// thread is attached to main, and a handle of main needs no lookup of the current
/// interpreter: one relaxed load of the registry's fast-path word
/// ([`Registry::fast_owner`](interpsafe_protocol::Registry::fast_owner)), a compare, and
/// `PyInterpreterState_Head` (see `runtime::only_main_alive`). The registry word alone is
/// not enough: C code can switch the thread into an interpreter toolkit code never entered.
#[inline(always)]
fn check_in_scope(handle: &TaggedHandle, operation: &'static str) -> Result<Tag, Error> {
    let list_agrees =
        || only_main_alive() || crate::seeds::active(crate::seeds::Hole::TaggedRawSwitch);
    if handle.owner_tag().raw() == registry().fast_owner() && list_agrees() {
        return Ok(handle.owner_tag());
    }
    handle.check_owner(current_tag(), operation)
}

impl Strategy for Tagged {
    const NAME: &'static str = "tagged";
    const SUMMARY: &'static str =
        "handles carry their owner; every bind reads the current interpreter (fast path while main is the only interpreter)";
    const CHECKED: bool = true;

    type Scope<'s> = TaggedScope<'s>;
    type Ref<'s, 'a>
        = TaggedRef<'a>
    where
        's: 'a;
    type Handle<'s> = TaggedHandle;
    type Stored = TaggedHandle;
    type Sent = TaggedHandle;
    type Once = TaggedOnce;

    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R {
        f(&TaggedScope { key: at.key(), _thread_bound: PhantomData })
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        scope.key
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        // The owner is the interpreter the thread is attached to now, read again: the scope's
        // key is the interpreter at entry, and C code may have switched the thread since.
        // SAFETY: the caller hands over a new reference made on this thread, attached to the
        // interpreter `attached_tag` reads.
        let owner = if crate::seeds::active(crate::seeds::Hole::TaggedRawSwitch) {
            Tag::from_key(scope.key)
        } else {
            attached_tag(scope.key)
        };
        // SAFETY: as above.
        unsafe { TaggedHandle::adopt(obj, owner) }
    }

    #[inline]
    fn bind<'s, 'a>(
        _scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        let owner = check_in_scope(handle, "bind")?;
        // SAFETY: checked just above: attached to the owner (or a shared object).
        Ok(TaggedRef::new(unsafe { handle.borrow_checked() }, owner))
    }

    fn to_handle<'s, 'a>(scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        TaggedHandle::new(obj.obj(), Self::owner_of(scope, obj).unwrap_or(Tag::UNKNOWN))
    }

    /// The reference's owner if the thread is still attached there (read again: C code may have
    /// switched the thread since the reference was handed out), else [`Tag::UNKNOWN`].
    fn owner_of<'s, 'a>(scope: &'a Self::Scope<'s>, r: Self::Ref<'s, 'a>) -> Option<Tag> {
        let here = attached_tag(scope.key);
        Some(if here == r.owner() { here } else { Tag::UNKNOWN })
    }

    unsafe fn adopt_derived<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        from: Self::Ref<'s, 'a>,
        obj: NonNull<ffi::PyObject>,
    ) -> Self::Handle<'s> {
        let owner = Self::owner_of(scope, from).unwrap_or(Tag::UNKNOWN);
        // SAFETY: the caller hands over a new reference, made from `from` on this thread; it
        // belongs where `from` does, if the thread is still there, else to nobody.
        unsafe { TaggedHandle::adopt(obj, owner) }
    }

    #[inline]
    fn clone_handle<'s>(
        _scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        check_in_scope(handle, "clone")?;
        // SAFETY: checked just above: attached to the owner (or a shared object, which keeps
        // its recorded owner: releasing it anywhere is sound).
        Ok(unsafe { handle.clone_checked() })
    }

    super::handle_is_stored_and_sent!();

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        let current = current().ok_or(Error::NotAttached { operation: "once-cell" })?;
        // SAFETY: attached to `current` for the scope's borrow.
        let obj = unsafe { once_for(cell, current.tag, current.slot, || init(scope)) }?;
        Ok(TaggedRef::new(obj, current.tag))
    }

    #[inline]
    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        r.obj()
    }
}

impl crate::hazard::Expectations for Tagged {
    /// Every bind and clone compares the handle's owner with the interpreter the thread is
    /// attached to, whatever the path the handle took.
    fn expected(cell: &crate::hazard::Cell) -> crate::hazard::Expected {
        use crate::hazard::{Expected, Form, Hazard};
        match (cell.case.hazard, cell.case.form) {
            (Hazard::H1, _) | (Hazard::H6, None) => {
                Expected::RuntimeError { at: "bind", containing: "belongs to" }
            }
            (Hazard::H2, Some(Form::Kept)) => {
                Expected::NotApplicable { why: "deferred to the owner's decref pool" }
            }
            (Hazard::H3, _) => Expected::RuntimeError { at: "bind", containing: "has ended" },
            (Hazard::H13, Some(Form::Once)) => {
                Expected::RuntimeError { at: "once-cell init", containing: "belongs to" }
            }
            (Hazard::H13, _) | (Hazard::H15, _) => {
                Expected::RuntimeError { at: "bind", containing: "belongs to" }
            }
            (Hazard::H14, None) if Expected::common(cell).is_none() => {
                Expected::RuntimeError { at: "bind", containing: "has ended" }
            }
            _ => Expected::checked(cell),
        }
    }
}
