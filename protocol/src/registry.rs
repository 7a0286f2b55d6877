//! The interpreter registry: which interpreters are alive, who is attached to each, and the
//! handshake that ends one.
//!
//! The model follows PEP 788. A thread that wants to run code in an interpreter first takes a
//! guard ([`Registry::attach`]); while any guard is held the interpreter cannot end. Ending
//! ([`Registry::end`]) moves the interpreter to [`Status::Ending`], which refuses new guards, and
//! waits until the existing ones are released; a bounded wait that runs out puts the interpreter
//! back to [`Status::Alive`] and names the holders instead of letting CPython abort. The FFI edge
//! then calls `Py_EndInterpreter` and reports [`Registry::ended`].
//!
//! Interpreters the toolkit did not create (Python code can call `_interpreters.create()`) enter
//! through [`Registry::observe`], which registers them on first entry. The end of the main
//! interpreter means the runtime was finalised: the epoch advances, so IDs that CPython hands out
//! again after a re-initialisation get new keys.
//!
//! All state sits behind one lock; the lock-free reads are the fast-path word
//! [`Registry::fast_owner`] (and its flag form [`Registry::only_main_seen`]), the epoch and the
//! end generation, each written under the lock.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::id::{Epoch, InterpreterId, InterpreterKey};
use crate::seed::{SeededBug, Seeds};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Condvar, Instant, Mutex};

/// Where an interpreter is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Running; guards can be taken.
    Alive,
    /// An end has begun: no new guards; waiting for the held ones to be released.
    Ending,
    /// Ended; its objects and thread states are gone.
    Ended,
}

/// Identifies one attach guard in the registry. Only [`Registry::attach`] makes one: the field is
/// private, so a guard cannot be forged to release a hold taken by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuardId(u64);

/// Who holds a guard: a description of the thread, used to name holders in errors and to refuse
/// an end requested by a thread that itself holds a guard (it would wait for itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The thread, as the FFI edge describes it (name and ID).
    pub thread: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {}", self.thread)
    }
}

/// What [`Registry::observe`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The interpreter's key.
    pub key: InterpreterKey,
    /// True the first time this interpreter is seen: the FFI edge installs its end observer then.
    pub first_entry: bool,
    /// The interpreter's dense slot: a small number, never reused within the process, that
    /// per-interpreter tables index by.
    pub slot: u32,
    /// The interpreter's end has already been reported: code still running there (a finalizer
    /// CPython runs after the end observer) is not registered again.
    pub ended: bool,
}

/// Why a guard was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachRefused {
    /// The registry has never seen this interpreter.
    Unknown(InterpreterKey),
    /// The interpreter is ending: PEP 788 refuses new guards from that point on.
    Ending(InterpreterKey),
    /// The interpreter has ended.
    Ended(InterpreterKey),
}

impl fmt::Display for AttachRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachRefused::Unknown(k) => write!(
                f,
                "cannot attach to {k}: interpsafe has never seen it; enter it once from Python \
                 (import _interpsafe) or create it with interpsafe::SubInterpreter"
            ),
            AttachRefused::Ending(k) => write!(
                f,
                "cannot attach to {k}: it is being ended; attach before the end begins or use \
                 another interpreter"
            ),
            AttachRefused::Ended(k) => write!(
                f,
                "cannot attach to {k}: it has ended; its objects are gone, send data instead of \
                 handles to outlive it"
            ),
        }
    }
}

/// Why an end was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndRefused {
    /// The registry has never seen this interpreter.
    Unknown(InterpreterKey),
    /// Another end is already in progress.
    AlreadyEnding(InterpreterKey),
    /// The interpreter has already ended.
    AlreadyEnded(InterpreterKey),
    /// The calling thread holds a guard on the interpreter, so waiting would never finish.
    CallerHolds {
        /// The interpreter.
        key: InterpreterKey,
        /// The calling thread.
        holder: Holder,
    },
    /// The bounded wait ran out while guards were still held; the interpreter stays alive.
    Busy {
        /// The interpreter.
        key: InterpreterKey,
        /// How long the end waited.
        waited: Duration,
        /// The guards still held when the wait ran out.
        holders: Vec<Holder>,
    },
    /// Python threads still run in the interpreter (daemon threads, which `Py_EndInterpreter`
    /// does not join, and with which it aborts the process); the interpreter stays alive.
    ThreadsRemain {
        /// The interpreter.
        key: InterpreterKey,
        /// How many thread states other than the ending thread's it still has.
        count: usize,
    },
}

