//! The records: one variant per kind of result.

use serde::{Deserialize, Serialize};

use crate::environment::Environment;

/// One result with the environment it was produced in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// Where it was produced.
    pub environment: Environment,
    /// What was found.
    #[serde(flatten)]
    pub data: RecordData,
}

/// What a record reports, tagged by `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordData {
    /// A hazard scenario run against one strategy.
    Hazard(HazardVerdict),
    /// A benchmark figure.
    Bench(BenchFigure),
    /// The size of a handle type.
    HandleSize(HandleSize),
    /// One cell of the Send/Sync model.
    SendSync(SendSyncCell),
    /// The totals of one adversarial search (`interp-tests/tests/adversarial_search.rs`).
    FuzzSummary(FuzzSummary),
    /// One failing sequence the adversarial search found, shrunk.
    FuzzFinding(FuzzFinding),
    /// One cell of the extension-module driver (`ext-modules/tests/ext_driver.py`): one variant
    /// of the extension module imported into one kind of interpreter on one build.
    ExtCell(ExtCell),
    /// One figure of the extension-module comparison's benches (a variant of the module
    /// surface, stock PyO3, a toolkit strategy or a peer binding, on one operation).
    ExtBench(ExtBenchFigure),
}

/// What happened when a hazard met a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The misuse does not compile (shown by a compile-fail test).
    CompileError {
        /// The compile-fail case that shows it.
        case: String,
    },
    /// A clear runtime error; the process survives.
    RuntimeError {
        /// The error's message.
        message: String,
    },
    /// Not caught: a crash, a corruption report, a wrong result or silence.
    Undetected {
        /// What was observed (signal, sanitizer report, wrong interpreter, leak).
        how: String,
    },
    /// The hazard cannot arise under this strategy or build.
    NotApplicable {
        /// Why.
        why: String,
    },
}

/// A hazard verdict: scenario, strategy, what happened and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HazardVerdict {
    /// The case's catalogue ID (`H1` .. `H16`, with its form: `H13.once`).
    pub hazard: String,
    /// The strategy's name.
    pub strategy: String,
    /// Own- or shared-GIL subinterpreters, where that matters.
    pub isolation: Option<String>,
    /// What the run showed.
    pub observed: Verdict,
    /// What the strategy declares; a difference fails the suite.
    pub expected: Verdict,
    /// The caller capability the case exercises (a row of the threat model), where the
    /// producer knows it; absent in records written before the threat model existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<String>,
}

/// One benchmark figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchFigure {
    /// The operation measured (`bind`, `clone_drop`, ...).
    pub operation: String,
    /// The strategy's name.
    pub strategy: String,
    /// Threads driving the operation.
    pub threads: u32,
    /// Interpreters involved.
    pub interpreters: u32,
    /// Wall-clock nanoseconds per operation (criterion's point estimate).
    pub ns_per_op: Option<f64>,
    /// Instructions per operation (callgrind), when counted.
    pub instructions_per_op: Option<f64>,
    /// Throughput relative to one thread, for scaling runs.
    pub scaling: Option<f64>,
    /// The spread of `ns_per_op`: criterion's 95% confidence interval of the median, or for the
    /// scaling bench the min–max over its repeated runs. Absent in records written before it
    /// was kept, and where the producer has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_interval: Option<Interval>,
}

/// One figure of the extension-module comparison (`ext-modules/bench/peer_bench.py`): one
/// variant of the module surface, one operation, one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtBenchFigure {
    /// The module (`stock_pyo3`, `interpsafe_tagged`, `peer_pybind11`, ...; `python` for the
    /// empty loop, `python-control` for the scaling control).
    pub variant: String,
    /// The operation (`incr`, `value`, `identity`, `raise_error`, `interned`, `cached`, `call`,
    /// `empty_loop`).
    pub operation: String,
    /// `main` (only main alive), `second-alive` (an own-GIL subinterpreter alive), `subinterpreter`
    /// (called inside an own-GIL subinterpreter) or `scaling` (1 vs 2 subinterpreters on their own
    /// threads).
    pub mode: String,
    /// Interpreters alive while it ran.
    #[serde(default)]
    pub interpreters: u32,
    /// How it was measured: `pyperf`, `perf_counter_ns` (a timed loop), `callgrind`, `threads`,
    /// or `child` (the child process failed before measuring).
    pub method: String,
    /// Wall-clock ns per call (pyperf's mean, or the timed loop's mean over its repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_per_op: Option<f64>,
    /// The standard deviation of `ns_per_op` over its values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_stdev: Option<f64>,
    /// The min–max of `ns_per_op` over its values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_interval: Option<Interval>,
    /// Instructions per call: (I(2N) − I(N)) / N under callgrind, loop iteration included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions_per_op: Option<f64>,
    /// Throughput of 2 interpreters over 1 (scaling mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<f64>,
    /// The min–max of `scaling` over its repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_interval: Option<Interval>,
    /// Why there is no figure: the import was refused in this mode, or the child crashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A range a figure lies in, as its producer measured it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The lower bound.
    pub low: f64,
    /// The upper bound.
    pub high: f64,
}

