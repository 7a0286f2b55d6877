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
//! field is located by difference (the words of the interpreter that equal that thread state
//! while marked and turn null when unmarked through the API) and overwritten with a sentinel
//! address that is never a thread state. `_PyInterpreterState_IsRunningMain` then holds until
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
//! They are marked for a while, though. While a [`SharedBytes`](crate::share::SharedBytes) pins
//! one ([`PinMark`]): the end waits for pins, so a thread that holds one and destroys the
//! interpreter from Python would wait for itself; marked, its destroy raises instead. And whenever a thread suspends its thread state in an
//! interpreter to attach elsewhere or to wait on another thread ([`SuspendedMark`]). The end
//! observer's handshake cannot help there: the suspended thread state is the destroying thread's
//! own (or belongs to a thread blocked on the destroying one), so waiting for it would deadlock,
//! and ending under it makes CPython abort ("not the last thread"). Marked, the interpreter is
//! refused by `_interpreters.destroy` and `_interpreters.exec` until the thread comes back, as an
//! interpreter running `_interpreters.exec` code is (found by attack: `attach(x, || attach(main,
//! || _interpreters.destroy(x)))` aborted the process).

use crate::pyo3_compat::ffi;
use interpsafe_protocol::PinMarks;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

extern "C" {
    fn _PyInterpreterState_IsReady(interp: *mut ffi::PyInterpreterState) -> c_int;
    fn _PyInterpreterState_GetWhence(interp: *mut ffi::PyInterpreterState) -> std::ffi::c_long;
    fn _PyInterpreterState_SetRunningMain(interp: *mut ffi::PyInterpreterState) -> c_int;
    fn _PyInterpreterState_SetNotRunningMain(interp: *mut ffi::PyInterpreterState);
    fn _PyInterpreterState_IsRunningMain(interp: *mut ffi::PyInterpreterState) -> c_int;
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

/// Never a thread state: what the running-main field of a marked interpreter points at.
static SENTINEL: u8 = 0;

/// How far into `PyInterpreterState` the running-main field is looked for, in words: it sits in
/// the `threads` group, after the eval state (whose pending-call table alone is about 7 KiB on
/// 3.13), well inside the first 32 KiB of a struct that is far larger.
const SCAN_WORDS: usize = 4096;

/// The word offsets of `interp` that hold `value`.
///
/// # Safety
/// `interp` must be a live interpreter (its struct is far larger than `SCAN_WORDS` words).
unsafe fn words_equal(interp: *mut ffi::PyInterpreterState, value: usize) -> Vec<usize> {
    let words = interp.cast::<AtomicUsize>();
    (0..SCAN_WORDS)
        // SAFETY: in bounds of the live struct (caller's contract); read atomically, as CPython
        // reads and writes the running-main field atomically.
        .filter(|&i| unsafe { (*words.add(i)).load(Ordering::Relaxed) } == value)
        .collect()
}

/// Where [`point_mark_at_sentinel`] left the mark.
#[derive(Debug, PartialEq, Eq)]
enum Pointed {
    /// The field points at [`SENTINEL`].
    AtSentinel,
    /// The field was not found exactly once: the mark is still on the current thread state.
    OnThreadState,
    /// Re-marking after the toggle failed: the interpreter is not marked by this thread.
    Unmarked,
}

/// The word index of the running-main field in `PyInterpreterState`, plus one (0 while unknown).
/// The layout is the libpython's, so the first interpreter located tells it for all.
static FIELD: AtomicUsize = AtomicUsize::new(0);

/// The running-main field of `interp`, once located.
///
/// # Safety
/// `interp` must be a live interpreter.
unsafe fn field_of(interp: *mut ffi::PyInterpreterState) -> Option<&'static AtomicUsize> {
    match FIELD.load(Ordering::Relaxed) {
        0 => None,
        // SAFETY: a word index below SCAN_WORDS of a live interpreter (caller's contract); the
        // reference is used only while the interpreter lives, which the callers ensure.
        i => Some(unsafe { &*interp.cast::<AtomicUsize>().add(i - 1) }),
    }
}

