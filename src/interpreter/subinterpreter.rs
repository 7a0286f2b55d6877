//! Subinterpreters created by the toolkit, each on a dedicated OS thread that runs closures.
//!
//! [`Isolation::OwnGil`] is the PEP 684 configuration (`gil = OWN_GIL`, its own obmalloc,
//! `check_multi_interp_extensions = 1`): interpreters run truly in parallel on a GIL build.
//! [`Isolation::SharedGil`] is the legacy configuration (`Py_NewInterpreter`'s), which Ceph's
//! manager and mod_wsgi use. On a free-threaded build there is no GIL to own or share, and the
//! legacy config forces `check_multi_interp_extensions` on, so the two differ only on GIL builds.
//!
//! The worker marks its thread state as the interpreter's main thread (see `running_main`), so
//! `_interpreters.destroy` from Python refuses it with an exception instead of aborting the
//! process, and `_interpreters.exec` refuses it too.
//!
//! The worker thread creates the interpreter with no thread state of its own
//! (`Py_NewInterpreterFromConfig` then copies the main interpreter's config), keeps its thread
//! state detached between closures so other threads can attach, and ends the interpreter when
//! asked, after the registry has seen every attach guard released.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use interpsafe_protocol::{InterpreterId, InterpreterKey};

use super::detach::detached;
use super::guard::Attached;
use super::registration::enter;
use super::running_main;
use super::runtime::registry;
use super::startup::initialize;
use super::thread_label::current_holder;
use super::thread_state;
use crate::pyo3_compat::ffi;
use crate::Error;

/// How a new subinterpreter relates to the GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// PEP 684: its own GIL and allocator; only multi-phase-init extensions that declare
    /// per-interpreter-GIL support can be imported.
    OwnGil,
    /// The legacy kind (`Py_NewInterpreter`): shares the main interpreter's GIL and allocator.
    SharedGil,
}

impl Isolation {
    fn config(self) -> ffi::PyInterpreterConfig {
        match self {
            Isolation::OwnGil => ffi::PyInterpreterConfig {
                use_main_obmalloc: 0,
                allow_fork: 0,
                allow_exec: 0,
                allow_threads: 1,
                allow_daemon_threads: 0,
                check_multi_interp_extensions: 1,
                gil: ffi::PyInterpreterConfig_OWN_GIL,
            },
            Isolation::SharedGil => ffi::_PyInterpreterConfig_LEGACY_INIT,
        }
    }
}

type Job = Box<dyn FnOnce(&Attached<'_>) + Send>;

enum Message {
    Run(Job),
    End(Sender<Result<(), Error>>),
}

/// A subinterpreter with its own worker thread. Ends when [`SubInterpreter::end`] is called or
/// when dropped (waiting, like PEP 788, until every attach guard is released).
#[derive(Debug)]
pub struct SubInterpreter {
    key: InterpreterKey,
    isolation: Isolation,
    messages: Option<Sender<Message>>,
    worker: Option<JoinHandle<()>>,
}

/// The worker's thread state, handed between its own calls only.
struct WorkerState(*mut ffi::PyThreadState);

impl SubInterpreter {
    /// Creates a subinterpreter on a new thread (initialising the runtime first if needed).
    pub fn new(isolation: Isolation) -> Result<Self, Error> {
        initialize();
        detached(move || {
            let (ready_tx, ready_rx) = bounded::<Result<InterpreterKey, Error>>(1);
            let (messages, inbox) = unbounded::<Message>();
            let worker = std::thread::Builder::new()
                .name(format!("interpsafe-{isolation:?}"))
                .spawn(move || worker_main(isolation, ready_tx, inbox))
                .map_err(|e| Error::CreateFailed {
                    detail: format!("cannot spawn its thread: {e}"),
                })?;
            match ready_rx.recv() {
                Ok(Ok(key)) => Ok(SubInterpreter {
                    key,
                    isolation,
                    messages: Some(messages),
                    worker: Some(worker),
                }),
                Ok(Err(e)) => {
                    let _ = worker.join();
                    Err(e)
                }
                Err(_) => {
                    let _ = worker.join();
                    Err(Error::CreateFailed { detail: "its thread exited during creation".into() })
                }
            }
        })?
    }

    /// This interpreter's key.
    pub fn key(&self) -> InterpreterKey {
        self.key
    }

    /// How it was configured.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Runs `f` on the interpreter's worker thread, attached to it, and waits for the result.
    /// A panic in `f` is caught and returned as [`Error::Panicked`].
    pub fn run<R, F>(&self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&Attached<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.refuse_on_own_worker("run")?;
        let gone = Error::WorkerGone { interpreter: self.key };
        let messages = self.messages.as_ref().ok_or_else(|| gone.clone())?;
        let (tx, rx) = bounded(1);
        let key = self.key;
        let job: Job = Box::new(move |attached| {
            let outcome = catch_unwind(AssertUnwindSafe(|| f(attached))).map_err(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into());
                drop_payload(payload);
                Error::Panicked { interpreter: key, message }
            });
            let _ = tx.send(outcome);
        });
        detached(|| {
            messages.send(Message::Run(job)).map_err(|_| gone.clone())?;
            rx.recv().map_err(|_| gone)?
        })?
    }

    /// Ends the interpreter: waits until every attach guard on it is released (at most `timeout`
    /// if given, then fails naming the holders and leaves it running), then has the worker call
    /// `Py_EndInterpreter`. Ending twice is a no-op. A guard or `SharedBytes` that another thread
    /// took (the worker, say) and this thread holds is waited for like any other: without a
    /// timeout, that end (and `Drop`) waits for itself. Drop such holds first.
    pub fn end(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let Some(messages) = self.messages.as_ref() else {
            return Ok(());
        };
        self.refuse_on_own_worker("end")?;
        let holder = current_holder();
        let key = self.key;
        let ended = detached(|| {
            registry().end(key, &holder, timeout)?;
            let (done_tx, done_rx) = bounded(1);
            let ended = if messages.send(Message::End(done_tx)).is_err() {
                Err(Error::WorkerGone { interpreter: key })
            } else {
                done_rx.recv().unwrap_or(Err(Error::WorkerGone { interpreter: key }))
            };
            if ended.is_err() {
                registry().abandon_end(key);
            }
            ended
        })?;
        ended?;
        self.messages = None;
        if let Some(worker) = self.worker.take() {
            // The worker has ended the interpreter and is returning; where this thread cannot
            // be detached, the handle is dropped and the worker exits on its own.
            let _ = detached(|| worker.join());
        }
        Ok(())
    }
}

