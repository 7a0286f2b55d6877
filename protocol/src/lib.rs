//! The concurrency protocols of interpsafe, free of pyo3 so that loom can check them.
//!
//! Everything here is plain Rust over one sync facade ([`sync`]): the interpreter registry with its
//! attach guards and end-of-life handshake ([`registry`]), and the per-interpreter runtime pieces:
//! the deferred-decref pool ([`decref_pool`]), once-cells ([`once_cell`]) and the running-main
//! marks that suspended thread states and pins hold ([`hold_marks`]); and the pyclass
//! borrow flag as PyO3 runs it on free-threaded builds ([`borrow_flag`]). State lives in
//! instances, never in statics or `Once`, so a loom model can build a fresh protocol per
//! interleaving. The FFI edge (the `interpsafe`
//! crate) owns the process-wide instance and does the CPython calls.
//!
//! Under `--cfg interpsafe_loom` the facade swaps in loom's primitives and the
//! [`seed`] hooks become switchable, so loom-tests can plant one bug at a time and check that the
//! model finds it.

pub mod borrow_flag;
pub mod decref_pool;
pub mod hold_marks;
pub mod id;
pub mod once_cell;
pub mod registry;
pub mod seed;
pub mod slot_table;
pub mod sync;

pub use borrow_flag::{BorrowFlag, BorrowRefused, EXCLUSIVE};
pub use decref_pool::{DecrefPool, Deferred, PoolStats};
pub use hold_marks::HoldMarks;
pub use id::{Epoch, InterpreterId, InterpreterKey, PACKED_ID_BITS};
pub use once_cell::{ForgetRefused, Init, OnceError, PerInterpreterOnce, SlottedOnce};
pub use registry::{
    AttachRefused, EndRefused, GuardId, Holder, Observation, Registry, Status, NO_FAST_OWNER,
};
pub use seed::{SeededBug, Seeds};
pub use slot_table::SlotTable;
