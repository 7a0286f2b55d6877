//! The shape of a new proposal: a type implementing [`Strategy`], here `Audited`, which is the
//! tagged design plus a count of the owner checks it makes. It delegates every operation to
//! [`Tagged`], so it compiles outside the crate; a real proposal lives in `src/strategy/`, where
//! it can use the crate's building blocks (`RawStrong`, `TaggedHandle::adopt`, the
//! per-interpreter once-cell), declares its expected hazard verdicts next to the impl, and is
//! registered with one line in `for_each_strategy!`. See docs/new-proposal.md.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use interpsafe::hazard::{Cell, Expectations, Expected};
use interpsafe::interpreter::main_interpreter;
use interpsafe::object::ObjRef;
use interpsafe::pyo3_compat::ffi;
use interpsafe::strategy::{Tagged, TaggedHandle, TaggedOnce, TaggedRef, TaggedScope};
use interpsafe::tag::Tag;
use interpsafe::{attach, Attached, Error, InterpreterKey, Isolation, Strategy, SubInterpreter};

/// How many owner checks `Audited` has made.
static CHECKS: AtomicUsize = AtomicUsize::new(0);

/// The tagged design, counting its checks.
pub enum Audited {}

impl Strategy for Audited {
    const NAME: &'static str = "audited";
    const SUMMARY: &'static str = "tagged, counting its owner checks (an example)";

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
        Tagged::enter(at, f)
    }

    fn key<'s>(scope: &Self::Scope<'s>) -> InterpreterKey {
        Tagged::key(scope)
    }

    unsafe fn adopt<'s>(scope: &Self::Scope<'s>, obj: NonNull<ffi::PyObject>) -> Self::Handle<'s> {
        // SAFETY: the caller's contract is Tagged::adopt's.
        unsafe { Tagged::adopt(scope, obj) }
    }

    fn eval<'s>(scope: &Self::Scope<'s>, expr: &CStr) -> Result<Self::Handle<'s>, Error> {
        Tagged::eval(scope, expr)
    }

    fn bind<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        handle: &'a Self::Handle<'s>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        CHECKS.fetch_add(1, Ordering::Relaxed);
        Tagged::bind(scope, handle)
    }

    fn to_handle<'s, 'a>(scope: &'a Self::Scope<'s>, obj: Self::Ref<'s, 'a>) -> Self::Handle<'s> {
        Tagged::to_handle(scope, obj)
    }

    fn owner_of<'s, 'a>(scope: &'a Self::Scope<'s>, r: Self::Ref<'s, 'a>) -> Option<Tag> {
        Tagged::owner_of(scope, r)
    }

    unsafe fn adopt_derived<'s, 'a>(
        scope: &'a Self::Scope<'s>,
        from: Self::Ref<'s, 'a>,
        obj: NonNull<ffi::PyObject>,
    ) -> Self::Handle<'s> {
        // SAFETY: the caller's contract is Tagged::adopt_derived's.
        unsafe { Tagged::adopt_derived(scope, from, obj) }
    }

    fn clone_handle<'s>(
        scope: &Self::Scope<'s>,
        handle: &Self::Handle<'s>,
    ) -> Result<Self::Handle<'s>, Error> {
        CHECKS.fetch_add(1, Ordering::Relaxed);
        Tagged::clone_handle(scope, handle)
    }

    fn store<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Stored {
        Tagged::store(scope, handle)
    }

    fn load<'s>(scope: &Self::Scope<'s>, stored: Self::Stored) -> Result<Self::Handle<'s>, Error> {
        Tagged::load(scope, stored)
    }

    fn send<'s>(scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Sent {
        Tagged::send(scope, handle)
    }

    fn receive<'s>(scope: &Self::Scope<'s>, sent: Self::Sent) -> Result<Self::Handle<'s>, Error> {
        Tagged::receive(scope, sent)
    }

    fn once<'s, 'a>(
        cell: &'a Self::Once,
        scope: &'a Self::Scope<'s>,
        init: impl FnOnce(&Self::Scope<'s>) -> Result<Self::Handle<'s>, Error>,
    ) -> Result<Self::Ref<'s, 'a>, Error> {
        Tagged::once(cell, scope, init)
    }

    fn as_obj<'s: 'a, 'a>(r: Self::Ref<'s, 'a>) -> ObjRef<'a> {
        Tagged::as_obj(r)
    }
}

/// The verdicts it declares for the hazard suite: the tagged design's, since it checks the same.
impl Expectations for Audited {
    fn expected(cell: &Cell) -> Expected {
        <Tagged as Expectations>::expected(cell)
    }
}

/// Code generic over the strategy, as the hazard suite and the benches are.
fn crossing_is_refused<S: Strategy>(a: &SubInterpreter) -> Result<bool, Error> {
    let stored: S::Stored = a.run(|at| {
        S::enter(at, |scope| {
            S::eval(scope, c"object()").map(|h| S::store(scope, h))
        })
    })??;
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
    assert!(crossing_is_refused::<Audited>(&a)?);
    let checks = CHECKS.load(Ordering::Relaxed);
    println!(
        "{}: {}; {checks} owner check(s) so far",
        Audited::NAME,
        Audited::SUMMARY
    );
    Ok(())
}
