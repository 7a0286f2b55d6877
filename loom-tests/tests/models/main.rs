//! The loom models of interpsafe's concurrency protocols, one module per protocol.
//!
//! Every model drives the real protocol code of `interpsafe-protocol` (built with
//! `--cfg interpsafe_loom`, so its locks, atomics and condition variables are loom's) and checks
//! its invariants in every interleaving loom explores. Every seeded bug of `SeededBug` has a
//! test that switches it on and asserts that the same model then fails. Run with
//! `cargo xtask test`, or directly:
//! `RUSTFLAGS="--cfg interpsafe_loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom
//! cargo test -p loom-tests --release`. See `docs/loom.md`.
#![cfg(interpsafe_loom)]

mod borrow_flag;
mod decref_pool;
mod hold_marks;
mod once_cell;
mod registry;
mod release_at_end;
mod slot_table;
