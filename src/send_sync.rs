//! The Send/Sync model: for every wrapper type and for a pyclass-like payload, whether it is
//! `Send` and `Sync` on a GIL build, on a free-threaded build and under own-GIL subinterpreters.
//!
//! One declarative table (the `send_sync_table!` invocation at the bottom of this file) is the
//! single source. The macro expands it three ways:
//! - static assertions, for the rule set of the current build only, each under its cfg: a
//!   `const` that fails to compile when a type's `Send` or `Sync` differs from its cell (both
//!   directions, through an inherent-versus-trait associated-const probe, no external crate),
//!   plus a plain `T: Send` / `T: Sync` bound check for every "yes" cell;
//! - [`rows`], the current rule set's rows, which [`result_file`] turns into [`SendSyncCell`]
//!   records (the one results schema). The `send_sync_table` example writes them; `cargo xtask
//!   docs` collects the three rule sets' files into `docs/data/send-sync.json` and renders
//!   `docs/send-sync.md` from it, and a test here compares the committed snapshot with this
//!   build's rows. The library renders nothing.
//!
//! The rule set is chosen at compile time: `free-threaded` when `cfg(Py_GIL_DISABLED)` (set by
//! the build script from the interpreter), else `own-gil` with the cargo feature `own-gil-rules`,
//! else `gil`. (The feature is ignored on a free-threaded build, whose rules already allow two
//! threads on one object at once.)
//!
//! The wrapper types are the same types on every build, so their cells coincide across rule sets;
//! what changes is whether the trait is *sound* there. A cell marked **hazard** is implemented
//! but the toolkit's safety argument for it does not hold under those rules (for the baseline
//! that is the point: `Py<T>` being `Send` under own-GIL rules is the hazard the toolkit
//! measures). Only [`PyClassPayload`]'s `Sync` differs by build. The "must not compile" cells are
//! also shown by compile-fail cases in the `compile-fail/` crate (trybuild), listed per cell.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use interpsafe_results::{CompileCase, RecordData, ResultFile, ResultRecord, SendSyncCell};

use crate::interpreter::{Attached, InterpreterGuard};
use crate::object::ObjRef;
use crate::payload::{PayloadRef, PayloadRefMut, PyClassPayload};
use crate::strategy::{
    AffineHandle, AffineScope, AffineTransfer, BrandScope, BrandedHandle, BrandedRef, ScopedScope,
    TaggedHandle, TaggedOnce, TaggedScope, UncheckedHandle, UncheckedOnce, UncheckedScope,
};

/// Which threads can reach one object at once: the three rule sets of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleSet {
    /// A GIL build with one GIL in the process (PyO3's assumption).
    Gil,
    /// A free-threaded build (`cfg(Py_GIL_DISABLED)`, CPython 3.13t).
    FreeThreaded,
    /// A GIL build running own-GIL subinterpreters (PEP 684): one GIL per interpreter.
    OwnGil,
}

impl RuleSet {
    /// Every rule set, in the docs' column order.
    pub const ALL: [RuleSet; 3] = [RuleSet::Gil, RuleSet::FreeThreaded, RuleSet::OwnGil];

    /// The name used in result records.
    pub fn name(self) -> &'static str {
        match self {
            RuleSet::Gil => "gil",
            RuleSet::FreeThreaded => "free-threaded",
            RuleSet::OwnGil => "own-gil",
        }
    }
}

impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rule set this build was compiled for (and whose assertions it checked).
#[cfg(Py_GIL_DISABLED)]
pub const CURRENT: RuleSet = RuleSet::FreeThreaded;
/// The rule set this build was compiled for (and whose assertions it checked).
#[cfg(all(not(Py_GIL_DISABLED), feature = "own-gil-rules"))]
pub const CURRENT: RuleSet = RuleSet::OwnGil;
/// The rule set this build was compiled for (and whose assertions it checked).
#[cfg(all(not(Py_GIL_DISABLED), not(feature = "own-gil-rules")))]
pub const CURRENT: RuleSet = RuleSet::Gil;

