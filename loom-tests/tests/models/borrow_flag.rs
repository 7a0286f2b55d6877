//! The pyclass borrow flag: shared borrows count up, the exclusive borrow is a sentinel.
//!
//! The model object pairs a `BorrowFlag` with a payload in a loom `UnsafeCell`, which a borrower
//! reads (shared) or increments (exclusive). Two independent checks:
//! - the model's own holder counts, raised right after a borrow is granted and lowered right
//!   before it is released (so they never over-count), must never show an exclusive borrow
//!   together with any other borrow;
//! - loom's `UnsafeCell` reports any payload access that is not ordered after a conflicting one
//!   by happens-before, which checks the flag's memory orderings (Acquire on taking a borrow,
//!   Release on giving it back), not just its values.
//!
//! The holder counts use `Relaxed` read-modify-writes: a read-modify-write always reads the
//! latest value, so the counts see every overlap, and `Relaxed` adds no happens-before edge that
//! could hide a missing Acquire/Release in the flag itself (SeqCst counters did hide
//! `BorrowFlagRelaxedRelease`).

use interpsafe_protocol::{BorrowFlag, BorrowRefused, SeededBug, Seeds};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::{self, Exhaustive};
use loom_tests::{assert_model_fails, check, FULL_BOUND};

/// A pyclass object as the model sees it.
struct Object {
    flag: BorrowFlag,
    payload: UnsafeCell<usize>,
    /// Exclusive borrows held now, by the model's count.
    exclusive: AtomicUsize,
    /// Shared borrows held now, by the model's count.
    shared: AtomicUsize,
    /// Exclusive borrows granted in total (each increments the payload once).
    writes: AtomicUsize,
}

// SAFETY: the payload is only touched by a thread holding a borrow of `flag`, which is exactly
// what the model checks (and loom's UnsafeCell reports any access the borrows failed to order).
unsafe impl Sync for Object {}

impl Object {
    fn new(seeds: Seeds) -> Self {
        Object {
            flag: BorrowFlag::with_seeds(seeds),
            payload: UnsafeCell::new(0),
            exclusive: AtomicUsize::new(0),
            shared: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
        }
    }

    /// Tries the exclusive borrow; if granted, checks that nothing else is held and increments the
    /// payload. Returns whether it was granted.
    fn write(&self) -> bool {
        match self.flag.try_borrow_mut() {
            Ok(()) => {
                let others = self.exclusive.fetch_add(1, Relaxed);
                assert_eq!(others, 0, "two exclusive borrows at once");
                let readers = self.shared.fetch_add(0, Relaxed);
                assert_eq!(readers, 0, "an exclusive borrow together with {readers} shared ones");
                // SAFETY: the exclusive borrow is held; loom checks that no access races.
                self.payload.with_mut(|p| unsafe { *p += 1 });
                self.writes.fetch_add(1, Relaxed);
                self.exclusive.fetch_sub(1, Relaxed);
                self.flag.release_borrow_mut();
                true
            }
            Err(BorrowRefused::AlreadyBorrowed) => false,
            Err(e) => panic!("exclusive borrow refused with {e:?}"),
        }
    }

    /// Tries a shared borrow; if granted, checks that no exclusive borrow is held and reads the
    /// payload. Returns whether it was granted.
    fn read(&self) -> bool {
        match self.flag.try_borrow() {
            Ok(()) => {
                self.shared.fetch_add(1, Relaxed);
                let writers = self.exclusive.fetch_add(0, Relaxed);
                assert_eq!(writers, 0, "a shared borrow together with an exclusive one");
                // SAFETY: a shared borrow is held; loom checks that no write races this read.
                let _ = self.payload.with(|p| unsafe { *p });
                self.shared.fetch_sub(1, Relaxed);
                self.flag.release_borrow();
                true
            }
            Err(BorrowRefused::AlreadyMutablyBorrowed) => false,
            Err(e) => panic!("shared borrow refused with {e:?}"),
        }
    }
}

/// What each model thread does.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// Exclusive borrows, one after another (a second one checks that the first's release let
    /// it in and that its write is ordered after the first's).
    Writer(usize),
    /// Shared borrows, one after another.
    Reader(usize),
}

