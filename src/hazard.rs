//! The hazard catalogue: what the hazard suite (`interp-tests/tests/hazards.rs`) runs against
//! every strategy, the verdict each strategy declares for each cell, and the probe recorder that
//! Python code feeds through `_interpsafe.record`.
//!
//! - [`Hazard`] is the catalogue (H1 to H12); a [`Case`] is one scenario of a hazard (some have
//!   several forms, e.g. `H2.unattached`); [`Case::ALL`] lists every scenario the suite runs.
//! - A [`Cell`] is one case run against one strategy under one [`Setting`] (how the interpreters
//!   involved are made) on one build. Each strategy declares what it expects per cell by
//!   implementing [`Expectations`] in its own file, so a new strategy brings its claims with it;
//!   the suite fails on any cell whose observed verdict differs, so the published matrix is
//!   always what ran.
//! - [`probe_events`] returns what probe objects reported: Python code calls
//!   `_interpsafe.record(tag, event)` (from a method, or from `__del__`), and the recorder notes the
//!   interpreter the calling thread was attached to, read from the thread state. Comparing that
//!   with the interpreter that made the probe observes a wrong-interpreter use directly, on every
//!   build, where a crash or a sanitizer report may or may not follow.

use std::fmt;

use interpsafe_results::Verdict;

pub use crate::interpreter::probe::{probe_events, ProbeEvent, ProbeEventKind};
use crate::strategy::Strategy;

/// One hazard of the catalogue (described in docs/hazards.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hazard {
    /// Bind in the wrong interpreter.
    H1,
    /// Drop in the wrong interpreter, or with no thread attached.
    H2,
    /// Use after the owning interpreter ended.
    H3,
    /// A static / once-cell filled in one interpreter, read in another.
    H4,
    /// One type object used from several interpreters.
    H5,
    /// A foreign thread calling back into Python lands in main instead of the owner.
    H6,
    /// The runtime's immortal shared objects must not be flagged.
    H7,
    /// Unsynchronised interior mutation reached from two threads.
    H8,
    /// A lazy init raced by two threads or two interpreters.
    H9,
    /// An exception created in one interpreter raised in another.
    H10,
    /// A GIL-bound reference escaping its scope.
    H11,
    /// An interned-string static filled in one interpreter and used in another.
    H12,
    /// A handle laundered into stored state with the wrong owner (through a once-cell's
    /// initialiser, a `store` from another interpreter's scope, or another strategy's store).
    /// The catalogue's adversarial additions start here: each was a way the checked strategies
    /// were broken from safe code.
    H13,
    /// An interpreter ended by Python code (`_interpreters.destroy`) while toolkit code holds it
    /// or runs in it.
    H14,
    /// A raw C-API thread-state switch (foreign C code) moves the thread into another
    /// interpreter under an open scope.
    H15,
    /// The caller's escape hatches around handle lifetimes: `mem::forget`, a panic unwinding
    /// through a scope, a thread-local destructor, `__del__` re-entering toolkit code.
    H16,
}

impl Hazard {
    /// Every hazard, in catalogue order.
    pub const ALL: [Hazard; 16] = [
        Hazard::H1,
        Hazard::H2,
        Hazard::H3,
        Hazard::H4,
        Hazard::H5,
        Hazard::H6,
        Hazard::H7,
        Hazard::H8,
        Hazard::H9,
        Hazard::H10,
        Hazard::H11,
        Hazard::H12,
        Hazard::H13,
        Hazard::H14,
        Hazard::H15,
        Hazard::H16,
    ];

