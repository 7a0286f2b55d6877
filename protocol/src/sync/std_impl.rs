//! The production side of the facade: parking_lot locks, std atomics and threads.

use std::time::Duration;

pub use std::sync::atomic;
pub use std::sync::Arc;

/// A mutual-exclusion lock without poisoning.
#[derive(Debug, Default)]
pub struct Mutex<T>(parking_lot::Mutex<T>);

/// The guard of a locked [`Mutex`].
pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex(parking_lot::Mutex::new(value))
    }

    /// Locks the mutex, blocking until it is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock()
    }
}

/// A condition variable paired with a [`Mutex`].
#[derive(Debug, Default)]
pub struct Condvar(parking_lot::Condvar);

impl Condvar {
    /// Creates a condition variable.
    pub fn new() -> Self {
        Condvar(parking_lot::Condvar::new())
    }

    /// Blocks until notified; the lock is released while waiting.
    pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        self.0.wait(guard);
    }

    /// Blocks until notified or `timeout` passed; returns true if it timed out.
    pub fn wait_for<T>(&self, guard: &mut MutexGuard<'_, T>, timeout: Duration) -> bool {
        self.0.wait_for(guard, timeout).timed_out()
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// A monotonic clock reading; loom has no clock, so deadlines go through the facade too.
#[derive(Debug, Clone, Copy)]
pub struct Instant(std::time::Instant);

impl Instant {
    /// The current time.
    pub fn now() -> Self {
        Instant(std::time::Instant::now())
    }

    /// Time left until `self + budget`, or `None` once it has passed.
    pub fn remaining(&self, budget: Duration) -> Option<Duration> {
        budget.checked_sub(self.0.elapsed()).filter(|d| !d.is_zero())
    }
}
