//! The toolkit's error type: every misuse names the interpreters involved and what to do instead.

use std::fmt;

use interpsafe_protocol::{AttachRefused, EndRefused, InterpreterKey};

/// Everything that can go wrong when creating, attaching to, running in or ending an interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The registry refused an attach guard (unknown, ending or ended interpreter).
    Attach(AttachRefused),
    /// The registry refused to end an interpreter (busy, already ending, caller holds a guard).
    End(EndRefused),
    /// An operation needs a thread attached to an interpreter and none is.
    NotAttached {
        /// What was attempted.
        operation: &'static str,
    },
    /// `Py_NewInterpreterFromConfig` failed.
    CreateFailed {
        /// CPython's message.
        detail: String,
    },
    /// CPython could not allocate a thread state for the interpreter.
    ThreadState {
        /// The interpreter.
        interpreter: InterpreterKey,
    },
    /// Python code raised an exception.
    Python {
        /// The interpreter the code ran in.
        interpreter: InterpreterKey,
        /// The exception, formatted as `Type: message`.
        message: String,
    },
    /// A closure run in an interpreter panicked; the interpreter itself is still usable.
    Panicked {
        /// The interpreter the closure ran in.
        interpreter: InterpreterKey,
        /// The panic payload, if it was a string.
        message: String,
    },
    /// A handle owned by one interpreter was used while attached to another.
    CrossInterpreter {
        /// The interpreter that owns the handle's object.
        owner: InterpreterKey,
        /// The interpreter the thread is attached to.
        current: Option<InterpreterKey>,
        /// What was attempted (`bind`, `clone`, `load`, `receive`).
        operation: &'static str,
    },
    /// A handle's owner interpreter has ended: its object is gone.
    OwnerEnded {
        /// The interpreter that owned the handle's object.
        owner: InterpreterKey,
        /// What was attempted.
        operation: &'static str,
    },
    /// A handle whose owner is unknown: it was made from a borrowed object used outside its
    /// interpreter (affine's blind spot, or a reference kept across a raw thread-state switch).
    /// It is never used, and never released (leaked).
    OwnerUnknown {
        /// What was attempted.
        operation: &'static str,
    },
    /// An object of a type that cannot cross interpreters as data.
    NotShareable {
        /// Its type's name.
        type_name: String,
        /// The interpreter it is in.
        interpreter: InterpreterKey,
    },
    /// A call would wait for its own thread: a once-cell's initialiser re-entered the same cell,
    /// or `SubInterpreter::run`/`end` was called on that interpreter's own worker.
    Reentrant {
        /// What re-entered what (names the interpreter).
        message: String,
    },
    /// The interpreter's worker thread is gone (it ended, or failed to start).
    WorkerGone {
        /// The interpreter.
        interpreter: InterpreterKey,
    },
    /// The thread would have to suspend its thread state in an interpreter (to attach elsewhere
    /// or to wait on another thread) while `_interpreters.exec` code runs there on another
    /// thread: once that code returns, nothing would keep Python from ending the interpreter
    /// under the suspended thread state.
    CannotSuspend {
        /// The interpreter the thread is attached to.
        interpreter: InterpreterKey,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Attach(e) => e.fmt(f),
            Error::End(e) => e.fmt(f),
            Error::NotAttached { operation } => write!(
                f,
                "{operation} needs a thread attached to an interpreter, and this thread is not; \
                 use interpsafe::attach or SubInterpreter::run"
            ),
            Error::CreateFailed { detail } => {
                write!(f, "creating a subinterpreter failed: {detail}")
            }
            Error::ThreadState { interpreter } => {
                write!(f, "CPython could not allocate a thread state for {interpreter}")
            }
            Error::Python { interpreter, message } => {
                write!(f, "Python code in {interpreter} raised {message}")
            }
            Error::Panicked { interpreter, message } => {
                write!(f, "a closure running in {interpreter} panicked: {message}")
            }
            Error::CrossInterpreter { owner, current, operation } => match current {
                Some(current) => write!(
                    f,
                    "{operation}: the handle belongs to {owner} but this thread is attached to \
                         {current}; attach to {owner} to use it (interpsafe::attach), or send \
                         the data across as a Shareable value instead of a handle"
                ),
                None => write!(
                    f,
                    "{operation}: the handle belongs to {owner} and this thread is not \
                         attached; attach to {owner} first (interpsafe::attach)"
                ),
            },
            Error::OwnerEnded { owner, operation } => write!(
                f,
                "{operation}: the handle belongs to {owner}, which has ended, so its object is \
                 gone; keep data that must outlive an interpreter as Shareable values"
            ),
            Error::OwnerUnknown { operation } => write!(
                f,
                "{operation}: the handle's owner is unknown: it was made from a borrowed object \
                 used outside the interpreter that owns it, so it is never used nor released; \
                 make handles only from references bound in their owner's interpreter"
            ),
            Error::NotShareable { type_name, interpreter } => write!(
                f,
                "an object of type '{type_name}' in {interpreter} cannot be sent to another \
                 interpreter; shareable values are None, bool, int, float, str, bytes and tuples \
                 of them (PEP 734): convert it to those, or pickle it"
            ),
            Error::Reentrant { message } => f.write_str(message),
            Error::WorkerGone { interpreter } => write!(
                f,
                "the worker thread of {interpreter} is gone; the interpreter has ended or never \
                 started"
            ),
            Error::CannotSuspend { interpreter } => write!(
                f,
                "this thread cannot leave {interpreter} to attach elsewhere or to wait: Python \
                 code started by _interpreters.exec runs in {interpreter} on another thread, and \
                 once it returns nothing would keep Python from destroying {interpreter} under \
                 this thread's suspended thread state; call from a thread not attached to \
                 {interpreter}, or once that code has returned"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<AttachRefused> for Error {
    fn from(e: AttachRefused) -> Self {
        Error::Attach(e)
    }
}

impl From<EndRefused> for Error {
    fn from(e: EndRefused) -> Self {
        Error::End(e)
    }
}
