//! The operations, the reference model that predicts each one's result, and the generator that
//! draws sequences of them from a seed.
//!
//! The model keeps, per interpreter, its kind, its status (alive, ending, ended), how many
//! releases are queued for it in the deferred-decref pool and whether that queue is closed; per
//! stored slot, the object's owner and kind; per thread, the guards and `SharedBytes` it holds
//! and the parcels waiting for it; per once-cell, the value each interpreter put there; and a
//! blocked Python-side destroy, if one is under way. [`Model::apply`] is the semantics the
//! search checks the code against (see the test file's module docs for the rules).

use std::collections::{BTreeMap, VecDeque};

/// What kind of interpreter a [`Op::Create`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SubInterpreter::new(Isolation::OwnGil)`.
    OwnGil,
    /// `SubInterpreter::new(Isolation::SharedGil)`.
    SharedGil,
    /// `_interpreters.create()` in main, then `_interpreters.exec(id, 'import _interpsafe')`.
    PythonMade,
}

/// A checked strategy (the baseline is never generated: its cross-interpreter use is undefined
/// behaviour, not a result a model can predict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strat {
    /// `interpsafe::strategy::Tagged`.
    Tagged,
    /// `interpsafe::strategy::Scoped`.
    Scoped,
    /// `interpsafe::strategy::Branded`.
    Branded,
    /// `interpsafe::strategy::Affine`.
    Affine,
}

impl Strat {
    /// Every generated strategy.
    pub const ALL: [Strat; 4] = [Strat::Tagged, Strat::Scoped, Strat::Branded, Strat::Affine];

    /// The strategy's `Strategy::NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Strat::Tagged => "tagged",
            Strat::Scoped => "scoped",
            Strat::Branded => "branded",
            Strat::Affine => "affine",
        }
    }

    /// Whether `load` and `receive` check the owner (else `bind` and `clone` do).
    fn checks_at_load(self) -> bool {
        matches!(self, Strat::Branded | Strat::Affine)
    }
}

/// How a [`Op::Use`] gets its thread into the interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `interpsafe::attach(key, ..)`.
    Direct,
    /// `InterpreterGuard::attach` through the first guard the thread holds on it.
    Guard,
    /// `attach(outer, || attach(key, ..))`: a nested attachment.
    Nested(usize),
}

/// What an [`Act::Eval`] evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obj {
    /// `Probe(tag)`: reports its method calls and its finalisation with the interpreter.
    Probe,
    /// `None`: a runtime shared singleton, usable anywhere.
    Singleton,
    /// `(1, 'two', 3.5)`: owned, shareable as data.
    Data,
    /// `b'interpsafe-bytes'`: owned, shareable, readable in place by `SharedBytes`.
    Bytes,
}

/// A once-cell's initialiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// A new probe evaluated in the scope.
    Fresh,
    /// The handle stored in a slot (possibly another interpreter's), loaded in the scope.
    FromSlot(usize),
}

/// What a [`Op::Use`] does inside its strategy's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `S::eval` then `S::store` into a new slot.
    Eval(Obj),
    /// `S::load` a slot, `S::bind` it (and ping a probe), store it back.
    Bind(usize),
    /// Load, `S::clone_handle` into a new slot, store the original back.
    Dup(usize),
    /// Load, bind, `S::to_handle` into a new slot, store the original back.
    ToHandle(usize),
    /// Take a slot and drop the stored handle while attached here.
    DropIn(usize),
    /// Load a slot and `S::send` it to the other thread's mailbox.
    SendTo(usize),
    /// `S::receive` the oldest parcel in this thread's mailbox into a new slot.
    Receive,
    /// `S::once` on once-cell `cell` (the cells are shared by every strategy).
    Once {
        /// Which of the sequence's once-cells.
        cell: usize,
        /// Its initialiser.
        init: Init,
    },
    /// Load, bind, `Shareable::from_object` into a data slot.
    ShareOut(usize),
    /// `Shareable::to_handle` of a data slot into a new slot.
    ShareIn(usize),
    /// Load, bind, `SharedBytes::new`: kept by this thread (it holds a guard).
    BytesNew(usize),
    /// `SharedBytes::to_handle` of one this thread keeps, into a new slot (content checked).
    BytesIn(usize),
    /// Foreign C code under a tagged scope: a raw thread-state switch into `into`, where the
    /// slot's handle is bound and a new probe is made (into a new slot). Tagged only.
    RawSwitch {
        /// The interpreter switched into.
        into: usize,
        /// The slot bound there.
        slot: usize,
    },
}

