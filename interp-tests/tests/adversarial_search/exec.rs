//! Runs a sequence for real: two executor threads take the operations in lockstep, each result
//! and the state after it (statuses, queued releases, stored owners) are compared with the
//! model, and the teardown checks the pool, the probes and the total reference count.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{CStr, CString};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use interp_tests::raw_switch::{interpreter_by_id, switched_into};
use interpsafe::hazard::{probe_events, ProbeEventKind};
use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::{decref_stats, lookup, pending_decrefs, status};
use interpsafe::protocol::{AttachRefused, EndRefused, Status};
use interpsafe::share::{Shareable, SharedBytes};
use interpsafe::strategy::{self as st, AffineTransfer, TaggedHandle, TaggedOnce};
use interpsafe::{
    attach, Attached, Error, InterpreterGuard, InterpreterId, InterpreterKey, Isolation, Strategy,
    SubInterpreter,
};
use pyo3_ffi as ffi;

use super::model::{Act, Init, Kind, Model, Obj, Op, Outcome, St, Strat, Via, UNKNOWN};

/// Defined in main once per process: creating an interpreter from Python and calling
/// `_interpreters` functions with the exception (or a failed `exec`'s snapshot) as text.
const MAIN_HELPERS: &CStr = c"import _interpreters, sys
def _fz_create():
    i = _interpreters.create()
    _interpreters.exec(i, 'import _interpsafe')
    return i
def _fz_call(f, *args):
    try:
        r = f(*args)
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
    return '' if r is None else 'ExecFailed: ' + repr(r)
";

/// Run in every interpreter: the probe class. A probe reports `ping` (event 0) and its
/// finalisation (event 1) through `_interpsafe.record`, bound as a default argument so that it
/// works while the interpreter is being torn down.
const PRELUDE: &CStr = c"import _interpsafe
class Probe:
    def __init__(self, tag):
        self.tag = tag
    def ping(self, _record=_interpsafe.record):
        _record(self.tag, 0)
    def __del__(self, _record=_interpsafe.record):
        _record(self.tag, 1)
";

const BYTES: &[u8] = b"interpsafe-bytes";

/// How long `SubInterpreter::end` waits for guards held elsewhere before it refuses.
const END_TIMEOUT: Duration = Duration::from_millis(30);

/// A handle on its way to the other thread, in the sending strategy's form.
#[derive(Debug)]
pub enum Parcel {
    /// Tagged, scoped and branded send a `TaggedHandle`.
    Tagged(TaggedHandle),
    /// Affine sends an `AffineTransfer`.
    Affine(AffineTransfer),
}

/// The strategies the search drives: all store a `TaggedHandle` and share one once-cell type,
/// which is what lets a sequence store with one and load with another.
pub trait Fuzzed: Strategy<Stored = TaggedHandle, Once = TaggedOnce> {
    /// Packs a sent handle for the mailbox.
    fn wrap(sent: Self::Sent) -> Parcel;
    /// Unpacks a parcel of this strategy's form, or gives it back.
    fn unwrap(p: Parcel) -> Result<Self::Sent, Parcel>;
}

macro_rules! tagged_sent {
    ($s:ty) => {
        impl Fuzzed for $s {
            fn wrap(sent: Self::Sent) -> Parcel {
                Parcel::Tagged(sent)
            }
            fn unwrap(p: Parcel) -> Result<Self::Sent, Parcel> {
                match p {
                    Parcel::Tagged(h) => Ok(h),
                    other => Err(other),
                }
            }
        }
    };
}
tagged_sent!(st::Tagged);
tagged_sent!(st::Scoped);
tagged_sent!(st::Branded);

impl Fuzzed for st::Affine {
    fn wrap(sent: Self::Sent) -> Parcel {
        Parcel::Affine(sent)
    }
    fn unwrap(p: Parcel) -> Result<Self::Sent, Parcel> {
        match p {
            Parcel::Affine(h) => Ok(h),
            other => Err(other),
        }
    }
}

