//! Marks held for pins: the first pin of an interpreter marks it, the last one to go unmarks it.
//!
//! A `SharedBytes` reads an interpreter's memory without attaching, so it pins the interpreter;
//! while any pin is held, the interpreter is marked as running its main program, which makes
//! Python's `_interpreters.destroy` refuse it instead of waiting for pins (the thread that holds
//! one may be the destroying thread itself). The mark is CPython state, written by the FFI edge
//! through the `mark` and `unmark` closures; this protocol decides when, under one lock, so that
//! the invariant holds in every interleaving: **while a pin counted here is held, its
//! interpreter is marked**. A pin whose `mark` failed (the interpreter already runs main for
//! someone else) is not counted, and unmarks nothing.

use crate::seed::{SeededBug, Seeds};
use crate::sync::Mutex;

/// Per-interpreter pin counts (interpreters named by any `usize`, the FFI edge uses addresses).
#[derive(Debug)]
pub struct PinMarks {
    counts: Mutex<Vec<(usize, usize)>>,
    seeds: Seeds,
}

impl PinMarks {
    /// No pins (`const`, for the process-wide static).
    #[cfg(not(interpsafe_loom))]
    pub const fn new() -> Self {
        PinMarks { counts: Mutex::new(Vec::new()), seeds: Seeds::none() }
    }

    /// No pins.
    #[cfg(interpsafe_loom)]
    pub fn new() -> Self {
        PinMarks::with_seeds(Seeds::none())
    }

    /// No pins, with seeded bugs (only switchable under `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        PinMarks { counts: Mutex::new(Vec::new()), seeds }
    }

    /// Counts a pin of `interp`. The first pin calls `mark` (with the lock held) and is counted
    /// only if it returns true; later ones are counted at once. Returns whether this pin is
    /// counted, and so whether [`PinMarks::release`] must be called for it.
    pub fn take(&self, interp: usize, mark: impl FnOnce() -> bool) -> bool {
        let mut counts = self.counts.lock();
        if let Some(entry) = counts.iter_mut().find(|(i, _)| *i == interp) {
            entry.1 += 1;
            return true;
        }
        if !mark() {
            return false;
        }
        counts.push((interp, 1));
        true
    }

    /// Uncounts a pin that [`PinMarks::take`] counted. The last one calls `unmark` with the lock
    /// held, so a pin taken meanwhile either counts on the old mark or makes a new one after it.
    pub fn release(&self, interp: usize, unmark: impl FnOnce()) {
        let mut counts = self.counts.lock();
        let Some(i) = counts.iter().position(|(p, _)| *p == interp) else { return };
        counts[i].1 -= 1;
        if counts[i].1 > 0 {
            return;
        }
        counts.swap_remove(i);
        if self.seeds.active(SeededBug::PinUnmarkOutsideLock) {
            drop(counts);
        }
        unmark();
    }

    /// How many pins of `interp` are counted.
    #[must_use]
    pub fn count(&self, interp: usize) -> usize {
        self.counts.lock().iter().find(|(i, _)| *i == interp).map_or(0, |(_, n)| *n)
    }
}

#[cfg(not(interpsafe_loom))]
impl Default for PinMarks {
    fn default() -> Self {
        PinMarks::new()
    }
}