/// One public operation, run by executor thread `t` (0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create an interpreter (and define the probe class in it).
    Create {
        /// Thread.
        t: usize,
        /// Kind.
        kind: Kind,
    },
    /// `SubInterpreter::end(Some(timeout))` of a toolkit subinterpreter.
    EndRust {
        /// Thread.
        t: usize,
        /// Interpreter index (0 is main).
        interp: usize,
    },
    /// `_interpreters.destroy(id)`, run in main.
    DestroyPy {
        /// Thread.
        t: usize,
        /// Interpreter index.
        interp: usize,
    },
    /// `_interpreters.exec(id, 'Probe(tag)')`, run in main.
    ExecPy {
        /// Thread.
        t: usize,
        /// Interpreter index.
        interp: usize,
    },
    /// `InterpreterGuard::new`, kept by the thread.
    GuardNew {
        /// Thread.
        t: usize,
        /// Interpreter index.
        interp: usize,
    },
    /// Drop the thread's `guard`-th guard.
    GuardDrop {
        /// Thread.
        t: usize,
        /// Index in the thread's guards.
        guard: usize,
    },
    /// Attach (`via`) to `interp`, enter a scope of `strat`, do `act`.
    Use {
        /// Thread.
        t: usize,
        /// How to attach.
        via: Via,
        /// Interpreter index.
        interp: usize,
        /// Strategy of the scope.
        strat: Strat,
        /// What to do there.
        act: Act,
    },
    /// Drop a stored handle on the thread while it is attached to nothing.
    DropUnattached {
        /// Thread.
        t: usize,
        /// Slot.
        slot: usize,
    },
    /// Drop one of the thread's `SharedBytes` (unattached).
    BytesDrop {
        /// Thread.
        t: usize,
        /// Index in the thread's `SharedBytes`.
        bytes: usize,
    },
}

impl Op {
    /// The executor thread that runs it.
    pub fn thread(&self) -> usize {
        match *self {
            Op::Create { t, .. }
            | Op::EndRust { t, .. }
            | Op::DestroyPy { t, .. }
            | Op::ExecPy { t, .. }
            | Op::GuardNew { t, .. }
            | Op::GuardDrop { t, .. }
            | Op::Use { t, .. }
            | Op::DropUnattached { t, .. }
            | Op::BytesDrop { t, .. } => t,
        }
    }
}

/// A predicted or observed result of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The operation's references do not resolve in this state: nothing runs.
    Skip,
    /// Success.
    Ok,
    /// `Error::CrossInterpreter` naming the owner (index).
    Cross(usize),
    /// `Error::OwnerEnded` naming the owner.
    OwnerEnded(usize),
    /// `Error::OwnerUnknown`: a handle tagged as nobody's.
    OwnerUnknown,
    /// `Error::Attach(AttachRefused::Ending)`.
    AttachEnding(usize),
    /// `Error::Attach(AttachRefused::Ended)`.
    AttachEnded(usize),
    /// `Error::Attach(AttachRefused::Unknown)`.
    AttachUnknown(usize),
    /// `Error::End(EndRefused::CallerHolds)`.
    EndCallerHolds(usize),
    /// `Error::End(EndRefused::Busy)`.
    EndBusy(usize),
    /// `Error::NotShareable`.
    NotShareable,
    /// A Python exception, `Type: message`; a prediction matches an observation it prefixes.
    Py(String),
    /// Anything else (a different error, a wrong value, a panic): never predicted.
    Other(String),
}