/// The size of one handle type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleSize {
    /// The strategy's name.
    pub strategy: String,
    /// The type, as `std::any::type_name` spells it.
    pub type_name: String,
    /// `size_of::<T>()`.
    pub size: usize,
    /// `size_of::<Option<T>>()`.
    pub option_size: usize,
}

/// One cell of the Send/Sync model (`src/send_sync.rs`): a type under one rule set, as the
/// build compiled for those rules checked it with static assertions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSyncCell {
    /// The type as the docs spell it, e.g. `BrandedHandle<'s>`.
    pub type_name: String,
    /// What it stands for, in PyO3's terms.
    pub stands_for: String,
    /// The rule set: `gil`, `free-threaded` or `own-gil`.
    pub rules: String,
    /// Whether it is `Send` under those rules.
    pub send: bool,
    /// Whether it is `Sync` under those rules.
    pub sync: bool,
    /// Whether a trait it implements is unsound under those rules.
    pub hazard: bool,
    /// The compile-fail crate's cases that show the cell, beside the static assertion.
    pub cases: Vec<CompileCase>,
    /// Why, in one or two sentences (Markdown).
    pub note: String,
}

/// A trybuild case of the `compile-fail/` crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompileCase {
    /// Its path under `compile-fail/tests/`, e.g. `ui/affine_into_thread_spawn.rs`.
    pub path: String,
    /// `true` for a case that must compile (trybuild `pass`), `false` for one that must not.
    pub must_compile: bool,
}

/// The totals of one adversarial search run: generated operation sequences checked against the
/// reference model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzSummary {
    /// The strategies the sequences used.
    pub strategies: Vec<String>,
    /// The first seed (sequence `k` uses `base_seed + k`).
    pub base_seed: u64,
    /// Sequences run.
    pub cases: u64,
    /// Operations executed by the sequences that passed.
    pub ops: u64,
    /// Failing sequences.
    pub failures: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The seeded hole reopened for this run, if any (`--cfg interpsafe_seeds` builds).
    pub hole: Option<String>,
    /// The 1-based position of the first failing sequence (for a seeded hole: the cases its
    /// search needed).
    pub first_failure_at: Option<u64>,
}

/// One failing sequence of an adversarial search, shrunk to a minimal reproduction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuzzFinding {
    /// The seed that generated it.
    pub seed: u64,
    /// What went wrong (a divergence from the model, a crash, a failed teardown check).
    pub failure: String,
    /// Operations in the generated sequence.
    pub generated_ops: u64,
    /// Operations in the shrunk one.
    pub minimal_ops: u64,
    /// The shrunk sequence as a Rust test to paste into the search's test file.
    pub reproduction: String,
    /// The seeded hole reopened when it was found, if any.
    pub hole: Option<String>,
}

/// How one extension-module cell's child process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExtOutcome {
    /// Every interpreter of the cell imported the module and the child exited cleanly.
    Imported,
    /// At least one interpreter refused the import (the first refusal's message).
    Refused {
        /// The `ImportError` (or other exception) the import raised, as `Type: message`.
        message: String,
    },
    /// The child process died of a signal.
    Crashed {
        /// The signal's name (`SIGSEGV`, `SIGABRT`).
        signal: String,
    },
    /// The child did not finish within the driver's timeout.
    Hung,
    /// The child exited non-zero without a signal (an exception escaped the cell).
    Failed {
        /// The end of its stderr.
        message: String,
    },
}

