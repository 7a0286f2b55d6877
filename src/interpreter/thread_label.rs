//! How a thread is named in the registry and in errors.

use interpsafe_protocol::Holder;

/// The calling thread as a registry [`Holder`]: its name (or "unnamed") and its `ThreadId`.
pub(crate) fn current_holder() -> Holder {
    let thread = std::thread::current();
    Holder { thread: format!("{} ({:?})", thread.name().unwrap_or("unnamed"), thread.id()) }
}
