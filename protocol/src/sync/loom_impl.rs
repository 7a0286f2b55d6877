//! The model-checking side of the facade: loom's primitives behind the production API.

use std::time::Duration;

pub use loom::sync::atomic;
pub use loom::sync::Arc;

/// A mutual-exclusion lock without poisoning (loom's, adapted).
#[derive(Debug)]
pub struct Mutex<T>(loom::sync::Mutex<T>);

/// The guard of a locked [`Mutex`]; holds an `Option` so a condition variable can take it.
#[derive(Debug)]
pub struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    /// Locks the mutex, blocking until it is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

impl<T> std::ops::Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("guard is only empty inside Condvar::wait")
    }
}

impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("guard is only empty inside Condvar::wait")
    }
}

/// A condition variable paired with a [`Mutex`] (loom's, adapted).
#[derive(Debug, Default)]
pub struct Condvar(loom::sync::Condvar);

impl Condvar {
    /// Creates a condition variable.
    pub fn new() -> Self {
        Condvar(loom::sync::Condvar::new())
    }

    /// Blocks until notified; the lock is released while waiting.
    pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        let inner = guard.0.take().expect("guard present");
        guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
    }

    /// loom does not model time: a bounded wait is an unbounded one that never times out,
    /// so models must not rely on a timeout to make progress.
    pub fn wait_for<T>(&self, guard: &mut MutexGuard<'_, T>, _timeout: Duration) -> bool {
        self.wait(guard);
        false
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// A reader-writer lock without poisoning (loom's, adapted).
#[derive(Debug)]
pub struct RwLock<T>(loom::sync::RwLock<T>);

/// Shared access to the value of a read-locked [`RwLock`].
pub type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;

/// Exclusive access to the value of a write-locked [`RwLock`].
pub type RwLockWriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    /// Creates an unlocked reader-writer lock holding `value`.
    pub fn new(value: T) -> Self {
        RwLock(loom::sync::RwLock::new(value))
    }

    /// Locks for shared reading, blocking while a writer holds the lock.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks for exclusive writing, blocking while anyone else holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

/// The identity of a (loom) thread, comparable and cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadTag(loom::thread::ThreadId);

/// The identity of the calling (loom) thread.
pub fn current_thread() -> ThreadTag {
    ThreadTag(loom::thread::current().id())
}

/// loom has no clock: deadlines never pass.
#[derive(Debug, Clone, Copy)]
pub struct Instant;

impl Instant {
    /// A reading of the (absent) clock.
    pub fn now() -> Self {
        Instant
    }

    /// Always the whole budget: time does not pass under loom.
    pub fn remaining(&self, budget: Duration) -> Option<Duration> {
        Some(budget).filter(|d| !d.is_zero())
    }
}