impl fmt::Display for EndRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndRefused::Unknown(k) => write!(f, "cannot end {k}: interpsafe has never seen it"),
            EndRefused::AlreadyEnding(k) => {
                write!(f, "cannot end {k}: another thread is already ending it")
            }
            EndRefused::AlreadyEnded(k) => write!(f, "cannot end {k}: it has already ended"),
            EndRefused::CallerHolds { key, holder } => write!(
                f,
                "cannot end {key}: the calling {holder} is itself attached to it and would wait \
                 for itself; drop its attach guard first"
            ),
            EndRefused::Busy { key, waited, holders } => {
                write!(f, "cannot end {key}: still held after {waited:?} by ")?;
                for (i, h) in holders.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{h}")?;
                }
                f.write_str("; release those attach guards, or wait longer")
            }
            EndRefused::ThreadsRemain { key, count } => write!(
                f,
                "cannot end {key}: {count} Python thread(s) still run in it (daemon threads are \
                 not joined, and CPython aborts the process if it ends under them); stop them \
                 first, then end it again"
            ),
        }
    }
}

#[derive(Debug)]
struct Entry {
    status: Status,
    /// Dense, never reused within the process.
    slot: u32,
    /// The FFI edge has installed an observer that reports this interpreter's end.
    end_observed: bool,
    /// An opaque address the FFI edge needs to attach (the `PyInterpreterState*`), valid while
    /// the interpreter has not ended.
    handle: usize,
    holders: Vec<(GuardId, Holder)>,
    /// The guards among `holders` that pin the interpreter's memory (they read its objects
    /// without attaching): every end waits for them, whoever ends it.
    pinning: Vec<GuardId>,
    /// Threads inside [`Registry::enter_attached`] .. [`Registry::leave_attached`], one entry per
    /// attachment: each has (or is about to have) a thread state of this interpreter that an
    /// end must not run over.
    attached: Vec<Holder>,
}

#[derive(Debug)]
struct State {
    epoch: Epoch,
    entries: BTreeMap<InterpreterKey, Entry>,
    next_guard: u64,
    next_slot: u32,
}

impl State {
    const EMPTY: State =
        State { epoch: Epoch(0), entries: BTreeMap::new(), next_guard: 0, next_slot: 0 };

    fn entry_mut(&mut self, key: InterpreterKey) -> Option<&mut Entry> {
        self.entries.get_mut(&key)
    }

    /// The runtime was finalised (or re-initialised behind our back): every interpreter of the
    /// current epoch has ended, and IDs start again in the next one.
    fn advance_epoch(&mut self) {
        let epoch = self.epoch;
        for (_, entry) in self.entries.range_mut(epoch_range(epoch)) {
            entry.status = Status::Ended;
            entry.holders.clear();
        }
        self.epoch = Epoch(epoch.0 + 1);
    }
}

fn epoch_range(epoch: Epoch) -> std::ops::RangeInclusive<InterpreterKey> {
    InterpreterKey { epoch, id: InterpreterId(i64::MIN) }..=InterpreterKey {
        epoch,
        id: InterpreterId(i64::MAX),
    }
}

/// The registry of interpreters, their attach guards and their ends.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
    /// Notified whenever a guard is released or an interpreter's status changes.
    changed: Condvar,
    /// Set once any interpreter other than main has been observed; never cleared.
    second_seen: AtomicBool,
    /// The packed key of main in the current epoch while no other interpreter has been observed
    /// and main has not ended; [`NO_FAST_OWNER`] otherwise. Written under the lock.
    fast_owner: AtomicU64,
    /// A lock-free copy of the current epoch, written under the lock whenever it advances.
    epoch_now: AtomicU64,
    /// Counts interpreter ends; a cache of "which interpreter is at this address" is valid only
    /// while this has not moved (an ended interpreter's address can be reused).
    end_generation: AtomicU64,
    seeds: Seeds,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// What [`Registry::fast_owner`] holds when no handle may skip the lookup. Not the packed form
/// of any key the registry hands out (that would need interpreter ID 2^48 - 1 in epoch 65535).
pub const NO_FAST_OWNER: u64 = u64::MAX;

/// The body of the registry's constructors: `const` in production, so the FFI edge can keep the
/// process's registry in a plain `static` (no lazy-initialisation check on the hot path); not
/// `const` under loom, whose primitives are not.
macro_rules! empty_registry {
    ($seeds:expr) => {
        Registry {
            state: Mutex::new(State::EMPTY),
            changed: Condvar::new(),
            second_seen: AtomicBool::new(false),
            fast_owner: AtomicU64::new(NO_FAST_OWNER),
            epoch_now: AtomicU64::new(0),
            end_generation: AtomicU64::new(0),
            seeds: $seeds,
        }
    };
}