/// One cell of the extension-module driver: a variant (a toolkit strategy's module, stock PyO3,
/// or a peer binding) in one kind of interpreter arrangement on one build. The per-interpreter
/// flags are `None` where the cell cannot say (one interpreter only, or no import).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtCell {
    /// The module variant (`interpsafe_tagged`, `stock_pyo3`, `peer_pybind11`, ...).
    pub variant: String,
    /// The interpreter arrangement (`main`, `isolated`, `legacy`, `isolated-first`, or
    /// `cpython-interpreters`: CPython's own high-level interpreters API as the client).
    pub interpreter_kind: String,
    /// The build it ran on (`3.13t`; the environment says the same, for convenience).
    pub build: String,
    /// How the cell's child process ended.
    pub outcome: ExtOutcome,
    /// Whether the driver asserts this variant (the checked strategies) or only records it.
    pub asserted: bool,
    /// Every interpreter got its own module object.
    #[serde(default)]
    pub modules_per_interpreter: Option<bool>,
    /// Every interpreter got its own `Counter` type object.
    #[serde(default)]
    pub types_per_interpreter: Option<bool>,
    /// Every interpreter got its own `Error` class.
    #[serde(default)]
    pub exceptions_per_interpreter: Option<bool>,
    /// Every interpreter got its own `cached()` object.
    #[serde(default)]
    pub caches_per_interpreter: Option<bool>,
    /// Whether an instance made in one interpreter passed `isinstance` against the `Counter`
    /// class of another (a real cross-interpreter check; `None` where no honest route exists).
    #[serde(default)]
    pub foreign_instance_isinstance: Option<bool>,
    /// Every interpreter counted exactly (two threads' increments, none lost).
    #[serde(default)]
    pub counts_exact: Option<bool>,
    /// `sys.gettotalrefcount()` change per round of using the module (debug builds), each
    /// measured place's rounds concatenated; empty where not measured.
    #[serde(default)]
    pub refcount_drift: Vec<i64>,
    /// Why an asserted cell failed (empty when it passed or is only recorded).
    #[serde(default)]
    pub failures: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_cells_round_trip_and_default_their_optional_flags() {
        let cell = ExtCell {
            variant: "peer_nanobind".into(),
            interpreter_kind: "isolated".into(),
            build: "3.13t".into(),
            outcome: ExtOutcome::Refused { message: "ImportError: no".into() },
            asserted: false,
            modules_per_interpreter: None,
            types_per_interpreter: Some(false),
            exceptions_per_interpreter: None,
            caches_per_interpreter: None,
            foreign_instance_isinstance: Some(true),
            counts_exact: Some(true),
            refcount_drift: vec![0, 0, 1],
            failures: vec![],
        };
        let text = serde_json::to_string(&RecordData::ExtCell(cell.clone())).unwrap();
        assert!(text.contains(r#""kind":"ext_cell""#), "{text}");
        assert!(text.contains(r#""status":"refused""#), "{text}");
        assert_eq!(serde_json::from_str::<RecordData>(&text).unwrap(), RecordData::ExtCell(cell));
        // A producer may leave out every flag it cannot say anything about.
        let minimal = r#"{"kind":"ext_cell","variant":"v","interpreter_kind":"main","build":"3.13",
            "outcome":{"status":"crashed","signal":"SIGSEGV"},"asserted":true}"#;
        let RecordData::ExtCell(cell) = serde_json::from_str(minimal).unwrap() else {
            panic!("not an ext cell")
        };
        assert_eq!(cell.outcome, ExtOutcome::Crashed { signal: "SIGSEGV".into() });
        assert!(cell.refcount_drift.is_empty() && cell.types_per_interpreter.is_none());
    }

    #[test]
    fn ext_bench_records_are_tagged_and_take_defaults() {
        let minimal = r#"{"kind":"ext_bench","variant":"peer_c","operation":"incr","mode":"subinterpreter","method":"child","refused":"ImportError"}"#;
        let data: RecordData = serde_json::from_str(minimal).unwrap();
        let RecordData::ExtBench(f) = &data else { panic!("not ext_bench: {data:?}") };
        assert_eq!(
            (f.interpreters, f.ns_per_op, f.refused.as_deref()),
            (0, None, Some("ImportError"))
        );
        let text = serde_json::to_string(&data).unwrap();
        assert!(!text.contains("ns_per_op") && text.contains("\"kind\":\"ext_bench\""), "{text}");
        assert_eq!(serde_json::from_str::<RecordData>(&text).unwrap(), data);
    }
}
