//! One running-main mark per held interpreter: the first hold marks it, the last one to go unmarks.
//!
//! Two things hold an interpreter that Python code must not end under them: a thread state the
//! toolkit suspended there (a thread attached elsewhere, or waiting on another thread), and a pin
//! (a `SharedBytes` reads the interpreter's memory without attaching). While any hold is counted,
//! the interpreter is marked as running its main program, which makes Python's
//! `_interpreters.destroy` refuse it. Suspensions and pins share one count per interpreter: a
//! count per kind, or a mark per holder, lets one holder's unmark clear the mark another still
//! relies on (found by attack, when suspensions kept marks of their own). The mark is CPython
//! state, written by the FFI edge through the `mark` and `unmark` closures; this protocol decides
//! when, under one lock, so that the invariant holds in every interleaving: **while a hold counted
//! here is held, its interpreter is marked**. A hold whose `mark` failed (the interpreter already
//! runs main for someone else) is not counted, and unmarks nothing.

use crate::seed::{SeededBug, Seeds};
use crate::sync::Mutex;

/// Per-interpreter hold counts (interpreters named by any `usize`, the FFI edge uses addresses).
#[derive(Debug)]
pub struct HoldMarks {
    counts: Mutex<Vec<(usize, usize)>>,
    seeds: Seeds,
}

impl HoldMarks {
    /// No holds (`const`, for the process-wide static).
    #[cfg(not(interpsafe_loom))]
    pub const fn new() -> Self {
        HoldMarks { counts: Mutex::new(Vec::new()), seeds: Seeds::none() }
    }

    /// No holds.
    #[cfg(interpsafe_loom)]
    pub fn new() -> Self {
        HoldMarks::with_seeds(Seeds::none())
    }

    /// No holds, with seeded bugs (only switchable under `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        HoldMarks { counts: Mutex::new(Vec::new()), seeds }
    }

    /// Counts a hold of `interp`. The first hold calls `mark` (with the lock held) and is counted
    /// only if it returns true; later ones are counted at once. Returns whether this hold is
    /// counted, and so whether [`HoldMarks::release`] must be called for it.
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

    /// Uncounts a hold that [`HoldMarks::take`] counted. The last one calls `unmark` with the lock
    /// held, so a hold taken meanwhile either counts on the old mark or makes a new one after it.
    pub fn release(&self, interp: usize, unmark: impl FnOnce()) {
        let mut counts = self.counts.lock();
        let Some(i) = counts.iter().position(|(p, _)| *p == interp) else { return };
        counts[i].1 -= 1;
        if counts[i].1 > 0 && !self.seeds.active(SeededBug::HoldUnmarkIgnoresOthers) {
            return;
        }
        counts.swap_remove(i);
        if self.seeds.active(SeededBug::HoldUnmarkOutsideLock) {
            drop(counts);
        }
        unmark();
    }

    /// How many holds of `interp` are counted.
    #[must_use]
    pub fn count(&self, interp: usize) -> usize {
        self.counts.lock().iter().find(|(i, _)| *i == interp).map_or(0, |(_, n)| *n)
    }
}

#[cfg(not(interpsafe_loom))]
impl Default for HoldMarks {
    fn default() -> Self {
        HoldMarks::new()
    }
}
