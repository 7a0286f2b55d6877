//! Seeded-bug hooks: deliberate protocol bugs that loom-tests plant to prove its models can fail.
//!
//! Each protocol asks [`Seeds::active`] at the one place where its bug would go. In a normal
//! build [`Seeds`] is zero-sized and `active` is a constant `false`, so the hooks compile away;
//! under `--cfg interpsafe_loom` a model can switch one bug on with [`Seeds::with`].

/// A deliberate bug in one protocol. Every variant names the protocol and the mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeededBug {
    /// Slot table: a new chunk is installed with a plain store instead of a compare-and-swap,
    /// so a racing install is overwritten and a value published into it is lost.
    SlotChunkStoreNoCas,
    /// Slot table: retiring a slot clears it to empty instead of leaving the retired mark, so a
    /// publisher that read the interpreter's value before the end publishes it again afterwards:
    /// a released object's address stays readable on the lock-free path.
    SlotRetireClears,
    /// Borrow flag: the exclusive borrow loads the flag, sees 0 and stores the sentinel as two
    /// steps, so two threads can both take it (or one with a shared borrow in between).
    BorrowFlagLoadThenStore,
    /// Borrow flag: releasing the exclusive borrow stores 0 with `Relaxed` instead of `Release`,
    /// so the next borrower's `Acquire` does not synchronise with the writer and its reads of the
    /// payload race with the writer's writes.
    BorrowFlagRelaxedRelease,
    /// Registry: `attach` checks that the interpreter is alive, releases the lock and records the
    /// holder in a second critical section (check-then-act), so an `end` can slip in between and
    /// end the interpreter under an attached thread.
    AttachCheckThenAct,
    /// Registry: `end` does not re-check the holder list after a wake-up, so a holder that
    /// attached before the end began is ignored.
    EndSkipsRecheck,
    /// Registry: `observe` sets the "second interpreter seen" flag after releasing the lock, so a
    /// thread that finds the new interpreter through the registry (and attaches to it) can still
    /// read `only_main_seen() == true` and take the main-interpreter fast path.
    ObserveFlagAfterUnlock,
    /// Registry: `enter_attached` does not refuse once an end has begun, so a thread holding a
    /// guard makes a thread state in an interpreter that Python code is destroying (3.13:
    /// "not the last thread", or a use after free once the interpreter is cleared).
    AttachIgnoresEndBegun,
    /// Registry: `attach_pinning` takes the guard, releases the lock and records the pin in a
    /// second critical section (the shipped bug a loom model found), so an `end_begins` in
    /// between counts the guard as idle and returns while the pin is then taken anyway.
    AttachPinningTwoSteps,
    /// Registry: `end_begins` returns without waiting for the threads attached through guards,
    /// so the end runs over a thread that is still attached.
    EndBeginsSkipsWait,
    /// Decref pool: `defer` checks that the owner's queue is open, releases the lock and pushes
    /// in a second critical section (check-then-act), so a `close` can slip in between: the
    /// object lands in a closed queue, where it is neither released nor counted as discarded.
    DecrefDeferCheckThenAct,
    /// Decref pool: `take` hands out every queued object whatever its owner, like PyO3's one
    /// process-wide pool drained by whichever interpreter attaches next (PyO3 #4570), so objects
    /// are released in the wrong interpreter.
    DecrefTakeAnyOwner,
    /// Decref pool: `defer` and `take` publish the queued count for the fast path after releasing
    /// the lock, so two publishes can land out of order: a stale 0 from a `take` can overwrite the
    /// count of a `defer` that came after it, and a later `take` skips an object that a `defer`
    /// queued before it.
    DecrefPublishOutsideLock,
    /// Once-cell: after the initialiser returns, its value is stored without re-checking whether
    /// another thread stored one meanwhile, so two different values are handed out for one
    /// interpreter.
    OnceNoRecheckAfterInit,
    /// Once-cell: the initialiser runs while the cell's lock is held, so an initialiser that
    /// re-enters the cell (or waits for a thread that does) deadlocks. loom reports the deadlock
    /// by panicking with the lock held, and the guard's drop during unwinding panics again, which
    /// aborts the process: a model of this bug has to run in a child process.
    OnceInitUnderLock,
    /// Once-cell: an initialiser that finishes after its interpreter's value was retired stores
    /// its value anyway, so the cell keeps a reference into an ended interpreter that nobody
    /// releases (the leak the end-of-interpreter release exists to close).
    OnceStoreAfterRetire,
    /// Hold marks: the last hold's release uncounts it under the lock but unmarks after releasing
    /// the lock, so a hold taken in between finds no count, fails to mark (the old mark is still
    /// there) and goes uncounted, and the late unmark leaves that hold held with no mark.
    HoldUnmarkOutsideLock,
    /// Hold marks: every release unmarks, whatever else still holds the interpreter, as when each
    /// holder kept a mark of its own (the suspensions' marks did, and the last pin's unmark
    /// cleared a mark a suspended thread state relied on).
    HoldUnmarkIgnoresOthers,
}

/// The set of seeded bugs switched on for one protocol instance.
#[derive(Debug, Clone, Default)]
pub struct Seeds {
    #[cfg(interpsafe_loom)]
    active: Vec<SeededBug>,
}

impl Seeds {
    /// No seeded bug: the protocol as shipped.
    pub const fn none() -> Self {
        Seeds {
            #[cfg(interpsafe_loom)]
            active: Vec::new(),
        }
    }

    /// Switches `bug` on (only under `--cfg interpsafe_loom`).
    #[cfg(interpsafe_loom)]
    pub fn with(mut self, bug: SeededBug) -> Self {
        self.active.push(bug);
        self
    }

    /// Whether `bug` is switched on; a constant `false` outside loom builds.
    #[inline(always)]
    pub fn active(&self, bug: SeededBug) -> bool {
        #[cfg(interpsafe_loom)]
        {
            self.active.contains(&bug)
        }
        #[cfg(not(interpsafe_loom))]
        {
            let _ = bug;
            false
        }
    }
}
