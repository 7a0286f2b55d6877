//! The child process's side: the interpreters of a scenario, probe objects, and what a scenario
//! reports to the parent.
//!
//! A child prints its findings on stdout, one per line, each starting with [`PREFIX`]:
//! `refused <message>`, `anomaly <text>`, `note <text>`, `safe <text>`, and `phase <name>` as it
//! passes the scenario (`observed`) and the teardown (`done`). The parent reads them, and what
//! the operating system says about the child's end, to classify the cell.

use std::cell::Cell as StdCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use interpsafe::hazard::{probe_events, ProbeEventKind, Setting};
use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::{decref_stats, lookup};
use interpsafe::{
    attach, Attached, Error, InterpreterId, InterpreterKey, Isolation, Strategy, SubInterpreter,
};
use pyo3_ffi as ffi;

/// The prefix of every line a child reports on.
pub const PREFIX: &str = "interpsafe-hazard ";

/// Prints one report line (newlines folded, flushed at once: the child may crash next).
pub fn report(kind: &str, text: &str) {
    let text = text.replace(['\n', '\r'], " ");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{PREFIX}{kind} {text}");
    let _ = out.flush();
}

/// Runs `f` attached to `key`, failing the child if the interpreter cannot be attached.
pub fn within<R: Send>(key: InterpreterKey, f: impl FnOnce(&Attached<'_>) -> R + Send) -> R {
    attach(key, f).unwrap_or_else(|e| panic!("cannot attach to {key}: {e}"))
}

/// Python run in every interpreter of a scenario: the probe class. A probe reports each method
/// call and its finalisation through `_interpsafe.record`, bound as a default argument so that it
/// still works while its interpreter's modules are being torn down.
const PRELUDE: &CStr = c"import _interpsafe, sys
class Probe:
    def __init__(self, tag):
        self.tag = tag
    def ping(self, _record=_interpsafe.record):
        _record(self.tag, 0)
    def __del__(self, _record=_interpsafe.record):
        _record(self.tag, 1)
";

/// One interpreter of a scenario.
#[derive(Debug)]
pub struct Interp {
    key: InterpreterKey,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Toolkit(Option<SubInterpreter>),
    Python { ended: bool },
}

impl Interp {
    /// Creates an interpreter in `setting` and runs the prelude in it.
    pub fn new(setting: Setting) -> Interp {
        let interp = match setting {
            Setting::OwnGil | Setting::SharedGil => {
                let isolation = if setting == Setting::OwnGil {
                    Isolation::OwnGil
                } else {
                    Isolation::SharedGil
                };
                let sub = SubInterpreter::new(isolation).expect("create subinterpreter");
                Interp { key: sub.key(), kind: Kind::Toolkit(Some(sub)) }
            }
            Setting::PythonIsolated | Setting::PythonLegacy => {
                let config = if setting == Setting::PythonIsolated { "isolated" } else { "legacy" };
                let create = CString::new(format!(
                    "import _interpreters\n_hz_new = _interpreters.create('{config}')\n\
                     _interpreters.exec(_hz_new, 'import _interpsafe')"
                ))
                .unwrap();
                let id: i64 = within(main_interpreter(), |at| {
                    at.exec(&create).expect("_interpreters.create");
                    at.eval(c"_hz_new").unwrap().parse().unwrap()
                });
                // Importing `_interpsafe` there registered it (registration on first entry).
                let key = lookup(InterpreterId(id)).expect("registered on first entry");
                Interp { key, kind: Kind::Python { ended: false } }
            }
        };
        within(interp.key, |at| at.exec(PRELUDE).expect("prelude"));
        interp
    }

    /// Its key.
    pub fn key(&self) -> InterpreterKey {
        self.key
    }

    /// Ends it (the toolkit's end, or `_interpreters.destroy` from main); idempotent.
    pub fn end(&mut self) {
        match &mut self.kind {
            Kind::Toolkit(sub) => {
                if let Some(mut sub) = sub.take() {
                    sub.end(None).expect("end subinterpreter");
                }
            }
            Kind::Python { ended } => {
                if !*ended {
                    *ended = true;
                    let code =
                        CString::new(format!("_interpreters.destroy({})", self.key.id.0)).unwrap();
                    within(main_interpreter(), |at| at.exec(&code).expect("_interpreters.destroy"));
                }
            }
        }
    }
}

/// Probe tags, unique in the process (a warm-up run's probes are not the measured run's).
static NEXT_TAG: AtomicI64 = AtomicI64::new(1000);

/// Which interpreter made each probe.
#[derive(Debug, Default)]
pub struct Probes {
    owners: Mutex<HashMap<i64, i64>>,
}

impl Probes {
    /// A new tag for a probe made in interpreter `owner`.
    pub fn tag(&self, owner: i64) -> i64 {
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        self.owners.lock().unwrap().insert(tag, owner);
        tag
    }

    /// The interpreter that made probe `tag`.
    pub fn owner(&self, tag: i64) -> Option<i64> {
        self.owners.lock().unwrap().get(&tag).copied()
    }

    /// Makes a probe in the scope's interpreter; returns a handle to it and its tag.
    pub fn make<'s, S: Strategy>(&self, scope: &S::Scope<'s>) -> (S::Handle<'s>, i64) {
        self.make_with::<S>(scope, "")
    }

    /// Makes a probe, evaluating `before or` first (e.g. a sleep that returns `None`).
    pub fn make_with<'s, S: Strategy>(
        &self,
        scope: &S::Scope<'s>,
        before: &str,
    ) -> (S::Handle<'s>, i64) {
        let tag = self.tag(S::key(scope).id.0);
        let expr = if before.is_empty() {
            format!("Probe({tag})")
        } else {
            format!("{before} or Probe({tag})")
        };
        (S::eval(scope, &CString::new(expr).unwrap()).expect("make probe"), tag)
    }

    /// Checks the probe events from index `from` on: every method call and finalisation must
    /// happen in the probe's own interpreter, and each probe is finalised at most once. Returns
    /// the anomalies and how many events there were.
    pub fn check_events(&self, from: usize) -> (Vec<String>, usize) {
        let events = probe_events();
        let mut anomalies = Vec::new();
        let mut finalised: HashMap<i64, usize> = HashMap::new();
        for e in events.iter() {
            if e.kind == ProbeEventKind::Finalised {
                *finalised.entry(e.tag).or_default() += 1;
            }
        }
        for e in &events[from.min(events.len())..] {
            let Some(owner) = self.owner(e.tag) else {
                continue;
            };
            if e.interpreter != owner {
                let what = match e.kind {
                    ProbeEventKind::Ping => "ran a method",
                    ProbeEventKind::Finalised => "was finalised",
                    ProbeEventKind::Other(_) => "reported",
                };
                anomalies.push(format!(
                    "wrong-interpreter: a probe of interpreter {owner} {what} in interpreter {}",
                    e.interpreter
                ));
            }
            if e.kind == ProbeEventKind::Finalised
                && finalised.get(&e.tag).copied().unwrap_or(0) > 1
            {
                anomalies.push(format!("double-finalise: probe {} was finalised twice", e.tag));
                finalised.remove(&e.tag);
            }
        }
        (anomalies, events.len())
    }

    /// Where probe `tag` was finalised, if it was.
    pub fn finalised_in(&self, tag: i64) -> Option<i64> {
        probe_events()
            .iter()
            .find(|e| e.tag == tag && e.kind == ProbeEventKind::Finalised)
            .map(|e| e.interpreter)
    }

    /// Tags of the probes made so far that were never finalised.
    pub fn unfinalised(&self) -> Vec<i64> {
        let events = probe_events();
        let mut tags: Vec<i64> = self
            .owners
            .lock()
            .unwrap()
            .keys()
            .copied()
            .filter(|t| !events.iter().any(|e| e.tag == *t && e.kind == ProbeEventKind::Finalised))
            .collect();
        tags.sort_unstable();
        tags
    }
}

