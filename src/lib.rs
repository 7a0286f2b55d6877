//! interpsafe: how PyO3-style bindings can stay memory-safe with free-threaded CPython and with
//! many subinterpreters that each own a GIL.
//!
//! A `pyo3::Py<T>` is `Send + Sync` and carries no trace of the interpreter that made it, so
//! nothing stops it from crossing into another subinterpreter, where using or dropping it is
//! undefined behaviour. This crate is the ground the research stands on:
//!
//! - [`interpreter`]: interpreter identity ([`InterpreterKey`]: CPython's ID plus a runtime epoch),
//!   own-GIL and legacy shared-GIL [`SubInterpreter`]s on dedicated threads, and attaching any
//!   thread to a chosen interpreter with a guard that keeps it from ending (PEP 788, emulated on
//!   3.13).
//! - [`strategy`]: the competing handle designs behind one [`Strategy`] trait (unchecked,
//!   tagged, scoped, branded, affine).
//! - [`share`]: sending data ([`share::Shareable`]) between interpreters, the legitimate way
//!   across.
//! - [`send_sync`]: the Send/Sync model of every wrapper type and of a pyclass-like payload
//!   ([`payload::PyClassPayload`]) on GIL, free-threaded and own-GIL builds: one table, expanded
//!   into static assertions and into the table in `docs/send-sync.md`.
//! - [`protocol`]: the pyo3-free concurrency protocols (the interpreter registry first), written
//!   over one sync facade so loom can check them.
//! - [`results`]: the one JSON schema every machine-readable result is written in.
//! - [`environment`]: the interpreter build, PyO3 version and machine stamped on every record.
//! - [`pyo3_compat`]: the only module that knows which PyO3 version is in use.
//!
//! Misuse is reported as an [`Error`] naming the interpreters involved; library code does not
//! panic on misuse.

pub mod environment;
pub mod error;
pub mod exceptions;
pub mod hazard;
pub mod interpreter;
pub mod object;
pub mod ops;
pub mod payload;
pub mod pyo3_compat;
mod release;
pub mod seeds;
pub mod send_sync;
pub mod share;
pub mod shared_objects;
pub mod strategy;
pub mod tag;
pub mod type_object;

pub use error::Error;
pub use interpreter::{
    attach, current_interpreter, initialize, Attached, InterpreterGuard, Isolation, SubInterpreter,
};
pub use interpsafe_protocol as protocol;
pub use interpsafe_protocol::{Epoch, InterpreterId, InterpreterKey};
pub use interpsafe_results as results;
pub use object::ObjRef;
pub use strategy::Strategy;
