//! The one sync facade: every shared-state primitive the protocols use comes from here.
//!
//! Normally these are parking_lot's mutex, reader-writer lock and condition variable, std's atomics
//! and std's thread identity ([`current_thread`]); under `--cfg interpsafe_loom` they are loom's,
//! with the same API (tokio's `src/loom/` is the model).
//! Protocol code names only this module, never loom, std::sync or parking_lot directly.
//!
//! The API follows parking_lot: no lock poisoning, and a condition variable waits on a
//! `&mut MutexGuard`.

#[cfg(not(interpsafe_loom))]
mod std_impl;
#[cfg(not(interpsafe_loom))]
pub use std_impl::*;

#[cfg(interpsafe_loom)]
mod loom_impl;
#[cfg(interpsafe_loom)]
pub use loom_impl::*;