/// What both executor threads share.
struct Shared {
    keys: Mutex<Vec<InterpreterKey>>,
    subs: Mutex<Vec<Option<SubInterpreter>>>,
    slots: Mutex<Vec<Option<TaggedHandle>>>,
    mail: Mutex<[VecDeque<Parcel>; 2]>,
    data: Mutex<Vec<Shareable>>,
    cells: [&'static TaggedOnce; 2],
}

impl Shared {
    fn keys(&self) -> Vec<InterpreterKey> {
        self.keys.lock().unwrap().clone()
    }
    fn take_slot(&self, s: usize) -> Option<TaggedHandle> {
        self.slots.lock().unwrap().get_mut(s).and_then(Option::take)
    }
    fn put_slot(&self, s: usize, h: TaggedHandle) {
        self.slots.lock().unwrap()[s] = Some(h);
    }
    fn push_slot(&self, h: TaggedHandle) {
        self.slots.lock().unwrap().push(Some(h));
    }
}

/// What an executor thread keeps between operations.
#[derive(Default)]
struct Local {
    guards: Vec<InterpreterGuard>,
    bytes: Vec<SharedBytes>,
}

type Job = Box<dyn FnOnce(&mut Local) -> Outcome + Send>;

struct Worker {
    jobs: Sender<Job>,
    done: Receiver<Outcome>,
    thread: JoinHandle<()>,
}

impl Worker {
    fn spawn(t: usize) -> Worker {
        let (jobs, inbox) = channel::<Job>();
        let (out, done) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("fuzz-{t}"))
            .spawn(move || {
                let mut local = Local::default();
                for job in inbox {
                    let r =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut local)))
                            .unwrap_or_else(|p| {
                                let m = p
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                    .unwrap_or_default();
                                Outcome::Other(format!("panic: {m}"))
                            });
                    if out.send(r).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn an executor thread");
        Worker { jobs, done, thread }
    }

    fn run(&self, job: Job) -> Outcome {
        self.jobs.send(job).expect("executor alive");
        self.done.recv().unwrap_or_else(|_| Outcome::Other("executor thread died".into()))
    }
}

/// The outcome an `interpsafe::Error` stands for, interpreters named by index.
fn outcome_of(e: &Error, keys: &[InterpreterKey]) -> Outcome {
    let idx = |k: &InterpreterKey| keys.iter().position(|x| x == k).unwrap_or(usize::MAX);
    match e {
        Error::CrossInterpreter { owner, .. } => Outcome::Cross(idx(owner)),
        Error::OwnerEnded { owner, .. } => Outcome::OwnerEnded(idx(owner)),
        Error::OwnerUnknown { .. } => Outcome::OwnerUnknown,
        Error::Attach(AttachRefused::Ending(k)) => Outcome::AttachEnding(idx(k)),
        Error::Attach(AttachRefused::Ended(k)) => Outcome::AttachEnded(idx(k)),
        Error::Attach(AttachRefused::Unknown(k)) => Outcome::AttachUnknown(idx(k)),
        Error::End(EndRefused::CallerHolds { key, .. }) => Outcome::EndCallerHolds(idx(key)),
        Error::End(EndRefused::Busy { key, .. }) => Outcome::EndBusy(idx(key)),
        Error::NotShareable { .. } => Outcome::NotShareable,
        other => Outcome::Other(other.to_string()),
    }
}

fn expr(obj: Obj, tag: i64) -> CString {
    CString::new(match obj {
        Obj::Probe => format!("Probe({tag})"),
        Obj::Singleton => "None".into(),
        Obj::Data => "(1, 'two', 3.5)".into(),
        Obj::Bytes => "b'interpsafe-bytes'".into(),
    })
    .unwrap()
}

/// Calls the probe's `ping` in the interpreter the thread is attached to.
fn ping<'s, 'a, S: Strategy>(r: S::Ref<'s, 'a>) -> Result<(), String> {
    let obj = S::as_obj(r).as_ptr();
    // SAFETY: a bound reference exists only while the thread is attached to the interpreter the
    // strategy vouched for; the name and the result are new references released here. The
    // method is called without making a bound-method object (`PyObject_CallMethodNoArgs`):
    // making one moves a debug build's total reference count by one per object on 3.13, which
    // would blur the refcount check.
    unsafe {
        let name = ffi::PyUnicode_InternFromString(c"ping".as_ptr());
        if name.is_null() {
            return Err(take_error());
        }
        let result = ffi::PyObject_CallMethodNoArgs(obj, name);
        ffi::Py_DECREF(name);
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
unsafe fn take_error() -> String {
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
            let p = ffi::PyUnicode_AsUTF8(text);
            let s = if p.is_null() {
                ffi::PyErr_Clear();
                "<not utf-8>".to_string()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            };
            ffi::Py_DECREF(text);
            s
        };
        ffi::Py_DECREF(exc);
        message
    }
}