/// What a scenario saw.
#[derive(Debug, Default)]
pub struct Obs {
    /// The strategy's first refusal (an [`Error`] message).
    pub refused: Option<String>,
    /// Misbehaviour seen directly (wrong interpreter, wrong result, lost updates).
    pub anomalies: Vec<String>,
    /// Context for the verdict text.
    pub notes: Vec<String>,
    /// What kept the hazard from arising, when nothing went wrong.
    pub safe: Option<String>,
}

impl Obs {
    /// Records a refusal (the first one wins) and checks that it names the owner.
    pub fn refused(&mut self, error: &Error, owner: i64) {
        let message = error.to_string();
        if !message.contains(&format!("interpreter {owner}")) {
            self.anomalies
                .push(format!("unclear-error: the refusal does not name the owner: {message}"));
        }
        if self.refused.is_none() {
            self.refused = Some(message);
        }
    }

    /// Records a misbehaviour.
    pub fn anomaly(&mut self, text: impl Into<String>) {
        self.anomalies.push(text.into());
    }

    /// Records context.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Records what kept the hazard from arising.
    pub fn safe(&mut self, text: impl Into<String>) {
        self.safe = Some(text.into());
    }

    /// Prints everything in the report protocol.
    pub fn print(&self) {
        if let Some(r) = &self.refused {
            report("refused", r);
        }
        for a in &self.anomalies {
            report("anomaly", a);
        }
        for n in &self.notes {
            report("note", n);
        }
        if let Some(s) = &self.safe {
            report("safe", s);
        }
    }
}

