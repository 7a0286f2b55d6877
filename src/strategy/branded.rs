//! `branded`: a generative lifetime brand names one interpreter; mixing brands does not compile.
//!
//! [`Branded::enter`] runs its closure with a [`BrandScope<'s>`] whose `'s` is fresh (the
//! closure is `for<'s>`) and invariant, so no two scopes share a brand. Handles and borrowed
//! objects carry the brand; every operation takes the scope of the same brand, so using an
//! object of one scope with another scope's token is a type error, found at compile time (the
//! GhostCell / generativity technique). Inside the brand nothing is checked at run time and a
//! handle is one pointer, 8 bytes. Storing a handle outside the brand turns it into a
//! [`TaggedHandle`] (the scope's interpreter, known since entry, becomes its tag: no lookup);
//! bringing it back in compares that tag with the scope once.
//!
//! Why an unchecked drop is sound here:
//! - a `BrandedHandle<'s>` cannot outlive the scope closure (its type names `'s`);
//! - it is not `Send`, so it cannot reach another thread, nor a nested attach to another
//!   interpreter (attach closures must be `Send`);
//! - it is not `'static`, so it cannot be parked in a thread-local.
//!
//! So whenever it is dropped the thread is attached to the brand's interpreter. Raw C-API thread-state swaps inside the scope are outside this argument.

use std::marker::PhantomData;
use std::ptr::NonNull;

use interpsafe_protocol::InterpreterKey;

use super::handle_kit::{once_for, TaggedHandle, TaggedOnce};
use super::Strategy;
use crate::interpreter::runtime::scope_reading;
use crate::interpreter::Attached;
use crate::object::{ObjRef, RawStrong};
use crate::pyo3_compat::ffi;
use crate::tag::Tag;
use crate::Error;

/// Invariant in `'s`, and neither `Send` nor `Sync`.
type Brand<'s> = PhantomData<(fn(&'s ()) -> &'s (), *mut ())>;

/// Lifetime-branded handles: compile-time checks, runtime check only at the storage boundary.
#[derive(Debug)]
pub enum Branded {}

/// The brand's token: proof of being attached to one interpreter, named by `'s`.
#[derive(Debug)]
pub struct BrandScope<'s> {
    key: InterpreterKey,
    tag: Tag,
    slot: Option<u32>,
    _brand: Brand<'s>,
}

impl BrandScope<'_> {
    /// The interpreter this brand names.
    pub fn key(&self) -> InterpreterKey {
        self.key
    }
}

/// A strong handle branded with `'s`: one pointer.
#[derive(Debug)]
pub struct BrandedHandle<'s> {
    obj: RawStrong,
    _brand: Brand<'s>,
}

/// A borrowed object branded with `'s`.
#[derive(Debug, Clone, Copy)]
pub struct BrandedRef<'s, 'a> {
    obj: ObjRef<'a>,
    _brand: Brand<'s>,
}

impl<'s, 'a> BrandedRef<'s, 'a> {
    /// The object, for raw operations.
    pub fn obj(self) -> ObjRef<'a> {
        self.obj
    }
}

impl Drop for BrandedHandle<'_> {
    fn drop(&mut self) {
        // SAFETY: by the brand argument in the module docs, the thread is attached to the
        // brand's interpreter, which owns the reference.
        unsafe { ffi::Py_DECREF(self.obj.ptr().as_ptr()) };
    }
}

impl<'s> BrandedHandle<'s> {
    fn from_raw(obj: RawStrong) -> Self {
        BrandedHandle { obj, _brand: PhantomData }
    }
}

impl Strategy for Branded {
    const NAME: &'static str = "branded";
    const SUMMARY: &'static str =
        "a generative lifetime brand names the interpreter; checked once at the storage boundary";
    const CHECKED: bool = true;

    type Scope<'s> = BrandScope<'s>;
    type Ref<'s, 'a>
        = BrandedRef<'s, 'a>
    where
        's: 'a;
    type Handle<'s> = BrandedHandle<'s>;
    type Stored = TaggedHandle;
    type Sent = TaggedHandle;
    type Once = TaggedOnce;

    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R {
        let (tag, slot) = scope_reading(at.key());
        f(&BrandScope { key: at.key(), tag, slot, _brand: PhantomData })
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        scope.key
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        let _ = scope;
        // SAFETY: the caller hands over a new reference owned by the scope's interpreter.
        BrandedHandle::from_raw(unsafe { RawStrong::adopt(obj) })
    }