    /// The catalogue ID, `H1` .. `H12`.
    pub fn id(self) -> &'static str {
        match self {
            Hazard::H1 => "H1",
            Hazard::H2 => "H2",
            Hazard::H3 => "H3",
            Hazard::H4 => "H4",
            Hazard::H5 => "H5",
            Hazard::H6 => "H6",
            Hazard::H7 => "H7",
            Hazard::H8 => "H8",
            Hazard::H9 => "H9",
            Hazard::H10 => "H10",
            Hazard::H11 => "H11",
            Hazard::H12 => "H12",
            Hazard::H13 => "H13",
            Hazard::H14 => "H14",
            Hazard::H15 => "H15",
            Hazard::H16 => "H16",
        }
    }

    /// One line on what goes wrong.
    pub fn title(self) -> &'static str {
        match self {
            Hazard::H1 => "bind in the wrong interpreter",
            Hazard::H2 => "drop in the wrong interpreter, or with no thread attached",
            Hazard::H3 => "use after the owning interpreter ended",
            Hazard::H4 => "a once-cell filled in one interpreter, read in another",
            Hazard::H5 => "one type object used from several interpreters",
            Hazard::H6 => "a foreign thread's callback lands in main instead of the owner",
            Hazard::H7 => "immortal shared objects must not be flagged",
            Hazard::H8 => "unsynchronised interior mutation from two threads",
            Hazard::H9 => "a lazy init raced by two threads or two interpreters",
            Hazard::H10 => "an exception class of one interpreter raised in another",
            Hazard::H11 => "a GIL-bound reference escaping its scope",
            Hazard::H12 => "an interned-string static filled in one interpreter, used in another",
            Hazard::H13 => "a handle laundered into stored state with the wrong owner",
            Hazard::H14 => {
                "an interpreter ended by Python code while toolkit code holds or runs in it"
            }
            Hazard::H15 => "a raw C-API thread-state switch under an open scope",
            Hazard::H16 => "forget, unwinding, thread-local destructors and __del__ re-entry",
        }
    }
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The form of a hazard that has several scenarios: the part after the dot in a case ID
/// (`H2.unattached`). Serialised (in case IDs) as its lower-case name, [`Form::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// `kept`.
    Kept,
    /// `unattached`.
    Unattached,
    /// `attach`.
    Attach,
    /// `payload`.
    Payload,
    /// `threads`.
    Threads,
    /// `interpreters`.
    Interpreters,
    /// `once`.
    Once,
    /// `store`.
    Store,
    /// `mixed`.
    Mixed,
    /// `elsewhere`.
    Elsewhere,
    /// `running`.
    Running,
    /// `forget`.
    Forget,
    /// `panic`.
    Panic,
    /// `tls`.
    Tls,
    /// `del`.
    Del,
}

impl Form {
    /// The form's name as it appears in case IDs and results (`kept`, `unattached`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Form::Kept => "kept",
            Form::Unattached => "unattached",
            Form::Attach => "attach",
            Form::Payload => "payload",
            Form::Threads => "threads",
            Form::Interpreters => "interpreters",
            Form::Once => "once",
            Form::Store => "store",
            Form::Mixed => "mixed",
            Form::Elsewhere => "elsewhere",
            Form::Running => "running",
            Form::Forget => "forget",
            Form::Panic => "panic",
            Form::Tls => "tls",
            Form::Del => "del",
        }
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scenario of the catalogue: a hazard, and which form of it where it has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    /// The hazard.
    pub hazard: Hazard,
    /// The form (`kept`, `unattached`, ...), or `None` for the hazard's main scenario.
    pub form: Option<Form>,
    /// What the scenario does, in one line.
    pub scenario: &'static str,
}

