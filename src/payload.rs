//! A `#[pyclass]`-like payload cell: the Rust data inside a Python object, with PyO3's runtime
//! borrow flag, and `Send`/`Sync` rules that depend on the build.
//!
//! [`PyClassPayload<T>`] is what a pyclass instance holds: the value `T` in an `UnsafeCell`, a
//! [`BorrowFlag`] (the atomic flag PyO3 runs on free-threaded builds), and the interpreter that
//! owns the object. [`PyClassPayload::try_borrow`] and [`PyClassPayload::try_borrow_mut`] hand
//! out guards ([`PayloadRef`], [`PayloadRefMut`]: PyO3's `PyRef`/`PyRefMut`) that are `!Send`
//! and cannot outlive the attach closure whose [`Attached`] proof they were taken with.
//!
//! # Who can reach the value at once, and what `T` must be
//!
//! Python objects are shared between threads by the interpreter, so the payload is reachable
//! from several threads; what differs per build is whether two of them can *run* at once.
//!
//! | rule set | `PyClassPayload<T>: Send` | `PyClassPayload<T>: Sync` | why |
//! |---|---|---|---|
//! | GIL build (`gil`) | `T: Send` | `T: Send` | the GIL serialises every borrow, as a mutex does (`Mutex<T>: Sync` needs only `T: Send`) |
//! | free-threaded (`free-threaded`, `cfg(Py_GIL_DISABLED)`) | `T: Send` | `T: Send + Sync` | two threads really hold `&T` at once |
//! | own-GIL subinterpreters (`own-gil`, feature `own-gil-rules`) | `T: Send` | `T: Send` | each interpreter's GIL serialises its own objects, and a borrow checks the owner interpreter |
//!
//! `Send` needs `T: Send` everywhere: a Python object can be freed on any thread. The GIL rule is
//! PyO3's rule up to 0.22 (`#[pyclass]` requires `Send` unless `unsendable`); PyO3 0.23 and later
//! ask `Send + Sync` on every build, so that one extension compiles for both kinds of build. The
//! model here keeps the per-build minimum, to show where the difference lies.
//!
//! The own-GIL rule is sound only because [`PyClassPayload::try_borrow`] and
//! [`PyClassPayload::try_borrow_mut`] compare the interpreter the calling thread is attached to
//! (asked of CPython, not taken from the proof) with the payload's owner: a thread attached to
//! another interpreter holds another GIL, and would otherwise run concurrently with the owner's
//! threads. The check is made on every build (a GIL build can create own-GIL subinterpreters
//! whichever rule set the crate was compiled for); under the GIL rules it is redundant while one
//! GIL exists.
//!
//! The GIL argument also needs the guards to stay inside the attachment they were taken in: they
//! are `!Send` and borrow the [`Attached`] proof, and a nested attach to another interpreter
//! cannot capture them (attach closures must be `Send`, as PyO3's `allow_threads` closures must
//! be `Ungil`).
//!
//! The bound is spelt as the marker trait [`PayloadSync`], implemented per build, so that a
//! compile error names it: "required for `RefCell<u32>` to implement `PayloadSync`".

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use interpsafe_protocol::{BorrowFlag, BorrowRefused, InterpreterKey, Status};

use crate::interpreter::runtime::{current_tag, registry};
use crate::interpreter::Attached;
use crate::tag::Tag;
use crate::Error;

/// What `T` must be for [`PyClassPayload<T>`] to be `Sync` under the current rule set: `Send` on
/// a GIL build (the GIL serialises access), `Send + Sync` on a free-threaded build (two threads
/// hold `&T` at once).
#[cfg_attr(
    Py_GIL_DISABLED,
    diagnostic::on_unimplemented(
        message = "`{Self}` cannot be shared between threads as pyclass data on free-threaded Python",
        label = "a pyclass payload is `Sync` here only if its data is `Send + Sync`",
        note = "free-threaded CPython (3.13t) runs two threads on one object at once; PyO3's `#[pyclass]` requires `Sync` for the same reason",
        note = "use thread-safe fields (`Mutex`, atomics) or keep the object on one thread (`#[pyclass(unsendable)]`)"
    )
)]
#[cfg_attr(
    not(Py_GIL_DISABLED),
    diagnostic::on_unimplemented(
        message = "`{Self}` cannot be shared between threads as pyclass data: it is not `Send`",
        label = "a pyclass payload is `Sync` under the GIL only if its data is `Send`",
        note = "the GIL serialises access, but the data can still be used and dropped on any thread; PyO3's `#[pyclass]` requires `Send` unless `unsendable`"
    )
)]
pub trait PayloadSync {}

// GIL rules (and own-GIL rules): the owner interpreter's GIL serialises every borrow.
#[cfg(not(Py_GIL_DISABLED))]
impl<T: Send> PayloadSync for T {}