/// Runs `code` (an expression) in main and returns its `str()`.
fn in_main(code: &str) -> Result<String, Error> {
    let code = CString::new(code).unwrap();
    attach(main_interpreter(), |at| at.eval(&code))?
}

/// `_fz_call(...)` in main: `Ok` for '', else the exception text.
fn py_call(code: String) -> Outcome {
    match in_main(&code) {
        Ok(s) if s.is_empty() => Outcome::Ok,
        Ok(s) => Outcome::Py(s),
        Err(e) => Outcome::Other(e.to_string()),
    }
}

/// `sys.gettotalrefcount()` on a debug build, after a collection in main (cyclic garbage is
/// freed when the collector runs, not when the sequence drops it), else `None`.
pub fn total_refcount() -> Option<i64> {
    in_main("(__import__('gc').collect(), sys.gettotalrefcount())[1] if hasattr(sys, 'gettotalrefcount') else None")
        .ok()
        .and_then(|s| s.parse().ok())
}

/// Defines the helpers and the probe class in main, once per process: redefining a class leaves
/// the old one in a reference cycle that the collector frees at a time of its choosing, which
/// would move `sys.gettotalrefcount()` in the middle of a later sequence.
pub fn prepare_main() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        interpsafe::initialize();
        attach(main_interpreter(), |at| {
            at.exec(MAIN_HELPERS).expect("main helpers");
            at.exec(PRELUDE).expect("main prelude");
        })
        .expect("attach to main");
    });
}

/// One sequence being run: the model, the real state, the two executors.
pub struct Run {
    model: Model,
    sh: Arc<Shared>,
    workers: [Worker; 2],
    events_from: usize,
    stats_before: interpsafe::protocol::PoolStats,
    total_before: Option<i64>,
    /// Operations executed (not skipped).
    pub executed: usize,
}

impl Run {
    /// A fresh world (main alone in the model) whose probe tags start at `first_tag`.
    pub fn new(first_tag: i64) -> Run {
        prepare_main();
        let main = main_interpreter();
        let sh = Arc::new(Shared {
            keys: Mutex::new(vec![main]),
            subs: Mutex::new(vec![None]),
            slots: Mutex::new(Vec::new()),
            mail: Mutex::new([VecDeque::new(), VecDeque::new()]),
            data: Mutex::new(Vec::new()),
            cells: [Box::leak(Box::default()), Box::leak(Box::default())],
        });
        // Settle main's queue before reading the counters.
        attach(main, |_| ()).unwrap();
        Run {
            model: Model::new(first_tag),
            sh,
            workers: [Worker::spawn(0), Worker::spawn(1)],
            events_from: probe_events().len(),
            stats_before: decref_stats(),
            total_before: total_refcount(),
            executed: 0,
        }
    }

    /// Runs `op`: predicts, executes, compares the result and the state after it.
    pub fn step(&mut self, i: usize, op: &Op) -> Result<(), String> {
        let mut next = self.model.clone();
        let expect = next.apply(op);
        if expect == Outcome::Skip {
            return Ok(());
        }
        self.executed += 1;
        let pre = self.model.clone();
        let sh = Arc::clone(&self.sh);
        let op_c = *op;
        let next_c = next.clone();
        let seen = self.workers[op.thread()]
            .run(Box::new(move |local| execute(&sh, local, &pre, &next_c, &op_c)));
        if !expect.admits(&seen) {
            return Err(format!(
                "op #{i} {op:?}: the model predicts {expect:?}, observed {seen:?}"
            ));
        }
        self.model = next;
        self.check_state().map_err(|e| format!("after op #{i} {op:?}: {e}"))
    }

