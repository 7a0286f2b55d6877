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

use std::ptr::NonNull;
use std::marker::PhantomData;

use interpsafe_protocol::{InterpreterKey, PerInterpreterOnce, SlotTable};

use super::{OwnedRef, Strategy};
use crate::interpreter::runtime::{attached_tag, current, current_tag, only_main_alive, registry};
use crate::interpreter::Attached;
use crate::object::{ObjRef, RawStrong};
use crate::pyo3_compat::ffi;
use crate::release::release;
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

/// A strong handle that knows its owner interpreter. Also the stored form of the scoped,
/// branded and affine strategies.
#[derive(Debug)]
pub struct TaggedHandle {
    obj: RawStrong,
    owner: Tag,
}

// SAFETY: the handle can move to any thread: every use is checked against its owner (bind
// compares, drop defers to the owner's pool), so no other thread's interpreter ever touches it.
unsafe impl Send for TaggedHandle {}
// SAFETY: shared access only reads the pointer and the tag; the same checks apply.
unsafe impl Sync for TaggedHandle {}

impl Drop for TaggedHandle {
    fn drop(&mut self) {
        release(self.owner, self.obj.ptr());
    }
}

impl TaggedHandle {
    /// Takes a new strong reference to `obj`, owned by `owner`.
    pub(crate) fn new(obj: ObjRef<'_>, owner: Tag) -> Self {
        TaggedHandle { obj: RawStrong::new(obj), owner }
    }

    /// Adopts a new reference owned by `owner`.
    ///
    /// # Safety
    /// `ptr` is a strong reference the caller hands over, owned by `owner`.
    pub(crate) unsafe fn adopt(ptr: std::ptr::NonNull<ffi::PyObject>, owner: Tag) -> Self {
        // SAFETY: caller's contract.
        TaggedHandle { obj: unsafe { RawStrong::adopt(ptr) }, owner }
    }

    /// The owner interpreter.
    pub fn owner(&self) -> InterpreterKey {
        self.owner.key()
    }

    /// The object's address.
    pub fn addr(&self) -> usize {
        self.obj.addr()
    }

    /// Borrows the object after the caller has checked the owner.
    ///
    /// # Safety
    /// The thread must be attached to the owner for `'a`.
    pub(crate) unsafe fn borrow_checked<'a>(&'a self) -> ObjRef<'a> {
        // SAFETY: caller's contract.
        unsafe { self.obj.borrow() }
    }

    /// Checks that the thread is attached to `current` and that the object may be used there:
    /// `current` is its owner, or it is one of the runtime's shared objects.
    #[inline]
    pub(crate) fn check(&self, current: Option<Tag>, operation: &'static str) -> Result<(), Error> {
        self.check_owner(current, operation).map(|_| ())
    }

    /// [`check`](Self::check), returning whom a reference to the object then belongs to: the
    /// owner, or, for one of the runtime's shared objects, `current` (objects made from it, a
    /// bound method for instance, are made there).
    #[inline]
    fn check_owner(&self, current: Option<Tag>, operation: &'static str) -> Result<Tag, Error> {
        match current {
            Some(tag) if tag == self.owner => Ok(tag),
            _ => self.check_slow(current, operation),
        }
    }

    /// [`check`](Self::check) for a thread inside a scope (so attached): while main is the
    /// only interpreter toolkit code has entered *and* the only one CPython's list holds, the
    /// thread is attached to main, and a handle of main needs no lookup of the current
    /// interpreter: one relaxed load of the registry's fast-path word
    /// ([`Registry::fast_owner`](interpsafe_protocol::Registry::fast_owner)), a compare, and
    /// `PyInterpreterState_Head` (see `runtime::only_main_alive`). The registry word alone is
    /// not enough: C code can switch the thread into an interpreter toolkit code never entered.
    #[inline(always)]
    pub(crate) fn check_in_scope(&self, operation: &'static str) -> Result<Tag, Error> {
        let list_agrees =
            || only_main_alive() || crate::seeds::active(crate::seeds::Hole::TaggedRawSwitch);
        if self.owner.raw() == registry().fast_owner() && list_agrees() {
            return Ok(self.owner);
        }
        self.check_owner(current_tag(), operation)
    }

    #[cold]
    fn check_slow(&self, current: Option<Tag>, operation: &'static str) -> Result<Tag, Error> {
        let Some(tag) = current else {
            return Err(Error::NotAttached { operation });
        };
        let obj = self.obj.ptr().as_ptr();
        // SAFETY: attached (current is Some); only the address is compared.
        if unsafe { crate::shared_objects::is_singleton(obj as usize) } {
            return Ok(tag);
        }
        // A static builtin type is recognised by reading the object, which is only sound while
        // its owner lives (an ended interpreter's objects are freed): hold the owner alive for
        // the read. If it has ended or is ending, the object is not one of the shared ones
        // anyway (those are singletons or static types, which never belong to an interpreter).
        let Ok(_owner_alive) = crate::interpreter::InterpreterGuard::new(self.owner.key()) else {
            return Err(mismatch(self.owner, Some(tag), operation));
        };
        // SAFETY: attached; the handle's strong reference and the guard keep the object alive,
        // and its type flags may be read from any thread.
        if unsafe { crate::shared_objects::is_static_builtin_type(obj) } {
            return Ok(tag);
        }
        Err(mismatch(self.owner, Some(tag), operation))
    }

    /// A new strong reference with the same owner; the caller has checked the owner.
    ///
    /// # Safety
    /// The thread must be attached to the owner.
    pub(crate) unsafe fn clone_checked(&self) -> Self {
        // SAFETY: caller's contract; the incref produces the adopted reference.
        unsafe {
            ffi::Py_INCREF(self.obj.ptr().as_ptr());
            TaggedHandle::adopt(self.obj.ptr(), self.owner)
        }
    }

    /// Gives up the reference without releasing it.
    pub(crate) fn into_raw(self) -> (std::ptr::NonNull<ffi::PyObject>, Tag) {
        let (ptr, owner) = (self.obj.ptr(), self.owner);
        // The reference moves out to the caller: this handle must not release it.
        std::mem::forget(self);
        (ptr, owner)
    }
}