    #[inline]
    fn bind<'s, 'a>(
        _scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        // SAFETY: same brand, so the handle belongs to the scope's interpreter, where the thread
        // is attached for the scope's borrow.
        Ok(BrandedRef { obj: unsafe { handle.obj.borrow() }, _brand: PhantomData })
    }

    fn to_handle<'s, 'a>(_scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        BrandedHandle::from_raw(RawStrong::new(obj.obj))
    }

    /// The brand's interpreter: a branded reference only exists inside its brand.
    fn owner_of<'s, 'a>(scope: &'a Self::Scope<'s>, _r: Self::Ref<'s, 'a>) -> Option<Tag> {
        Some(scope.tag)
    }

    #[inline]
    fn clone_handle<'s>(
        _scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        // SAFETY: attached to the brand's interpreter (see Drop); borrowed only for the incref.
        Ok(BrandedHandle::from_raw(RawStrong::new(unsafe { handle.obj.borrow() })))
    }

    fn store<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Stored {
        let ptr = handle.obj.ptr();
        // The reference moves into the tagged handle: this one must not release it.
        std::mem::forget(handle);
        // SAFETY: the forgotten handle's strong reference is handed over exactly once, tagged
        // with the brand's interpreter, which owns it.
        unsafe { TaggedHandle::adopt(ptr, scope.tag) }
    }

    fn load<'s>(scope: &Self::Scope<'s>, stored: Self::Stored) -> Result<Self::Handle<'s>, Error> {
        stored.check(Some(scope.tag), "load into brand")?;
        let (ptr, _) = stored.into_raw();
        // SAFETY: checked: the stored handle's owner is the brand's interpreter.
        Ok(BrandedHandle::from_raw(unsafe { RawStrong::adopt(ptr) }))
    }

    fn send<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Sent {
        Self::store(scope, handle)
    }

    fn receive<'s>(scope: &Self::Scope<'s>, sent: Self::Sent) -> Result<Self::Handle<'s>, Error> {
        Self::load(scope, sent)
    }

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        // SAFETY: attached to the brand's interpreter for the scope's borrow.
        let obj = unsafe {
            once_for(cell, scope.tag, scope.slot, || init(scope).map(|h| Self::store(scope, h)))
        }?;
        Ok(BrandedRef { obj, _brand: PhantomData })
    }

    #[inline]
    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        r.obj
    }
}

impl crate::hazard::Expectations for Branded {
    /// A handle cannot leave its brand (compile time); a stored handle is checked once, when it
    /// is loaded (or received) into a brand.
    fn expected(cell: &crate::hazard::Cell) -> crate::hazard::Expected {
        use crate::hazard::{compile_fail, Expected, Form, Hazard};
        match (cell.case.hazard, cell.case.form) {
            (Hazard::H1, Some(Form::Kept)) | (Hazard::H2, Some(Form::Kept)) | (Hazard::H11, _) => {
                Expected::CompileError { case: compile_fail::BRANDED_HANDLE_ESCAPES_BRAND }
            }
            (Hazard::H1, None) | (Hazard::H6, None) => {
                Expected::RuntimeError { at: "load into brand", containing: "belongs to" }
            }
            (Hazard::H3, _) => {
                Expected::RuntimeError { at: "load into brand", containing: "has ended" }
            }
            (Hazard::H13, Some(Form::Store)) => {
                Expected::CompileError { case: compile_fail::BRANDED_HANDLE_ESCAPES_BRAND }
            }
            (Hazard::H13, _) => {
                Expected::RuntimeError { at: "load into brand", containing: "belongs to" }
            }
            (Hazard::H14, None) if Expected::common(cell).is_none() => {
                Expected::RuntimeError { at: "load into brand", containing: "has ended" }
            }
            (Hazard::H15, _) => Expected::Undetected {
                how: "the brand names the interpreter of its scope; C code that switches the \
                      thread state under it is outside the brand argument",
            },
            _ => Expected::checked(cell),
        }
    }
}