    /// Statuses, queued releases and stored owners against the model.
    fn check_state(&self) -> Result<(), String> {
        let keys = self.sh.keys();
        for (i, m) in self.model.interps.iter().enumerate() {
            let want = match m.st {
                St::Alive => Status::Alive,
                St::Ending => Status::Ending,
                St::Ended => Status::Ended,
            };
            let got = status(keys[i]);
            if got != Some(want) {
                return Err(format!(
                    "interpreter {i} ({}) is {got:?}, the model says {want:?}",
                    keys[i]
                ));
            }
            let pending = pending_decrefs(keys[i]);
            if pending != m.pending {
                return Err(format!(
                    "interpreter {i} has {pending} queued release(s), the model says {}",
                    m.pending
                ));
            }
        }
        let slots = self.sh.slots.lock().unwrap();
        if slots.len() != self.model.slots.len() {
            return Err(format!("{} slots, the model has {}", slots.len(), self.model.slots.len()));
        }
        for (s, (real, m)) in slots.iter().zip(&self.model.slots).enumerate() {
            let unknown = interpsafe::tag::Tag::UNKNOWN.key();
            match (real, m) {
                (None, None) => {}
                (Some(h), Some(m)) if m.owner == UNKNOWN && h.owner() == unknown => {}
                (Some(h), Some(m)) if m.owner != UNKNOWN && h.owner() == keys[m.owner] => {}
                (Some(h), Some(m)) if m.owner == UNKNOWN => {
                    return Err(format!(
                        "slot {s} is tagged with {}, the model says nobody's (Tag::UNKNOWN)",
                        h.owner()
                    ))
                }
                (Some(h), Some(m)) => {
                    return Err(format!(
                        "slot {s} is tagged with {}, the model says interpreter {} ({})",
                        h.owner(),
                        m.owner,
                        keys[m.owner]
                    ))
                }
                (r, m) => {
                    return Err(format!(
                        "slot {s}: real {:?}, model {m:?}",
                        r.as_ref().map(|h| h.owner())
                    ))
                }
            }
        }
        Ok(())
    }

    /// Releases everything, ends every interpreter, then checks the pool, the probes and (on a
    /// debug build, when no reference was meant to leak) the total reference count.
    pub fn finish(self) -> Result<(), String> {
        let Run { model, sh, workers, events_from, stats_before, total_before, .. } = self;
        for w in &workers {
            w.run(Box::new(|local| {
                local.guards.clear();
                local.bytes.clear();
                Outcome::Ok
            }));
        }
        for w in workers {
            drop(w.jobs);
            let _ = w.thread.join();
        }
        sh.mail.lock().unwrap().iter_mut().for_each(VecDeque::clear);
        sh.slots.lock().unwrap().clear();
        let keys = sh.keys();
        for (i, key) in keys.iter().enumerate().skip(1) {
            if status(*key) == Some(Status::Alive) {
                // Releases what is queued for it, so that nothing is discarded at its end.
                attach(*key, |_| ()).map_err(|e| format!("teardown: attach to {i}: {e}"))?;
                let sub = sh.subs.lock().unwrap()[i].take();
                match sub {
                    Some(mut sub) => sub
                        .end(Some(Duration::from_secs(20)))
                        .map_err(|e| format!("teardown: end {i}: {e}"))?,
                    None => match py_call(format!("_fz_call(_interpreters.destroy, {})", key.id.0))
                    {
                        Outcome::Ok => {}
                        other => return Err(format!("teardown: destroy {i}: {other:?}")),
                    },
                }
            }
        }
        attach(main_interpreter(), |_| ()).map_err(|e| e.to_string())?;
        let stats = decref_stats();
        if !stats.balanced() || stats.stranded != stats_before.stranded {
            return Err(format!("pool: the deferred-decref pool is out of balance: {stats:?}"));
        }
        let owners: BTreeMap<i64, i64> =
            model.probes.iter().map(|&(tag, i)| (tag, keys[i].id.0)).collect();
        let mut finalised: BTreeMap<i64, usize> = BTreeMap::new();
        for e in probe_events().iter().skip(events_from) {
            let Some(&owner) = owners.get(&e.tag) else {
                continue;
            };
            if e.interpreter != owner {
                let what = if e.kind == ProbeEventKind::Finalised {
                    "was finalised"
                } else {
                    "ran a method"
                };
                return Err(format!(
                    "wrong-interpreter: probe {} of interpreter {owner} {what} in interpreter {}",
                    e.tag, e.interpreter
                ));
            }
            if e.kind == ProbeEventKind::Finalised {
                let n = finalised.entry(e.tag).or_default();
                *n += 1;
                if *n > 1 {
                    return Err(format!("double-finalise: probe {} was finalised twice", e.tag));
                }
            }
        }
        if let (Some(before), Some(after)) = (total_before, total_refcount()) {
            let delta = after - before;
            if delta < 0 || (delta > 0 && !model.leaky) {
                return Err(format!(
                    "refcount: sys.gettotalrefcount() moved by {delta} over the sequence{}",
                    if model.leaky { "" } else { " (the model expects no leak)" }
                ));
            }
        }
        Ok(())
    }
}

