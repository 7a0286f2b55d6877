//! Marking a toolkit subinterpreter as running its main program, so Python code cannot end it
//! under the toolkit's worker.
//!
//! `_interpreters.destroy(id)` refuses an interpreter that is "running main" (InterpreterError:
//! "interpreter running"); without the mark it calls `Py_EndInterpreter` on a thread state of its
//! own, and CPython aborts the process ("not the last thread") because the toolkit's worker
//! thread keeps a thread state there. The worker therefore marks its own thread state as the
//! interpreter's main thread for the interpreter's whole life, through
//! `_PyInterpreterState_SetRunningMain`, the call `_interpreters.exec` itself makes (exported by
//! libpython 3.13; declared in an internal header, so pyo3-ffi does not have it).
//!
//! The mark must stay on until CPython removes the interpreter from its list: cleared earlier
//! (it was cleared just before `Py_EndInterpreter`), it let a Python thread spinning on
//! `_interpreters.destroy(id)` in (found by attack), which then hung in a thread state of the
//! interpreter being freed, or aborted the process. But CPython asserts (on `--with-pydebug`
//! builds) that no thread state it clears is the running main one. So the mark is made to point
//! at no thread state at all: the worker marks its own thread state through the API, then the
//! field is located by its neighbours (the words before it must hold what the API reports of the
//! interpreter: its ID, `_whence`, `_ready` flag and thread list head; 3.13's
//! `Include/internal/pycore_interp.h`) and overwritten with a sentinel address that is never a
//! thread state. `_PyInterpreterState_IsRunningMain` then holds until
//! the interpreter is freed, and no thread state is the running main one when CPython clears
//! it. CPython only compares the field, never dereferences it (3.13's `pystate.c`).
//!
//! If the field cannot be located exactly once, the worker's thread state stays marked and a
//! process-wide audit hook (`PySys_AddAuditHook`) clears the mark when
//! `PyInterpreterState_Clear` raises `cpython.PyInterpreterState_Clear` (after the last-thread
//! check, before thread states are cleared): a destroy in the instant between that and the
//! interpreter leaving CPython's list then hangs the destroying thread.
//!
//! Not covered: the moment between `Py_NewInterpreterFromConfig` adding the interpreter to
//! CPython's list and the worker marking it; `_interpreters.destroy` of an ID guessed in that
//! moment aborts the process ("not the last thread") while the interpreter is still
//! initialising (listed in `docs/threat-model.md`).
//!
//! The trade-off: `_interpreters.exec(id, ...)` refuses it too ("interpreter already running").
//! Python code cannot run code in a toolkit subinterpreter; toolkit code does that with
//! `SubInterpreter::run`, or any thread with `attach`. Interpreters created from Python are not
//! marked for their whole life: their ends are handled by the end observer's handshake instead.
//!
//! They are marked for a while, though: whenever something *holds* one ([`Hold`]). A thread that
//! suspends its thread state there to attach elsewhere or to wait on another thread holds it
//! ([`SuspendedMark`]): the end observer's handshake cannot help, because the suspended thread
//! state is the destroying thread's own (or belongs to a thread blocked on the destroying one), so
//! waiting for it would deadlock, and ending under it makes CPython abort ("not the last thread";
//! found by attack: `attach(x, || attach(main, || _interpreters.destroy(x)))` aborted). And a
//! [`SharedBytes`](crate::share::SharedBytes) holds it while it pins its memory ([`PinMark`]):
//! the end waits for pins, so a holder that destroys the interpreter from Python would wait for
//! itself. Suspensions and pins are counted together, per interpreter, by one protocol
//! (`interpsafe_protocol::HoldMarks`, modelled in loom): the first hold points the running-main
//! field at the sentinel, the last one clears it. Marks of their own did not compose (found by
//! attack): a second suspension found the interpreter marked and held nothing, and the last pin's
//! unmark cleared the mark a suspended thread state relied on.
//!
//! A hold also keeps CPython ID references to the interpreter, and a toolkit subinterpreter keeps
//! them for its whole life: `_interpreters.decref` ends an interpreter whose ID references reach
//! zero (after `incref(id, implieslink=True)`), with no running-main check, so an `incref`/
//! `decref` pair from Python ended held interpreters too (found by attack). It keeps a reserve of
//! 2^48 ([`ID_RESERVE`]), not one: a single reference was spent by one `decref` too many, and
//! the next pair ended the interpreter (found by attack; CPython's own debug-build assertion on
//! that misuse did not fire, since the toolkit's reference absorbed it). The toolkit gives its
//! references back without ever ending the interpreter itself (it lowers the count under
//! CPython's ID lock, where `_PyInterpreterState_IDDecref` would end the interpreter at zero on
//! the releasing thread, which is attached there): an interpreter whose last Python reference
//! went while the toolkit held it stays until `_interpreters.destroy` or the next `incref`/
//! `decref` pair ends it. What the reserve costs: Python's unbalanced `decref`s go unnoticed
//! while it lasts (the debug build's assertion at zero cannot fire).
//!
//! What a mark cannot cover: an interpreter already marked by `_interpreters.exec` code running
//! on *another* thread. That mark goes when the code returns, and the toolkit cannot take it over
//! (CPython clears it without looking). A thread attached there therefore cannot suspend its
//! thread state: nested attaches elsewhere and blocking toolkit calls fail with
//! [`Error::CannotSuspend`](crate::Error::CannotSuspend). Under `exec` code on the *same* thread,
//! the suspension ends before that code returns, and nothing more is needed. A pin taken under an
//! `exec` mark is not marked: a Python destroy after that code returned waits for the pin
//! (PEP 788's wait), which is a deadlock only if the destroying thread holds the pin.
use crate::pyo3_compat::ffi;
use interpsafe_protocol::HoldMarks;

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
#[cfg(not(Py_3_14))]
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