/// Calls the probe's `ping` method in the interpreter the thread is attached to.
pub fn ping<'s, 'a, S: Strategy>(obj: S::Ref<'s, 'a>) -> Result<(), String> {
    let obj = S::as_obj(obj).as_ptr();
    // SAFETY: a bound reference exists only while the thread is attached (for the baseline,
    // to whatever interpreter that is: running a foreign probe's method there is the hazard under
    // observation, in a child process). Each new reference is released before returning.
    unsafe {
        let method = ffi::PyObject_GetAttrString(obj, c"ping".as_ptr());
        if method.is_null() {
            return Err(take_error());
        }
        let result = ffi::PyObject_CallNoArgs(method);
        ffi::Py_DECREF(method);
        if result.is_null() {
            return Err(take_error());
        }
        ffi::Py_DECREF(result);
    }
    Ok(())
}

/// Formats and clears the pending Python exception.
///
/// # Safety
/// The thread must be attached.
pub unsafe fn take_error() -> String {
    // SAFETY: attached (caller's contract); new references are released.
    unsafe {
        let exc = ffi::PyErr_GetRaisedException();
        if exc.is_null() {
            return "an error without an exception".into();
        }
        let text = ffi::PyObject_Str(exc);
        let message = if text.is_null() {
            ffi::PyErr_Clear();
            "<unprintable>".to_string()
        } else {
            let s = utf8(text);
            ffi::Py_DECREF(text);
            s
        };
        let name = CStr::from_ptr((*ffi::Py_TYPE(exc)).tp_name).to_string_lossy().into_owned();
        ffi::Py_DECREF(exc);
        format!("{name}: {message}")
    }
}

/// The text of a `str` object.
///
/// # Safety
/// Attached; `s` is a live `str`.
pub unsafe fn utf8(s: *mut ffi::PyObject) -> String {
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: caller's contract; the buffer lives as long as `s`.
    unsafe {
        let p = ffi::PyUnicode_AsUTF8AndSize(s, &mut len);
        if p.is_null() {
            ffi::PyErr_Clear();
            return "<not utf-8>".into();
        }
        String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len as usize))
            .into_owned()
    }
}

/// The address of the type of a bound object.
pub fn type_addr<'s, 'a, S: Strategy>(obj: S::Ref<'s, 'a>) -> usize {
    // SAFETY: reading the type pointer of a live object the thread has bound.
    unsafe { ffi::Py_TYPE(S::as_obj(obj).as_ptr()) as usize }
}

thread_local! {
    /// The handle a thread keeps across attachments (real code: a thread-local or a field of a
    /// thread-owned struct), type-erased.
    static KEPT: StdCell<Option<NonNull<()>>> = const { StdCell::new(None) };
}

/// Keeps `handle` on this thread beyond its scope.
///
/// Generic code cannot name a handle outside the scope it was made in, so the handle is boxed
/// and its lifetime erased. [`take`] gives it back in a later scope. That is exactly what safe
/// code can do for a strategy whose handle does not carry the scope's lifetime (`'static`
/// handles: unchecked, tagged, scoped, affine); for branded it would forge a brand, which is why
/// those cells are compile-time verdicts (`branded_handle_escapes_brand.rs`) and never run.
pub fn keep<'s, S: Strategy>(handle: S::Handle<'s>) {
    let ptr = NonNull::from(Box::leak(Box::new(handle))).cast::<()>();
    KEPT.with(|k| assert!(k.replace(Some(ptr)).is_none(), "a kept handle was never taken"));
}