/// Runs one operation on its executor thread.
fn execute(sh: &Shared, local: &mut Local, pre: &Model, next: &Model, op: &Op) -> Outcome {
    let keys = sh.keys();
    let err = |e: Error| outcome_of(&e, &keys);
    match *op {
        Op::Create { kind, .. } => {
            create(sh, kind).unwrap_or_else(|e| Outcome::Other(format!("create: {e}")))
        }
        Op::EndRust { interp, .. } => {
            let sub = sh.subs.lock().unwrap()[interp].take();
            let Some(mut sub) = sub else {
                return Outcome::Other("no SubInterpreter".into());
            };
            let r = sub.end(Some(END_TIMEOUT));
            sh.subs.lock().unwrap()[interp] = Some(sub);
            r.map_or_else(err, |()| Outcome::Ok)
        }
        Op::DestroyPy { interp, .. } => {
            py_call(format!("_fz_call(_interpreters.destroy, {})", keys[interp].id.0))
        }
        Op::ExecPy { interp, .. } => py_call(format!(
            "_fz_call(_interpreters.exec, {}, 'Probe({})')",
            keys[interp].id.0, pre.next_tag
        )),
        Op::GuardNew { interp, .. } => match InterpreterGuard::new(keys[interp]) {
            Ok(g) => {
                local.guards.push(g);
                Outcome::Ok
            }
            Err(e) => err(e),
        },
        Op::GuardDrop { guard, .. } => {
            drop(local.guards.remove(guard));
            Outcome::Ok
        }
        Op::DropUnattached { slot, .. } => {
            drop(sh.take_slot(slot));
            Outcome::Ok
        }
        Op::BytesDrop { bytes, .. } => {
            drop(local.bytes.remove(bytes));
            Outcome::Ok
        }
        Op::Use { t, via, interp, strat, act } => {
            let ctx = Ctx { sh, keys: &keys, pre, next, t, cur: interp };
            match strat {
                Strat::Tagged => use_op::<st::Tagged>(&ctx, local, via, act),
                Strat::Scoped => use_op::<st::Scoped>(&ctx, local, via, act),
                Strat::Branded => use_op::<st::Branded>(&ctx, local, via, act),
                Strat::Affine => use_op::<st::Affine>(&ctx, local, via, act),
            }
        }
    }
}

fn create(sh: &Shared, kind: Kind) -> Result<Outcome, Error> {
    let (key, sub) = match kind {
        Kind::OwnGil | Kind::SharedGil => {
            let iso = if kind == Kind::OwnGil { Isolation::OwnGil } else { Isolation::SharedGil };
            let sub = SubInterpreter::new(iso)?;
            (sub.key(), Some(sub))
        }
        Kind::PythonMade => {
            let id: i64 = in_main("_fz_create()")?.parse().expect("an interpreter ID");
            let key = lookup(InterpreterId(id)).ok_or(Error::NotAttached {
                operation: "registration on first entry did not happen",
            })?;
            (key, None)
        }
    };
    attach(key, |at| at.exec(PRELUDE))??;
    sh.keys.lock().unwrap().push(key);
    sh.subs.lock().unwrap().push(sub);
    Ok(Outcome::Ok)
}

/// What an operation inside a scope needs to know.
struct Ctx<'a> {
    sh: &'a Shared,
    keys: &'a [InterpreterKey],
    pre: &'a Model,
    next: &'a Model,
    t: usize,
    cur: usize,
}

impl Ctx<'_> {
    fn err(&self, e: Error) -> Outcome {
        outcome_of(&e, self.keys)
    }
    fn is_probe(&self, s: usize) -> bool {
        self.pre.slots.get(s).copied().flatten().is_some_and(|m| m.obj == Obj::Probe)
    }
}