impl Case {
    /// Every scenario the suite runs, in catalogue order.
    pub const ALL: &'static [Case] = &[
        Case::new(Hazard::H1, None, "a stored handle made in A is loaded and bound in B"),
        Case::new(
            Hazard::H1,
            Some(Form::Kept),
            "a thread keeps a handle made in A and binds it after attaching to B",
        ),
        Case::new(Hazard::H2, None, "a stored handle made in A is dropped while attached to B"),
        Case::new(Hazard::H2, Some(Form::Kept), "a thread keeps a handle made in A and drops it in B"),
        Case::new(
            Hazard::H2,
            Some(Form::Unattached),
            "a stored handle made in A is dropped with no thread attached; B attaches next",
        ),
        Case::new(Hazard::H3, None, "a stored handle is loaded, bound and dropped after A ended"),
        Case::new(Hazard::H4, None, "a once-cell filled in A is read in B"),
        Case::new(Hazard::H5, None, "a heap type kept in a once-cell by A is instantiated in B"),
        Case::new(
            Hazard::H6,
            None,
            "a handle sent from A to a foreign thread, used in PyGILState_Ensure's interpreter",
        ),
        Case::new(
            Hazard::H6,
            Some(Form::Attach),
            "the same callback attaching to the owner with interpsafe::attach",
        ),
        Case::new(Hazard::H7, None, "the runtime's immortal shared objects, made in A, used in B"),
        Case::new(
            Hazard::H8,
            None,
            "two threads read-modify-write one object's attribute through their handles",
        ),
        Case::new(
            Hazard::H8,
            Some(Form::Payload),
            "two threads borrow a pyclass payload holding a Cell (Send, not Sync)",
        ),
        Case::new(Hazard::H9, Some(Form::Threads), "two threads of A race one once-cell's init"),
        Case::new(Hazard::H9, Some(Form::Interpreters), "a thread in A and one in B race one once-cell"),
        Case::new(Hazard::H10, None, "an exception class kept in a once-cell by A, raised in B"),
        Case::new(Hazard::H11, None, "a bound reference kept beyond its scope (compile time)"),
        Case::new(
            Hazard::H12,
            None,
            "an interned-string once-cell filled in A, used in B, and again after A ended",
        ),
        Case::new(
            Hazard::H13,
            Some(Form::Once),
            "a once-cell read in B is filled by an initialiser returning a handle made in A",
        ),
        Case::new(
            Hazard::H13,
            Some(Form::Store),
            "a thread keeps a handle made in A, stores it from a scope of B, then loads and binds it in B",
        ),
        Case::new(
            Hazard::H13,
            Some(Form::Mixed),
            "a handle made in A and stored by another checked strategy is loaded and bound in B",
        ),
        Case::new(
            Hazard::H14,
            None,
            "a thread holding a guard on A and a stored handle of A destroys A from Python, then uses both",
        ),
        Case::new(
            Hazard::H14,
            Some(Form::Elsewhere),
            "A is destroyed from Python while another thread holds a guard on it",
        ),
        Case::new(
            Hazard::H14,
            Some(Form::Running),
            "A is ended while another thread runs Python code in it through the toolkit",
        ),
        Case::new(
            Hazard::H15,
            None,
            "C code switches the thread from A into B under a scope of A; A's handle is bound there",
        ),
        Case::new(
            Hazard::H16,
            Some(Form::Forget),
            "handles of A (a handle, a clone, a stored form) are mem::forget-ed, then A ends",
        ),
        Case::new(
            Hazard::H16,
            Some(Form::Panic),
            "a panic unwinds out of a scope and an attach of A, and out of a once-cell initialiser",
        ),
        Case::new(
            Hazard::H16,
            Some(Form::Tls),
            "a stored handle of A in a thread-local is dropped by the thread's exit, unattached",
        ),
        Case::new(
            Hazard::H16,
            Some(Form::Del),
            "a handle of A dropped in B is released later in A, where its __del__ re-enters the toolkit",
        ),
    ];

    const fn new(hazard: Hazard, form: Option<Form>, scenario: &'static str) -> Case {
        Case { hazard, form, scenario }
    }

    /// The case's ID: `H2`, `H2.unattached`.
    pub fn id(&self) -> String {
        match self.form {
            Some(form) => format!("{}.{form}", self.hazard.id()),
            None => self.hazard.id().to_string(),
        }
    }

    /// The case with ID `id`, if there is one.
    pub fn find(id: &str) -> Option<Case> {
        Case::ALL.iter().copied().find(|c| c.id() == id)
    }

    /// Whether this is `hazard` in the form `form`.
    pub fn is(&self, hazard: Hazard, form: Option<Form>) -> bool {
        self.hazard == hazard && self.form == form
    }
}

/// What a caller can do: the rows of the threat model (`docs/threat-model.md`). Every case of
/// the catalogue exercises one, so each strategy's declared verdicts say, per row, what it
/// guarantees against it; `cargo xtask docs` renders that as the guarantee table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Threat {
    /// Safe Rust through the public API: store, load, send, once-cells, threads, strategy
    /// mixing.
    SafeCode,
    /// Python code creating, running and ending interpreters (`_interpreters`).
    PythonInterpreters,
    /// Raw C-API thread-state switches by foreign C code.
    RawSwitch,
    /// `mem::forget` of handles.
    Forget,
    /// Panics unwinding through `attach`, scopes and once-cell initialisers.
    Unwinding,
    /// Thread-local destructors running at thread exit.
    ThreadLocalDestructors,
    /// Re-entrancy from `__del__` during the toolkit's own decrefs.
    DelReentrancy,
}