impl Outcome {
    /// Whether the observation `seen` is what `self` predicts.
    pub fn admits(&self, seen: &Outcome) -> bool {
        match (self, seen) {
            (Outcome::Py(want), Outcome::Py(got)) => got.starts_with(want.as_str()),
            (a, b) => a == b,
        }
    }
}

/// A CPython interpreter status in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum St {
    /// Running.
    Alive,
    /// Its end has begun (a blocked Python-side destroy).
    Ending,
    /// Gone.
    Ended,
}

/// One interpreter in the model.
#[derive(Debug, Clone)]
pub struct MInterp {
    /// `None` for main.
    pub kind: Option<Kind>,
    /// Where it is in its life.
    pub st: St,
    /// Releases queued for it in the deferred-decref pool.
    pub pending: usize,
    /// Its queue is closed (it ended): later deferrals are discarded.
    pub closed: bool,
}

/// The owner of a handle made from a reference bound outside its recorded owner: nobody's
/// (`Tag::UNKNOWN`): refused by every check but for shared objects, leaked on drop.
pub const UNKNOWN: usize = usize::MAX;

/// A strong reference in the model: whose object, what kind, which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MRef {
    /// The interpreter the handle is tagged with (what `TaggedHandle::owner` must say).
    pub owner: usize,
    /// The interpreter the object really belongs to.
    pub home: usize,
    /// What it is.
    pub obj: Obj,
    /// The probe tag (probes only).
    pub tag: i64,
}

/// The reference model of one sequence.
#[derive(Debug, Clone)]
pub struct Model {
    /// Interpreters, 0 is main.
    pub interps: Vec<MInterp>,
    /// Stored handles.
    pub slots: Vec<Option<MRef>>,
    /// Per thread: the interpreters of the guards it holds, in order.
    pub guards: [Vec<usize>; 2],
    /// Per thread: the `SharedBytes` it holds (owner = the interpreter they guard).
    pub bytes: [Vec<MRef>; 2],
    /// Per thread: parcels waiting for it (`true`: an affine transfer).
    pub mail: [VecDeque<(bool, MRef)>; 2],
    /// Shareable values read out (their kind).
    pub data: Vec<Obj>,
    /// Once-cells: interpreter → value.
    pub cells: [BTreeMap<usize, MRef>; 2],
    /// Probes made: (tag, interpreter).
    pub probes: Vec<(i64, usize)>,
    /// The next probe tag.
    pub next_tag: i64,
    /// A reference outlived its interpreter (or a once-cell keeps one): the total reference
    /// count is not expected to balance.
    pub leaky: bool,
    /// Interpreters created so far.
    pub created: usize,
}

/// At most this many subinterpreters alive at once, and created per sequence.
const MAX_ALIVE: usize = 3;
const MAX_CREATED: usize = 5;

impl Model {
    /// Main alone; probe tags from `first_tag` on.
    pub fn new(first_tag: i64) -> Model {
        Model {
            interps: vec![MInterp { kind: None, st: St::Alive, pending: 0, closed: false }],
            slots: Vec::new(),
            guards: [Vec::new(), Vec::new()],
            bytes: [Vec::new(), Vec::new()],
            mail: [VecDeque::new(), VecDeque::new()],
            data: Vec::new(),
            cells: [BTreeMap::new(), BTreeMap::new()],
            probes: Vec::new(),
            next_tag: first_tag,
            leaky: false,
            created: 0,
        }
    }

    fn st(&self, i: usize) -> St {
        self.interps[i].st
    }

    fn toolkit(&self, i: usize) -> bool {
        matches!(self.interps[i].kind, Some(Kind::OwnGil | Kind::SharedGil))
    }