/// The error for a handle of `owner` used while attached to `current`.
pub(crate) fn mismatch(owner: Tag, current: Option<Tag>, operation: &'static str) -> Error {
    if owner == Tag::UNKNOWN {
        return Error::OwnerUnknown { operation };
    }
    let owner = owner.key();
    match registry().status(owner) {
        Some(interpsafe_protocol::Status::Ended) => Error::OwnerEnded { owner, operation },
        _ => Error::CrossInterpreter { owner, current: current.map(Tag::key), operation },
    }
}

/// A per-interpreter once-cell: the canonical values behind a lock, and a lock-free table
/// indexed by the interpreter's slot in front of it.
#[derive(Debug, Default)]
pub struct TaggedOnce {
    pub(crate) cells: PerInterpreterOnce<usize>,
    pub(crate) fast: SlotTable,
}

/// Shared by the checked strategies: the once-cell's object for the interpreter `owner`,
/// initialised by `init` on first use there. A losing racer's value is released in `owner`,
/// where the thread is attached.
///
/// The initialiser may return any handle, including one of another interpreter (through a
/// stored or sent handle, or a closure that captured one). The cell forgets the handle's owner
/// when it keeps the object, so the owner is checked here, at the door: a handle that does not
/// belong to `owner` (and is not one of the runtime's shared objects) is refused with the same
/// error a bind gives, and released in its own interpreter, never kept.
///
/// # Safety
/// The thread must be attached to `owner` for `'a`.
pub(crate) unsafe fn once_for<'a>(
    cell: &'a TaggedOnce,
    owner: Tag,
    slot: Option<u32>,
    init: impl FnOnce() -> Result<TaggedHandle, Error>,
) -> Result<ObjRef<'a>, Error> {
    let key = owner.key();
    if let Some(addr) = slot.and_then(|s| cell.fast.get(s)) {
        // SAFETY: the slot table only holds this interpreter's value (slots are never reused),
        // owned by the cell for as long as the interpreter lives; attached for `'a`.
        return Ok(unsafe { ObjRef::from_raw(std::ptr::NonNull::new_unchecked(addr as *mut ffi::PyObject)) });
    }
    let addr = match cell.cells.get(key) {
        Some(addr) => addr,
        None => {
            let checked_init = || {
                let handle = init()?;
                // On refusal the handle drops here and is released in (or deferred to) its
                // own owner.
                if !crate::seeds::active(crate::seeds::Hole::OnceForeignInit) {
                    handle.check(Some(owner), "once-cell init")?;
                }
                Ok::<_, Error>(handle.into_raw().0.as_ptr() as usize)
            };
            let init = cell.cells.get_or_try_init(key, checked_init).map_err(|e| match e {
                interpsafe_protocol::OnceError::Init { error, .. } => error,
                other => Error::Reentrant { message: other.to_string() },
            })?;
            if let Some(loser) = init.loser {
                // SAFETY: the loser's reference passed the owner check for `owner`, where the
                // thread is attached.
                unsafe { ffi::Py_DECREF(loser as *mut ffi::PyObject) };
            }
            init.value
        }
    };
    if let Some(slot) = slot {
        // The canonical value for `key` is stored; publishing it is idempotent.
        let _ = cell.fast.publish(slot, addr);
    }
    // SAFETY: the cell owns a strong reference in `key` for as long as `key` lives (checked at
    // initialisation), and the thread is attached to `key` for `'a` (caller's contract).
    Ok(unsafe { ObjRef::from_raw(std::ptr::NonNull::new_unchecked(addr as *mut ffi::PyObject)) })
}

impl Strategy for Tagged {
    const NAME: &'static str = "tagged";
    const SUMMARY: &'static str =
        "handles carry their owner; every bind reads the current interpreter (fast path while main is the only interpreter)";

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
        let owner = handle.check_in_scope("bind")?;
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
        handle.check_in_scope("clone")?;
        // SAFETY: checked just above: attached to the owner (or a shared object, which keeps
        // its recorded owner: releasing it anywhere is sound).
        Ok(unsafe { handle.clone_checked() })
    }

    fn store<'s>(_scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Stored {
        handle
    }

    fn load<'s>(_scope: &Self::Scope<'s>, stored: Self::Stored) -> Result<Self::Handle<'s>, Error> {
        Ok(stored)
    }

    fn send<'s>(_scope: &Self::Scope<'s>, handle: Self::Handle<'s>) -> Self::Sent {
        handle
    }

    fn receive<'s>(_scope: &Self::Scope<'s>, sent: Self::Sent) -> Result<Self::Handle<'s>, Error> {
        Ok(sent)
    }

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
        use crate::hazard::{Expected, Hazard};
        match (cell.case.hazard, cell.case.form) {
            (Hazard::H1, _) | (Hazard::H6, None) => {
                Expected::RuntimeError { at: "bind", containing: "belongs to" }
            }
            (Hazard::H2, Some("kept")) => {
                Expected::NotApplicable { why: "deferred to the owner's decref pool" }
            }
            (Hazard::H3, _) => Expected::RuntimeError { at: "bind", containing: "has ended" },
            (Hazard::H13, Some("once")) => {
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