/// Takes the handle [`keep`] kept, for use in `scope`.
pub fn take<'s, S: Strategy>(scope: &S::Scope<'s>) -> S::Handle<'s> {
    let _ = scope;
    let ptr = KEPT.with(|k| k.take()).expect("no handle kept on this thread");
    // SAFETY: `keep::<S>` boxed an `S::Handle` on this thread and only this call takes it back,
    // once. The lifetime parameter is the only difference, and only strategies whose handle does
    // not depend on it run this (see `keep`).
    *unsafe { Box::from_raw(ptr.cast::<S::Handle<'s>>().as_ptr()) }
}

/// `sys.gettotalrefcount()` on a debug build (summing every interpreter), else `None`.
pub fn total_refcount() -> Option<i64> {
    within(main_interpreter(), |at| {
        at.eval(c"__import__('sys').gettotalrefcount() if hasattr(__import__('sys'), 'gettotalrefcount') else None")
            .ok()
            .and_then(|s| s.parse().ok())
    })
}

/// The interpreters of one scenario, made on demand in one setting, and its probes.
#[derive(Debug)]
pub struct World {
    setting: Setting,
    a: Option<Interp>,
    b: Option<Interp>,
    /// The probes made so far, with their owners.
    pub probes: Probes,
    total_before: Option<i64>,
    events_seen: usize,
}

impl World {
    /// A world for `setting`: main is initialised and warmed up; nothing else exists yet.
    pub fn new(setting: Setting) -> World {
        interpsafe::initialize();
        // Modules the scenarios and teardown import in main, imported before the count.
        within(main_interpreter(), |at| at.exec(c"import _interpreters, sys, time").unwrap());
        World {
            setting,
            a: None,
            b: None,
            probes: Probes::default(),
            total_before: total_refcount(),
            events_seen: 0,
        }
    }

    /// Interpreter A (the owner), created on first use.
    pub fn a(&mut self) -> InterpreterKey {
        let setting = self.setting;
        self.a.get_or_insert_with(|| Interp::new(setting)).key()
    }

    /// Interpreter B (the other one), created on first use.
    pub fn b(&mut self) -> InterpreterKey {
        let setting = self.setting;
        self.b.get_or_insert_with(|| Interp::new(setting)).key()
    }

    /// Records that interpreter A was ended by someone else (Python code), so the teardown does
    /// not end it again.
    pub fn ended_elsewhere_a(&mut self) {
        if let Some(Interp { kind: Kind::Python { ended }, .. }) = self.a.as_mut() {
            *ended = true;
        }
    }

    /// Ends interpreter A.
    pub fn end_a(&mut self) {
        if let Some(a) = self.a.as_mut() {
            a.end();
        }
    }

    /// Prints the scenario's observation plus what the probes reported so far.
    pub fn observed(&mut self, mut obs: Obs) {
        let (anomalies, seen) = self.probes.check_events(0);
        self.events_seen = seen;
        obs.anomalies.extend(anomalies);
        obs.print();
        report("phase", "observed");
    }

    /// Whether this is a debug build (`sys.gettotalrefcount` exists).
    pub fn counts_references(&self) -> bool {
        self.total_before.is_some()
    }

    /// Ends every interpreter, then checks the decref pool, the probes and (on a debug build) the
    /// total reference count, and prints what it found.
    pub fn teardown(self, once_cells: bool) {
        self.finish(once_cells).print();
        report("phase", "done");
    }

    /// The teardown's checks, returned rather than printed.
    pub fn finish(mut self, once_cells: bool) -> Obs {
        let mut obs = Obs::default();
        for interp in [self.b.as_mut(), self.a.as_mut()].into_iter().flatten() {
            interp.end();
        }
        within(main_interpreter(), |_| ());
        let stats = decref_stats();
        if !stats.balanced() || stats.stranded != 0 {
            obs.anomaly(format!("pool: the deferred-decref pool is out of balance: {stats:?}"));
        }
        if stats.discarded_total > 0 {
            obs.note(format!(
                "{} deferred release(s) discarded because the owner had ended",
                stats.discarded_total
            ));
        }
        let (anomalies, _) = self.probes.check_events(self.events_seen);
        obs.anomalies.extend(anomalies);
        let unfinalised = self.probes.unfinalised();
        if !unfinalised.is_empty() {
            let why =
                if once_cells { " (kept by a once-cell, which is never released)" } else { "" };
            obs.note(format!("{} probe(s) never finalised{why}", unfinalised.len()));
        }
        if let (Some(before), Some(after)) = (self.total_before, total_refcount()) {
            let delta = after - before;
            if delta < 0 {
                obs.anomaly(format!(
                    "refcount: sys.gettotalrefcount() fell by {} (over-released)",
                    -delta
                ));
            } else if delta > 0 {
                obs.note(format!("sys.gettotalrefcount() rose by {delta} (leaked references)"));
            }
        }
        obs
    }
}
