//! The process-wide runtime: the one registry instance, the decref pool, and the current
//! interpreter (initialisation is in `startup.rs`, registration on first entry in
//! `registration.rs`, both above this file).
//!
//! This is the FFI edge of the registry protocol: the protocol keeps its state in an instance
//! (so loom can check it); the edge owns the single instance the process uses and feeds it what
//! CPython says.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

use interpsafe_protocol::{DecrefPool, InterpreterId, InterpreterKey, PoolStats, Registry, Status};

use super::{interpreter_list, thread_state};
use crate::pyo3_compat::ffi;
use crate::tag::Tag;

/// A plain static, not a lazily initialised one: the tagged strategy's fast path reads a word of
/// it on every bind, and a `OnceLock` would add its own check (and an out-of-line call) there.
static REGISTRY: Registry = Registry::new();
static DECREF_POOL: OnceLock<DecrefPool> = OnceLock::new();

/// The registry every interpreter of this process is recorded in.
///
/// Internal: whoever can call `observe`, `attach`, `detach` or `ended` on it can make `attach`
/// use any address as an interpreter or release a guard someone else holds. Safe code outside
/// the crate reads it through [`status`], [`lookup`] and [`only_main_seen`]; tests that must
/// drive it build with `--cfg interpsafe_internal`.
#[cfg(interpsafe_internal)]
#[inline]
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// The registry every interpreter of this process is recorded in (crate-internal; see the
/// `interpsafe_internal` variant).
#[cfg(not(interpsafe_internal))]
#[inline]
pub(crate) fn registry() -> &'static Registry {
    &REGISTRY
}

/// The per-interpreter deferred-decref pool of the checked strategies.
///
/// Internal: `defer` queues an arbitrary address for a decref in a chosen interpreter. Safe
/// code outside the crate reads it through [`decref_stats`] and [`pending_decrefs`]; tests that
/// must drive it build with `--cfg interpsafe_internal`.
#[cfg(interpsafe_internal)]
pub fn decref_pool() -> &'static DecrefPool {
    DECREF_POOL.get_or_init(DecrefPool::new)
}

/// The per-interpreter deferred-decref pool (crate-internal; see the `interpsafe_internal`
/// variant).
#[cfg(not(interpsafe_internal))]
pub(crate) fn decref_pool() -> &'static DecrefPool {
    DECREF_POOL.get_or_init(DecrefPool::new)
}

/// Where `key` is in its life, or `None` if this process has never seen it (read-only view of
/// the registry).
pub fn status(key: InterpreterKey) -> Option<Status> {
    registry().status(key)
}

/// The key the registry gives interpreter `id` in the current runtime epoch, if toolkit code has
/// ever run there.
pub fn lookup(id: InterpreterId) -> Option<InterpreterKey> {
    registry().lookup(id)
}

/// True while no interpreter other than main has ever been observed (the tagged strategy's
/// fast-path condition as the registry sees it).
pub fn only_main_seen() -> bool {
    registry().only_main_seen()
}

/// Totals of the deferred-decref pool: queued, released, discarded (read-only).
pub fn decref_stats() -> PoolStats {
    decref_pool().stats()
}

/// How many releases are queued for `key` right now (read-only).
pub fn pending_decrefs(key: InterpreterKey) -> usize {
    decref_pool().pending(key)
}

/// The interpreter this thread is attached to: its tag, and its slot when the registry has seen
/// it (the index of per-interpreter tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Current {
    pub(crate) tag: Tag,
    pub(crate) slot: Option<u32>,
}

thread_local! {
    /// The last interpreter this thread looked up: (interpreter address, registry end generation,
    /// packed tag, slot). Keyed by the address *and* the end generation, because addresses are
    /// reused once an interpreter has ended, and every end moves the generation first.
    static LAST: Cell<(usize, u64, u64, u32)> = const { Cell::new((0, u64::MAX, 0, 0)) };
}