    /// Guards and `SharedBytes` thread `t` holds on `i`.
    pub fn held_by(&self, t: usize, i: usize) -> usize {
        self.guards[t].iter().filter(|&&g| g == i).count()
            + self.bytes[t].iter().filter(|b| b.owner == i).count()
    }

    /// `SharedBytes` (pinning guards) either thread holds on `i`: what a Python-side end waits for.
    pub fn pins(&self, i: usize) -> usize {
        self.bytes.iter().flatten().filter(|b| b.owner == i).count()
    }

    /// The refusal (or success) of a new guard or attachment on `i`.
    fn attach_check(&self, i: usize) -> Outcome {
        match self.st(i) {
            St::Alive => Outcome::Ok,
            St::Ending => Outcome::AttachEnding(i),
            St::Ended => Outcome::AttachEnded(i),
        }
    }

    /// The owner check every checked strategy makes (at bind, clone, load or receive).
    fn check(&self, h: &MRef, cur: usize) -> Outcome {
        if h.obj == Obj::Singleton || (h.home == cur && h.owner == cur) {
            Outcome::Ok
        } else if h.owner == UNKNOWN {
            Outcome::OwnerUnknown
        } else if self.st(h.owner) == St::Ended {
            Outcome::OwnerEnded(h.owner)
        } else {
            Outcome::Cross(h.owner)
        }
    }

    /// A stored handle released while attached to `attached`: now if that is its owner, else
    /// deferred to the owner's queue (discarded once the owner has ended).
    fn release(&mut self, h: MRef, attached: Option<usize>) {
        if attached == Some(h.owner) || h.owner == UNKNOWN {
            return;
        }
        let o = &mut self.interps[h.owner];
        if !o.closed {
            o.pending += 1;
        }
    }

    /// A fresh attachment to `i` releases what is queued for it.
    fn drain(&mut self, i: usize) {
        self.interps[i].pending = 0;
    }

    /// The tag a strategy's stored form carries after `load` (or `receive`) then `store` in
    /// `cur`: branded stores with its brand's interpreter, the others keep the handle's owner.
    fn restored(strat: Strat, h: MRef, cur: usize) -> MRef {
        if strat == Strat::Branded {
            MRef { owner: cur, ..h }
        } else {
            h
        }
    }

    fn new_tag(&mut self) -> i64 {
        let t = self.next_tag;
        self.next_tag += 1;
        t
    }

    fn probe(&mut self, owner: usize) -> MRef {
        let tag = self.new_tag();
        self.probes.push((tag, owner));
        MRef { owner, home: owner, obj: Obj::Probe, tag }
    }

    /// Whether anything the model holds references an object of `i` (ignoring singletons).
    fn holds_objects_of(&self, i: usize) -> bool {
        let of = |r: &MRef| r.home == i && r.obj != Obj::Singleton;
        self.slots.iter().flatten().any(of)
            || self.bytes.iter().flatten().any(of)
            || self.mail.iter().flatten().any(|(_, r)| of(r))
            || self.cells.iter().any(|c| c.values().any(of))
    }

    /// `i` ends: the toolkit's end releases its queue (`released`), Python's discards it.
    fn ended(&mut self, i: usize, released: bool) {
        if self.holds_objects_of(i) || (!released && self.interps[i].pending > 0) {
            self.leaky = true;
        }
        let m = &mut self.interps[i];
        m.st = St::Ended;
        m.closed = true;
        m.pending = 0;
    }