extern "C" {
    fn _PyInterpreterState_IsReady(interp: *mut ffi::PyInterpreterState) -> c_int;
    fn _PyInterpreterState_GetWhence(interp: *mut ffi::PyInterpreterState) -> c_long;
    fn _PyInterpreterState_SetRunningMain(interp: *mut ffi::PyInterpreterState) -> c_int;
    fn _PyInterpreterState_SetNotRunningMain(interp: *mut ffi::PyInterpreterState);
    fn _PyInterpreterState_IsRunningMain(interp: *mut ffi::PyInterpreterState) -> c_int;
    // Returns a status up to 3.13 (it may have to make the ID lock); nothing from 3.14, where
    // the count is atomic.
    #[cfg(not(Py_3_14))]
    fn _PyInterpreterState_IDIncref(interp: *mut ffi::PyInterpreterState) -> c_int;
    #[cfg(Py_3_14)]
    fn _PyInterpreterState_IDIncref(interp: *mut ffi::PyInterpreterState);
    fn _PyInterpreterState_RequiresIDRef(interp: *mut ffi::PyInterpreterState) -> c_int;
    #[cfg(not(Py_3_14))]
    fn PyThread_acquire_lock(lock: *mut c_void, waitflag: c_int) -> c_int;
    #[cfg(not(Py_3_14))]
    fn PyThread_release_lock(lock: *mut c_void);
    fn PySys_AddAuditHook(
        hook: unsafe extern "C" fn(*const c_char, *mut ffi::PyObject, *mut c_void) -> c_int,
        user_data: *mut c_void,
    ) -> c_int;
}

/// The interpreters (by address) whose worker this module marked and that have not been
/// cleared yet.
static MARKED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The audit event CPython raises at the start of `PyInterpreterState_Clear`.
const CLEAR_EVENT: &CStr = c"cpython.PyInterpreterState_Clear";

/// Clears the mark of a marked interpreter when CPython starts clearing it (see the module
/// docs). Every other event passes.
unsafe extern "C" fn unmark_on_clear(
    event: *const c_char,
    _args: *mut ffi::PyObject,
    _user: *mut c_void,
) -> c_int {
    // SAFETY: CPython passes a NUL-terminated event name.
    if event.is_null() || unsafe { CStr::from_ptr(event) } != CLEAR_EVENT {
        return 0;
    }
    // SAFETY: CPython raises this event on the thread that clears the interpreter, attached to
    // it with the thread state that ends it.
    let interp = unsafe { ffi::PyThreadState_GetInterpreter(ffi::PyThreadState_Get()) };
    let mut marked = MARKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = marked.iter().position(|&m| m == interp as usize) {
        marked.swap_remove(i);
        // SAFETY: `interp` was marked by its worker, whose thread state is the current one:
        // Py_EndInterpreter runs on the worker with its own thread state.
        unsafe { _PyInterpreterState_SetNotRunningMain(interp) };
    }
    0
}

