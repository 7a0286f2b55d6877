//! The per-interpreter once-cell: a value initialised lazily once per interpreter, never handed
//! from one interpreter to another.
//!
//! A process-wide `OnceLock` (PyO3's `PyOnceLock`, `intern!`) filled in one interpreter hands that
//! interpreter's object to every other one (hazards H4, H9, H12). [`PerInterpreterOnce`] keeps one
//! slot per [`InterpreterKey`] instead.
//!
//! The initialiser may run Python code, which can release the GIL (so another thread of the same
//! interpreter can start initialising too) or call back into the same cell. So it never runs under
//! the cell's lock: concurrent initialisers in one interpreter may both run, and the first to
//! finish wins; a loser gets the winner's value plus its own back ([`Init::loser`]) to drop in that
//! interpreter. A thread whose initialiser calls back into the same cell for the same interpreter
//! gets [`OnceError::Reentrant`] instead of a deadlock or a panic. The cell tracks which threads
//! are running an initialiser for which interpreter; a drop guard clears that record if the
//! initialiser panics.
//!
//! When an interpreter's end begins, [`PerInterpreterOnce::retire`] hands its value back for
//! release in that interpreter (while it can still run code) and retires the key for good: no
//! later call stores a value for it. An initialiser still running then (a thread attached to the
//! ending interpreter, which the FFI edge's end handshake rules out for threads it knows) gets
//! its value back as [`OnceError::Ended`] to release itself, so nothing is kept for an ended
//! interpreter and nothing made is lost. [`SlottedOnce`] puts a [`SlotTable`] in front of the
//! cell for a lock-free read, and retires both together.
//!
//! All state sits behind one reader-writer lock: values in a `Vec` sorted by key (there are few
//! interpreters), running initialisers in a second small `Vec`. Cost of
//! [`PerInterpreterOnce::get`]: one shared lock and unlock (two atomic read-modify-writes on the
//! lock word), a binary search and a `T::clone`; no allocation. Measured on the 2-core development
//! machine (release build, 4 interpreters): about 12 ns per `get` against 0.3 ns for
//! `std::sync::OnceLock::get`, and about twice that per thread with two threads reading at once,
//! because readers contend on the lock word. A lock-free read would need `unsafe` or a `T` that
//! fits an atomic (object addresses do: write-once slots of an atomic key and an atomic value,
//! never reused), which is left to a specialised cell.

use std::fmt;

use crate::id::InterpreterKey;
use crate::seed::{SeededBug, Seeds};
use crate::slot_table::SlotTable;
use crate::sync::{current_thread, RwLock, RwLockWriteGuard, ThreadTag};

/// The result of [`PerInterpreterOnce::get_or_try_init`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a loser's value must be released in its interpreter"]
pub struct Init<T> {
    /// The interpreter's value: the same for every caller with this key until it is forgotten.
    pub value: T,
    /// This thread's own value when another thread stored first: the caller drops it in this
    /// interpreter (it is not referenced by the cell).
    pub loser: Option<T>,
    /// True when this call's initialiser produced `value`.
    pub initialised_here: bool,
}

/// Why [`PerInterpreterOnce::get_or_try_init`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnceError<E, T = ()> {
    /// The calling thread is already running this cell's initialiser for `key`: the initialiser
    /// called back into the cell it is initialising.
    Reentrant {
        /// The interpreter.
        key: InterpreterKey,
    },
    /// The initialiser failed; the cell stays empty for `key` and the next call runs it again.
    Init {
        /// The interpreter.
        key: InterpreterKey,
        /// The initialiser's error.
        error: E,
    },
    /// The interpreter's value was retired (its end began): nothing is stored for it any more.
    Ended {
        /// The interpreter.
        key: InterpreterKey,
        /// This call's own value, when its initialiser ran and finished after the retirement:
        /// not stored, so the caller releases it in this interpreter.
        unstored: Option<T>,
    },
}

