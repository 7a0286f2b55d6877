//! Interpreters: who they are, how code gets into one, and how one ends.
//!
//! The model: every interpreter is named by an [`InterpreterKey`](crate::InterpreterKey), the
//! value of `PyInterpreterState_GetID` plus the runtime epoch. The process keeps one
//! [`Registry`](crate::protocol::Registry) (see [`runtime`]) that learns of an interpreter the
//! first time toolkit code runs in it, whoever created it, and sees it end through an observer
//! stored in the interpreter's own dict.
//!
//! Code gets into an interpreter in two ways:
//! - [`SubInterpreter::run`]: the interpreter's own worker thread runs a closure (PEP 734 style);
//! - [`attach`] / [`InterpreterGuard::attach`]: any thread attaches to a chosen interpreter with a
//!   fresh thread state and detaches again, deleting it (the PEP 788 contract, emulated with
//!   `PyThreadState_New` and thread-state swaps on 3.12 and 3.13). The guard keeps the interpreter
//!   from ending while it is held. `PyGILState_Ensure` is never used: on a fresh thread it binds
//!   the main interpreter, otherwise whichever interpreter the thread used last.

mod detach;
mod end_observer;
mod entry_module;
mod guard;
mod interpreter_list;
#[cfg(feature = "pep788-native")]
mod native_guard;
pub(crate) mod probe;
mod python_code;
mod registration;
pub(crate) mod running_main;
pub mod runtime;
mod startup;
mod subinterpreter;
mod thread_label;
mod thread_state;

pub use guard::{attach, Attached, InterpreterGuard};
pub use registration::{attached_here, current_interpreter};
pub use startup::{initialize, main_interpreter};
pub use subinterpreter::{Isolation, SubInterpreter};