impl Threat {
    /// Every row, in the table's order.
    pub const ALL: [Threat; 7] = [
        Threat::SafeCode,
        Threat::PythonInterpreters,
        Threat::RawSwitch,
        Threat::Forget,
        Threat::Unwinding,
        Threat::ThreadLocalDestructors,
        Threat::DelReentrancy,
    ];

    /// The row's label, as results records and tables carry it.
    pub fn label(self) -> &'static str {
        match self {
            Threat::SafeCode => "safe code through the public API",
            Threat::PythonInterpreters => "Python code creating, running and ending interpreters",
            Threat::RawSwitch => "raw C-API thread-state switches",
            Threat::Forget => "mem::forget",
            Threat::Unwinding => "panics unwinding through attach and scopes",
            Threat::ThreadLocalDestructors => "thread-local destructors",
            Threat::DelReentrancy => "re-entrancy from __del__ during the toolkit's decrefs",
        }
    }
}

impl Case {
    /// The caller capability this case exercises.
    pub fn threat(&self) -> Threat {
        match (self.hazard, self.form) {
            (Hazard::H14, _) => Threat::PythonInterpreters,
            (Hazard::H15, _) => Threat::RawSwitch,
            (Hazard::H16, Some(Form::Forget)) => Threat::Forget,
            (Hazard::H16, Some(Form::Panic)) => Threat::Unwinding,
            (Hazard::H16, Some(Form::Tls)) => Threat::ThreadLocalDestructors,
            (Hazard::H16, _) => Threat::DelReentrancy,
            _ => Threat::SafeCode,
        }
    }
}

/// How the interpreters of a scenario (`A`, and `B` where there are two) are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// Toolkit subinterpreters with their own GIL (PEP 684).
    OwnGil,
    /// Toolkit subinterpreters in the legacy shared-GIL configuration.
    SharedGil,
    /// Interpreters created from Python, `_interpreters.create('isolated')`.
    PythonIsolated,
    /// Interpreters created from Python, `_interpreters.create('legacy')`.
    PythonLegacy,
}

impl Setting {
    /// Every setting.
    pub const ALL: [Setting; 4] =
        [Setting::OwnGil, Setting::SharedGil, Setting::PythonIsolated, Setting::PythonLegacy];

    /// The label used in records and tables (`own-gil`, `py-legacy`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Setting::OwnGil => "own-gil",
            Setting::SharedGil => "shared-gil",
            Setting::PythonIsolated => "py-isolated",
            Setting::PythonLegacy => "py-legacy",
        }
    }

    /// The setting with label `label`.
    pub fn find(label: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.label() == label)
    }
}

/// One case, against one strategy, in one setting, on the running build: what an
/// [`Expectations`] implementation is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// The scenario.
    pub case: Case,
    /// How its interpreters are made; `None` for compile-time cases.
    pub setting: Option<Setting>,
    /// Whether the build is free-threaded.
    pub free_threaded: bool,
}

/// The compile-fail cases (trybuild, `compile-fail/`) that compile-time verdicts cite, as paths
/// from the workspace root. The suite checks that each cited file exists; the compile-fail stage
/// checks that it fails to compile.
pub mod compile_fail {
    /// A bound object (`ObjRef`, the `Ref` of every strategy but branded) kept beyond its scope.
    pub const OBJREF_ESCAPES_SCOPE: &str = "compile-fail/tests/ui/objref_escapes_scope.rs";
    /// A branded handle returned out of its brand closure: a thread cannot keep one.
    pub const BRANDED_HANDLE_ESCAPES_BRAND: &str =
        "compile-fail/tests/ui/branded_handle_escapes_brand.rs";
    /// A pyclass payload with a `Send + !Sync` field shared by two threads, on a free-threaded
    /// build.
    pub const PAYLOAD_SHARED_ACROSS_THREADS_FREE_THREADED: &str =
        "compile-fail/tests/ui-free-threaded/payload_shared_across_threads.rs";
}