impl SubInterpreter {
    /// Refuses `what` on the interpreter's own worker thread (a closure run there that reaches
    /// this `SubInterpreter`, which is `Sync`, through an `Arc`): the worker would wait for a job
    /// only it can run, and hang for good (found by attack).
    fn refuse_on_own_worker(&self, what: &str) -> Result<(), Error> {
        let here = std::thread::current().id();
        if self.worker.as_ref().is_some_and(|w| w.thread().id() == here) {
            return Err(Error::Reentrant {
                message: format!(
                    "SubInterpreter::{what} was called on {}'s own worker thread, inside a \
                     closure it runs, and would wait for itself; use the `Attached` that \
                     closure was given instead",
                    self.key
                ),
            });
        }
        Ok(())
    }
}

impl Drop for SubInterpreter {
    fn drop(&mut self) {
        if self.end(None).is_err() {
            // Ending would wait for this very thread (it holds a guard), the worker is gone, or
            // this thread cannot wait (`Error::CannotSuspend`: `_interpreters.exec` code runs
            // where it is attached).
            // Leave the interpreter running rather than abort: keep its worker parked for the
            // life of the process.
            if let Some(messages) = self.messages.take() {
                std::mem::forget(messages);
            }
        }
    }
}

/// Drops a panic payload on the worker, which is attached: a payload whose `Drop` panics (found
/// by attack) would otherwise unwind out of the worker with the interpreter's GIL held, and every
/// later attach there (to main too, for a shared-GIL interpreter) would hang. A second panic's
/// payload is leaked.
fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
    }
}