/// One thread per role, each borrowing as many times as its role says. Invariants: never an
/// exclusive borrow together with any other (by the holder counts); payload accesses ordered by
/// the flag (loom's UnsafeCell); the payload counts exactly the granted exclusive borrows; the
/// flag is 0 afterwards; at least one borrow is granted in every interleaving, and a borrow with
/// nothing else held is granted, so the refusals are not vacuous; no deadlock.
fn borrowers(seeds: Seeds, roles: &'static [Role]) -> impl Fn() + Sync + Send + 'static {
    move || {
        let obj = Arc::new(Object::new(seeds.clone()));
        let threads: Vec<_> = roles
            .iter()
            .map(|&role| {
                let obj = obj.clone();
                thread::spawn(move || {
                    let (times, write) = match role {
                        Role::Writer(n) => (n, true),
                        Role::Reader(n) => (n, false),
                    };
                    let mut granted = 0;
                    for _ in 0..times {
                        let ok = if write { obj.write() } else { obj.read() };
                        granted += usize::from(ok);
                    }
                    granted
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(granted >= 1, "every borrow refused");
        assert_eq!(obj.flag.raw(), 0, "flag not back to 0");
        let writes = obj.writes.load(Relaxed);
        // SAFETY: every borrower has been joined.
        assert_eq!(obj.payload.with(|p| unsafe { *p }), writes);
        // Nothing held now, so both kinds are granted.
        assert!(obj.read() && obj.write());
    }
}

const TWO_WRITERS: &[Role] = &[Role::Writer(2), Role::Writer(2)];
const WRITER_AND_READER: &[Role] = &[Role::Writer(2), Role::Reader(2)];
const WRITER_AND_TWO_READERS: &[Role] = &[Role::Writer(2), Role::Reader(1), Role::Reader(1)];
const THREE_THREADS_TWICE: &[Role] = &[Role::Writer(2), Role::Reader(2), Role::Reader(2)];

#[test]
fn borrow_flag_two_writers() {
    check("borrow_flag_two_writers", Exhaustive, borrowers(Seeds::none(), TWO_WRITERS));
}

#[test]
fn borrow_flag_writer_and_reader() {
    check("borrow_flag_writer_and_reader", Exhaustive, borrowers(Seeds::none(), WRITER_AND_READER));
}

/// A writer (twice) and two readers (once each): shared borrows stack while the writer retries.
/// Bounded: exhaustive runs over a minute.
#[test]
fn borrow_flag_writer_and_two_readers() {
    check(
        "borrow_flag_writer_and_two_readers",
        FULL_BOUND,
        borrowers(Seeds::none(), WRITER_AND_TWO_READERS),
    );
}

/// The documented lower bound: a writer and two readers borrowing twice each take about 50 s at
/// bound 3 on the 2-core machine (724,559 interleavings), too much of the stage's budget, so
/// this one runs at bound 2.
const THREE_THREADS_TWICE_BOUND: Search = Search::Bounded(2);

#[test]
fn borrow_flag_three_threads_twice() {
    check(
        "borrow_flag_three_threads_twice",
        THREE_THREADS_TWICE_BOUND,
        borrowers(Seeds::none(), THREE_THREADS_TWICE),
    );
}

#[test]
fn seeded_load_then_store_is_found_by_two_writers() {
    let seeds = Seeds::none().with(SeededBug::BorrowFlagLoadThenStore);
    assert_model_fails(
        "borrow_flag_two_writers",
        "BorrowFlagLoadThenStore",
        Exhaustive,
        borrowers(seeds, TWO_WRITERS),
    );
}

#[test]
fn seeded_load_then_store_is_found_by_writer_and_reader() {
    let seeds = Seeds::none().with(SeededBug::BorrowFlagLoadThenStore);
    assert_model_fails(
        "borrow_flag_writer_and_reader",
        "BorrowFlagLoadThenStore",
        Exhaustive,
        borrowers(seeds, WRITER_AND_READER),
    );
}

#[test]
fn seeded_relaxed_release_is_found() {
    let seeds = Seeds::none().with(SeededBug::BorrowFlagRelaxedRelease);
    assert_model_fails(
        "borrow_flag_writer_and_reader",
        "BorrowFlagRelaxedRelease",
        Exhaustive,
        borrowers(seeds, WRITER_AND_READER),
    );
}