/// Points the marked interpreter's running-main field at [`SENTINEL`].
///
/// # Safety
/// The calling thread must be attached to `interp` with the thread state `_PyInterpreterState_
/// SetRunningMain` just marked.
unsafe fn point_mark_at_sentinel(interp: *mut ffi::PyInterpreterState) -> Pointed {
    // SAFETY: attached to `interp` with the marked thread state (caller's contract): the API
    // calls below toggle the mark off and on with that same thread state, and the scans read
    // the live struct.
    unsafe {
        let tstate = ffi::PyThreadState_Get() as usize;
        let marked = words_equal(interp, tstate);
        _PyInterpreterState_SetNotRunningMain(interp);
        let field: Vec<usize> = marked
            .into_iter()
            .filter(|&i| (*interp.cast::<AtomicUsize>().add(i)).load(Ordering::Relaxed) == 0)
            .collect();
        if _PyInterpreterState_SetRunningMain(interp) != 0 {
            ffi::PyErr_Clear();
            return Pointed::Unmarked;
        }
        let [i] = field[..] else { return Pointed::OnThreadState };
        let word = &*interp.cast::<AtomicUsize>().add(i);
        if word.load(Ordering::Relaxed) != tstate {
            return Pointed::OnThreadState;
        }
        FIELD.store(i + 1, Ordering::Relaxed);
        word.store(std::ptr::addr_of!(SENTINEL) as usize, Ordering::Relaxed);
        Pointed::AtSentinel
    }
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
/// the interpreter. Returns false (with no Python error left) if someone else already runs it.
///
/// # Safety
/// The calling thread must be attached to `interp` with the thread state that stays the
/// interpreter's main thread until the interpreter ends.
pub(crate) unsafe fn mark(interp: *mut ffi::PyInterpreterState) -> bool {
    // SAFETY: attached to `interp` (caller's contract), which the call requires.
    if unsafe { _PyInterpreterState_SetRunningMain(interp) } == 0 {
        // SAFETY: attached with the thread state just marked.
        if unsafe { point_mark_at_sentinel(interp) } != Pointed::AtSentinel {
            install_hook();
            MARKED.lock().unwrap_or_else(|e| e.into_inner()).push(interp as usize);
        }
        return true;
    }
    // SAFETY: attached; the failed call set an error.
    unsafe { ffi::PyErr_Clear() };
    false
}

/// The running-main mark a thread puts on the interpreter whose thread state it suspends (see
/// the module docs); [`SuspendedMark::lift`] takes it off again once the thread state is back.
#[derive(Debug)]
#[must_use = "a suspension mark must be lifted when the thread state is restored"]
pub(crate) struct SuspendedMark {
    /// The interpreter marked, if this suspension marked one.
    interp: *mut ffi::PyInterpreterState,
}

impl SuspendedMark {
    /// Marks the calling thread's interpreter as running main with its current thread state,
    /// unless it already runs main (a toolkit subinterpreter, `_interpreters.exec` code, or a
    /// suspension further out on this thread) or is the main interpreter (which `_interpreters`
    /// never destroys). Leaves any Python error indicator as it was.
    ///
    /// # Safety
    /// The calling thread must be attached with `tstate`, the thread state it is about to
    /// suspend.
    pub(crate) unsafe fn take(tstate: *mut ffi::PyThreadState) -> Self {
        // SAFETY: `tstate` is attached to this thread (caller's contract): its interpreter is
        // alive, and the running-main calls below require exactly this attached thread state.
        // The raised-exception pair saves and restores the caller's error indicator around a
        // failed mark (a concurrent marker on a free-threaded build), which sets an error.
        unsafe {
            let interp = ffi::PyThreadState_GetInterpreter(tstate);
            if interp == ffi::PyInterpreterState_Main()
                || _PyInterpreterState_IsRunningMain(interp) != 0
            {
                return SuspendedMark { interp: std::ptr::null_mut() };
            }
            let pending = ffi::PyErr_GetRaisedException();
            let marked = _PyInterpreterState_SetRunningMain(interp) == 0;
            ffi::PyErr_Clear();
            ffi::PyErr_SetRaisedException(pending);
            SuspendedMark { interp: if marked { interp } else { std::ptr::null_mut() } }
        }
    }

    /// Takes the mark off again.
    ///
    /// # Safety
    /// The calling thread must be attached again with the thread state that was current when
    /// the mark was taken.
    pub(crate) unsafe fn lift(self) {
        if !self.interp.is_null() {
            // SAFETY: the mark points at the thread state that is current again (caller's
            // contract); only its owner unmarks a running-main mark (CPython's own
            // `_PyXI_Exit` does the same for its marks), so it is still this one, and the
            // interpreter cannot have ended under a marked, suspended thread state.
            unsafe { _PyInterpreterState_SetNotRunningMain(self.interp) };
        }
    }
}

/// The pins counted per interpreter, and when to mark and unmark (the protocol, modelled in
/// loom: `interpsafe_protocol::PinMarks`).
static PIN_MARKS: PinMarks = PinMarks::new();

/// The running-main mark that pins of an interpreter's memory hold (see the module docs): the
/// first pin of an unmarked interpreter points its running-main field at [`SENTINEL`], the last
/// one to go clears it. Where the interpreter already runs main for someone else (a toolkit
/// subinterpreter, `_interpreters.exec` code) or is the main interpreter, it marks nothing.
#[derive(Debug)]
pub(crate) struct PinMark {
    /// The interpreter this pin counts on, or 0.
    interp: usize,
}

impl PinMark {
    /// Counts a pin on the calling thread's interpreter, marking it on the first.
    ///
    /// # Safety
    /// The calling thread must be attached, and its interpreter pinned (it cannot end) until the
    /// returned mark is dropped.
    pub(crate) unsafe fn take() -> Self {
        // SAFETY: attached (caller's contract): the current thread state and its interpreter
        // are live.
        let interp = unsafe { ffi::PyThreadState_GetInterpreter(ffi::PyThreadState_Get()) };
        // SAFETY: as above.
        if interp == unsafe { ffi::PyInterpreterState_Main() } {
            return PinMark { interp: 0 };
        }
        // SAFETY: attached to the live `interp` (caller's contract), which the running-main
        // calls need with exactly this attached thread state; the caller's error indicator is
        // saved and restored around calls that may set one.
        let mark = || unsafe {
            if _PyInterpreterState_IsRunningMain(interp) != 0 {
                return false;
            }
            match field_of(interp) {
                Some(word) => word
                    .compare_exchange(
                        0,
                        std::ptr::addr_of!(SENTINEL) as usize,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok(),
                None => {
                    let pending = ffi::PyErr_GetRaisedException();
                    let marked = _PyInterpreterState_SetRunningMain(interp) == 0
                        && match point_mark_at_sentinel(interp) {
                            Pointed::AtSentinel => true,
                            Pointed::OnThreadState => {
                                // The field cannot be told apart: take the mark off again, with
                                // the thread state it is on.
                                _PyInterpreterState_SetNotRunningMain(interp);
                                false
                            }
                            Pointed::Unmarked => false,
                        };
                    ffi::PyErr_Clear();
                    ffi::PyErr_SetRaisedException(pending);
                    marked
                }
            }
        };
        PinMark { interp: if PIN_MARKS.take(interp as usize, mark) { interp as usize } else { 0 } }
    }
}

impl Drop for PinMark {
    fn drop(&mut self) {
        if self.interp == 0 {
            return;
        }
        let interp = self.interp as *mut ffi::PyInterpreterState;
        PIN_MARKS.release(self.interp, || {
            // SAFETY: the pin this mark counts still holds the interpreter (the owner of the
            // mark drops it first), so it is live; a marked interpreter had its field located.
            if let Some(word) = unsafe { field_of(interp) } {
                // Only the sentinel is cleared: a thread state CPython marked since stays marked.
                let _ = word.compare_exchange(
                    std::ptr::addr_of!(SENTINEL) as usize,
                    0,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        });
    }
}

/// How far `PyInterpreterState._ready` sits before the running-main field (`threads.main`), in
/// bytes, on 3.13: `id`, `id_refcount`, `requires_idref`, `id_mutex`, `_whence`,
/// `_initialized`, `_ready`, `finalizing`, `last_restart_version`, `threads.next_unique_id`,
/// `threads.head`, `threads.main` (`Include/internal/pycore_interp.h`). [`close_to_python`]
/// checks the neighbours it can read through the API before it writes anything.
const READY_BEFORE_MAIN: usize = 36;

/// The `_ready` flag of `interp`, if the running-main field is located and the fields around it
/// read what the API says they hold (`id`, `_whence`, `threads.head`, `_ready` itself).
///
/// # Safety
/// `interp` must be a live interpreter and the calling thread attached to it.
unsafe fn ready_flag(
    interp: *mut ffi::PyInterpreterState,
) -> Option<&'static std::sync::atomic::AtomicI32> {
    let main = match FIELD.load(Ordering::Relaxed) {
        0 => return None,
        i => (i - 1) * std::mem::size_of::<usize>(),
    };
    let at = |offset: usize| -> Option<*const u8> {
        // SAFETY: `interp` is live (caller's contract) and `main` lies in its first SCAN_WORDS
        // words; only offsets inside the struct, before `main`, are formed.
        main.checked_sub(offset).map(|o| unsafe { interp.cast::<u8>().add(o) as *const u8 })
    };
    // SAFETY: attached to the live `interp` (caller's contract): the API calls read it, and the
    // reads below are aligned, in bounds (see `at`), and atomic where CPython writes concurrently.
    unsafe {
        let id = *at(80)?.cast::<i64>();
        let whence = *at(48)?.cast::<std::ffi::c_long>();
        let head = (*at(8)?.cast::<AtomicUsize>()).load(Ordering::Relaxed);
        let ready = &*at(READY_BEFORE_MAIN)?.cast::<std::sync::atomic::AtomicI32>();
        let agrees = id == ffi::PyInterpreterState_GetID(interp)
            && whence == _PyInterpreterState_GetWhence(interp)
            && head == ffi::PyInterpreterState_ThreadHead(interp) as usize
            && ready.load(Ordering::Relaxed) == _PyInterpreterState_IsReady(interp);
        agrees.then_some(ready)
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
    let Some(ready) = (unsafe { ready_flag(interp) }) else { return false };
    ready.store(0, Ordering::SeqCst);
    // SAFETY: as above.
    if unsafe { _PyInterpreterState_IsReady(interp) } == 0 {
        return true;
    }
    ready.store(1, Ordering::SeqCst);
    false
}

/// Undoes [`close_to_python`] (an end that was refused keeps serving).
///
/// # Safety
/// As for [`close_to_python`], which returned true for `interp`.
pub(crate) unsafe fn reopen_to_python(interp: *mut ffi::PyInterpreterState) {
    // SAFETY: caller's contract, passed on; `ready_flag` checked `_ready` against the API while
    // it read 0, so the same word is found again.
    if let Some(ready) = unsafe { ready_flag(interp) } {
        ready.store(1, Ordering::SeqCst);
    }
}