/// The verdict a strategy declares for a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The misuse does not compile; `case` is the compile-fail file that shows it.
    CompileError {
        /// Path of the compile-fail case from the workspace root (see [`compile_fail`]).
        case: &'static str,
    },
    /// A clear runtime error from the operation `at` (the error message starts with `at:`),
    /// whose message contains `containing`.
    RuntimeError {
        /// The refusing operation, as the error names it (`bind`, `load`, `receive`, ...).
        at: &'static str,
        /// Text the message must contain.
        containing: &'static str,
    },
    /// Not caught; `how` says why the design cannot see it (what is observed varies by build).
    Undetected {
        /// Why the strategy misses it.
        how: &'static str,
    },
    /// The hazard cannot arise under this strategy or build; `why` says what prevents it.
    NotApplicable {
        /// What prevents it.
        why: &'static str,
    },
}

impl Expected {
    /// The expectation as a results [`Verdict`], for the record's `expected` field.
    pub fn verdict(&self) -> Verdict {
        match *self {
            Expected::CompileError { case } => Verdict::CompileError { case: case.to_string() },
            Expected::RuntimeError { at, containing } => {
                Verdict::RuntimeError { message: format!("{at}: ... {containing} ...") }
            }
            Expected::Undetected { how } => Verdict::Undetected { how: how.to_string() },
            Expected::NotApplicable { why } => Verdict::NotApplicable { why: why.to_string() },
        }
    }

    /// Whether `observed` is what this expects: the same kind, the same compile-fail case, and
    /// for a runtime error a message from operation `at` containing `containing`.
    pub fn matches(&self, observed: &Verdict) -> bool {
        match (self, observed) {
            (Expected::CompileError { case }, Verdict::CompileError { case: seen }) => case == seen,
            (Expected::RuntimeError { at, containing }, Verdict::RuntimeError { message }) => {
                message.starts_with(&format!("{at}:")) && message.contains(containing)
            }
            (Expected::Undetected { .. }, Verdict::Undetected { .. }) => true,
            (Expected::NotApplicable { .. }, Verdict::NotApplicable { .. }) => true,
            _ => false,
        }
    }
}

impl Expected {
    /// What every strategy expects where handles make no difference: the callback that attaches
    /// to the owner, interior mutation (no handle design synchronises an object's state), a
    /// pyclass payload's `Sync` rule, and a once-cell raced within one interpreter. `None` for
    /// cells where the strategy's design decides.
    pub fn common(cell: &Cell) -> Option<Expected> {
        let c = cell.case;
        Some(if c.is(Hazard::H6, Some(Form::Attach)) {
            Expected::NotApplicable {
                why: "owner: attached to the owner, nothing crosses interpreters",
            }
        } else if c.is(Hazard::H8, None) && cell.free_threaded {
            Expected::Undetected {
                how: "handles say who owns an object, not who is using it: a read-modify-write \
                      needs a critical section",
            }
        } else if c.is(Hazard::H8, None) {
            Expected::NotApplicable { why: "the GIL serialises each thread's C-API sequence" }
        } else if c.is(Hazard::H8, Some(Form::Payload)) && cell.free_threaded {
            Expected::CompileError {
                case: compile_fail::PAYLOAD_SHARED_ACROSS_THREADS_FREE_THREADED,
            }
        } else if c.is(Hazard::H8, Some(Form::Payload)) {
            Expected::NotApplicable { why: "the owner's GIL serialises the payload's borrows" }
        } else if c.is(Hazard::H14, None)
            && matches!(cell.setting, Some(Setting::OwnGil | Setting::SharedGil))
        {
            Expected::NotApplicable {
                why: "a toolkit subinterpreter runs main: _interpreters.destroy raises \
                      InterpreterError('interpreter running')",
            }
        } else if c.is(Hazard::H14, Some(Form::Elsewhere)) {
            Expected::NotApplicable {
                why: "a guard held elsewhere refuses to attach once the end began (3.13: nothing \
                      may delay an end Python started), or Python cannot destroy a toolkit \
                      subinterpreter",
            }
        } else if c.is(Hazard::H16, Some(Form::Forget)) {
            Expected::NotApplicable {
                why: "forgetting a handle leaks its reference: nothing is released, anywhere",
            }
        } else if c.is(Hazard::H16, Some(Form::Panic)) {
            Expected::NotApplicable {
                why: "unwinding drops handles inside their scope, attached to their owner, and \
                      restores the thread's previous state; a panicking initialiser leaves the \
                      once-cell empty",
            }
        } else if c.is(Hazard::H14, Some(Form::Running)) {
            Expected::NotApplicable { why: "the end waits for the code running there to leave" }
        } else if c.is(Hazard::H9, Some(Form::Threads)) {
            Expected::NotApplicable {
                why: "one interpreter: whichever thread wins, all get its object",
            }
        } else {
            return None;
        })
    }

