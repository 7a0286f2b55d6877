//! Shared helpers for interpsafe's tests against real CPython builds.
//!
//! The tests themselves live in `tests/`: one file per subject (interpreter lifecycle and
//! attach today; the hazard catalogue and free-threaded stress as they arrive).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A rendezvous of `parties` threads that gives up after a deadline instead of hanging, so a test
/// can assert that threads did (or did not) reach a point at the same time.
#[derive(Debug)]
pub struct Rendezvous {
    parties: usize,
    arrived: AtomicUsize,
}

impl Rendezvous {
    /// A rendezvous for `parties` threads.
    pub fn new(parties: usize) -> Self {
        Rendezvous { parties, arrived: AtomicUsize::new(0) }
    }

    /// Arrives and waits for the others; true if all arrived within `timeout`.
    pub fn meet(&self, timeout: Duration) -> bool {
        self.meet_with(timeout, || {})
    }

    /// Like [`Rendezvous::meet`], calling `safe_point` on every spin (pass
    /// `Attached::safe_point` when waiting attached, so that a free-threaded build can stop the
    /// world meanwhile).
    pub fn meet_with(&self, timeout: Duration, safe_point: impl Fn()) -> bool {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        while self.arrived.load(Ordering::SeqCst) < self.parties {
            if start.elapsed() > timeout {
                return false;
            }
            safe_point();
            std::thread::yield_now();
        }
        true
    }
}

/// True when the crate was built for a free-threaded interpreter (3.13t).
pub const FREE_THREADED: bool = cfg!(Py_GIL_DISABLED);
