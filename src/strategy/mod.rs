//! The competing handle designs, each a whole policy behind one trait.
//!
//! A [`Strategy`] decides how a persistent handle to a Python object is held, bound, cloned,
//! dropped, stored outside any scope, sent to another thread, and how per-interpreter statics
//! (once-cells holding interned strings, type objects, exception types) are kept. The hazard
//! suite, the loom models and the benches are generic over it, so a new proposal is one new file
//! plus one line in [`for_each_strategy!`](crate::for_each_strategy).
//!
//! | strategy | handle | check |
//! |---|---|---|
//! | [`Unchecked`] | today's `Py<T>`: a pointer, `Send + Sync`, process-global statics | none |
//! | [`StockPyo3`] | the real `pyo3::Py<T>`, `PyOnceLock` and PyO3's pool | none |
//! | [`Tagged`] | pointer + owner tag | every bind reads the current interpreter (one flag load while only main exists) |
//! | [`Scoped`] | pointer + owner tag | the scope reads the interpreter once; binds compare with it |
//! | [`Branded`] | pointer, with a generative lifetime brand | compile time; once when a stored handle comes back in |
//! | [`Affine`] | pointer, `!Send` | compile time for threads; a checked transfer between threads |
//!
//! Scopes are entered with a closure that is generic over the brand lifetime `'s`
//! (`for<'s> FnOnce(&Scope<'s>)`), so brands are generative: two scopes never share one. Attach
//! closures must be `Send` (as PyO3's `allow_threads` closures must be `Ungil`), which keeps
//! `!Send` handles out of a nested attachment to another interpreter.

mod affine;
mod branded;
pub mod handle_kit;
mod owned_ref;
mod scoped;
mod stock_pyo3;
mod tagged;
mod unchecked;

use std::ffi::CStr;
use std::ptr::NonNull;

use interpsafe_protocol::InterpreterKey;

pub use affine::{Affine, AffineHandle, AffineRef, AffineScope, AffineTransfer};
pub use branded::{BrandScope, Branded, BrandedHandle, BrandedRef};
pub use handle_kit::{TaggedHandle, TaggedOnce};
pub use owned_ref::OwnedRef;
pub use scoped::{Scoped, ScopedRef, ScopedScope};
pub use stock_pyo3::{StockHandle, StockOnce, StockPyo3, StockScope};
pub use tagged::{Tagged, TaggedRef, TaggedScope};
pub use unchecked::{Unchecked, UncheckedHandle, UncheckedOnce, UncheckedScope};

use crate::interpreter::Attached;
use crate::object::{eval_new, ObjRef};
use crate::pyo3_compat::ffi;
use crate::tag::Tag;
use crate::Error;