/// What a compile-fail-crate case expects of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseKind {
    /// It must not compile (trybuild `compile_fail`, with recorded compiler output).
    Fails,
    /// It must compile (trybuild `pass`): the cell allows what the case does.
    Passes,
}

/// A trybuild case in `compile-fail/tests/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Whether it must fail or pass.
    pub kind: CaseKind,
    /// Its path under `compile-fail/tests/`, e.g. `ui/affine_into_thread_spawn.rs`.
    pub path: &'static str,
}

/// One cell of the model: a type under one rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The type as the docs spell it, e.g. `BrandedHandle<'s>`.
    pub type_name: &'static str,
    /// What it stands for, in PyO3's terms.
    pub stands_for: &'static str,
    /// The rule set.
    pub rules: RuleSet,
    /// Whether it is `Send`.
    pub send: bool,
    /// Whether it is `Sync`.
    pub sync: bool,
    /// Whether a trait it implements is unsound under these rules (see the module docs).
    pub hazard: bool,
    /// The compile-fail crate's cases that show the cell.
    pub cases: &'static [Case],
    /// Why, in one or two sentences.
    pub note: &'static str,
}

impl Row {
    /// The result record of this cell.
    pub fn record(&self) -> SendSyncCell {
        SendSyncCell {
            type_name: self.type_name.to_string(),
            stands_for: self.stands_for.to_string(),
            rules: self.rules.name().to_string(),
            send: self.send,
            sync: self.sync,
            hazard: self.hazard,
            cases: self
                .cases
                .iter()
                .map(|c| CompileCase {
                    path: c.path.to_string(),
                    must_compile: c.kind == CaseKind::Passes,
                })
                .collect(),
            note: self.note.to_string(),
        }
    }
}

/// What the `send_sync_table` example writes: the current rule set's cells, each stamped with
/// this build's environment.
pub fn result_file() -> ResultFile {
    let environment = crate::environment::current_environment();
    let records = rows()
        .iter()
        .map(|row| ResultRecord {
            environment: environment.clone(),
            data: RecordData::SendSync(row.record()),
        })
        .collect();
    ResultFile::new("examples/send_sync_table", records)
}

/// The compile-time probes behind the assertions: `<Probe<T>>::SEND` is the inherent constant
/// (`true`) when `T: Send`, and otherwise the trait's default (`false`); likewise `SYNC`.
#[doc(hidden)]
pub mod probe {
    use std::marker::PhantomData;

    /// Carries the probed type.
    pub struct Probe<T: ?Sized>(PhantomData<T>);

    /// The fallback when `T` is not `Send`.
    pub trait FallbackSend {
        /// Not `Send`.
        const SEND: bool = false;
    }
    impl<T: ?Sized> FallbackSend for Probe<T> {}
    impl<T: ?Sized + Send> Probe<T> {
        /// `T: Send`.
        pub const SEND: bool = true;
    }

    /// The fallback when `T` is not `Sync`.
    pub trait FallbackSync {
        /// Not `Sync`.
        const SYNC: bool = false;
    }
    impl<T: ?Sized> FallbackSync for Probe<T> {}
    impl<T: ?Sized + Sync> Probe<T> {
        /// `T: Sync`.
        pub const SYNC: bool = true;
    }

    /// Compiles only if `T: Send`.
    pub const fn assert_send<T: ?Sized + Send>() {}
    /// Compiles only if `T: Sync`.
    pub const fn assert_sync<T: ?Sized + Sync>() {}
}

/// `yes`/`no` as a `bool`.
macro_rules! yes_no {
    (yes) => {
        true
    };
    (no) => {
        false
    };
}

/// `ok`/`hazard` as the `hazard` flag.
macro_rules! verdict {
    (ok) => {
        false
    };
    (hazard) => {
        true
    };
}

/// `fails`/`passes` as a [`CaseKind`].
macro_rules! case_kind {
    (fails) => {
        CaseKind::Fails
    };
    (passes) => {
        CaseKind::Passes
    };
}