impl Registry {
    /// An empty registry at epoch 0.
    #[cfg(not(interpsafe_loom))]
    pub const fn new() -> Self {
        empty_registry!(Seeds::none())
    }

    /// An empty registry at epoch 0.
    #[cfg(interpsafe_loom)]
    pub fn new() -> Self {
        empty_registry!(Seeds::none())
    }

    /// An empty registry with seeded bugs (only switchable under `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        empty_registry!(seeds)
    }

    /// Records that code is running in interpreter `id` (whose address is `handle`) and returns
    /// its key, registering it on first entry.
    ///
    /// An interpreter whose end was already reported is not registered again: CPython runs
    /// finalizers after the end observer fires (during `PyInterpreterState_Clear`), and code in
    /// one can reach toolkit code; the observation says it has ended. Only the main interpreter's
    /// ID, seen again as ended, means that the runtime was finalised and initialised again
    /// without the registry seeing main end: then the epoch advances, so the new interpreters
    /// never share keys with the old ones. (It used to advance for any ended ID, which a
    /// finalizer in an ending subinterpreter could trigger: every live interpreter was marked
    /// ended and the dead one registered again, alive, at its freed address.)
    pub fn observe(&self, id: InterpreterId, handle: usize) -> Observation {
        let mut st = self.state.lock();
        let mut key = InterpreterKey { epoch: st.epoch, id };
        if let Some(entry) = st.entries.get(&key) {
            let ended = entry.status == Status::Ended;
            if !ended || !id.is_main() {
                return Observation { key, first_entry: false, slot: entry.slot, ended };
            }
            st.advance_epoch();
            self.epoch_now.store(st.epoch.0, Ordering::Relaxed);
            self.end_generation.fetch_add(1, Ordering::Relaxed);
            key.epoch = st.epoch;
        }
        let slot = st.next_slot;
        st.next_slot += 1;
        st.entries.insert(
            key,
            Entry {
                status: Status::Alive,
                slot,
                end_observed: false,
                handle,
                holders: Vec::new(),
                pinning: Vec::new(),
                attached: Vec::new(),
            },
        );
        if id.is_main() {
            if !self.second_seen.load(Ordering::Relaxed) {
                // Main (of this epoch) is the only interpreter: its handles skip the lookup.
                self.fast_owner.store(key.pack(), Ordering::Relaxed);
            }
        } else {
            if self.seeds.active(SeededBug::ObserveFlagAfterUnlock) {
                // The seeded bug: publish the flag only after the lock is released.
                drop(st);
            }
            // Stored under the lock: a thread that finds this interpreter through the registry
            // (lookup, attach, observe) takes the lock after these stores, so it reads them, or
            // later values (and nothing stores a key into `fast_owner` once `second_seen` is set).
            self.fast_owner.store(NO_FAST_OWNER, Ordering::Relaxed);
            self.second_seen.store(true, Ordering::Release);
        }
        Observation { key, first_entry: true, slot, ended: false }
    }

    /// Records that the FFI edge installed an observer that will report `key`'s end, so caches
    /// keyed by the interpreter's address may hold it (see [`Registry::end_generation`]).
    pub fn mark_end_observed(&self, key: InterpreterKey) {
        if let Some(entry) = self.state.lock().entries.get_mut(&key) {
            entry.end_observed = true;
        }
    }

    /// The slot of `key` if it is alive and its end will be observed: the condition for caching
    /// it by address.
    pub fn cacheable_slot(&self, key: InterpreterKey) -> Option<u32> {
        let st = self.state.lock();
        st.entries.get(&key).filter(|e| e.status == Status::Alive && e.end_observed).map(|e| e.slot)
    }

    /// The slot of `key`, whatever its status (the index its per-interpreter values are retired
    /// at when it ends), or `None` if the registry has never seen it.
    pub fn slot(&self, key: InterpreterKey) -> Option<u32> {
        self.state.lock().entries.get(&key).map(|e| e.slot)
    }

    /// How many interpreter ends the registry has seen (one relaxed load). It moves before an
    /// ended interpreter's memory can be reused: the end observer reports during
    /// `PyInterpreterState_Clear`, before CPython frees the interpreter, and a later interpreter
    /// at the same address is only reachable through CPython's runtime lock, taken after that.
    #[inline]
    pub fn end_generation(&self) -> u64 {
        self.end_generation.load(Ordering::Relaxed)
    }

    /// The status of `key`, or `None` if it was never seen.
    pub fn status(&self, key: InterpreterKey) -> Option<Status> {
        self.state.lock().entries.get(&key).map(|e| e.status)
    }

    /// The key the registry would give interpreter `id` now, if it has seen it in this epoch.
    pub fn lookup(&self, id: InterpreterId) -> Option<InterpreterKey> {
        let st = self.state.lock();
        let key = InterpreterKey { epoch: st.epoch, id };
        st.entries.contains_key(&key).then_some(key)
    }

    /// The current runtime epoch.
    pub fn epoch(&self) -> Epoch {
        self.state.lock().epoch
    }

    /// The current epoch without taking the lock (one relaxed load): for hot-path checks that
    /// compare a handle's tag with the current interpreter. It can lag an epoch change made by
    /// another thread, which only matters across a runtime re-initialisation, when no thread can
    /// be running toolkit code.
    #[inline]
    pub fn epoch_relaxed(&self) -> Epoch {
        Epoch(self.epoch_now.load(Ordering::Relaxed))
    }

    /// True while no interpreter other than main has ever been observed. One relaxed load; it
    /// turns false for good at the first other interpreter.
    #[inline]
    pub fn only_main_seen(&self) -> bool {
        !self.second_seen.load(Ordering::Relaxed)
    }

    /// The single-interpreter fast path in one relaxed load: the packed key
    /// ([`InterpreterKey::pack`]) of the main interpreter while it is the only interpreter ever
    /// observed and has not ended, [`NO_FAST_OWNER`] otherwise.
    ///
    /// A thread attached through the registry (or that observed its interpreter itself) that
    /// reads a key here is attached to that interpreter: every other interpreter is observed,
    /// storing [`NO_FAST_OWNER`] under the lock, before any thread can attach to it, and no key
    /// is stored again once one has been. So a handle whose owner equals this word may be used
    /// without looking the current interpreter up.
    #[inline]
    pub fn fast_owner(&self) -> u64 {
        self.fast_owner.load(Ordering::Relaxed)
    }

    /// Takes a guard on `key` for `holder` and returns the interpreter's handle with it. While the
    /// guard is held the interpreter cannot end.
    pub fn attach(
        &self,
        key: InterpreterKey,
        holder: Holder,
    ) -> Result<(GuardId, usize), AttachRefused> {
        self.attach_with(key, holder, false)
    }

    /// [`Registry::attach`], recording the guard as pinning if `pinning`, in the same critical
    /// section as the status check (a loom model found the pin recorded in a second one, after
    /// an `end_begins` that had counted the guard as idle and returned).
    fn attach_with(
        &self,
        key: InterpreterKey,
        holder: Holder,
        pinning: bool,
    ) -> Result<(GuardId, usize), AttachRefused> {
        let mut st = self.state.lock();
        let entry = st.entry_mut(key).ok_or(AttachRefused::Unknown(key))?;
        match entry.status {
            Status::Alive => {}
            Status::Ending => return Err(AttachRefused::Ending(key)),
            Status::Ended => return Err(AttachRefused::Ended(key)),
        }
        if self.seeds.active(SeededBug::AttachCheckThenAct) {
            // The seeded bug: let go of the lock between the check and the act.
            drop(st);
            st = self.state.lock();
        }
        let guard = GuardId(st.next_guard);
        st.next_guard += 1;
        let entry = st.entry_mut(key).ok_or(AttachRefused::Unknown(key))?;
        entry.holders.push((guard, holder));
        if pinning && self.seeds.active(SeededBug::AttachPinningTwoSteps) {
            // The seeded bug: record the pin in a second critical section, unchecked.
            drop(st);
            st = self.state.lock();
        }
        let entry = st.entry_mut(key).ok_or(AttachRefused::Unknown(key))?;
        if pinning {
            entry.pinning.push(guard);
        }
        Ok((guard, entry.handle))
    }

    /// Begins an attachment through a held guard: checks, under the lock, that the interpreter
    /// is still [`Status::Alive`] and the guard still held, and counts the thread as attached
    /// until [`Registry::leave_attached`]. Returns the interpreter's handle.
    ///
    /// This is the in-flight half of the end handshake: an end begun by anyone
    /// ([`Registry::end`], or [`Registry::end_begins`] for ends the toolkit does not drive) first
    /// makes every later call here refuse, then waits until the count is zero, so no thread
    /// makes a thread state in an interpreter whose end is under way, and none is still
    /// attached when it ends.
    pub fn enter_attached(
        &self,
        key: InterpreterKey,
        guard: GuardId,
        holder: &Holder,
    ) -> Result<usize, AttachRefused> {
        let mut st = self.state.lock();
        let entry = st.entry_mut(key).ok_or(AttachRefused::Unknown(key))?;
        let refusal = match entry.status {
            Status::Alive => None,
            Status::Ending => Some(AttachRefused::Ending(key)),
            Status::Ended => Some(AttachRefused::Ended(key)),
        };
        if let Some(refused) = refusal {
            if !self.seeds.active(SeededBug::AttachIgnoresEndBegun) {
                return Err(refused);
            }
        }
        if !entry.holders.iter().any(|(g, _)| *g == guard) {
            // Held guards are cleared when the interpreter ends; a released one is gone.
            return Err(AttachRefused::Ended(key));
        }
        entry.attached.push(holder.clone());
        Ok(entry.handle)
    }

    /// Ends an attachment begun by [`Registry::enter_attached`]: the thread state it made is
    /// gone.
    pub fn leave_attached(&self, key: InterpreterKey, holder: &Holder) {
        let mut st = self.state.lock();
        if let Some(entry) = st.entry_mut(key) {
            if let Some(i) = entry.attached.iter().position(|h| h == holder) {
                entry.attached.swap_remove(i);
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// How many threads are attached through guards to `key` right now.
    pub fn attached(&self, key: InterpreterKey) -> usize {
        self.state.lock().entries.get(&key).map_or(0, |e| e.attached.len())
    }

    /// An end the toolkit does not drive has begun (Python code called
    /// `_interpreters.destroy`, or the runtime is finalising): reported by the FFI edge before
    /// CPython's last-thread check. Refuses new guards and attachments from now on, then waits
    /// until no thread other than `caller` is attached through a guard and no pinning guard
    /// ([`Registry::attach_pinning`]) is held. `detach_while_waiting` detaches the calling
    /// thread while it waits (the attached threads may need its GIL); it is called with `true`
    /// before the first wait and `false` before returning.
    ///
    /// Ordinary guards that are held but not attached are not waited for: they refuse their
    /// next attachment instead (the promise on 3.13, where nothing can delay an end that Python
    /// code started; PEP 788's native guards on 3.15 make it wait). A guard is `Send`, so the
    /// thread that took it says nothing about who holds it now; attachments, by contrast, are
    /// recorded by the thread that is attached, so the caller's own are known exactly. (An
    /// attachment of `caller`'s own that is still open, suspended by a nested attachment
    /// elsewhere, is CPython's "not the last thread" abort: a window this cannot close. A
    /// pinning guard held by `caller` makes it wait forever: a documented deadlock.) Returns
    /// how many ordinary guards will refuse.
    pub fn end_begins(
        &self,
        key: InterpreterKey,
        caller: &Holder,
        mut detach_while_waiting: impl FnMut(bool),
    ) -> usize {
        let mut st = self.state.lock();
        match st.entry_mut(key) {
            Some(entry) if entry.status == Status::Alive => entry.status = Status::Ending,
            Some(entry) if entry.status == Status::Ending => {}
            _ => return 0,
        }
        let mut detached = false;
        loop {
            let (done, own) = match st.entry_mut(key) {
                None => (true, 0),
                Some(entry) => {
                    let pinned = entry.pinning.len();
                    let attached = entry.attached.iter().filter(|h| *h != caller).count();
                    let skip = self.seeds.active(SeededBug::EndBeginsSkipsWait);
                    let done =
                        entry.status == Status::Ended || skip || (attached == 0 && pinned == 0);
                    (done, entry.holders.len() - pinned)
                }
            };
            if done {
                drop(st);
                if detached {
                    detach_while_waiting(false);
                }
                return own;
            }
            if !detached {
                // Detach with the lock released (re-attaching may block on a GIL that a thread
                // holding this lock wants), then check again before waiting.
                drop(st);
                detach_while_waiting(true);
                detached = true;
                st = self.state.lock();
                continue;
            }
            self.changed.wait(&mut st);
        }
    }

    /// Takes a guard like [`Registry::attach`] that also pins the interpreter's memory: for
    /// holders that read its objects without attaching. Every end waits for it, including one
    /// reported through [`Registry::end_begins`], which does not wait for ordinary guards.
    pub fn attach_pinning(
        &self,
        key: InterpreterKey,
        holder: Holder,
    ) -> Result<(GuardId, usize), AttachRefused> {
        self.attach_with(key, holder, true)
    }

    /// Releases a guard taken by [`Registry::attach`]; unknown guards are ignored.
    pub fn detach(&self, key: InterpreterKey, guard: GuardId) {
        let mut st = self.state.lock();
        if let Some(entry) = st.entry_mut(key) {
            entry.holders.retain(|(g, _)| *g != guard);
            entry.pinning.retain(|g| *g != guard);
        }
        drop(st);
        self.changed.notify_all();
    }

    /// The holders of guards on `key` right now.
    pub fn holders(&self, key: InterpreterKey) -> Vec<Holder> {
        let st = self.state.lock();
        st.entries
            .get(&key)
            .map(|e| e.holders.iter().map(|(_, h)| h.clone()).collect())
            .unwrap_or_default()
    }

    /// Begins ending `key` on behalf of `caller`: refuses new guards, then waits until every held
    /// guard is released, at most `timeout` if one is given. On `Ok` the interpreter is
    /// [`Status::Ending`] with no holders and the caller must end it and report
    /// [`Registry::ended`] (or [`Registry::abandon_end`] if ending failed). On a timeout the
    /// interpreter goes back to [`Status::Alive`] and the error names the holders.
    pub fn end(
        &self,
        key: InterpreterKey,
        caller: &Holder,
        timeout: Option<Duration>,
    ) -> Result<(), EndRefused> {
        let start = Instant::now();
        let mut st = self.state.lock();
        let entry = st.entry_mut(key).ok_or(EndRefused::Unknown(key))?;
        match entry.status {
            Status::Alive => {}
            Status::Ending => return Err(EndRefused::AlreadyEnding(key)),
            Status::Ended => return Err(EndRefused::AlreadyEnded(key)),
        }
        if entry.holders.iter().any(|(_, h)| h == caller) {
            return Err(EndRefused::CallerHolds { key, holder: caller.clone() });
        }
        entry.status = Status::Ending;
        let mut woken = false;
        loop {
            let entry = st.entry_mut(key).ok_or(EndRefused::Unknown(key))?;
            if entry.status == Status::Ended {
                // Observed ending by other means (its end observer ran) while we waited.
                return Err(EndRefused::AlreadyEnded(key));
            }
            let skip = woken && self.seeds.active(SeededBug::EndSkipsRecheck);
            if entry.holders.is_empty() || skip {
                return Ok(());
            }
            match timeout {
                None => self.changed.wait(&mut st),
                Some(budget) => match start.remaining(budget) {
                    Some(left) => {
                        self.changed.wait_for(&mut st, left);
                    }
                    None => {
                        let entry = st.entry_mut(key).ok_or(EndRefused::Unknown(key))?;
                        entry.status = Status::Alive;
                        let holders = entry.holders.iter().map(|(_, h)| h.clone()).collect();
                        drop(st);
                        self.changed.notify_all();
                        return Err(EndRefused::Busy { key, waited: budget, holders });
                    }
                },
            }
            woken = true;
        }
    }

    /// Ending failed after [`Registry::end`] succeeded: the interpreter is alive again.
    pub fn abandon_end(&self, key: InterpreterKey) {
        let mut st = self.state.lock();
        if let Some(entry) = st.entry_mut(key) {
            if entry.status == Status::Ending {
                entry.status = Status::Alive;
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Reports that `key` has ended (idempotent). The end of the main interpreter means the
    /// runtime was finalised: every interpreter of the epoch is ended and the epoch advances.
    pub fn ended(&self, key: InterpreterKey) {
        let mut st = self.state.lock();
        if let Some(entry) = st.entry_mut(key) {
            if entry.status != Status::Ended {
                self.end_generation.fetch_add(1, Ordering::Relaxed);
            }
            entry.status = Status::Ended;
            entry.holders.clear();
            entry.pinning.clear();
        }
        if key.id.is_main() && key.epoch == st.epoch {
            // Main's handles are dead; the next epoch's main stores its own key when observed.
            self.fast_owner.store(NO_FAST_OWNER, Ordering::Relaxed);
            st.advance_epoch();
            self.epoch_now.store(st.epoch.0, Ordering::Relaxed);
            self.end_generation.fetch_add(1, Ordering::Relaxed);
        }
        drop(st);
        self.changed.notify_all();
    }
}

#[cfg(all(test, not(interpsafe_loom)))]
mod tests;