fn use_op<S: Fuzzed>(cx: &Ctx<'_>, local: &mut Local, via: Via, act: Act) -> Outcome {
    let key = cx.keys[cx.cur];
    let bytes = &mut local.bytes;
    let body = |at: &Attached<'_>| -> Outcome {
        match act {
            Act::RawSwitch { into, slot } => raw_switch(cx, at, into, slot),
            _ => S::enter(at, |scope| act_in::<S>(cx, bytes, scope, act)),
        }
    };
    let r = match via {
        Via::Direct => attach(key, body),
        Via::Guard => {
            let g = cx.pre.guards[cx.t].iter().position(|&i| i == cx.cur).expect("resolved");
            local.guards[g].attach(body)
        }
        Via::Nested(outer) => attach(cx.keys[outer], |_| attach(key, body)).and_then(|r| r),
    };
    r.unwrap_or_else(|e| cx.err(e))
}

fn act_in<'s, S: Fuzzed>(
    cx: &Ctx<'_>,
    bytes: &mut Vec<SharedBytes>,
    scope: &S::Scope<'s>,
    act: Act,
) -> Outcome {
    let sh = cx.sh;
    let tag = cx.pre.next_tag;
    let missing = || Outcome::Other("the slot is empty but the model has a handle there".into());
    match act {
        Act::Eval(obj) => match S::eval(scope, &expr(obj, tag)) {
            Ok(h) => {
                sh.push_slot(S::store(scope, h));
                Outcome::Ok
            }
            Err(e) => cx.err(e),
        },
        Act::Bind(s) | Act::Dup(s) | Act::ToHandle(s) | Act::ShareOut(s) | Act::BytesNew(s) => {
            let Some(stored) = sh.take_slot(s) else {
                return missing();
            };
            let h = match S::load(scope, stored) {
                Ok(h) => h,
                Err(e) => return cx.err(e),
            };
            let (outcome, extra) = match S::bind(scope, &h) {
                Err(e) => (cx.err(e), None),
                Ok(r) => {
                    let pinged = if cx.is_probe(s) { ping::<S>(r) } else { Ok(()) };
                    match (pinged, act) {
                        (Err(e), _) => (Outcome::Other(format!("ping: {e}")), None),
                        (Ok(()), Act::Bind(_)) => (Outcome::Ok, None),
                        (Ok(()), Act::Dup(_)) => match S::clone_handle(scope, &h) {
                            Ok(c) => (Outcome::Ok, Some(S::store(scope, c))),
                            Err(e) => (cx.err(e), None),
                        },
                        (Ok(()), Act::ToHandle(_)) => {
                            (Outcome::Ok, Some(S::store(scope, S::to_handle(scope, r))))
                        }
                        (Ok(()), Act::ShareOut(_)) => match Shareable::from_object(S::as_obj(r)) {
                            Ok(v) => {
                                sh.data.lock().unwrap().push(v);
                                (Outcome::Ok, None)
                            }
                            Err(e) => (cx.err(e), None),
                        },
                        (Ok(()), _) => match SharedBytes::new::<S>(scope, r) {
                            Ok(b) => {
                                bytes.push(b);
                                (Outcome::Ok, None)
                            }
                            Err(e) => (cx.err(e), None),
                        },
                    }
                }
            };
            sh.put_slot(s, S::store(scope, h));
            if let Some(extra) = extra {
                sh.push_slot(extra);
            }
            outcome
        }
        Act::DropIn(s) => {
            let Some(stored) = sh.take_slot(s) else {
                return missing();
            };
            drop(stored);
            Outcome::Ok
        }
        Act::SendTo(s) => {
            let Some(stored) = sh.take_slot(s) else {
                return missing();
            };
            match S::load(scope, stored) {
                Ok(h) => {
                    let parcel = S::wrap(S::send(scope, h));
                    sh.mail.lock().unwrap()[1 - cx.t].push_back(parcel);
                    Outcome::Ok
                }
                Err(e) => cx.err(e),
            }
        }
        Act::Receive => {
            let parcel = sh.mail.lock().unwrap()[cx.t].pop_front();
            let Some(parcel) = parcel else {
                return Outcome::Other("the mailbox is empty".into());
            };
            match S::unwrap(parcel) {
                Err(p) => {
                    sh.mail.lock().unwrap()[cx.t].push_front(p);
                    Outcome::Other("a parcel of another strategy's form".into())
                }
                Ok(sent) => match S::receive(scope, sent) {
                    Ok(h) => {
                        sh.push_slot(S::store(scope, h));
                        Outcome::Ok
                    }
                    Err(e) => cx.err(e),
                },
            }
        }
        Act::Once { cell, init } => {
            let got = S::once(sh.cells[cell], scope, |s| match init {
                Init::Fresh => S::eval(s, &expr(Obj::Probe, tag)),
                Init::FromSlot(i) => match sh.take_slot(i) {
                    Some(stored) => S::load(s, stored),
                    None => {
                        Err(Error::NotAttached { operation: "fuzz: the once-cell's slot is empty" })
                    }
                },
            });
            match got {
                Err(e) => cx.err(e),
                Ok(r) => {
                    let probe =
                        cx.next.cells[cell].get(&cx.cur).is_some_and(|m| m.obj == Obj::Probe);
                    match if probe { ping::<S>(r) } else { Ok(()) } {
                        Ok(()) => Outcome::Ok,
                        Err(e) => Outcome::Other(format!("ping the once-cell's value: {e}")),
                    }
                }
            }
        }
        Act::ShareIn(d) => {
            let v = sh.data.lock().unwrap()[d].clone();
            match v.to_handle::<S>(scope) {
                Ok(h) => {
                    sh.push_slot(S::store(scope, h));
                    Outcome::Ok
                }
                Err(e) => cx.err(e),
            }
        }
        Act::BytesIn(b) => {
            let seen = bytes[b].as_slice().to_vec();
            if seen != BYTES {
                return Outcome::Other(format!(
                    "SharedBytes read {:?} in place, not {:?}",
                    String::from_utf8_lossy(&seen),
                    String::from_utf8_lossy(BYTES)
                ));
            }
            match bytes[b].to_handle::<S>(scope) {
                Ok(h) => {
                    sh.push_slot(S::store(scope, h));
                    Outcome::Ok
                }
                Err(e) => cx.err(e),
            }
        }
        Act::RawSwitch { .. } => unreachable!("handled with a tagged scope"),
    }
}

