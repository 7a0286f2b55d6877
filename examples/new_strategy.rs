//! A new proposal, `Pinned`, built from the owned-handle kit (`interpsafe::strategy::handle_kit`)
//! and making each decision a proposal must make:
//! - its own handle, [`PinnedHandle`]: a kit [`TaggedHandle`] (pointer + owner tag) it wraps, so
//!   that the drop is its own;
//! - its own check: every bind asks the kit whether the thread is attached to the owner now (no
//!   fast path, no per-scope reading); a stored or sent handle is checked when it is bound;
//! - its own release path: a handle dropped outside its owner is leaked and counted, never
//!   deferred to the owner's queue (what the checked strategies do);
//! - once-cells per interpreter, through the kit's `once_for`.
//!
//! A real proposal lives in `src/strategy/`, declares its hazard verdicts next to the impl and is
//! registered with one line in `for_each_strategy!`; see docs/new-proposal.md.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use interpsafe::hazard::{Cell, Expectations, Expected, Form, Hazard};
use interpsafe::interpreter::main_interpreter;
use interpsafe::object::ObjRef;
use interpsafe::pyo3_compat::ffi;
use interpsafe::strategy::handle_kit::{once_for, TaggedHandle, TaggedOnce};
use interpsafe::strategy::Scoped;
use interpsafe::tag::Tag;
use interpsafe::{attach, current_interpreter, Attached, Error, InterpreterKey, Isolation};
use interpsafe::{Strategy, SubInterpreter};

/// How many handles were dropped outside their owner, and leaked.
static LEAKED: AtomicUsize = AtomicUsize::new(0);

/// Handles pinned to their owner: checked on every bind, leaked if dropped anywhere else.
pub enum Pinned {}

/// A scope: the interpreter at entry (for once-cells and new handles), not `Send`.
pub struct PinnedScope<'s> {
    tag: Tag,
    _not_send: PhantomData<(&'s (), *mut ())>,
}

/// A strong handle with its owner; its drop leaks the reference outside the owner.
pub struct PinnedHandle(ManuallyDrop<TaggedHandle>);

impl PinnedHandle {
    /// The kit handle inside, without this handle's drop (a once-cell keeps the reference).
    fn into_kit(self) -> TaggedHandle {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the kit handle is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl Drop for PinnedHandle {
    fn drop(&mut self) {
        // SAFETY: `self.0` is taken once, here, and never used again.
        let kit = unsafe { ManuallyDrop::take(&mut self.0) };
        if current_interpreter() == Some(kit.owner()) {
            drop(kit); // attached to the owner: the kit releases it now
        } else {
            LEAKED.fetch_add(1, Ordering::Relaxed);
            let _leaked = kit.into_raw();
        }
    }
}

/// A borrowed object, made only by `Pinned`'s own operations, with the owner its bind found.
#[derive(Clone, Copy)]
pub struct PinnedRef<'a> {
    obj: ObjRef<'a>,
    owner: Tag,
}

impl Pinned {
    /// A new handle to a new reference `obj` owned by `owner`.
    ///
    /// # Safety
    /// `obj` is a strong reference the caller hands over, made on this thread while attached to
    /// `owner`.
    unsafe fn wrap(obj: NonNull<ffi::PyObject>, owner: Tag) -> PinnedHandle {
        // SAFETY: the caller's contract is the kit's.
        PinnedHandle(ManuallyDrop::new(unsafe { TaggedHandle::adopt(obj, owner) }))
    }
}

impl Strategy for Pinned {
    const NAME: &'static str = "pinned";
    const SUMMARY: &'static str = "every bind checks the owner; drops outside it leak (an example)";
    const CHECKED: bool = true;

    type Scope<'s> = PinnedScope<'s>;
    type Ref<'s, 'a>
        = PinnedRef<'a>
    where
        's: 'a;
    type Handle<'s> = PinnedHandle;
    type Stored = PinnedHandle;
    type Sent = PinnedHandle;
    type Once = TaggedOnce;