    /// What the checked strategies (tagged, scoped, branded, affine) share: drops of stored
    /// handles deferred to the owner, per-interpreter once-cells (and so type objects, exception
    /// classes and interned strings), shared objects recognised by address, and bound references
    /// that cannot outlive their scope. A strategy matches its own cells first and falls back to
    /// this.
    pub fn checked(cell: &Cell) -> Expected {
        if let Some(e) = Expected::common(cell) {
            return e;
        }
        match cell.case.hazard {
            Hazard::H2 => Expected::NotApplicable { why: "deferred to the owner's decref pool" },
            Hazard::H4 | Hazard::H9 => Expected::NotApplicable { why: "per-interpreter once-cell" },
            Hazard::H5 => Expected::NotApplicable { why: "per-interpreter type object" },
            Hazard::H10 => Expected::NotApplicable { why: "per-interpreter exception class" },
            Hazard::H12 => Expected::NotApplicable { why: "per-interpreter interned string" },
            Hazard::H7 => Expected::NotApplicable {
                why: "the runtime's shared objects are recognised by address",
            },
            Hazard::H16 => Expected::NotApplicable {
                why: "deferred to the owner's decref pool, which hands its queue out before \
                      releasing, so re-entry from __del__ finds it unlocked",
            },
            Hazard::H11 => Expected::CompileError { case: compile_fail::OBJREF_ESCAPES_SCOPE },
            Hazard::H1
            | Hazard::H3
            | Hazard::H6
            | Hazard::H8
            | Hazard::H13
            | Hazard::H14
            | Hazard::H15 => Expected::Undetected {
                how: "not declared by the strategy: declare this cell in its Expectations",
            },
        }
    }
}

/// The verdicts a strategy declares for the hazard suite, implemented next to the strategy.
///
/// Declare what the strategy's documented design predicts. The suite runs every cell (in a child
/// process), compares, and fails on any difference; a compile-time verdict is taken from the
/// named compile-fail case instead of running the scenario.
pub trait Expectations: Strategy {
    /// The verdict this strategy expects for `cell`.
    fn expected(cell: &Cell) -> Expected;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_unique_and_round_trip() {
        for (i, c) in Case::ALL.iter().enumerate() {
            assert_eq!(Case::find(&c.id()), Some(*c));
            assert!(Case::ALL[i + 1..].iter().all(|o| o.id() != c.id()));
        }
        for h in Hazard::ALL {
            assert!(Case::ALL.iter().any(|c| c.hazard == h), "{h} has no scenario");
        }
        for s in Setting::ALL {
            assert_eq!(Setting::find(s.label()), Some(s));
        }
    }

    #[test]
    fn expectations_match_by_kind_and_message() {
        let e = Expected::RuntimeError { at: "bind", containing: "belongs to" };
        assert!(
            e.matches(&Verdict::RuntimeError { message: "bind: the handle belongs to x".into() })
        );
        assert!(
            !e.matches(&Verdict::RuntimeError { message: "load: the handle belongs to x".into() })
        );
        assert!(!e.matches(&Verdict::Undetected { how: "x".into() }));
        let c = Expected::CompileError { case: compile_fail::OBJREF_ESCAPES_SCOPE };
        assert!(c.matches(&c.verdict()));
        assert!(Expected::NotApplicable { why: "a" }
            .matches(&Verdict::NotApplicable { why: "b".into() }));
    }
}