/// Foreign C code under a tagged scope of the current interpreter: a raw switch into `into`,
/// where the slot's handle is bound and a new probe is made; tagged must see the switch.
fn raw_switch(cx: &Ctx<'_>, at: &Attached<'_>, into: usize, slot: usize) -> Outcome {
    let guard = match InterpreterGuard::new(cx.keys[into]) {
        Ok(g) => g,
        Err(e) => return cx.err(e),
    };
    let tag = cx.pre.next_tag;
    let outcome = st::Tagged::enter(at, |scope| {
        // SAFETY: attached to the scope's interpreter; `guard` keeps `into` from ending.
        let raw = unsafe { interpreter_by_id(cx.keys[into].id.0) };
        if raw.is_null() {
            return Outcome::Other("the interpreter is not in CPython's list".into());
        }
        // SAFETY: attached; `raw` is alive while `guard` is held (until after the switch back).
        let (bound, made) = unsafe {
            switched_into(raw, || {
                let made = match st::Tagged::eval(scope, &expr(Obj::Probe, tag)) {
                    Ok(h) => h,
                    Err(e) => return (cx.err(e), None),
                };
                if let Err(e) = st::Tagged::bind(scope, &made) {
                    return (
                        Outcome::Other(format!("the probe made under the switch was refused: {e}")),
                        Some(made),
                    );
                }
                let slots = cx.sh.slots.lock().unwrap();
                let bound = match slots.get(slot).and_then(Option::as_ref) {
                    None => Outcome::Ok,
                    Some(h) => match st::Tagged::bind(scope, h) {
                        Ok(r) if cx.is_probe(slot) => match ping::<st::Tagged>(r) {
                            Ok(()) => Outcome::Ok,
                            Err(e) => Outcome::Other(format!("ping: {e}")),
                        },
                        Ok(_) => Outcome::Ok,
                        Err(e) => cx.err(e),
                    },
                };
                (bound, Some(made))
            })
        };
        if let Some(made) = made {
            cx.sh.push_slot(st::Tagged::store(scope, made));
        }
        bound
    });
    drop(guard);
    outcome
}