impl<E: fmt::Display, T> fmt::Display for OnceError<E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnceError::Reentrant { key } => write!(
                f,
                "cannot initialise a per-interpreter once-cell for {key}: this thread is already \
                 running its initialiser for {key}, which called back into the same cell; \
                 initialise what it depends on first, or break the cycle"
            ),
            OnceError::Init { key, error } => write!(
                f,
                "initialising a per-interpreter once-cell for {key} failed: {error}; the cell \
                 stays empty and the next access retries"
            ),
            OnceError::Ended { key, .. } => write!(
                f,
                "cannot use a per-interpreter once-cell for {key}: the interpreter's end has \
                 begun and its value was released; nothing is kept for it any more"
            ),
        }
    }
}

impl<E: std::error::Error + 'static, T: fmt::Debug> std::error::Error for OnceError<E, T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OnceError::Reentrant { .. } | OnceError::Ended { .. } => None,
            OnceError::Init { error, .. } => Some(error),
        }
    }
}

/// Why [`PerInterpreterOnce::forget`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetRefused {
    /// The interpreter.
    pub key: InterpreterKey,
    /// How many threads are still running an initialiser for it.
    pub running: usize,
}

impl fmt::Display for ForgetRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot forget the once-cell value of {}: {} thread(s) are still running its \
             initialiser there and would store a value after it; end the interpreter only once \
             every attached thread has detached",
            self.key, self.running
        )
    }
}

impl std::error::Error for ForgetRefused {}

#[derive(Debug)]
struct State<T> {
    /// One value per interpreter, sorted by key.
    values: Vec<(InterpreterKey, T)>,
    /// The initialisers running now: which thread, for which interpreter. A (key, thread) pair
    /// occurs at most once, since a second one would be re-entrant.
    running: Vec<(InterpreterKey, ThreadTag)>,
    /// The interpreters whose values were retired, sorted: nothing is stored for them again.
    /// One key per ended interpreter that had reached the cell (16 bytes each).
    retired: Vec<InterpreterKey>,
}

impl<T> State<T> {
    fn find(&self, key: InterpreterKey) -> Result<usize, usize> {
        self.values.binary_search_by(|(k, _)| k.cmp(&key))
    }

    fn is_retired(&self, key: InterpreterKey) -> bool {
        self.retired.binary_search(&key).is_ok()
    }

    fn stop_running(&mut self, key: InterpreterKey, thread: ThreadTag) {
        if let Some(i) = self.running.iter().position(|&r| r == (key, thread)) {
            self.running.swap_remove(i);
        }
    }
}

/// A once-cell with one value per interpreter.
#[derive(Debug)]
pub struct PerInterpreterOnce<T> {
    state: RwLock<State<T>>,
    seeds: Seeds,
}

impl<T: Clone> Default for PerInterpreterOnce<T> {
    fn default() -> Self {
        PerInterpreterOnce::new()
    }
}

/// Clears this thread's "running" record if the initialiser unwinds, so a later call on the same
/// thread is not taken for re-entry.
struct Running<'a, T> {
    cell: &'a PerInterpreterOnce<T>,
    key: InterpreterKey,
    thread: ThreadTag,
    armed: bool,
}

impl<'a, T> Running<'a, T> {
    /// The initialiser returned: locks the cell, clears the record and keeps the lock.
    fn finish(mut self) -> RwLockWriteGuard<'a, State<T>> {
        self.armed = false;
        let cell: &'a PerInterpreterOnce<T> = self.cell;
        let mut st = cell.state.write();
        st.stop_running(self.key, self.thread);
        st
    }
}

impl<T> Drop for Running<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            self.cell.state.write().stop_running(self.key, self.thread);
        }
    }
}

impl<T: Clone> PerInterpreterOnce<T> {
    /// An empty cell.
    pub fn new() -> Self {
        PerInterpreterOnce::with_seeds(Seeds::none())
    }