/// Whether the toolkit's worker marked `interp` through the API alone (its field not located).
fn marked_by_worker(interp: *mut ffi::PyInterpreterState) -> bool {
    MARKED.lock().unwrap_or_else(|e| e.into_inner()).contains(&(interp as usize))
}

/// Never a thread state: what the running-main field of a marked interpreter points at.
static SENTINEL: u8 = 0;

/// The sentinel's address, as the running-main field holds it.
fn sentinel() -> usize {
    std::ptr::addr_of!(SENTINEL) as usize
}

/// How far into `PyInterpreterState` the running-main field is looked for, in words: it sits in
/// the `threads` group, after the eval state (whose pending-call table alone is about 7 KiB on
/// 3.13), well inside the first 32 KiB of a struct that is far larger.
const SCAN_WORDS: usize = 4096;

/// How many bytes before the running-main field (`threads.main`) each field this module reads or
/// writes sits (`Include/internal/pycore_interp.h` on 3.13, `pycore_interp_structs.h` from 3.14):
/// on 3.13 `id`, `id_refcount`, `requires_idref`, `id_mutex`, `_whence`, `_initialized`, `_ready`,
/// `finalizing`, `last_restart_version`, `threads.next_unique_id`, `threads.head`,
/// `threads.main`; from 3.14 `id_mutex` is gone (the ID count is atomic) and
/// `threads.preallocated` sits between `threads.head` and `threads.main` (3.14.10 and 3.15.2
/// agree). Each is checked against what the API reports before anything is written, so a layout
/// this table does not know leaves the field unlocated, never misread.
mod before_main {
    /// `int64_t id`.
    pub(super) const ID: usize = 80;
    /// `int64_t id_refcount` (`Py_ssize_t` from 3.14): guarded by `id_mutex` up to 3.13, atomic
    /// from 3.14.
    pub(super) const ID_REFCOUNT: usize = 72;
    /// `int requires_idref`.
    pub(super) const REQUIRES_IDREF: usize = 64;
    /// `PyThread_type_lock id_mutex` (up to 3.13).
    #[cfg(not(Py_3_14))]
    pub(super) const ID_MUTEX: usize = 56;
    /// `long _whence`.
    #[cfg(not(Py_3_14))]
    pub(super) const WHENCE: usize = 48;
    /// `long _whence`.
    #[cfg(Py_3_14)]
    pub(super) const WHENCE: usize = 56;
    /// `int _ready`.
    #[cfg(not(Py_3_14))]
    pub(super) const READY: usize = 36;
    /// `int _ready`.
    #[cfg(Py_3_14)]
    pub(super) const READY: usize = 44;
    /// `int finalizing`, set first thing by `Py_EndInterpreter` and `Py_FinalizeEx`.
    #[cfg(not(Py_3_14))]
    pub(super) const FINALIZING: usize = 32;
    /// `int finalizing`, set first thing by `Py_EndInterpreter` and `Py_FinalizeEx`.
    #[cfg(Py_3_14)]
    pub(super) const FINALIZING: usize = 40;
    /// `PyThreadState *threads.head`.
    #[cfg(not(Py_3_14))]
    pub(super) const HEAD: usize = 8;
    /// `PyThreadState *threads.head`.
    #[cfg(Py_3_14)]
    pub(super) const HEAD: usize = 16;
}

/// The word index of the running-main field in `PyInterpreterState`, plus one (0 while unknown).
/// The layout is the libpython's, so the first interpreter located tells it for all.
static FIELD: AtomicUsize = AtomicUsize::new(0);

/// The fields of one live interpreter around its running-main field.
#[derive(Clone, Copy)]
struct Fields {
    /// The address of `threads.main`.
    main: *mut u8,
}

/// What the API reports of an interpreter, for [`Fields::agree`]: its ID, `_whence`, `_ready`,
/// `requires_idref`, and (when given) `threads.head`, which changes as threads come and go.
struct Reported {
    id: i64,
    whence: i64,
    ready: i32,
    requires_idref: i32,
    head: Option<usize>,
}

