//! The per-interpreter deferred-decref pool: references dropped away from their owner interpreter
//! wait in that owner's queue until a thread attaches there.
//!
//! PyO3 keeps one process-wide pool and drains it from whichever interpreter attaches next, which
//! decrefs objects in the wrong interpreter (PyO3 #4570). Here every owner has its own queue. A
//! handle dropped while its owner is not the attached interpreter (or with nothing attached) is
//! queued for that owner ([`DecrefPool::defer`]); a thread that attaches to the owner takes the
//! queue ([`DecrefPool::take`]) and decrefs what it got. Right before an interpreter ends, a thread
//! still attached to it takes what is left and closes the queue ([`DecrefPool::close`]); if the
//! interpreter ended without that (Python code ended it), the queue is dropped unreleased and
//! closed ([`DecrefPool::discard_ended`]): its objects were freed with their interpreter, so
//! touching them would be a use-after-free. A `defer` for a closed queue is discarded the same way.
//!
//! The guarantees: nothing is handed out for an interpreter other than its owner, nothing is lost
//! (every deferred object is released once, discarded once, or still pending), and nothing is
//! handed out twice. [`DecrefPool::stats`] exposes the counts so tests can check
//! `deferred = released + discarded + pending`.
//!
//! All state sits behind one lock, and "is this queue open?" and the push that follows happen in
//! the same critical section. The only lock-free read is the fast path of [`DecrefPool::take`], a
//! relaxed load of the number of queued objects (see there why that cannot lose an object). A
//! closed queue stays in the map as a marker (a few bytes per ended interpreter): keys are never
//! reused, so the marker is what tells a late `defer` that its owner is gone.

use std::collections::BTreeMap;

use crate::id::InterpreterKey;
use crate::seed::{SeededBug, Seeds};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Mutex;

/// What [`DecrefPool::defer`] did with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a discarded object must not be decref'd: its interpreter has ended"]
pub enum Deferred {
    /// Queued for its owner; a thread attached there will release it.
    Queued,
    /// The owner has ended (its queue is closed): the object was freed with it, so the caller
    /// must forget the pointer without touching it. Counted in [`PoolStats::discarded_total`].
    Discarded,
}

/// Counts of everything the pool has seen, for checking that nothing is lost.
///
/// The protocol keeps `deferred_total == released_total + discarded_total + pending` (see
/// [`PoolStats::balanced`]) and `stranded == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Every [`DecrefPool::defer`] call, queued or discarded.
    pub deferred_total: u64,
    /// Objects handed out by [`DecrefPool::take`] and [`DecrefPool::close`] to be decref'd.
    pub released_total: u64,
    /// Objects dropped unreleased because their owner had ended: deferred after the close, or
    /// still queued at [`DecrefPool::discard_ended`].
    pub discarded_total: u64,
    /// Objects queued for owners whose queue is open.
    pub pending: u64,
    /// Objects sitting in closed queues: lost, since nothing will release or count them. Always 0
    /// unless a seeded bug is on.
    pub stranded: u64,
}

impl PoolStats {
    /// True when every deferred object is accounted for: released, discarded or pending.
    pub fn balanced(&self) -> bool {
        self.deferred_total == self.released_total + self.discarded_total + self.pending
    }
}

/// One owner's queue.
#[derive(Debug, Default)]
struct Queue {
    items: Vec<usize>,
    /// Set by `close` or `discard_ended`, never cleared: the owner has ended or is ending.
    closed: bool,
}

#[derive(Debug, Default)]
struct PoolState {
    queues: BTreeMap<InterpreterKey, Queue>,
    /// Objects in all queues, open or closed: what [`DecrefPool::queued`] mirrors.
    queued: usize,
    deferred_total: u64,
    released_total: u64,
    discarded_total: u64,
}

/// The per-interpreter deferred-decref pool; objects are opaque addresses (`PyObject*` at the FFI
/// edge).
#[derive(Debug)]
pub struct DecrefPool {
    state: Mutex<PoolState>,
    /// A copy of `PoolState::queued`, stored only while the lock is held, read without it by the
    /// fast path of [`DecrefPool::take`].
    queued: AtomicUsize,
    seeds: Seeds,
}

impl Default for DecrefPool {
    fn default() -> Self {
        DecrefPool::new()
    }
}

impl DecrefPool {
    /// An empty pool.
    pub fn new() -> Self {
        DecrefPool::with_seeds(Seeds::none())
    }

