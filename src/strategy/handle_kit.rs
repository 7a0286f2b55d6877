//! The owned-handle kit: what every checked strategy builds its handles and once-cells from,
//! so that no strategy owns what the others use.
//!
//! - [`TaggedHandle`]: a strong reference plus its owner's [`Tag`] (16 bytes). It checks its
//!   owner against the interpreter a thread is attached to ([`TaggedHandle::check_attached`],
//!   with the runtime's shared objects let through on the slow path), and its drop releases the
//!   reference in the owner or defers it to the owner's decref pool (`release.rs`).
//! - `mismatch`: the error for a handle used outside its owner (ended owner, unknown owner,
//!   another interpreter).
//! - [`TaggedOnce`] and [`once_for`]: a per-interpreter once-cell, and the one way to get its
//!   object for an interpreter, checking at the door that the initialiser's handle belongs there.
//!
//! Each strategy decides on top of this when it checks (tagged on every bind, scoped at scope
//! entry, branded when a stored handle comes back in, affine when a handle crosses threads) and
//! what its own handle type is; `examples/new_strategy.rs` builds a proposal from the kit alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use interpsafe_protocol::{InterpreterKey, OnceError, SlottedOnce};

use crate::interpreter::runtime::{current_tag, registry};
use crate::object::{ObjRef, RawStrong};
use crate::pyo3_compat::ffi;
use crate::release::{register_once_cell, release};
use crate::tag::Tag;
use crate::Error;

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
    pub unsafe fn adopt(ptr: std::ptr::NonNull<ffi::PyObject>, owner: Tag) -> Self {
        // SAFETY: caller's contract.
        TaggedHandle { obj: unsafe { RawStrong::adopt(ptr) }, owner }
    }

    /// The owner interpreter.
    pub fn owner(&self) -> InterpreterKey {
        self.owner.key()
    }

    /// The owner's tag, as recorded.
    pub(crate) fn owner_tag(&self) -> Tag {
        self.owner
    }

    /// The object's address.
    pub fn addr(&self) -> usize {
        self.obj.addr()
    }

    /// Borrows the object after the caller has checked the owner.
    ///
    /// # Safety
    /// The thread must be attached to the owner for `'a`.
    pub unsafe fn borrow_checked<'a>(&'a self) -> ObjRef<'a> {
        // SAFETY: caller's contract.
        unsafe { self.obj.borrow() }
    }

    /// Checks that the object may be used in the interpreter the thread is attached to now (read
    /// here): that is its owner, or it is one of the runtime's shared objects. Returns whom a
    /// reference to it then belongs to: the owner, or, for a shared object, the interpreter the
    /// thread is attached to.
    pub fn check_attached(&self, operation: &'static str) -> Result<Tag, Error> {
        self.check_owner(current_tag(), operation)
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
    pub(crate) fn check_owner(
        &self,
        current: Option<Tag>,
        operation: &'static str,
    ) -> Result<Tag, Error> {
        match current {
            Some(tag) if tag == self.owner => Ok(tag),
            _ => self.check_slow(current, operation),
        }
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
    pub unsafe fn clone_checked(&self) -> Self {
        // SAFETY: caller's contract; the incref produces the adopted reference.
        unsafe {
            ffi::Py_INCREF(self.obj.ptr().as_ptr());
            TaggedHandle::adopt(self.obj.ptr(), self.owner)
        }
    }

    /// Gives up the reference without releasing it.
    pub fn into_raw(self) -> (std::ptr::NonNull<ffi::PyObject>, Tag) {
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
/// indexed by the interpreter's slot in front of it (`SlottedOnce`, shared with the runtime's list
/// of cells so that an interpreter's end can release what the cell holds for it).
///
/// When an interpreter's end begins (whoever ends it), the end observer retires every cell's
/// value for it and releases it there, while it can still run code; from then on the cell refuses
/// that interpreter ([`Error::OwnerEnded`]). A cell dropped while interpreters live gives each
/// value back to its interpreter: released now if the thread is attached there, else deferred to
/// its decref pool (discarded if it has ended).
#[derive(Debug, Default)]
pub struct TaggedOnce {
    inner: Arc<SlottedOnce>,
    registered: AtomicBool,
}

impl TaggedOnce {
    /// Puts the cell on the runtime's list before its first initialisation, so that no value is
    /// stored in a cell an end could miss.
    fn register(&self) {
        if !self.registered.load(Ordering::Acquire) && !self.registered.swap(true, Ordering::AcqRel)
        {
            register_once_cell(&self.inner);
        }
    }
}

impl Drop for TaggedOnce {
    fn drop(&mut self) {
        for (key, addr) in self.inner.take_all() {
            if let Some(ptr) = std::ptr::NonNull::new(addr as *mut ffi::PyObject) {
                release(Tag::from_key(key), ptr);
            }
        }
    }
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
/// Once `owner`'s end has begun its value has been released, and the call fails with
/// [`Error::OwnerEnded`] (code that runs in an ending interpreter after the end observer, a
/// finaliser for instance).
///
/// # Safety
/// The thread must be attached to `owner` for `'a`.
pub unsafe fn once_for<'a>(
    cell: &'a TaggedOnce,
    owner: Tag,
    slot: Option<u32>,
    init: impl FnOnce() -> Result<TaggedHandle, Error>,
) -> Result<ObjRef<'a>, Error> {
    let key = owner.key();
    if let Some(addr) = slot.and_then(|s| cell.inner.get_fast(s)) {
        // SAFETY: the slot table only holds this interpreter's value (slots are never reused, and
        // retired when it ends), owned by the cell until its end begins; attached for `'a`.
        return Ok(unsafe {
            ObjRef::from_raw(std::ptr::NonNull::new_unchecked(addr as *mut ffi::PyObject))
        });
    }
    cell.register();
    let checked_init = || {
        let handle = init()?;
        // On refusal the handle drops here and is released in (or deferred to) its own owner.
        if !crate::seeds::active(crate::seeds::Hole::OnceForeignInit) {
            handle.check(Some(owner), "once-cell init")?;
        }
        Ok::<_, Error>(handle.into_raw().0.as_ptr() as usize)
    };
    let init = cell.inner.get_or_try_init(key, slot, checked_init).map_err(|e| match e {
        OnceError::Init { error, .. } => error,
        OnceError::Ended { unstored, .. } => {
            if let Some(made) = unstored {
                // SAFETY: the initialiser's reference passed the owner check for `owner`, where
                // the thread is attached; the cell did not keep it.
                unsafe { ffi::Py_DECREF(made as *mut ffi::PyObject) };
            }
            Error::OwnerEnded { owner: key, operation: "once-cell" }
        }
        other => Error::Reentrant { message: other.to_string() },
    })?;
    if let Some(loser) = init.loser {
        // SAFETY: the loser's reference passed the owner check for `owner`, where the thread is
        // attached.
        unsafe { ffi::Py_DECREF(loser as *mut ffi::PyObject) };
    }
    // SAFETY: the cell owns a strong reference in `key` until `key`'s end begins (checked at
    // initialisation), and the thread is attached to `key` for `'a` (caller's contract).
    Ok(unsafe {
        ObjRef::from_raw(std::ptr::NonNull::new_unchecked(init.value as *mut ffi::PyObject))
    })
}