/// A plain bound check for a "yes" cell (nothing for "no": the probe covers it).
macro_rules! positive {
    (yes, send, $ty:ty) => {
        probe::assert_send::<$ty>()
    };
    (yes, sync, $ty:ty) => {
        probe::assert_sync::<$ty>()
    };
    (no, $which:ident, $ty:ty) => {};
}

/// The static assertions of one cell.
macro_rules! check_cell {
    ($name:literal, $rules:literal, $ty:ty, $send:ident, $sync:ident) => {
        assert!(
            <probe::Probe<$ty>>::SEND == yes_no!($send),
            concat!(
                "Send/Sync model: `",
                $name,
                "` under the ",
                $rules,
                " rules: the table in ",
                "src/send_sync.rs says Send: ",
                stringify!($send),
                ", the type disagrees; fix ",
                "the type or the row, then run `cargo xtask docs`"
            )
        );
        assert!(
            <probe::Probe<$ty>>::SYNC == yes_no!($sync),
            concat!(
                "Send/Sync model: `",
                $name,
                "` under the ",
                $rules,
                " rules: the table in ",
                "src/send_sync.rs says Sync: ",
                stringify!($sync),
                ", the type disagrees; fix ",
                "the type or the row, then run `cargo xtask docs`"
            )
        );
        positive!($send, send, $ty);
        positive!($sync, sync, $ty);
    };
}

/// One [`Row`] literal.
macro_rules! row {
    ($name:literal, $stands:literal, $rules:expr, $send:ident, $sync:ident, $verdict:ident,
     [$($kind:ident $case:literal),*], $note:literal) => {
        Row {
            type_name: $name,
            stands_for: $stands,
            rules: $rules,
            send: yes_no!($send),
            sync: yes_no!($sync),
            hazard: verdict!($verdict),
            cases: &[$(Case { kind: case_kind!($kind), path: $case }),*],
            note: $note,
        }
    };
}

/// Expands the model's table into the static assertions of the current rule set and into
/// [`rows`]. Each row: `"docs name" => type used by the assertions, "stands for" { gil: ...,
/// free_threaded: ..., own_gil: ... }`, each cell `Send Sync verdict [cases] "note"` with
/// `yes`/`no`, `ok`/`hazard`, and cases as `fails "path"` / `passes "path"`.
macro_rules! send_sync_table {
    ($(
        $name:literal => $ty:ty, $stands:literal {
            gil: $g_send:ident $g_sync:ident $g_verdict:ident
                [$($g_kind:ident $g_case:literal),*] $g_note:literal,
            free_threaded: $f_send:ident $f_sync:ident $f_verdict:ident
                [$($f_kind:ident $f_case:literal),*] $f_note:literal,
            own_gil: $o_send:ident $o_sync:ident $o_verdict:ident
                [$($o_kind:ident $o_case:literal),*] $o_note:literal,
        }
    )*) => {
        #[cfg(all(not(Py_GIL_DISABLED), not(feature = "own-gil-rules")))]
        const _: () = {
            #[allow(unused_imports)]
            use probe::{FallbackSend as _, FallbackSync as _};
            $(check_cell!($name, "gil", $ty, $g_send, $g_sync);)*
        };

        #[cfg(Py_GIL_DISABLED)]
        const _: () = {
            #[allow(unused_imports)]
            use probe::{FallbackSend as _, FallbackSync as _};
            $(check_cell!($name, "free-threaded", $ty, $f_send, $f_sync);)*
        };

        #[cfg(all(not(Py_GIL_DISABLED), feature = "own-gil-rules"))]
        const _: () = {
            #[allow(unused_imports)]
            use probe::{FallbackSend as _, FallbackSync as _};
            $(check_cell!($name, "own-gil", $ty, $o_send, $o_sync);)*
        };

        /// The rows of the current rule set ([`CURRENT`]), in table order: exactly the cells
        /// this build's static assertions checked.
        pub fn rows() -> Vec<Row> {
            vec![$({
                #[cfg(all(not(Py_GIL_DISABLED), not(feature = "own-gil-rules")))]
                let row = row!($name, $stands, RuleSet::Gil, $g_send, $g_sync, $g_verdict,
                    [$($g_kind $g_case),*], $g_note);
                #[cfg(Py_GIL_DISABLED)]
                let row = row!($name, $stands, RuleSet::FreeThreaded, $f_send, $f_sync,
                    $f_verdict, [$($f_kind $f_case),*], $f_note);
                #[cfg(all(not(Py_GIL_DISABLED), feature = "own-gil-rules"))]
                let row = row!($name, $stands, RuleSet::OwnGil, $o_send, $o_sync, $o_verdict,
                    [$($o_kind $o_case),*], $o_note);
                row
            }),*]
        }
    };
}