/// One design for interpreter-safe handles and statics.
pub trait Strategy: Sized + 'static {
    /// The name used in reports and on the command line.
    const NAME: &'static str;
    /// One line on what it checks and when.
    const SUMMARY: &'static str;
    /// Whether it claims to refuse misuse across interpreters. The unchecked rows (`unchecked`,
    /// `pyo3`) are measured, never trusted: the suites run their misuse only in child processes
    /// and leak what dropping elsewhere would corrupt.
    const CHECKED: bool;

    /// Proof that the thread is attached to one interpreter, as much of it as this strategy
    /// keeps; `'s` is the brand for strategies that use one.
    type Scope<'s>;
    /// A borrowed object handed out by [`Strategy::bind`].
    type Ref<'s, 'a>: Copy
    where
        's: 'a;
    /// A persistent strong handle, usable in scopes of brand `'s`.
    type Handle<'s>;
    /// The form kept outside any scope: struct fields, statics, channels.
    type Stored: Send + Sync + 'static;
    /// The form that moves a handle to another thread.
    type Sent: Send + 'static;
    /// A per-interpreter (or, for the baseline, process-global) once-cell holding an object.
    type Once: Default + Send + Sync;

    /// Enters a scope on the attached thread.
    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R;

    /// The interpreter the scope was entered in.
    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey;

    /// Wraps a new reference produced in the scope's interpreter.
    ///
    /// # Safety
    /// `obj` must be a strong reference the caller hands over, owned by the scope's interpreter.
    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s>;

    /// Evaluates a Python expression in the scope's interpreter and returns a handle to it.
    fn eval<'s>(scope: &Self::Scope<'s>, expr: &CStr) -> Result<Self::Handle<'s>, Error> {
        // SAFETY: a scope exists only while its thread is attached; the result is new.
        let obj = unsafe { eval_new(expr) }
            .map_err(|message| Error::Python { interpreter: Self::key(scope), message })?;
        // SAFETY: `eval_new` returned a new reference in the scope's interpreter.
        Ok(unsafe { Self::adopt(scope, obj) })
    }

    /// Binds a handle for use in the current interpreter: the check, if this strategy has one.
    fn bind<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error>;

    /// A new strong handle to a borrowed object. It belongs to the interpreter the borrowed
    /// object belongs to, as the strategy knows it ([`Strategy::owner_of`]), never simply to the
    /// scope's: a reference bound outside its owner (affine's blind spot, a raw thread-state
    /// switch) must not turn into a handle that every checked strategy then trusts.
    fn to_handle<'s, 'a>(scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s>;

    /// The interpreter the object behind `r` belongs to, as this strategy knows it: what a new
    /// handle to it, or to an object derived from it, is tagged with. [`Tag::UNKNOWN`] if the
    /// reference was bound outside its owner; `None` if the strategy records no owners (the
    /// baseline).
    fn owner_of<'s, 'a>(scope: &'a Self::Scope<'s>, r: Self::Ref<'s, 'a>) -> Option<Tag>;

    /// Wraps a new reference produced by an operation on `from` (an attribute of it, the result
    /// of calling it). It belongs where `from` does, so strategies that know owners tag it with
    /// [`Strategy::owner_of`]`(from)`; by default it is [`Strategy::adopt`]ed in the scope's
    /// interpreter.
    ///
    /// # Safety
    /// `obj` must be a strong reference the caller hands over, produced on this thread by an
    /// operation on `from` while `from` was borrowed.
    unsafe fn adopt_derived<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        from: Self::Ref<'s, 'a>,
        obj: NonNull<ffi::PyObject>,
    ) -> Self::Handle<'s> {
        let _ = from;
        // SAFETY: the caller hands over a new reference made on this thread, in the scope.
        unsafe { Self::adopt(scope, obj) }
    }

    /// Clones a handle (a new strong reference: an incref, which must happen in the owner).
    fn clone_handle<'s>(
        scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error>;

    /// Turns a handle into the storable form.
    fn store<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Stored;

    /// Brings a stored handle back into a scope.
    fn load<'s>(scope: &Self::Scope<'s>, stored: Self::Stored) -> Result<Self::Handle<'s>, Error>;

    /// Prepares a handle to move to another thread.
    fn send<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Sent;

    /// Receives a handle sent from another thread.
    fn receive<'s>(scope: &Self::Scope<'s>, sent: Self::Sent) -> Result<Self::Handle<'s>, Error>;

    /// Gets the once-cell's object for the scope's interpreter, initialising it with `init` if
    /// it is empty there.
    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error>;

    /// The raw object behind a borrowed reference, for the operations in [`crate::ops`].
    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a>;
}

/// The transport functions of a strategy whose stored and sent forms are its handle itself
/// (`Stored = Sent = Handle<'s>`, which must then be `Send + Sync + 'static`): `store`, `load`,
/// `send` and `receive` pass the handle through, and whatever the strategy checks happens at
/// `bind`.
macro_rules! handle_is_stored_and_sent {
    () => {
        fn store<'s>(_scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Stored {
            handle
        }

        fn load<'s>(
            _scope: &Self::Scope<'s>,
            stored: Self::Stored,
        ) -> Result<Self::Handle<'s>, $crate::Error> {
            Ok(stored)
        }

        fn send<'s>(_scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Sent {
            handle
        }

        fn receive<'s>(
            _scope: &Self::Scope<'s>,
            sent: Self::Sent,
        ) -> Result<Self::Handle<'s>, $crate::Error> {
            Ok(sent)
        }
    };
}
use handle_is_stored_and_sent;

/// The size of a strategy's handle and of `Option` of it, as a results record.
pub fn handle_size<S: Strategy>() -> interpsafe_results::HandleSize {
    interpsafe_results::HandleSize {
        strategy: S::NAME.to_string(),
        type_name: std::any::type_name::<S::Handle<'static>>().to_string(),
        size: std::mem::size_of::<S::Handle<'static>>(),
        option_size: std::mem::size_of::<Option<S::Handle<'static>>>(),
    }
}

/// Calls `$m!(Type)` once per registered strategy: the one registration list that the hazard
/// suite, the benches and the report iterate over. Adding a strategy is one line here.
#[macro_export]
macro_rules! for_each_strategy {
    ($m:ident) => {
        $m!($crate::strategy::Unchecked);
        $m!($crate::strategy::StockPyo3);
        $m!($crate::strategy::Tagged);
        $m!($crate::strategy::Scoped);
        $m!($crate::strategy::Branded);
        $m!($crate::strategy::Affine);
    };
}
