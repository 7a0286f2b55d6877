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
    /// Creates an unlocked mutex holding `value` (`const`, for statics).
    pub const fn new(value: T) -> Self {
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
    /// Creates a condition variable (`const`, for statics).
    pub const fn new() -> Self {
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

/// A reader-writer lock without poisoning.
#[derive(Debug, Default)]
pub struct RwLock<T>(parking_lot::RwLock<T>);

/// Shared access to the value of a read-locked [`RwLock`].
pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;

/// Exclusive access to the value of a write-locked [`RwLock`].
pub type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    /// Creates an unlocked reader-writer lock holding `value`.
    pub fn new(value: T) -> Self {
        RwLock(parking_lot::RwLock::new(value))
    }

    /// Locks for shared reading, blocking while a writer holds the lock.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read()
    }

    /// Locks for exclusive writing, blocking while anyone else holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write()
    }
}

/// The identity of a thread, comparable and cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadTag(std::thread::ThreadId);

/// The identity of the calling thread.
pub fn current_thread() -> ThreadTag {
    ThreadTag(std::thread::current().id())
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