    /// An empty cell with seeded bugs (only switchable under `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        PerInterpreterOnce {
            state: RwLock::new(State {
                values: Vec::new(),
                running: Vec::new(),
                retired: Vec::new(),
            }),
            seeds,
        }
    }

    /// The value for `key`, if it has been initialised (and not forgotten).
    #[inline]
    pub fn get(&self, key: InterpreterKey) -> Option<T> {
        let st = self.state.read();
        st.find(key).ok().map(|i| st.values[i].1.clone())
    }

    /// The value for `key`, running `init` to make it if there is none yet. The caller must be
    /// attached to `key`: `init` runs on the calling thread, without the cell's lock.
    ///
    /// Several threads may run `init` for one interpreter at once; the first to finish stores its
    /// value, the others get that value and their own back in [`Init::loser`]. If `init` calls
    /// back into this cell for the same `key` on the same thread, the inner call fails with
    /// [`OnceError::Reentrant`]. If `init` fails, nothing is stored. Once `key` is retired, the
    /// call fails with [`OnceError::Ended`] without running `init`, or, if `init` was already
    /// running, with its value handed back unstored.
    pub fn get_or_try_init<E>(
        &self,
        key: InterpreterKey,
        init: impl FnOnce() -> Result<T, E>,
    ) -> Result<Init<T>, OnceError<E, T>> {
        if let Some(value) = self.get(key) {
            return Ok(Init { value, loser: None, initialised_here: false });
        }
        let thread = current_thread();
        let mut st = self.state.write();
        // Re-check under the write lock: another thread may have stored since the read.
        if let Ok(i) = st.find(key) {
            return Ok(Init {
                value: st.values[i].1.clone(),
                loser: None,
                initialised_here: false,
            });
        }
        if st.is_retired(key) {
            return Err(OnceError::Ended { key, unstored: None });
        }
        if st.running.contains(&(key, thread)) {
            return Err(OnceError::Reentrant { key });
        }
        if self.seeds.active(SeededBug::OnceInitUnderLock) {
            // The seeded bug: run the initialiser with the write lock held.
            let made = init().map_err(|error| OnceError::Init { key, error })?;
            return Ok(Self::store(&mut st, key, made));
        }
        st.running.push((key, thread));
        drop(st);
        let running = Running { cell: self, key, thread, armed: true };
        let made = init();
        let mut st = running.finish();
        let made = made.map_err(|error| OnceError::Init { key, error })?;
        if st.is_retired(key) && !self.seeds.active(SeededBug::OnceStoreAfterRetire) {
            // The end began while `init` ran: the value is not kept for an ended interpreter.
            return Err(OnceError::Ended { key, unstored: Some(made) });
        }
        if self.seeds.active(SeededBug::OnceNoRecheckAfterInit) {
            // The seeded bug: store over whatever another thread stored meanwhile.
            match st.find(key) {
                Ok(i) => st.values[i].1 = made.clone(),
                Err(i) => st.values.insert(i, (key, made.clone())),
            }
            return Ok(Init { value: made, loser: None, initialised_here: true });
        }
        Ok(Self::store(&mut st, key, made))
    }

    /// Stores `made` for `key` unless a value is there already, in which case `made` is the loser.
    fn store(st: &mut State<T>, key: InterpreterKey, made: T) -> Init<T> {
        match st.find(key) {
            Ok(i) => {
                Init { value: st.values[i].1.clone(), loser: Some(made), initialised_here: false }
            }
            Err(i) => {
                st.values.insert(i, (key, made.clone()));
                Init { value: made, loser: None, initialised_here: true }
            }
        }
    }

    /// Removes and returns `key`'s value, for release while still attached to `key` right before
    /// it ends (or to discard if it ended already). A later access for `key` would initialise
    /// again; keys are never reused, so after an end none should come.
    ///
    /// Refused while any thread is running an initialiser for `key`: it would store a value after
    /// the forget. The FFI edge ends an interpreter only when no thread is attached to it, so the
    /// refusal flags a caller that broke that rule.
    pub fn forget(&self, key: InterpreterKey) -> Result<Option<T>, ForgetRefused> {
        let mut st = self.state.write();
        let running = st.running.iter().filter(|(k, _)| *k == key).count();
        if running > 0 {
            return Err(ForgetRefused { key, running });
        }
        Ok(st.find(key).ok().map(|i| st.values.remove(i).1))
    }

    /// Retires `key` for good, right as its end begins: removes and returns its value, for release
    /// while still attached to `key`, and refuses to store one for it ever after. Unlike
    /// [`forget`](Self::forget) it never refuses: an initialiser running for `key` now gets its
    /// value back as [`OnceError::Ended`] when it finishes. Retiring twice returns `None`.
    pub fn retire(&self, key: InterpreterKey) -> Option<T> {
        let mut st = self.state.write();
        if let Err(i) = st.retired.binary_search(&key) {
            st.retired.insert(i, key);
        }
        st.find(key).ok().map(|i| st.values.remove(i).1)
    }

    /// Removes and returns every value, with its interpreter: for a cell that is being dropped,
    /// whose values go back to their interpreters (now or deferred).
    pub fn take_all(&self) -> Vec<(InterpreterKey, T)> {
        std::mem::take(&mut self.state.write().values)
    }

    /// The interpreters that have a value now, in key order.
    pub fn keys(&self) -> Vec<InterpreterKey> {
        self.state.read().values.iter().map(|(k, _)| *k).collect()
    }
}