    /// An empty pool with seeded bugs (only switchable under `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        DecrefPool { state: Mutex::new(PoolState::default()), queued: AtomicUsize::new(0), seeds }
    }

    /// Publishes the queued count for the fast path; called with the lock held after every change
    /// to the queues, so the stores are ordered like the critical sections.
    fn publish(&self, st: &PoolState) {
        self.queued.store(st.queued, Ordering::Relaxed);
    }

    /// Queues `object` for its `owner`, or discards it if the owner's queue is closed.
    ///
    /// Called when a handle is dropped while `owner` is not the attached interpreter. An owner the
    /// pool has not seen gets a queue on first use.
    pub fn defer(&self, owner: InterpreterKey, object: usize) -> Deferred {
        let mut st = self.state.lock();
        st.deferred_total += 1;
        if st.queues.get(&owner).is_some_and(|q| q.closed) {
            st.discarded_total += 1;
            return Deferred::Discarded;
        }
        if self.seeds.active(SeededBug::DecrefDeferCheckThenAct) {
            // The seeded bug: let go of the lock between the check and the push.
            drop(st);
            st = self.state.lock();
        }
        st.queues.entry(owner).or_default().items.push(object);
        st.queued += 1;
        if self.seeds.active(SeededBug::DecrefPublishOutsideLock) {
            // The seeded bug: publish the count after the lock is released.
            let queued = st.queued;
            drop(st);
            self.queued.store(queued, Ordering::Relaxed);
            return Deferred::Queued;
        }
        self.publish(&st);
        Deferred::Queued
    }

    /// Hands out everything queued for `key`, to be decref'd by the calling thread, which must be
    /// attached to `key`. Empty for a closed or unknown queue.
    ///
    /// Fast path: when nothing at all is queued this is one relaxed load and no lock. That cannot
    /// lose an object. Every store of the count happens under the lock, so the count's
    /// modification order follows the critical sections and each stored value is the true number
    /// of queued objects at that point. If a `defer` happens-before this call, coherence makes the
    /// load return its store or a later one; a later 0 means some `take`, `close` or
    /// `discard_ended` already removed that object. A `defer` racing with this call may be missed:
    /// its object stays queued for the next `take`, and [`DecrefPool::close`] and
    /// [`DecrefPool::discard_ended`], which end every queue, never skip the lock. The count carries
    /// no data (the queue is read under the lock), so relaxed ordering is enough.
    pub fn take(&self, key: InterpreterKey) -> Vec<usize> {
        if self.queued.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let mut st = self.state.lock();
        let items = if self.seeds.active(SeededBug::DecrefTakeAnyOwner) {
            // The seeded bug: drain every open queue, whoever owns it.
            let mut all = Vec::new();
            for q in st.queues.values_mut().filter(|q| !q.closed) {
                all.append(&mut q.items);
            }
            all
        } else {
            match st.queues.get_mut(&key) {
                Some(q) if !q.closed => std::mem::take(&mut q.items),
                _ => return Vec::new(),
            }
        };
        st.queued -= items.len();
        st.released_total += items.len() as u64;
        if self.seeds.active(SeededBug::DecrefPublishOutsideLock) {
            // The seeded bug: publish the count after the lock is released.
            let queued = st.queued;
            drop(st);
            self.queued.store(queued, Ordering::Relaxed);
            return items;
        }
        self.publish(&st);
        items
    }

    /// Closes `key`'s queue and hands out what is still queued, to be decref'd by the calling
    /// thread while it is still attached to `key`, right before the interpreter ends. Later
    /// [`DecrefPool::defer`]s for `key` are discarded and counted. Idempotent: a second call (or
    /// one after [`DecrefPool::discard_ended`]) returns nothing.
    pub fn close(&self, key: InterpreterKey) -> Vec<usize> {
        let mut st = self.state.lock();
        let q = st.queues.entry(key).or_default();
        if q.closed {
            return Vec::new();
        }
        q.closed = true;
        let items = std::mem::take(&mut q.items);
        st.queued -= items.len();
        st.released_total += items.len() as u64;
        self.publish(&st);
        items
    }

    /// `key` has ended without [`DecrefPool::close`] (Python code ended it): drops what is queued
    /// for it without handing it out, since those objects were freed with the interpreter, counts
    /// them as discarded, and closes the queue. Returns how many were discarded. Idempotent.
    pub fn discard_ended(&self, key: InterpreterKey) -> usize {
        let mut st = self.state.lock();
        let q = st.queues.entry(key).or_default();
        q.closed = true;
        let dropped = std::mem::take(&mut q.items).len();
        st.queued -= dropped;
        st.discarded_total += dropped as u64;
        self.publish(&st);
        dropped
    }

    /// How many objects are queued for `key` (0 for a closed or unknown queue).
    pub fn pending(&self, key: InterpreterKey) -> usize {
        let st = self.state.lock();
        st.queues.get(&key).filter(|q| !q.closed).map_or(0, |q| q.items.len())
    }

    /// True once `key`'s queue was closed by [`DecrefPool::close`] or
    /// [`DecrefPool::discard_ended`].
    pub fn is_closed(&self, key: InterpreterKey) -> bool {
        self.state.lock().queues.get(&key).is_some_and(|q| q.closed)
    }

    /// The pool's counts, read in one critical section.
    pub fn stats(&self) -> PoolStats {
        let st = self.state.lock();
        let (mut pending, mut stranded) = (0u64, 0u64);
        for q in st.queues.values() {
            if q.closed {
                stranded += q.items.len() as u64;
            } else {
                pending += q.items.len() as u64;
            }
        }
        PoolStats {
            deferred_total: st.deferred_total,
            released_total: st.released_total,
            discarded_total: st.discarded_total,
            pending,
            stranded,
        }
    }
}

#[cfg(all(test, not(interpsafe_loom)))]
mod tests;
