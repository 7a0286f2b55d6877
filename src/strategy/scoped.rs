//! `scoped`: an attach scope reads the current interpreter once; binds inside compare with it.
//!
//! Handles are [`TaggedHandle`]s (16 bytes). Entering the scope costs the interpreter lookup
//! that `tagged` pays on every bind; each bind is then a compare against the scope's value, with
//! no libpython call.
//!
//! What if code inside the scope switches interpreters? A nested attach runs a `Send` closure,
//! which cannot capture this scope (it is not `Send`), so toolkit code cannot bind through a
//! stale scope. Raw C-API thread-state swaps inside the scope are outside that argument: the
//! scope would then vouch for an interpreter the thread has left (hazard `H15`, declared
//! undetected). The tagged strategy re-reads the interpreter on every bind (its fast path asks
//! CPython's interpreter list) and tags new objects with the interpreter they were made in, so
//! it has no such gap; that is the price difference the benches measure.

use std::marker::PhantomData;
use std::ptr::NonNull;

use interpsafe_protocol::InterpreterKey;

use super::handle_kit::{once_for, TaggedHandle, TaggedOnce};
use super::{OwnedRef, Strategy};
use crate::interpreter::runtime::scope_reading;
use crate::interpreter::Attached;
use crate::object::ObjRef;
use crate::pyo3_compat::ffi;
use crate::tag::Tag;
use crate::Error;

/// Owner-tagged handles checked against a per-scope reading of the interpreter.
#[derive(Debug)]
pub enum Scoped {}

/// A borrowed object of the scoped strategy; it belongs to the scope's interpreter (the bind
/// checked it), or is one of the runtime's shared objects.
pub type ScopedRef<'a> = OwnedRef<'a, Scoped>;

/// A scope that read the current interpreter once, at entry.
#[derive(Debug)]
pub struct ScopedScope<'s> {
    key: InterpreterKey,
    tag: Tag,
    slot: Option<u32>,
    _not_send: PhantomData<(&'s (), *mut ())>,
}

impl Strategy for Scoped {
    const NAME: &'static str = "scoped";
    const SUMMARY: &'static str =
        "the scope reads the interpreter once; binds compare with it (no FFI per bind)";
    const CHECKED: bool = true;

    type Scope<'s> = ScopedScope<'s>;
    type Ref<'s, 'a>
        = ScopedRef<'a>
    where
        's: 'a;
    type Handle<'s> = TaggedHandle;
    type Stored = TaggedHandle;
    type Sent = TaggedHandle;
    type Once = TaggedOnce;

    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R {
        let (tag, slot) = scope_reading(at.key());
        f(&ScopedScope { key: at.key(), tag, slot, _not_send: PhantomData })
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        scope.key
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        let _ = scope;
        // SAFETY: the caller hands over a new reference owned by the scope's interpreter.
        unsafe { TaggedHandle::adopt(obj, scope.tag) }
    }

    #[inline]
    fn bind<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        handle.check(Some(scope.tag), "bind")?;
        // SAFETY: the scope's interpreter is the owner, and the thread stays attached to it for
        // the scope's borrow (see the module docs for the raw C-API caveat).
        Ok(ScopedRef::new(unsafe { handle.borrow_checked() }, scope.tag))
    }

    fn to_handle<'s, 'a>(scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        TaggedHandle::new(obj.obj(), scope.tag)
    }

    fn owner_of<'s, 'a>(scope: &'a Self::Scope<'s>, _r: Self::Ref<'s, 'a>) -> Option<Tag> {
        Some(scope.tag)
    }

    #[inline]
    fn clone_handle<'s>(
        scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        handle.check(Some(scope.tag), "clone")?;
        // SAFETY: attached to the owner (checked against the scope).
        Ok(unsafe { handle.clone_checked() })
    }

    super::handle_is_stored_and_sent!();

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        // SAFETY: attached to the scope's interpreter for the scope's borrow.
        let obj = unsafe { once_for(cell, scope.tag, scope.slot, || init(scope)) }?;
        Ok(ScopedRef::new(obj, scope.tag))
    }

    #[inline]
    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        r.obj()
    }
}

impl crate::hazard::Expectations for Scoped {
    /// Binds compare with the interpreter the scope read at entry; handles are tagged handles.
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
            (Hazard::H13, _) => Expected::RuntimeError { at: "bind", containing: "belongs to" },
            (Hazard::H14, None) if Expected::common(cell).is_none() => {
                Expected::RuntimeError { at: "bind", containing: "has ended" }
            }
            (Hazard::H15, _) => Expected::Undetected {
                how: "the scope vouches for the interpreter it read at entry; C code that \
                      switches the thread state under it is outside the design",
            },
            _ => Expected::checked(cell),
        }
    }
}