    /// Predicts `op`'s result and moves the model past it.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        let n = self.interps.len();
        match *op {
            Op::Create { kind, .. } => {
                let alive = self.interps.iter().skip(1).filter(|m| m.st != St::Ended).count();
                if alive >= MAX_ALIVE || self.created >= MAX_CREATED {
                    return Outcome::Skip;
                }
                if kind == Kind::PythonMade {
                    self.drain(0);
                }
                self.created += 1;
                self.interps.push(MInterp {
                    kind: Some(kind),
                    st: St::Alive,
                    pending: 0,
                    closed: false,
                });
                Outcome::Ok
            }
            Op::EndRust { t, interp: i } => {
                if i >= n || !self.toolkit(i) {
                    return Outcome::Skip;
                }
                match self.st(i) {
                    St::Ended => Outcome::Ok,
                    St::Ending => Outcome::Skip,
                    St::Alive if self.held_by(t, i) > 0 => Outcome::EndCallerHolds(i),
                    St::Alive if self.held_by(1 - t, i) > 0 => Outcome::EndBusy(i),
                    St::Alive => {
                        self.ended(i, true);
                        Outcome::Ok
                    }
                }
            }
            Op::DestroyPy { interp: i, .. } => {
                if i == 0 || i >= n || self.st(i) == St::Ending {
                    return Outcome::Skip;
                }
                let pinned = self.pins(i) > 0;
                self.drain(0);
                match (self.toolkit(i), self.st(i)) {
                    (_, St::Ended) => {
                        Outcome::Py("InterpreterNotFoundError: unrecognized interpreter ID".into())
                    }
                    (true, _) => Outcome::Py("InterpreterError: interpreter running".into()),
                    // A pin marks it as running main (`running_main::PinMark`).
                    (false, _) if pinned => {
                        Outcome::Py("InterpreterError: interpreter running".into())
                    }
                    (false, _) => {
                        self.ended(i, false);
                        Outcome::Ok
                    }
                }
            }
            Op::ExecPy { interp: i, .. } => {
                if i == 0 || i >= n || self.st(i) == St::Ending {
                    return Outcome::Skip;
                }
                self.drain(0);
                match (self.toolkit(i), self.st(i)) {
                    (_, St::Ended) => {
                        Outcome::Py("InterpreterNotFoundError: unrecognized interpreter ID".into())
                    }
                    (true, _) => {
                        Outcome::Py("InterpreterError: interpreter already running".into())
                    }
                    (false, _) if self.pins(i) > 0 => {
                        Outcome::Py("InterpreterError: interpreter already running".into())
                    }
                    (false, _) => {
                        self.probe(i);
                        Outcome::Ok
                    }
                }
            }
            Op::GuardNew { t, interp: i } => {
                if i >= n || self.guards[t].len() >= 3 {
                    return Outcome::Skip;
                }
                let r = self.attach_check(i);
                if r == Outcome::Ok {
                    self.guards[t].push(i);
                }
                r
            }
            Op::GuardDrop { t, guard } => {
                if guard >= self.guards[t].len() {
                    return Outcome::Skip;
                }
                self.guards[t].remove(guard);
                Outcome::Ok
            }
            Op::DropUnattached { slot, .. } => {
                match self.slots.get_mut(slot).and_then(Option::take) {
                    None => Outcome::Skip,
                    Some(h) => {
                        self.release(h, None);
                        Outcome::Ok
                    }
                }
            }
            Op::BytesDrop { t, bytes } => {
                if bytes >= self.bytes[t].len() {
                    return Outcome::Skip;
                }
                let b = self.bytes[t].remove(bytes);
                self.release(b, None);
                Outcome::Ok
            }
            Op::Use { t, via, interp, strat, act } => self.apply_use(t, via, interp, strat, act),
        }
    }

    fn slot(&self, s: usize) -> Option<MRef> {
        self.slots.get(s).copied().flatten()
    }

    /// Whether `act` can run in this state (its references resolve).
    fn resolves(&self, t: usize, cur: usize, strat: Strat, act: Act) -> bool {
        match act {
            Act::Eval(_) => true,
            Act::Bind(s)
            | Act::Dup(s)
            | Act::ToHandle(s)
            | Act::DropIn(s)
            | Act::SendTo(s)
            | Act::ShareOut(s)
            | Act::BytesNew(s) => self.slot(s).is_some(),
            Act::Receive => {
                self.mail[t].front().is_some_and(|(affine, _)| *affine == (strat == Strat::Affine))
            }
            Act::Once { cell, init } => {
                cell < 2
                    && match init {
                        Init::Fresh => true,
                        Init::FromSlot(s) => self.slot(s).is_some(),
                    }
            }
            Act::ShareIn(d) => d < self.data.len(),
            Act::BytesIn(b) => b < self.bytes[t].len(),
            Act::RawSwitch { into, .. } => {
                strat == Strat::Tagged && into < self.interps.len() && into != cur
            }
        }
    }

    fn apply_use(&mut self, t: usize, via: Via, cur: usize, strat: Strat, act: Act) -> Outcome {
        let n = self.interps.len();
        if cur >= n || !self.resolves(t, cur, strat, act) {
            return Outcome::Skip;
        }
        match via {
            Via::Direct => {
                let r = self.attach_check(cur);
                if r != Outcome::Ok {
                    return r;
                }
                self.drain(cur);
            }
            Via::Guard => {
                if !self.guards[t].contains(&cur) {
                    return Outcome::Skip;
                }
                let r = self.attach_check(cur);
                if r != Outcome::Ok {
                    return r;
                }
                self.drain(cur);
            }
            Via::Nested(outer) => {
                if outer >= n {
                    return Outcome::Skip;
                }
                let r = self.attach_check(outer);
                if r != Outcome::Ok {
                    return r;
                }
                self.drain(outer);
                if outer != cur {
                    let r = self.attach_check(cur);
                    if r != Outcome::Ok {
                        return r;
                    }
                    self.drain(cur);
                }
            }
        }
        self.act(t, cur, strat, act)
    }

    /// Load (checked by branded and affine) then bind (checked by tagged and scoped): the same
    /// check, and a refused load consumes the handle (released, or deferred to its owner).
    fn load_bind(&mut self, s: usize, cur: usize, strat: Strat) -> Result<MRef, Outcome> {
        let h = self.slot(s).expect("resolved");
        let r = self.check(&h, cur);
        if r != Outcome::Ok {
            if strat.checks_at_load() {
                self.slots[s] = None;
                self.release(h, Some(cur));
            }
            return Err(r);
        }
        let back = Self::restored(strat, h, cur);
        self.slots[s] = Some(back);
        Ok(back)
    }

    fn act(&mut self, t: usize, cur: usize, strat: Strat, act: Act) -> Outcome {
        match act {
            Act::Eval(obj) => {
                let r = match obj {
                    Obj::Probe => self.probe(cur),
                    _ => MRef { owner: cur, home: cur, obj, tag: 0 },
                };
                self.slots.push(Some(r));
                Outcome::Ok
            }
            Act::Bind(s) => self.load_bind(s, cur, strat).map_or_else(|e| e, |_| Outcome::Ok),
            Act::Dup(s) => match self.load_bind(s, cur, strat) {
                Err(e) => e,
                Ok(h) => {
                    self.slots.push(Some(h));
                    Outcome::Ok
                }
            },
            Act::ToHandle(s) => match self.load_bind(s, cur, strat) {
                Err(e) => e,
                Ok(h) => {
                    // Tagged on the reference's owner as the strategy knows it: the current
                    // interpreter, except for affine, whose reference to a handle recorded
                    // elsewhere (a shared object loaded here) is nobody's.
                    let owner =
                        if strat == Strat::Affine && h.owner != cur { UNKNOWN } else { cur };
                    self.slots.push(Some(MRef { owner, ..h }));
                    Outcome::Ok
                }
            },
            Act::DropIn(s) => {
                let h = self.slots[s].take().expect("resolved");
                self.release(h, Some(cur));
                Outcome::Ok
            }
            Act::SendTo(s) => {
                let h = self.slots[s].take().expect("resolved");
                if strat.checks_at_load() {
                    let r = self.check(&h, cur);
                    if r != Outcome::Ok {
                        self.release(h, Some(cur));
                        return r;
                    }
                }
                let sent = Self::restored(strat, h, cur);
                self.mail[1 - t].push_back((strat == Strat::Affine, sent));
                Outcome::Ok
            }
            Act::Receive => {
                let (_, h) = self.mail[t].pop_front().expect("resolved");
                if strat.checks_at_load() {
                    let r = self.check(&h, cur);
                    if r != Outcome::Ok {
                        self.release(h, Some(cur));
                        return r;
                    }
                }
                self.slots.push(Some(Self::restored(strat, h, cur)));
                Outcome::Ok
            }
            Act::Once { cell, init } => {
                self.leaky = true;
                if self.cells[cell].contains_key(&cur) {
                    return Outcome::Ok;
                }
                match init {
                    Init::Fresh => {
                        let p = self.probe(cur);
                        self.cells[cell].insert(cur, p);
                        Outcome::Ok
                    }
                    Init::FromSlot(s) => {
                        let h = self.slots[s].take().expect("resolved");
                        let r = self.check(&h, cur);
                        if r != Outcome::Ok {
                            self.release(h, Some(cur));
                            return r;
                        }
                        self.cells[cell].insert(cur, h);
                        Outcome::Ok
                    }
                }
            }
            Act::ShareOut(s) => match self.load_bind(s, cur, strat) {
                Err(e) => e,
                Ok(h) if h.obj == Obj::Probe => Outcome::NotShareable,
                Ok(h) => {
                    self.data.push(h.obj);
                    Outcome::Ok
                }
            },
            Act::ShareIn(d) => {
                let obj = self.data[d];
                self.slots.push(Some(MRef { owner: cur, home: cur, obj, tag: 0 }));
                Outcome::Ok
            }
            Act::BytesNew(s) => match self.load_bind(s, cur, strat) {
                Err(e) => e,
                // The owner the strategy vouches for comes first (affine's reference to a handle
                // recorded elsewhere is nobody's), then the type.
                Ok(h) if strat == Strat::Affine && h.owner != cur => Outcome::OwnerUnknown,
                Ok(h) if h.obj != Obj::Bytes => Outcome::NotShareable,
                Ok(h) => {
                    self.bytes[t].push(MRef { owner: cur, ..h });
                    Outcome::Ok
                }
            },
            Act::BytesIn(_) => {
                self.slots.push(Some(MRef { owner: cur, home: cur, obj: Obj::Bytes, tag: 0 }));
                Outcome::Ok
            }
            Act::RawSwitch { into, slot } => {
                let r = self.attach_check(into);
                if r != Outcome::Ok {
                    return r;
                }
                let bound = match self.slot(slot) {
                    Some(h) => self.check(&h, into),
                    None => Outcome::Ok,
                };
                let p = self.probe(into);
                self.slots.push(Some(p));
                bound
            }
        }
    }
}

