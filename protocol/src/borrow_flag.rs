//! The pyclass borrow flag as PyO3 runs it on free-threaded builds: one atomic word.
//!
//! Shared borrows count up from 0; an exclusive borrow is the sentinel [`EXCLUSIVE`]. Taking a
//! shared borrow is a compare-and-swap loop that refuses while the flag is exclusive; taking an
//! exclusive borrow is one compare-and-swap from 0 to the sentinel. The invariant: never an
//! exclusive borrow together with any other borrow. (On a GIL build PyO3 uses a plain `Cell`;
//! under a free-threaded build two threads can reach one object at once, hence the atomics.)

use crate::seed::{SeededBug, Seeds};
use crate::sync::atomic::{AtomicUsize, Ordering};

/// The flag value of an exclusive borrow.
pub const EXCLUSIVE: usize = usize::MAX;

/// Why a borrow was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BorrowRefused {
    /// Shared borrow refused: the object is mutably borrowed.
    AlreadyMutablyBorrowed,
    /// Exclusive borrow refused: the object is borrowed (shared or exclusive).
    AlreadyBorrowed,
}

impl std::fmt::Display for BorrowRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BorrowRefused::AlreadyMutablyBorrowed => {
                f.write_str("already mutably borrowed (by this or another thread)")
            }
            BorrowRefused::AlreadyBorrowed => {
                f.write_str("already borrowed (by this or another thread)")
            }
        }
    }
}

impl std::error::Error for BorrowRefused {}

/// A pyclass-style borrow flag.
#[derive(Debug, Default)]
pub struct BorrowFlag {
    flag: AtomicUsize,
    seeds: Seeds,
}

impl BorrowFlag {
    /// An unborrowed flag.
    pub fn new() -> Self {
        BorrowFlag::with_seeds(Seeds::none())
    }

    /// An unborrowed flag with seeded bugs (only switchable under `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        BorrowFlag { flag: AtomicUsize::new(0), seeds }
    }

    /// Takes a shared borrow.
    pub fn try_borrow(&self) -> Result<(), BorrowRefused> {
        let mut current = self.flag.load(Ordering::Relaxed);
        loop {
            if current == EXCLUSIVE || current == EXCLUSIVE - 1 {
                return Err(BorrowRefused::AlreadyMutablyBorrowed);
            }
            // Acquire pairs with the Release of `release_exclusive`: a reader sees the writer's
            // changes to the payload.
            match self.flag.compare_exchange_weak(
                current,
                current + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Releases a shared borrow.
    pub fn release_borrow(&self) {
        // Release pairs with the Acquire of `try_borrow_mut`: the writer sees reads finished.
        self.flag.fetch_sub(1, Ordering::Release);
    }

    /// Takes the exclusive borrow.
    pub fn try_borrow_mut(&self) -> Result<(), BorrowRefused> {
        if self.seeds.active(SeededBug::BorrowFlagLoadThenStore) {
            // The seeded bug: check, then act, as two steps.
            if self.flag.load(Ordering::Acquire) != 0 {
                return Err(BorrowRefused::AlreadyBorrowed);
            }
            self.flag.store(EXCLUSIVE, Ordering::Relaxed);
            return Ok(());
        }
        self.flag
            .compare_exchange(0, EXCLUSIVE, Ordering::Acquire, Ordering::Relaxed)
            .map(|_| ())
            .map_err(|_| BorrowRefused::AlreadyBorrowed)
    }

    /// Releases the exclusive borrow.
    pub fn release_borrow_mut(&self) {
        if self.seeds.active(SeededBug::BorrowFlagRelaxedRelease) {
            // The seeded bug: no Release, so the next borrower does not see the writes.
            self.flag.store(0, Ordering::Relaxed);
            return;
        }
        self.flag.store(0, Ordering::Release);
    }

    /// The raw flag value (for models and tests).
    pub fn raw(&self) -> usize {
        self.flag.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(interpsafe_loom)))]
mod tests {
    use super::*;

    #[test]
    fn shared_borrows_stack_and_exclude_the_exclusive_one() {
        let f = BorrowFlag::new();
        f.try_borrow().unwrap();
        f.try_borrow().unwrap();
        assert_eq!(f.try_borrow_mut(), Err(BorrowRefused::AlreadyBorrowed));
        f.release_borrow();
        f.release_borrow();
        f.try_borrow_mut().unwrap();
        assert_eq!(f.try_borrow(), Err(BorrowRefused::AlreadyMutablyBorrowed));
        assert_eq!(f.try_borrow_mut(), Err(BorrowRefused::AlreadyBorrowed));
        f.release_borrow_mut();
        assert_eq!(f.raw(), 0);
    }
}