/// The interpreter this thread is attached to, if any: the per-access lookup of the tagged
/// strategy and of every deferred drop.
///
/// One `PyThreadState_GetUnchecked` call, then an in-place read of the thread state's
/// interpreter and a thread-local cache hit; on a miss, `PyInterpreterState_GetID` and a
/// registry lookup. Only interpreters whose end the registry will observe are cached, and only
/// once the in-place read has been checked against `PyThreadState_GetInterpreter` (before that,
/// or if they disagree, every lookup misses).
#[inline]
pub(crate) fn current() -> Option<Current> {
    // SAFETY: PyThreadState_GetUnchecked may be called in any state; NULL means not attached.
    let tstate = unsafe { ffi::PyThreadState_GetUnchecked() };
    if tstate.is_null() {
        return None;
    }
    // SAFETY: `tstate` is this thread's attached thread state. The value read is only trusted
    // when it equals the cached address, which is stored only once the in-place read has been
    // verified (in `current_slow`).
    let interp = unsafe { thread_state::interpreter_of(tstate) } as usize;
    let (addr, gen, tag, slot) = LAST.get();
    if addr == interp && gen == REGISTRY.end_generation() {
        return Some(Current { tag: Tag::from_raw(tag), slot: Some(slot) });
    }
    current_slow(tstate)
}

#[cold]
#[inline(never)]
fn current_slow(tstate: *mut ffi::PyThreadState) -> Option<Current> {
    let reg = registry();
    // Read before the lookup: an end after this point moves the generation past the one the
    // cache entry is stored with, so the entry is never used.
    let generation = reg.end_generation();
    // SAFETY: `tstate` is this thread's attached thread state, alive during the calls.
    let (interp, id) = unsafe {
        let interp = ffi::PyThreadState_GetInterpreter(tstate);
        (interp, ffi::PyInterpreterState_GetID(interp))
    };
    let tag = Tag::from_parts(reg.epoch_relaxed(), id);
    let slot = reg.cacheable_slot(tag.key());
    // SAFETY: `tstate` is this thread's attached thread state.
    let in_place_agrees = unsafe { thread_state::layout_verified(tstate) };
    if let (Some(slot), true) = (slot, in_place_agrees) {
        LAST.set((interp as usize, generation, tag.raw(), slot));
    }
    Some(Current { tag, slot })
}

/// The main interpreter's address, stored by [`initialize`](super::initialize) (CPython keeps main in the runtime
/// struct, so the address does not change across re-initialisations); null before.
pub(super) static MAIN_INTERP: AtomicPtr<ffi::PyInterpreterState> =
    AtomicPtr::new(std::ptr::null_mut());

/// True if CPython's own list of interpreters holds the main interpreter alone right now, so a
/// thread that is attached at all is attached to main.
///
/// The registry's fast-path word says which interpreters *toolkit code* has seen; this asks
/// CPython which exist. They differ when an interpreter toolkit code never entered is running
/// on this thread: C code that switched the thread state under a scope
/// (`PyThreadState_New` / `PyEval_RestoreThread` on an interpreter made by
/// `_interpreters.create()`). The list is CPython's: new interpreters are pushed at its head
/// under the runtime's lock, and main, created first, is its tail, so the head is main exactly
/// when main is the only interpreter. A thread attached to another interpreter made its thread
/// state there after that push (through the same lock), so it cannot read a stale head of main.
#[inline(always)]
pub(crate) fn only_main_alive() -> bool {
    let main = MAIN_INTERP.load(Ordering::Relaxed);
    !main.is_null() && interpreter_list::head() == main
}

/// Whether the tagged fast path reads the head of CPython's interpreter list in place (through
/// `_PyRuntime`'s debug offsets, checked against `PyInterpreterState_Head` at initialisation)
/// rather than calling `PyInterpreterState_Head`. False before [`initialize`], or where the
/// debug offsets are not a layout it knows (3.13 to 3.15).
pub fn interpreter_list_read_in_place() -> bool {
    interpreter_list::read_in_place()
}

/// The owner tag for a new reference made on this thread, which is attached (inside a scope):
/// main's tag when main is alone both in the registry and in CPython's list (no lookup), else
/// the current interpreter looked up; `fallback` only if the thread turns out not attached.
#[inline]
pub(crate) fn attached_tag(fallback: InterpreterKey) -> Tag {
    let fast = REGISTRY.fast_owner();
    if fast != interpsafe_protocol::NO_FAST_OWNER && only_main_alive() {
        return Tag::from_raw(fast);
    }
    current_tag().unwrap_or(Tag::from_key(fallback))
}

/// What a scope entered on a thread attached to `key` records: the current interpreter's tag and
/// slot, read once (falling back to `key` without a slot if the lookup finds no thread state).
pub(crate) fn scope_reading(key: InterpreterKey) -> (Tag, Option<u32>) {
    match current() {
        Some(c) => (c.tag, c.slot),
        None => (Tag::from_key(key), None),
    }
}

/// The owner tag of the interpreter this thread is attached to, if any.
#[inline]
pub(crate) fn current_tag() -> Option<Tag> {
    current().map(|c| c.tag)
}