    fn enter<R>(at: &Attached<'_>, f: impl for<'s> FnOnce(&Self::Scope<'s>) -> R) -> R {
        f(&PinnedScope { tag: Tag::from_key(at.key()), _not_send: PhantomData })
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        scope.tag.key()
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        // SAFETY: the caller hands over a new reference made in the scope's interpreter.
        unsafe { Self::wrap(obj, scope.tag) }
    }

    fn bind<'s, 'a>(
        _scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        let owner = handle.0.check_attached("bind")?;
        // SAFETY: checked just above: attached to the owner (or a shared object), for `'a`.
        Ok(PinnedRef { obj: unsafe { handle.0.borrow_checked() }, owner })
    }

    fn to_handle<'s, 'a>(_scope: &'a Self::Scope<'s>, r: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        // SAFETY: `r` was bound on this thread, attached to its owner; the incref is the new
        // reference handed over.
        unsafe {
            ffi::Py_INCREF(r.obj.as_ptr());
            Self::wrap(NonNull::new_unchecked(r.obj.as_ptr()), r.owner)
        }
    }

    fn owner_of<'s, 'a>(_scope: &'a Self::Scope<'s>, r: Self::Ref<'s, 'a>) -> Option<Tag> {
        Some(r.owner)
    }

    unsafe fn adopt_derived<'s, 'a>(
        _scope: &'a Self::Scope<'s>,
        from: Self::Ref<'s, 'a>,
        obj: NonNull<ffi::PyObject>,
    ) -> Self::Handle<'s> {
        // SAFETY: a new reference made from `from` on this thread: it belongs where `from` does.
        unsafe { Self::wrap(obj, from.owner) }
    }

    fn clone_handle<'s>(
        _scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        handle.0.check_attached("clone")?;
        // SAFETY: checked just above: attached to the owner (or a shared object).
        Ok(PinnedHandle(ManuallyDrop::new(unsafe { handle.0.clone_checked() })))
    }

    fn store<'s>(_scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Stored {
        handle
    }

    fn load<'s>(_scope: &Self::Scope<'s>, stored: Self::Stored) -> Result<Self::Handle<'s>, Error> {
        Ok(stored) // checked when bound
    }

    fn send<'s>(_scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Sent {
        handle
    }

    fn receive<'s>(_scope: &Self::Scope<'s>, sent: Self::Sent) -> Result<Self::Handle<'s>, Error> {
        Ok(sent) // checked when bound
    }

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        let init = || init(scope).map(PinnedHandle::into_kit);
        // SAFETY: a scope exists only while its thread is attached to the scope's interpreter.
        let obj = unsafe { once_for(cell, scope.tag, None, init) }?;
        Ok(PinnedRef { obj, owner: scope.tag })
    }

    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        r.obj
    }
}

/// The verdicts it would declare for the hazard suite (which, once it is registered, runs every
/// cell and fails on any difference): `scoped`'s, except that a handle kept and dropped in
/// another interpreter is leaked rather than deferred.
impl Expectations for Pinned {
    fn expected(cell: &Cell) -> Expected {
        match (cell.case.hazard, cell.case.form) {
            (Hazard::H2, Some(Form::Kept)) => {
                Expected::NotApplicable { why: "leaked: never released outside its owner" }
            }
            _ => <Scoped as Expectations>::expected(cell),
        }
    }
}

/// Code generic over the strategy, as the hazard suite and the benches are: a handle made in
/// `a` is refused in main, and (for `Pinned`) leaked when it drops there.
fn crossing_is_refused<S: Strategy>(a: &SubInterpreter) -> Result<bool, Error> {
    let stored: S::Stored =
        a.run(|at| S::enter(at, |scope| S::eval(scope, c"object()").map(|h| S::store(scope, h))))??;
    attach(main_interpreter(), move |at| {
        S::enter(at, |scope| -> Result<bool, Error> {
            let handle = match S::load(scope, stored) {
                Ok(handle) => handle,
                Err(_) => return Ok(true),
            };
            let refused = S::bind(scope, &handle).is_err();
            if !refused {
                // Accepted in the wrong interpreter (the baseline would be): never release it here.
                std::mem::forget(handle);
            }
            Ok(refused)
        })
    })?
}

/// Runs the example.
pub fn main() -> Result<(), Error> {
    interpsafe::initialize();
    let a = SubInterpreter::new(Isolation::OwnGil)?;
    let before = LEAKED.load(Ordering::Relaxed);
    assert!(crossing_is_refused::<Pinned>(&a)?);
    assert_eq!(LEAKED.load(Ordering::Relaxed), before + 1, "dropped in main: leaked");
    println!("{}: {}", Pinned::NAME, Pinned::SUMMARY);
    Ok(())
}