/// A small deterministic PRNG (splitmix64), so a child regenerates a sequence from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// Draws a sequence of operations from `seed`, using only `strategies`, steered by a model so
/// that most operations resolve (live slots, held guards, mostly live interpreters).
pub fn generate(seed: u64, strategies: &[Strat]) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let len = 12 + rng.below(29);
    let mut model = Model::new(0);
    let mut ops = Vec::with_capacity(len);
    let mut attempts = 0;
    while ops.len() < len && attempts < len * 20 {
        attempts += 1;
        let op = draw(&mut rng, &model, strategies);
        let mut next = model.clone();
        if next.apply(&op) != Outcome::Skip {
            model = next;
            ops.push(op);
        }
    }
    ops
}

fn draw(rng: &mut Rng, m: &Model, strategies: &[Strat]) -> Op {
    let t = rng.below(2);
    let n = m.interps.len();
    let live: Vec<usize> = (0..n).filter(|&i| m.interps[i].st == St::Alive).collect();
    // Mostly live interpreters, sometimes any (ended ones test the refusals).
    let interp = |rng: &mut Rng| {
        if rng.percent(85) {
            rng.pick(&live)
        } else {
            rng.below(n)
        }
    };
    let subs: Vec<usize> = (1..n).collect();
    let full: Vec<usize> = (0..m.slots.len()).filter(|&s| m.slots[s].is_some()).collect();
    let slot = |rng: &mut Rng| if full.is_empty() { 0 } else { rng.pick(&full) };
    let strat = rng.pick(strategies);
    let roll = rng.below(100);
    if n == 1 || (n < 4 && roll < 8) {
        let kind = rng.pick(&[Kind::OwnGil, Kind::SharedGil, Kind::PythonMade, Kind::PythonMade]);
        return Op::Create { t, kind };
    }
    match roll {
        0..=7 => {
            Op::Create { t, kind: rng.pick(&[Kind::OwnGil, Kind::SharedGil, Kind::PythonMade]) }
        }
        8..=10 => Op::EndRust { t, interp: rng.pick(&subs) },
        11..=14 => Op::DestroyPy { t, interp: rng.pick(&subs) },
        15..=16 => Op::ExecPy { t, interp: rng.pick(&subs) },
        17..=21 => Op::GuardNew { t, interp: interp(rng) },
        22..=24 => Op::GuardDrop { t, guard: rng.below(m.guards[t].len().max(1)) },
        25..=28 => Op::DropUnattached { t, slot: slot(rng) },
        29..=30 => Op::BytesDrop { t, bytes: rng.below(m.bytes[t].len().max(1)) },
        _ => {
            let via = match rng.below(10) {
                0..=5 => Via::Direct,
                6..=7 => Via::Guard,
                _ => Via::Nested(interp(rng)),
            };
            let cur = if via == Via::Guard && !m.guards[t].is_empty() {
                rng.pick(&m.guards[t])
            } else {
                interp(rng)
            };
            let cell = rng.below(2);
            let (strat, act) = match rng.below(100) {
                0..=17 => (
                    strat,
                    Act::Eval(rng.pick(&[
                        Obj::Probe,
                        Obj::Probe,
                        Obj::Singleton,
                        Obj::Data,
                        Obj::Bytes,
                    ])),
                ),
                18..=33 => (strat, Act::Bind(slot(rng))),
                34..=39 => (strat, Act::Dup(slot(rng))),
                40..=44 => (strat, Act::ToHandle(slot(rng))),
                45..=49 => (strat, Act::DropIn(slot(rng))),
                50..=57 => (strat, Act::SendTo(slot(rng))),
                58..=65 => {
                    let affine = m.mail[t].front().is_some_and(|(a, _)| *a);
                    let s = if affine {
                        Strat::Affine
                    } else {
                        let non: Vec<Strat> =
                            strategies.iter().copied().filter(|s| *s != Strat::Affine).collect();
                        if non.is_empty() {
                            strat
                        } else {
                            rng.pick(&non)
                        }
                    };
                    (s, Act::Receive)
                }
                66..=69 => (strat, Act::Once { cell, init: Init::Fresh }),
                70..=76 => (strat, Act::Once { cell, init: Init::FromSlot(slot(rng)) }),
                77..=80 => (strat, Act::ShareOut(slot(rng))),
                81..=83 => (strat, Act::ShareIn(rng.below(m.data.len().max(1)))),
                84..=87 => (strat, Act::BytesNew(slot(rng))),
                88..=90 => (strat, Act::BytesIn(rng.below(m.bytes[t].len().max(1)))),
                _ => (Strat::Tagged, Act::RawSwitch { into: interp(rng), slot: slot(rng) }),
            };
            let strat = if strategies.contains(&strat) { strat } else { rng.pick(strategies) };
            Op::Use { t, via, interp: cur, strat, act }
        }
    }
}