fn worker_main(
    isolation: Isolation,
    ready: Sender<Result<InterpreterKey, Error>>,
    inbox: Receiver<Message>,
) {
    let config = isolation.config();
    let mut tstate: *mut ffi::PyThreadState = std::ptr::null_mut();
    // SAFETY: the runtime is initialised (SubInterpreter::new) and this new thread has no thread
    // state, which Py_NewInterpreterFromConfig accepts: it copies the main interpreter's config
    // and leaves the new thread state attached to this thread.
    let status = unsafe { ffi::Py_NewInterpreterFromConfig(&mut tstate, &config) };
    // SAFETY: PyStatus_Exception only reads the status value.
    if unsafe { ffi::PyStatus_Exception(status) } != 0 || tstate.is_null() {
        let detail = if status.err_msg.is_null() {
            "Py_NewInterpreterFromConfig failed".to_string()
        } else {
            // SAFETY: a failed PyStatus carries a static NUL-terminated message.
            unsafe { std::ffi::CStr::from_ptr(status.err_msg) }.to_string_lossy().into_owned()
        };
        let _ = ready.send(Err(Error::CreateFailed { detail }));
        return;
    }
    // SAFETY: tstate is attached to the new interpreter on this thread.
    let interp = unsafe { ffi::PyThreadState_GetInterpreter(tstate) };
    // SAFETY: attached to `interp` with `tstate`, the worker's thread state for the
    // interpreter's whole life (never unmarked: see `running_main`). A new interpreter has no
    // main thread yet, so this succeeds; if it does not, only the protection is lost.
    let _marked = unsafe { running_main::mark(interp) };
    // SAFETY: tstate is attached to the new interpreter on this thread.
    let key = unsafe { enter(InterpreterId(ffi::PyInterpreterState_GetID(interp)), interp) };
    let state = WorkerState(tstate);
    // SAFETY: detach so that other threads can attach between closures.
    unsafe { ffi::PyEval_SaveThread() };
    let _ = ready.send(Ok(key));
    for message in inbox.iter() {
        // SAFETY: the worker's own thread state, detached by this thread just before.
        unsafe { ffi::PyEval_RestoreThread(state.0) };
        match message {
            Message::Run(job) => {
                // SAFETY: attached to `key` just above: release what was deferred for it.
                unsafe { crate::release::drain_for(key) };
                job(&Attached::new(key));
                // SAFETY: attached just above on this thread.
                unsafe { ffi::PyEval_SaveThread() };
            }
            Message::End(done) => {
                // Everything that runs Python code before Py_EndInterpreter's last-thread check
                // runs here first, so a thread it starts is counted: the deferred releases
                // (`__del__`), the atexit callbacks (then cleared, so Py_EndInterpreter runs
                // none), the join of non-daemon threads. Found by attack: a thread started by an
                // atexit callback or a `__del__` after the count aborted the process.
                // SAFETY: attached to `key` with the worker's thread state, which has not ended.
                let interp = unsafe { ffi::PyThreadState_GetInterpreter(state.0) };
                // SAFETY: as above.
                let others = unsafe {
                    crate::release::drain_for(key);
                    other_threads_after_shutdown(state.0, key)
                };
                // The queue is closed (later drops are discarded) and drained a last time; a
                // `__del__` there can still start a thread, so count again.
                let others = if others == 0 {
                    // SAFETY: as above.
                    unsafe {
                        crate::release::close_for(key);
                        other_threads_after_shutdown(state.0, key)
                    }
                } else {
                    others
                };
                // Then `_interpreters.exec` and its kin are turned away before they make a thread
                // state (`running_main::close_to_python`); not earlier, because the Python code
                // above may ask `_interpreters` about its own interpreter (`get_current()`
                // asserts that it is ready; found by attack on the debug build). The worker then
                // steps aside for a moment, so that an `exec` that passed its readiness check
                // just before has made its thread state when it counts a last time (this narrows
                // the race, it cannot close it: see docs/threat-model.md).
                let (others, closed) = if others == 0 {
                    // SAFETY: as above; the thread state detached here is restored at once.
                    unsafe {
                        if running_main::close_to_python(interp) {
                            let own = ffi::PyEval_SaveThread();
                            std::thread::sleep(CLOSE_GRACE);
                            ffi::PyEval_RestoreThread(own);
                            (thread_state::others(state.0), true)
                        } else {
                            (0, false)
                        }
                    }
                } else {
                    (others, false)
                };
                if others > 0 {
                    // Py_EndInterpreter would abort ("not the last thread"): refuse instead and
                    // keep serving.
                    let _ = done.send(Err(Error::End(
                        interpsafe_protocol::EndRefused::ThreadsRemain { key, count: others },
                    )));
                    // SAFETY: attached just above on this thread, to the live `interp`, which
                    // `close_to_python` closed if `closed`.
                    unsafe {
                        if closed {
                            running_main::reopen_to_python(interp);
                        }
                        ffi::PyEval_SaveThread()
                    };
                    continue;
                }
                // The running-main mark stays on through Py_EndInterpreter (see
                // `running_main`): cleared first, it would let `_interpreters.destroy` in.
                // SAFETY: the registry's end handshake returned, so no attach guard is held and
                // no other thread state made by the toolkit exists; this thread state is current,
                // which Py_EndInterpreter requires (and registering an atexit callback too), and
                // it is gone afterwards.
                unsafe {
                    if closed {
                        super::end_observer::register_late_thread_wait();
                    }
                    ffi::Py_EndInterpreter(state.0)
                };
                registry().ended(key);
                let _ = done.send(Ok(()));
                return;
            }
        }
    }
}

/// How long an end steps aside after closing its interpreter to `_interpreters` calls, so that one
/// already past its readiness check makes its thread state before the last count.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Runs the interpreter's atexit callbacks (`atexit._run_exitfuncs()`, which also clears them) and
/// joins its non-daemon Python threads (`threading._shutdown()`): what `Py_EndInterpreter` does
/// before its last-thread check. Then counts its thread states other than `own`: threads that
/// would still run at that check.
///
/// # Safety
/// The calling thread must be attached with `own`, a thread state of the live interpreter `key`.
unsafe fn other_threads_after_shutdown(own: *mut ffi::PyThreadState, key: InterpreterKey) -> usize {
    const SHUTDOWN: &std::ffi::CStr =
        c"import sys as _s, atexit as _a\n_a._run_exitfuncs()\n_t = _s.modules.get('threading')\nif _t is not None:\n    _t._shutdown()\ndel _s, _a, _t";
    // SAFETY: attached (caller's contract); `exec` runs in this interpreter's `__main__`, and a
    // failure only leaves non-daemon threads to Py_EndInterpreter's own join.
    let _ = unsafe { super::python_code::exec(key, SHUTDOWN) };
    // SAFETY: caller's contract, passed on.
    unsafe { thread_state::others(own) }
}