impl Reported {
    /// Reads them once.
    ///
    /// # Safety
    /// The calling thread must be attached to the live `interp`.
    unsafe fn of(interp: *mut ffi::PyInterpreterState, with_head: bool) -> Reported {
        // SAFETY: attached to the live `interp` (caller's contract).
        unsafe {
            Reported {
                id: ffi::PyInterpreterState_GetID(interp),
                whence: _PyInterpreterState_GetWhence(interp) as i64,
                ready: _PyInterpreterState_IsReady(interp),
                requires_idref: _PyInterpreterState_RequiresIDRef(interp),
                head: with_head.then(|| ffi::PyInterpreterState_ThreadHead(interp) as usize),
            }
        }
    }
}

impl Fields {
    /// The fields of `interp`, at the located offset, unchecked.
    ///
    /// # Safety
    /// `interp` must be a live interpreter.
    unsafe fn at(interp: *mut ffi::PyInterpreterState) -> Option<Fields> {
        match FIELD.load(Ordering::Relaxed) {
            0 => None,
            // SAFETY: a word index below SCAN_WORDS, inside the live struct (caller's contract).
            i => Some(Fields { main: unsafe { interp.cast::<usize>().add(i - 1).cast() } }),
        }
    }

    /// The field `before` bytes before the running-main field, as a `T`.
    ///
    /// # Safety
    /// The interpreter must be live; `before` is one of [`before_main`] (or 0) and `T` that
    /// field's type (or its atomic twin).
    unsafe fn field<T>(&self, before: usize) -> &T {
        // SAFETY: the offsets of `before_main` lie inside the struct, before `threads.main`,
        // and are aligned for their types (caller's contract).
        unsafe { &*self.main.sub(before).cast::<T>() }
    }

    /// Whether the fields read what the API reported of the interpreter (`reported`).
    ///
    /// # Safety
    /// `self` must point into a live interpreter.
    unsafe fn agree(&self, reported: &Reported) -> bool {
        // SAFETY: live (caller's contract); the reads are atomic where CPython writes
        // concurrently.
        unsafe {
            self.field::<AtomicI64>(before_main::ID).load(Ordering::Relaxed) == reported.id
                && self.field::<AtomicI64>(before_main::WHENCE).load(Ordering::Relaxed)
                    == reported.whence
                && self.field::<AtomicI32>(before_main::READY).load(Ordering::Relaxed)
                    == reported.ready
                && self.field::<AtomicI32>(before_main::REQUIRES_IDREF).load(Ordering::Relaxed)
                    == reported.requires_idref
                && reported.head.is_none_or(|head| {
                    self.field::<AtomicUsize>(before_main::HEAD).load(Ordering::Relaxed) == head
                })
        }
    }

    /// The running-main field.
    fn running_main(&self) -> &AtomicUsize {
        // SAFETY: offset 0 is the field itself, a pointer CPython reads and writes atomically.
        unsafe { self.field(0) }
    }

    /// The `_ready` flag.
    fn ready(&self) -> &AtomicI32 {
        // SAFETY: an aligned `int` inside the struct.
        unsafe { self.field(before_main::READY) }
    }

    /// Takes [`ID_RESERVE`] of CPython's ID references to `interp` (one through
    /// `_PyInterpreterState_IDIncref`, which makes the ID lock if needed, the rest under that
    /// lock). False (nothing taken, the error indicator as it was) if CPython could not make the
    /// lock.
    ///
    /// # Safety
    /// The calling thread must be attached to the live `interp`.
    unsafe fn take_id_refs(&self, interp: *mut ffi::PyInterpreterState) -> bool {
        #[cfg(Py_3_14)]
        let taken = {
            // SAFETY: attached (caller's contract); from 3.14 the incref is an atomic add that
            // cannot fail.
            unsafe { _PyInterpreterState_IDIncref(interp) };
            true
        };
        #[cfg(not(Py_3_14))]
        // SAFETY: attached (caller's contract); the pending error is saved and restored around
        // a call that sets one on failure.
        let taken = unsafe {
            let pending = ffi::PyErr_GetRaisedException();
            let taken = _PyInterpreterState_IDIncref(interp) == 0;
            ffi::PyErr_Clear();
            ffi::PyErr_SetRaisedException(pending);
            taken
        };
        // SAFETY: live; the lock exists once the incref succeeded.
        taken && unsafe { self.with_id_count(|n| n.saturating_add(ID_RESERVE - 1)) }
    }