// Free-threaded rules: two threads hold `&T` at once, so `T` itself must be `Sync`.
#[cfg(Py_GIL_DISABLED)]
impl<T: Send + Sync> PayloadSync for T {}

/// The Rust data of a pyclass-like object: the value, PyO3's borrow flag and the owner
/// interpreter. See the [module docs](self) for its `Send`/`Sync` rules.
pub struct PyClassPayload<T> {
    owner: Tag,
    flag: BorrowFlag,
    value: UnsafeCell<T>,
}

// `Send` is automatic: `UnsafeCell<T>: Send` exactly when `T: Send`.

// SAFETY: shared access hands out `&T` through `try_borrow` and `&mut T` through
// `try_borrow_mut`, always under the atomic borrow flag (never `&mut` together with anything
// else) and only to a thread attached to the owner interpreter (checked with CPython at each
// borrow), through `!Send` guards tied to that attachment. `T: PayloadSync` is `T: Send` on a GIL
// build, where the owner's GIL serialises those threads (the mutex argument: `&mut T` may reach
// another thread, so `Send`; `&T` is never used by two threads at once); and `T: Send + Sync` on a
// free-threaded build, where `&T` is used by several threads at once.
unsafe impl<T: PayloadSync> Sync for PyClassPayload<T> {}

impl<T> fmt::Debug for PyClassPayload<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyClassPayload")
            .field("owner", &self.owner.key())
            .field("borrow_flag", &self.flag.raw())
            .finish_non_exhaustive()
    }
}

/// Why a borrow of a [`PyClassPayload`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadBorrowError {
    /// The calling thread is attached to another interpreter than the payload's owner (or, if
    /// that has ended, the owner is gone): [`Error::CrossInterpreter`] or [`Error::OwnerEnded`].
    Interpreter(Error),
    /// The borrow flag refused: PyO3's "already borrowed" / "already mutably borrowed".
    Refused(BorrowRefused),
}

impl fmt::Display for PayloadBorrowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadBorrowError::Interpreter(e) => write!(f, "pyclass payload: {e}"),
            PayloadBorrowError::Refused(r) => write!(f, "pyclass payload {r}"),
        }
    }
}

impl std::error::Error for PayloadBorrowError {}

impl<T> PyClassPayload<T> {
    /// A payload owned by the interpreter the thread is attached to.
    pub fn new(at: &Attached<'_>, value: T) -> Self {
        let owner = current_tag().unwrap_or(Tag::from_key(at.key()));
        PyClassPayload { owner, flag: BorrowFlag::new(), value: UnsafeCell::new(value) }
    }

    /// The interpreter that owns the object.
    pub fn owner(&self) -> InterpreterKey {
        self.owner.key()
    }

    /// The borrow flag's raw value (0: unborrowed; `usize::MAX`: mutably borrowed).
    pub fn borrow_flag(&self) -> usize {
        self.flag.raw()
    }

    /// Checks that the calling thread is attached to the owner interpreter, asking CPython (the
    /// proof `at` says only that the thread was attached when the closure began).
    fn check_owner(
        &self,
        at: &Attached<'_>,
        operation: &'static str,
    ) -> Result<(), PayloadBorrowError> {
        let current = current_tag();
        if current == Some(self.owner) {
            return Ok(());
        }
        let _ = at;
        let owner = self.owner.key();
        let error = match registry().status(owner) {
            Some(Status::Ended) => Error::OwnerEnded { owner, operation },
            _ => Error::CrossInterpreter { owner, current: current.map(Tag::key), operation },
        };
        Err(PayloadBorrowError::Interpreter(error))
    }

    /// A shared borrow (PyO3's `PyRef`), for as long as both the payload and the attach proof
    /// are borrowed.
    pub fn try_borrow<'a>(
        &'a self,
        at: &'a Attached<'_>,
    ) -> Result<PayloadRef<'a, T>, PayloadBorrowError> {
        self.check_owner(at, "borrow")?;
        self.flag.try_borrow().map_err(PayloadBorrowError::Refused)?;
        Ok(PayloadRef { payload: self, _not_send: PhantomData })
    }

    /// The exclusive borrow (PyO3's `PyRefMut`), for as long as both the payload and the attach
    /// proof are borrowed.
    pub fn try_borrow_mut<'a>(
        &'a self,
        at: &'a Attached<'_>,
    ) -> Result<PayloadRefMut<'a, T>, PayloadBorrowError> {
        self.check_owner(at, "borrow_mut")?;
        self.flag.try_borrow_mut().map_err(PayloadBorrowError::Refused)?;
        Ok(PayloadRefMut { payload: self, _not_send: PhantomData })
    }

    /// The value, through exclusive access to the payload: no other borrow can exist.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The value, taking the payload apart.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