send_sync_table! {
    // ---- handles ----
    "UncheckedHandle" => UncheckedHandle, "today's `Py<T>` (the baseline)" {
        gil: yes yes ok []
            "As `Py<T>`: the one GIL orders every use, so moving and sharing it is sound while it is the only GIL in the process.",
        free_threaded: yes yes ok []
            "As `Py<T>` on 3.13t: one interpreter, atomic reference counts, CPython's per-object locks; any attached thread may use it.",
        own_gil: yes yes hazard []
            "Exactly what the toolkit measures: `Send` lets it reach a thread attached to another interpreter, where bind, clone and drop touch a foreign object and nothing checks. Sound only if `!Send` or checked.",
    }
    "Py<PyAny>" => pyo3::Py<pyo3::PyAny>, "the real `pyo3::Py<T>` (the `pyo3` row)" {
        gil: yes yes ok []
            "PyO3's own impls, which the model's row copies: the one GIL orders every use.",
        free_threaded: yes yes ok []
            "PyO3's own impls on 3.13t: atomic reference counts; a drop outside PyO3's entry points goes to PyO3's process-wide pool.",
        own_gil: yes yes hazard []
            "The same impls with one GIL per interpreter: nothing stops it reaching another interpreter, and its pool releases a deferred drop in whichever interpreter PyO3 code enters next.",
    }
    "TaggedHandle" => TaggedHandle, "a `Py<T>` that records its owner interpreter (also the stored form of scoped, branded and affine)" {
        gil: yes yes ok []
            "Moves freely; every bind compares the owner (one flag load while only main exists).",
        free_threaded: yes yes ok []
            "Moves freely; the owner check is about interpreters, not threads.",
        own_gil: yes yes ok []
            "Sound although `Send`: every bind compares the owner tag and a drop elsewhere is deferred to the owner's pool; a run-time check stands in for the type-level one.",
    }
    "BrandedHandle<'s>" => BrandedHandle<'static>, "a `Py<T>` usable only inside one brand closure" {
        gil: no no ok [fails "ui/branded_other_brand.rs", fails "ui/branded_handle_escapes_brand.rs"]
            "The brand `'s` keeps it in its `Branded::enter` closure and away from other scopes; `!Send` keeps it on its thread, so its unchecked drop runs attached to its interpreter.",
        free_threaded: no no ok [fails "ui/branded_other_brand.rs", fails "ui/branded_handle_escapes_brand.rs"]
            "As on a GIL build: the brand names an interpreter, not a lock.",
        own_gil: no no ok [fails "ui/branded_other_brand.rs", fails "ui/branded_handle_escapes_brand.rs"]
            "What makes its unchecked bind and drop sound with several interpreters: another brand's scope does not type-check, and it cannot leave the brand closure or the thread (attach closures must be `Send`).",
    }
    "BrandedRef<'s, 'a>" => BrandedRef<'static, 'static>, "`Borrowed<'a, 'py, T>` with a brand" {
        gil: no no ok []
            "A borrowed object: only on the thread and inside the borrow of its brand's scope.",
        free_threaded: no no ok []
            "As on a GIL build.",
        own_gil: no no ok []
            "As on a GIL build; the brand ties it to one interpreter.",
    }
    "AffineHandle" => AffineHandle, "a `!Send` `Py<T>` (`#[pyclass(unsendable)]` generalised)" {
        gil: no no ok [fails "ui/affine_into_thread_spawn.rs"]
            "Cannot reach another thread; crossing goes through `Affine::send`/`receive` (`AffineTransfer`).",
        free_threaded: no no ok [fails "ui/affine_into_thread_spawn.rs"]
            "As on a GIL build.",
        own_gil: no no ok [fails "ui/affine_into_thread_spawn.rs"]
            "`!Send` proves the same thread, not the same interpreter: a thread that attaches to A, then B, can use an A handle in B unchecked (a gap the hazard suite shows; no trait can close it).",
    }
    "AffineTransfer" => AffineTransfer, "an affine handle in transit between threads" {
        gil: yes yes ok []
            "The checked way across threads: it records the sending interpreter.",
        free_threaded: yes yes ok []
            "As on a GIL build.",
        own_gil: yes yes ok []
            "Sound although `Send`: `Affine::receive` refuses a scope of another interpreter, and dropping it defers to the owner's pool.",
    }
    "ObjRef<'a>" => ObjRef<'static>, "`Borrowed<'a, 'py, PyAny>`: a borrowed object" {
        gil: no no ok [fails "ui/objref_escapes_scope.rs"]
            "Valid while this thread stays attached for the scope's borrow; the lifetime keeps it in the scope.",
        free_threaded: no no ok [fails "ui/objref_escapes_scope.rs"]
            "As on a GIL build (PyO3's `Bound` is `!Send` on every build too).",
        own_gil: no no ok [fails "ui/objref_escapes_scope.rs"]
            "As on a GIL build: `!Send` keeps it off threads attached to other interpreters.",
    }
    // ---- attaching ----
    "InterpreterGuard" => InterpreterGuard, "PEP 788's interpreter guard" {
        gil: yes no ok []
            "PEP 788: one thread takes the guard, another attaches through it. `!Sync` only because nothing claims it (a raw interpreter pointer); sharing it would be sound.",
        free_threaded: yes no ok []
            "As on a GIL build.",
        own_gil: yes no ok []
            "As on a GIL build: it names its interpreter, and `attach` attaches to that one.",
    }
    "Attached<'a>" => Attached<'static>, "`Python<'py>`: proof that this thread is attached" {
        gil: no no ok [fails "ui/attached_escapes_attach.rs"]
            "Describes the calling thread; the lifetime keeps it inside the attach closure.",
        free_threaded: no no ok [fails "ui/attached_escapes_attach.rs"]
            "As on a GIL build.",
        own_gil: no no ok [fails "ui/attached_escapes_attach.rs"]
            "As on a GIL build: it names the interpreter this thread is attached to.",
    }
    // ---- scopes ----
    "UncheckedScope<'s>" => UncheckedScope<'static>, "`Python<'py>` in the baseline" {
        gil: no no ok []
            "Like PyO3's `Python<'py>` (`!Send`): it vouches for an attached thread, so it must not reach another one. (It was `Send + Sync` until this table's run showed a scoped, unattached thread could evaluate Python through it.)",
        free_threaded: no no ok []
            "As on a GIL build.",
        own_gil: no no ok []
            "As on a GIL build.",
    }
    "TaggedScope<'s>" => TaggedScope<'static>, "`Python<'py>` for tagged handles" {
        gil: no no ok []
            "Binds re-read the interpreter, but `Strategy::eval` trusts the scope, so it must not reach a thread that is not attached (fixed after this table showed the hole: a segfault from safe code).",
        free_threaded: no no ok []
            "As on a GIL build.",
        own_gil: no no ok []
            "As on a GIL build.",
    }
    "ScopedScope<'s>" => ScopedScope<'static>, "`Python<'py>` that read the interpreter once" {
        gil: no no ok []
            "It vouches for the interpreter read at entry, so it must not leave the thread.",
        free_threaded: no no ok []
            "As on a GIL build.",
        own_gil: no no ok []
            "As on a GIL build: binds compare handles with the interpreter it read.",
    }
    "BrandScope<'s>" => BrandScope<'static>, "the brand's token" {
        gil: no no ok [fails "ui/branded_other_brand.rs"]
            "Invariant in `'s` and `!Send`: the proof a brand's handles are used with.",
        free_threaded: no no ok [fails "ui/branded_other_brand.rs"]
            "As on a GIL build.",
        own_gil: no no ok [fails "ui/branded_other_brand.rs"]
            "As on a GIL build: one brand, one interpreter.",
    }
    "AffineScope<'s>" => AffineScope<'static>, "`Python<'py>` for affine handles" {
        gil: no no ok []
            "Records the interpreter for transfers; stays on its thread.",
        free_threaded: no no ok []
            "As on a GIL build.",
        own_gil: no no ok []
            "As on a GIL build.",
    }
    // ---- once-cells ----
    "UncheckedOnce" => UncheckedOnce, "`PyOnceLock` in a static (process-global)" {
        gil: yes yes ok []
            "One interpreter, one object: sharing the cell is sharing a `Py<T>`.",
        free_threaded: yes yes ok []
            "As on a GIL build; a racing initialiser's value is dropped.",
        own_gil: yes yes hazard []
            "The first interpreter to fill it wins and every other interpreter reads that interpreter's object (PyO3's type objects, `intern!`, exception types).",
    }
    "TaggedOnce" => TaggedOnce, "a per-interpreter once-cell (tagged, scoped, branded, affine)" {
        gil: yes yes ok []
            "One slot per interpreter.",
        free_threaded: yes yes ok []
            "One slot per interpreter; initialisation is a compare-and-swap.",
        own_gil: yes yes ok []
            "One slot per interpreter: each reads only its own object.",
    }
    // ---- pyclass-like payload ----
    "PyClassPayload<Rc<u32>>" => PyClassPayload<Rc<u32>>, "`#[pyclass(unsendable)]` data: `T` is not `Send`" {
        gil: no no ok [fails "ui/payload_rc_into_thread.rs"]
            "`T: !Send` makes the payload neither `Send` nor `Sync` on any build; PyO3 needs `unsendable` (a run-time thread check) for such data.",
        free_threaded: no no ok [fails "ui/payload_rc_into_thread.rs"]
            "As on a GIL build.",
        own_gil: no no ok [fails "ui/payload_rc_into_thread.rs"]
            "As on a GIL build.",
    }
    "PyClassPayload<RefCell<u32>>" => PyClassPayload<RefCell<u32>>, "pyclass data that is `Send` but not `Sync`" {
        gil: yes yes ok [passes "ui-gil/payload_shared_across_threads.rs"]
            "The GIL serialises every borrow, as a mutex does (`Mutex<T>: Sync` needs only `T: Send`): PyO3's rule up to 0.22. PyO3 0.23+ asks `Sync` on every build for portability.",
        free_threaded: yes no ok [fails "ui-free-threaded/payload_shared_across_threads.rs"]
            "Two threads hold `&T` at once, so `Sync` needs `T: Send + Sync` (PyO3 0.23+: `#[pyclass]` must be `Sync`). Still `Send`: it can be moved and dropped elsewhere.",
        own_gil: yes yes ok [passes "ui-gil/payload_shared_across_threads.rs"]
            "Each interpreter's GIL serialises its own objects: a borrow checks that the thread is attached to the owner, so a thread holding another interpreter's GIL is refused at run time.",
    }
    "PyClassPayload<Vec<u32>>" => PyClassPayload<Vec<u32>>, "pyclass data that is `Send + Sync`" {
        gil: yes yes ok []
            "The common case: shared and moved on every build.",
        free_threaded: yes yes ok []
            "Concurrent shared borrows; the atomic borrow flag arbitrates `&mut`.",
        own_gil: yes yes ok []
            "Shared, and borrowed only by threads attached to the owner.",
    }
    "PayloadRef<'a, T>" => PayloadRef<'static, Vec<u32>>, "`PyRef<'py, T>`: a shared borrow" {
        gil: no no ok [fails "ui/payload_ref_escapes_attach.rs"]
            "Stays on the thread and inside the attach closure it was taken in (it borrows the `Attached` proof).",
        free_threaded: no no ok [fails "ui/payload_ref_escapes_attach.rs"]
            "As on a GIL build.",
        own_gil: no no ok [fails "ui/payload_ref_escapes_attach.rs"]
            "As on a GIL build: what keeps a borrow under the owner's GIL.",
    }
    "PayloadRefMut<'a, T>" => PayloadRefMut<'static, Vec<u32>>, "`PyRefMut<'py, T>`: the exclusive borrow" {
        gil: no no ok []
            "As `PayloadRef`.",
        free_threaded: no no ok []
            "As `PayloadRef`.",
        own_gil: no no ok []
            "As `PayloadRef`.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::path::Path;

    /// The committed snapshot the docs page is rendered from.
    const SNAPSHOT: &str = "docs/data/send-sync.json";

    #[test]
    fn the_committed_snapshot_matches_this_rule_set() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
        let file = ResultFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let committed: Vec<SendSyncCell> = file
            .records
            .into_iter()
            .filter_map(|r| match r.data {
                RecordData::SendSync(cell) if cell.rules == CURRENT.name() => Some(cell),
                _ => None,
            })
            .collect();
        let built: Vec<SendSyncCell> = rows().iter().map(Row::record).collect();
        if committed != built {
            let first = built
                .iter()
                .zip(committed.iter().map(Some).chain(std::iter::repeat(None)))
                .find(|(b, c)| Some(*b) != *c);
            panic!(
                "{SNAPSHOT} is stale for the `{}` rules (first difference:\n  this build {:?}\n  \
                 committed  {:?})\nregenerate it with `cargo xtask docs`",
                CURRENT.name(),
                first.map(|(b, _)| b),
                first.and_then(|(_, c)| c)
            );
        }
    }

    #[test]
    fn every_case_named_in_the_table_exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("compile-fail/tests");
        for row in rows() {
            for case in row.cases {
                let path = root.join(case.path);
                assert!(
                    path.is_file(),
                    "{}: no compile-fail case {}",
                    row.type_name,
                    path.display()
                );
                if case.kind == CaseKind::Fails {
                    let stderr = path.with_extension("stderr");
                    assert!(
                        stderr.is_file(),
                        "{}: no recorded {}",
                        row.type_name,
                        stderr.display()
                    );
                }
            }
        }
    }

    #[test]
    fn rows_are_unique_and_of_this_rule_set() {
        let rows = rows();
        assert!(rows.len() >= 14);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.rules, CURRENT);
            assert!(rows[..i].iter().all(|r| r.type_name != row.type_name), "{}", row.type_name);
        }
    }

    #[test]
    fn the_result_file_has_one_record_per_row() {
        let file = result_file();
        assert_eq!(file.records.len(), rows().len());
        assert!(file.records.iter().all(|r| matches!(
            &r.data,
            RecordData::SendSync(c) if c.rules == CURRENT.name()
        )));
    }

    /// The probes agree with plain bounds on types whose traits are known.
    #[test]
    fn probes_see_send_and_sync() {
        use probe::{FallbackSend as _, FallbackSync as _};
        const _: () = assert!(<probe::Probe<u32>>::SEND && <probe::Probe<u32>>::SYNC);
        const _: () = assert!(!<probe::Probe<Rc<u32>>>::SEND && !<probe::Probe<Rc<u32>>>::SYNC);
        const _: () = assert!(<probe::Probe<Cell<u32>>>::SEND && !<probe::Probe<Cell<u32>>>::SYNC);
        const _: () = assert!(
            !<probe::Probe<std::sync::MutexGuard<'static, u32>>>::SEND
                && <probe::Probe<std::sync::MutexGuard<'static, u32>>>::SYNC
        );
    }
}