    /// Gives back the references [`Fields::take_id_refs`] took, under CPython's ID lock, without
    /// ever ending the interpreter (see the module docs). Any thread, attached or not.
    ///
    /// # Safety
    /// The interpreter must be live, and the references taken by this module still held.
    unsafe fn drop_id_refs_without_ending(&self) {
        // SAFETY: caller's contract, passed on.
        let _ = unsafe { self.with_id_count(|n| n.saturating_sub(ID_RESERVE).max(0)) };
    }

    /// Replaces the ID reference count with `f` of it, under CPython's ID lock (`id_refcount` is
    /// only written under that lock, by CPython and here). False if there is no lock yet.
    ///
    /// # Safety
    /// The interpreter must be live.
    #[cfg(not(Py_3_14))]
    unsafe fn with_id_count(&self, f: impl FnOnce(i64) -> i64) -> bool {
        // SAFETY: live (caller's contract): the lock, once made, lives as long as the
        // interpreter; the count is read and written while holding it.
        unsafe {
            let lock =
                self.field::<AtomicPtr<c_void>>(before_main::ID_MUTEX).load(Ordering::Relaxed);
            if lock.is_null() {
                return false;
            }
            PyThread_acquire_lock(lock, 1);
            let count = self.field::<AtomicI64>(before_main::ID_REFCOUNT);
            count.store(f(count.load(Ordering::Relaxed)), Ordering::Relaxed);
            PyThread_release_lock(lock);
        }
        true
    }

    /// Replaces the ID reference count with `f` of it, atomically: from 3.14 CPython updates it
    /// with atomic adds only, and ends the interpreter only when its own decrement takes it from
    /// 1 to 0, never on a store made here. Always true.
    ///
    /// # Safety
    /// The interpreter must be live.
    #[cfg(Py_3_14)]
    unsafe fn with_id_count(&self, f: impl Fn(i64) -> i64) -> bool {
        // SAFETY: live (caller's contract); `id_refcount` is a word CPython updates atomically.
        let count = unsafe { self.field::<AtomicI64>(before_main::ID_REFCOUNT) };
        let _ = count.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| Some(f(n)));
        true
    }
}

/// How many of CPython's ID references the toolkit keeps on an interpreter it holds. One would
/// not do: Python code that calls `_interpreters.decref` once more than `incref` spends it, and
/// an `incref(implieslink=True)`/`decref` pair then ends the interpreter under the hold (found by
/// attack). Spending 2^48 takes as many unbalanced calls, years of them.
const ID_RESERVE: i64 = 1 << 48;

/// Finds the running-main field of `interp` by its neighbours (see [`before_main`]): the one word
/// index whose neighbours read what the API reports, and which is null exactly when the API says
/// the interpreter runs no main program. A few attempts, as the thread list head may move.
///
/// # Safety
/// The calling thread must be attached to the live `interp` (its struct is far larger than
/// `SCAN_WORDS` words).
unsafe fn locate(interp: *mut ffi::PyInterpreterState) -> Option<usize> {
    let first = before_main::ID / std::mem::size_of::<usize>();
    for _ in 0..3 {
        // SAFETY: attached to the live `interp` (caller's contract).
        let (reported, running) =
            unsafe { (Reported::of(interp, true), _PyInterpreterState_IsRunningMain(interp) != 0) };
        let found: Vec<usize> = (first..SCAN_WORDS)
            .filter(|&i| {
                // SAFETY: word `i` and the words before it lie in the live struct.
                unsafe {
                    let f = Fields { main: interp.cast::<usize>().add(i).cast() };
                    (f.running_main().load(Ordering::Relaxed) != 0) == running && f.agree(&reported)
                }
            })
            .collect();
        if let [i] = found[..] {
            return Some(i);
        }
    }
    None
}