#[cfg(all(test, not(interpsafe_loom)))]
mod tests;

/// A per-interpreter once-cell of addresses with a lock-free read in front: a [`SlotTable`]
/// indexed by the interpreter's registry slot, filled from the canonical
/// [`PerInterpreterOnce`] after every successful access, and retired with it when the
/// interpreter's end begins.
///
/// Retirement order: the canonical value first (so no initialiser stores after it), then the
/// slot (the mark stops a publisher that read the value before the end from publishing it again).
#[derive(Debug, Default)]
pub struct SlottedOnce {
    cells: PerInterpreterOnce<usize>,
    fast: SlotTable,
}

impl SlottedOnce {
    /// An empty cell.
    pub fn new() -> Self {
        SlottedOnce::with_seeds(Seeds::none())
    }

    /// An empty cell with seeded bugs in both halves (only switchable under
    /// `--cfg interpsafe_loom`).
    pub fn with_seeds(seeds: Seeds) -> Self {
        SlottedOnce {
            cells: PerInterpreterOnce::with_seeds(seeds.clone()),
            fast: SlotTable::with_seeds(seeds),
        }
    }

    /// The value at `slot` on the lock-free path: one slot read, `None` until the slow path
    /// published it and after the slot was retired.
    #[inline]
    pub fn get_fast(&self, slot: u32) -> Option<usize> {
        self.fast.get(slot)
    }

    /// The value for `key` (whose slot is `slot`, if it has one), running `init` to make it if
    /// there is none yet, then published at `slot` for [`get_fast`](Self::get_fast). As
    /// [`PerInterpreterOnce::get_or_try_init`], whose [`Init`] it returns.
    pub fn get_or_try_init<E>(
        &self,
        key: InterpreterKey,
        slot: Option<u32>,
        init: impl FnOnce() -> Result<usize, E>,
    ) -> Result<Init<usize>, OnceError<E, usize>> {
        let got = match self.cells.get(key) {
            Some(value) => Init { value, loser: None, initialised_here: false },
            None => self.cells.get_or_try_init(key, init)?,
        };
        if let Some(slot) = slot {
            // Idempotent; refused once the slot is retired.
            let _ = self.fast.publish(slot, got.value);
        }
        Ok(got)
    }

    /// Retires `key` (slot `slot`) as its end begins and returns its value for release there;
    /// see [`PerInterpreterOnce::retire`] and [`SlotTable::retire`].
    pub fn retire(&self, key: InterpreterKey, slot: Option<u32>) -> Option<usize> {
        let value = self.cells.retire(key);
        if let Some(slot) = slot {
            // The slot holds the canonical value or nothing: the canonical one is returned.
            let _ = self.fast.retire(slot);
        }
        value
    }

    /// Removes and returns every value with its interpreter (the cell is being dropped). The
    /// slots keep their values: nothing reads a cell that is being dropped.
    pub fn take_all(&self) -> Vec<(InterpreterKey, usize)> {
        self.cells.take_all()
    }

    /// The interpreters that have a value now, in key order.
    pub fn keys(&self) -> Vec<InterpreterKey> {
        self.cells.keys()
    }
}