/// A shared borrow of a [`PyClassPayload`] (PyO3's `PyRef`): `!Send`, and no longer-lived than
/// the attach proof it was taken with.
pub struct PayloadRef<'a, T> {
    payload: &'a PyClassPayload<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for PayloadRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds a shared borrow on the flag, so no `&mut T` exists until it is
        // released; the thread is attached to the owner (checked when the guard was made).
        unsafe { &*self.payload.value.get() }
    }
}

impl<T> Drop for PayloadRef<'_, T> {
    fn drop(&mut self) {
        self.payload.flag.release_borrow();
    }
}

impl<T: fmt::Debug> fmt::Debug for PayloadRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PayloadRef").field(&**self).finish()
    }
}

/// The exclusive borrow of a [`PyClassPayload`] (PyO3's `PyRefMut`): `!Send`, and no
/// longer-lived than the attach proof it was taken with.
pub struct PayloadRefMut<'a, T> {
    payload: &'a PyClassPayload<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for PayloadRefMut<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the exclusive borrow on the flag: no other reference to the
        // value exists while it lives.
        unsafe { &*self.payload.value.get() }
    }
}

impl<T> DerefMut for PayloadRefMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only use of the guard.
        unsafe { &mut *self.payload.value.get() }
    }
}

impl<T> Drop for PayloadRefMut<'_, T> {
    fn drop(&mut self) {
        self.payload.flag.release_borrow_mut();
    }
}

impl<T: fmt::Debug> fmt::Debug for PayloadRefMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PayloadRefMut").field(&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::interpreter::main_interpreter;
    use crate::{attach, Isolation, SubInterpreter};

    #[test]
    fn borrows_follow_the_pyclass_rules() {
        attach(main_interpreter(), |at| {
            let payload = PyClassPayload::new(at, vec![1, 2]);
            assert_eq!(payload.owner(), at.key());
            {
                let a = payload.try_borrow(at).unwrap();
                let b = payload.try_borrow(at).unwrap();
                assert_eq!(a.len() + b.len(), 4);
                assert_eq!(
                    payload.try_borrow_mut(at).unwrap_err(),
                    PayloadBorrowError::Refused(BorrowRefused::AlreadyBorrowed)
                );
            }
            {
                let mut m = payload.try_borrow_mut(at).unwrap();
                m.push(3);
                assert_eq!(
                    payload.try_borrow(at).unwrap_err(),
                    PayloadBorrowError::Refused(BorrowRefused::AlreadyMutablyBorrowed)
                );
            }
            assert_eq!(payload.borrow_flag(), 0);
            assert_eq!(payload.into_inner(), [1, 2, 3]);
        })
        .unwrap();
    }

    #[test]
    fn another_interpreter_is_refused() {
        let payload = attach(main_interpreter(), |at| PyClassPayload::new(at, 7_u32)).unwrap();
        let payload = std::sync::Arc::new(payload);
        let mut sub = SubInterpreter::new(Isolation::OwnGil).unwrap();
        let shared = std::sync::Arc::clone(&payload);
        let err = sub.run(move |at| shared.try_borrow(at).map(|r| *r).unwrap_err()).unwrap();
        match err {
            PayloadBorrowError::Interpreter(Error::CrossInterpreter { owner, current, .. }) => {
                assert_eq!(owner, main_interpreter());
                assert_eq!(current, Some(sub.key()));
            }
            other => panic!("expected a cross-interpreter refusal, got {other:?}"),
        }
        assert_eq!(payload.borrow_flag(), 0);
        sub.end(None).unwrap();
    }

    /// On a GIL build a `Send + !Sync` payload is `Sync`: threads attached to its interpreter
    /// take turns under the GIL.
    #[cfg(not(Py_GIL_DISABLED))]
    #[test]
    fn gil_build_shares_a_cell_payload() {
        use std::cell::Cell;

        let main = main_interpreter();
        let payload = attach(main, |at| PyClassPayload::new(at, Cell::new(0_u32))).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        attach(main, |at| {
                            let r = payload.try_borrow(at).unwrap();
                            r.set(r.get() + 1);
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(payload.into_inner().get(), 400);
    }

    /// On every build a `Send + Sync` payload is shared, and the flag arbitrates `&mut`.
    #[test]
    fn threads_share_a_sync_payload() {
        let main = main_interpreter();
        let payload = attach(main, |at| PyClassPayload::new(at, Mutex::new(0_u32))).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        attach(main, |at| loop {
                            // The exclusive borrow may be refused while another thread holds
                            // one (free-threaded); PyO3 would raise, the test retries.
                            if let Ok(mut m) = payload.try_borrow_mut(at) {
                                *m.get_mut().unwrap() += 1;
                                break;
                            }
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(payload.into_inner().into_inner().unwrap(), 400);
    }
}
