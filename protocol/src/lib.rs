//! The concurrency protocols of interpsafe, free of pyo3 so that loom can check them.
//!
//! Everything here is plain Rust over one sync facade ([`sync`]): the interpreter registry with its
//! attach guards and end-of-life handshake today, and the per-interpreter runtime pieces (deferred
//! decref pool, once-cells) as they arrive. State lives in instances, never in statics or `Once`,
//! so a loom model can build a fresh protocol per interleaving. The FFI edge (the `interpsafe`
//! crate) owns the process-wide instance and does the CPython calls.
//!
//! Under `--cfg interpsafe_loom` the facade swaps in loom's primitives and the
//! [`seed`] hooks become switchable, so loom-tests can plant one bug at a time and check that the
//! model finds it.

pub mod id;
pub mod registry;
pub mod seed;
pub mod sync;

pub use id::{Epoch, InterpreterId, InterpreterKey};
pub use registry::{
    AttachRefused, EndRefused, GuardId, Holder, Observation, Registry, Status,
};