/// The checked fields of `interp`, locating the running-main field first if needed.
///
/// # Safety
/// The calling thread must be attached to the live `interp`.
unsafe fn fields_of(interp: *mut ffi::PyInterpreterState) -> Option<Fields> {
    if FIELD.load(Ordering::Relaxed) == 0 {
        // SAFETY: caller's contract, passed on.
        let i = unsafe { locate(interp) }?;
        FIELD.store(i + 1, Ordering::Relaxed);
    }
    // SAFETY: as above.
    let fields = unsafe { Fields::at(interp) }?;
    // SAFETY: as above.
    unsafe { fields.agree(&Reported::of(interp, false)) }.then_some(fields)
}

/// Installs the audit hook once per process.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: the hook is a plain function with CPython's audit hook signature that calls
        // only thread-safe C API; a failure to install leaves debug builds asserting at the end
        // of a toolkit subinterpreter, which the test suite would show.
        unsafe { PySys_AddAuditHook(unmark_on_clear, std::ptr::null_mut()) };
    });
}

/// Marks the calling thread as running `interp`'s main program until CPython starts clearing
/// the interpreter, and takes ID references it never gives back (see the module docs). Returns
/// false (with no Python error left) if someone else already runs it.
///
/// # Safety
/// The calling thread must be attached to `interp` with the thread state that stays the
/// interpreter's main thread until the interpreter ends.
pub(crate) unsafe fn mark(interp: *mut ffi::PyInterpreterState) -> bool {
    // SAFETY: attached to `interp` (caller's contract), which the call requires.
    if unsafe { _PyInterpreterState_SetRunningMain(interp) } != 0 {
        // SAFETY: attached; the failed call set an error.
        unsafe { ffi::PyErr_Clear() };
        return false;
    }
    // SAFETY: attached to `interp` with the thread state just marked.
    let (tstate, fields) = unsafe { (ffi::PyThreadState_Get() as usize, fields_of(interp)) };
    let pointed = fields.is_some_and(|f| {
        // SAFETY: attached to the live `interp`.
        let _ = unsafe { f.take_id_refs(interp) };
        f.running_main()
            .compare_exchange(tstate, sentinel(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    });
    if !pointed {
        install_hook();
        MARKED.lock().unwrap_or_else(|e| e.into_inner()).push(interp as usize);
    }
    true
}

/// The holds counted per interpreter, and when to mark and unmark (the protocol, modelled in
/// loom: `interpsafe_protocol::HoldMarks`).
static HOLDS: HoldMarks = HoldMarks::new();

/// What holds an interpreter: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldKind {
    /// A thread state suspended there.
    Suspension,
    /// A pin of its memory.
    Pin,
}

/// One hold on an interpreter, to be released by its holder.
#[derive(Debug)]
enum Hold {
    /// Nothing to release: the main interpreter, a toolkit subinterpreter (marked for life), a
    /// suspension under `exec` code of its own thread, or an unmarked pin.
    Nothing,
    /// Counted in [`HOLDS`] (the interpreter's address).
    Counted(usize),
    /// Marked through the API with the suspended thread state, where the running-main field
    /// could not be located (another layout): the old, uncounted way.
    ApiMarked(*mut ffi::PyInterpreterState),
}

/// The interpreter runs `exec` code on another thread: its mark cannot be relied on or shared.
struct MarkedElsewhere;

impl Hold {
    /// Holds the calling thread's interpreter (see the module docs).
    ///
    /// # Safety
    /// The calling thread must be attached, and its interpreter live until the hold is
    /// released: for a suspension, the thread state stays suspended and is restored before
    /// [`Hold::release`]; for a pin, the caller pins the interpreter meanwhile.
    unsafe fn take(kind: HoldKind) -> Result<Hold, MarkedElsewhere> {
        // SAFETY: attached (caller's contract): the current thread state and its interpreter
        // are live, and the calls below need exactly that.
        unsafe {
            let tstate = ffi::PyThreadState_Get();
            let interp = ffi::PyThreadState_GetInterpreter(tstate);
            if interp == ffi::PyInterpreterState_Main() {
                return Ok(Hold::Nothing);
            }
            let Some(fields) = fields_of(interp) else {
                return Ok(Hold::api_marked(kind, interp));
            };
            let mut seen = 0;
            let counted = HOLDS.take(interp as usize, || {
                let word = fields.running_main();
                match word.compare_exchange(0, sentinel(), Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) if fields.take_id_refs(interp) => true,
                    Ok(_) => {
                        word.store(0, Ordering::Relaxed);
                        false
                    }
                    Err(current) => {
                        seen = current;
                        false
                    }
                }
            });
            // Not counted: marked by a toolkit worker for life, by `exec` code of this very
            // thread (it outlives a suspension), or by `exec` code elsewhere (a pin then goes
            // unmarked, and the end waits for it).
            let covered = seen == sentinel()
                || marked_by_worker(interp)
                || seen == tstate as usize
                || kind == HoldKind::Pin;
            match (counted, covered) {
                (true, _) => Ok(Hold::Counted(interp as usize)),
                (false, true) => Ok(Hold::Nothing),
                (false, false) => Err(MarkedElsewhere),
            }
        }
    }

    /// The hold where the running-main field is not located: a suspension marks through the API
    /// with the thread state it suspends, if the interpreter is not marked yet; a pin marks
    /// nothing (the end waits for it).
    ///
    /// # Safety
    /// As for [`Hold::take`].
    unsafe fn api_marked(kind: HoldKind, interp: *mut ffi::PyInterpreterState) -> Hold {
        if kind == HoldKind::Pin {
            return Hold::Nothing;
        }
        // SAFETY: attached to the live `interp` (caller's contract), which the calls need; the
        // caller's error indicator is saved and restored around a failed mark.
        unsafe {
            if _PyInterpreterState_IsRunningMain(interp) != 0 {
                return Hold::Nothing;
            }
            let pending = ffi::PyErr_GetRaisedException();
            let marked = _PyInterpreterState_SetRunningMain(interp) == 0;
            ffi::PyErr_Clear();
            ffi::PyErr_SetRaisedException(pending);
            if marked {
                Hold::ApiMarked(interp)
            } else {
                Hold::Nothing
            }
        }
    }

    /// Releases the hold: the last counted one clears the mark and gives the ID references back.
    ///
    /// # Safety
    /// The interpreter must still be live (the hold's contract). For [`Hold::ApiMarked`], the
    /// calling thread must be attached again with the thread state the mark was taken with.
    unsafe fn release(self) {
        match self {
            Hold::Nothing => {}
            Hold::Counted(interp) => HOLDS.release(interp, || {
                // SAFETY: live (caller's contract); counted holds exist only where the field was
                // located, and only this module points it at the sentinel outside a toolkit
                // worker (whose interpreters are never counted).
                unsafe {
                    if let Some(f) = Fields::at(interp as *mut ffi::PyInterpreterState) {
                        let _ = f.running_main().compare_exchange(
                            sentinel(),
                            0,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                        f.drop_id_refs_without_ending();
                    }
                }
            }),
            // SAFETY: the mark points at the thread state that is current again (caller's
            // contract); only its owner unmarks a running-main mark (CPython's own `_PyXI_Exit`
            // does the same for its marks), so it is still this one.
            Hold::ApiMarked(interp) => unsafe { _PyInterpreterState_SetNotRunningMain(interp) },
        }
    }
}

/// The hold a thread puts on the interpreter whose thread state it suspends (see the module
/// docs); [`SuspendedMark::lift`] releases it once the thread state is back.
#[derive(Debug)]
#[must_use = "a suspension mark must be lifted when the thread state is restored"]
pub(crate) struct SuspendedMark(Hold);

impl SuspendedMark {
    /// Holds the calling thread's interpreter for a suspension of its current thread state.
    /// Fails with [`Error::CannotSuspend`](crate::Error::CannotSuspend) where `_interpreters.exec`
    /// code runs there on another thread. Leaves any Python error indicator as it was.
    ///
    /// # Safety
    /// The calling thread must be attached with the thread state it is about to suspend, and
    /// must restore it before [`SuspendedMark::lift`].
    pub(crate) unsafe fn take() -> Result<Self, crate::Error> {
        // SAFETY: caller's contract, passed on: the suspended thread state keeps its interpreter
        // from ending (this mark refuses Python's destroy, the ID references its decref).
        match unsafe { Hold::take(HoldKind::Suspension) } {
            Ok(hold) => Ok(SuspendedMark(hold)),
            Err(MarkedElsewhere) => Err(match super::runtime::current_tag() {
                Some(tag) => crate::Error::CannotSuspend { interpreter: tag.key() },
                None => crate::Error::NotAttached { operation: "suspending a thread state" },
            }),
        }
    }

    /// Releases the hold.
    ///
    /// # Safety
    /// The calling thread must be attached again with the thread state that was current when
    /// the mark was taken.
    pub(crate) unsafe fn lift(self) {
        // SAFETY: caller's contract; the interpreter could not end under the suspension.
        unsafe { self.0.release() }
    }
}

/// The hold a pin of an interpreter's memory keeps (see the module docs); dropped, it releases.
#[derive(Debug)]
pub(crate) struct PinMark(Hold);

impl PinMark {
    /// Holds the calling thread's interpreter for a pin.
    ///
    /// # Safety
    /// The calling thread must be attached, and its interpreter pinned (it cannot end) until the
    /// returned mark is dropped.
    pub(crate) unsafe fn take() -> Self {
        // SAFETY: caller's contract, passed on. A pin is never refused here (an unmarked pin
        // makes the end wait).
        PinMark(unsafe { Hold::take(HoldKind::Pin) }.unwrap_or(Hold::Nothing))
    }
}

impl Drop for PinMark {
    fn drop(&mut self) {
        let hold = std::mem::replace(&mut self.0, Hold::Nothing);
        // SAFETY: the pin this mark counts still holds the interpreter (the owner of the mark
        // drops it first), so it is live; a pin's hold is never `ApiMarked`.
        unsafe { hold.release() };
    }
}

/// Whether CPython has begun ending `interp` (`Py_EndInterpreter` or `Py_FinalizeEx` set its
/// `finalizing` flag, before they run the `atexit` callbacks); `None` where the field cannot be
/// located and checked. For the end observer's hook, which Python code can also call.
///
/// # Safety
/// The calling thread must be attached to the live `interp`.
pub(crate) unsafe fn cpython_end_began(interp: *mut ffi::PyInterpreterState) -> Option<bool> {
    // SAFETY: caller's contract, passed on; `finalizing` is an aligned `int` of the struct.
    unsafe {
        let fields = fields_of(interp)?;
        Some(fields.field::<AtomicI32>(before_main::FINALIZING).load(Ordering::Relaxed) != 0)
    }
}

/// Makes the `_interpreters` calls that run code in `interp` (`exec`, `call`, `run_string`,
/// `run_func`, `set___main___attrs`, and `incref`/`decref`/`is_running`) refuse it ("not
/// ready") *before* they make a thread state there, by clearing the `_ready` flag they check.
/// For a toolkit end: an `_interpreters.exec` racing it made a thread state first and was
/// refused by the running-main mark only afterwards, and a thread state that appears after the
/// end counted them makes CPython abort in `Py_EndInterpreter` ("not the last thread"; found by
/// attack). `_interpreters.destroy` still meets the running-main mark first; `Py_EndInterpreter`
/// and the clear do not read the flag. Call it once the end has run its own Python code:
/// `_interpreters.get_current()` asserts (debug builds) that its interpreter is ready. Returns
/// false, changing nothing, where the flag cannot be located and checked.
///
/// # Safety
/// The calling thread must be attached to the live toolkit interpreter `interp`.
pub(crate) unsafe fn close_to_python(interp: *mut ffi::PyInterpreterState) -> bool {
    // SAFETY: caller's contract, passed on.
    let Some(fields) = (unsafe { fields_of(interp) }) else { return false };
    fields.ready().store(0, Ordering::SeqCst);
    // SAFETY: as above.
    if unsafe { _PyInterpreterState_IsReady(interp) } == 0 {
        return true;
    }
    fields.ready().store(1, Ordering::SeqCst);
    false
}

/// Undoes [`close_to_python`] (an end that was refused keeps serving).
///
/// # Safety
/// As for [`close_to_python`], which returned true for `interp`.
pub(crate) unsafe fn reopen_to_python(interp: *mut ffi::PyInterpreterState) {
    // SAFETY: caller's contract, passed on; `fields_of` checked `_ready` against the API while
    // it read 0, so the same word is found again.
    if let Some(fields) = unsafe { fields_of(interp) } {
        fields.ready().store(1, Ordering::SeqCst);
    }
}
