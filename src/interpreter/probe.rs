//! The probe recorder: what `_interpsafe.record(tag, event)` reports, kept in process order for
//! the hazard suite and the adversarial search (read through [`probe_events`], also re-exported
//! as `interpsafe::hazard::probe_events`).
//!
//! A probe is a Python object a scenario plants in an interpreter; its methods and its `__del__`
//! call `_interpsafe.record`, so a test can see where (in which interpreter) it ran and when it
//! was finalised.

use std::sync::Mutex;

/// What a probe reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeEventKind {
    /// A method of the probe ran (`event` 0).
    Ping,
    /// The probe was finalised: its `__del__` ran (`event` 1).
    Finalised,
    /// Any other event number.
    Other(i64),
}

/// One call of `_interpsafe.record(tag, event)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeEvent {
    /// The probe's tag (chosen by the scenario).
    pub tag: i64,
    /// What happened.
    pub kind: ProbeEventKind,
    /// The ID of the interpreter the calling thread was attached to.
    pub interpreter: i64,
}

static EVENTS: Mutex<Vec<ProbeEvent>> = Mutex::new(Vec::new());

/// Records a probe event (called by `_interpsafe.record`, in [`super::entry_module`]).
pub(crate) fn record_probe(tag: i64, event: i64, interpreter: i64) {
    let kind = match event {
        0 => ProbeEventKind::Ping,
        1 => ProbeEventKind::Finalised,
        other => ProbeEventKind::Other(other),
    };
    EVENTS.lock().unwrap_or_else(|e| e.into_inner()).push(ProbeEvent { tag, kind, interpreter });
}

/// Every probe event recorded so far in this process, in order.
pub fn probe_events() -> Vec<ProbeEvent> {
    EVENTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
