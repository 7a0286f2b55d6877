//! The one schema for every machine-readable result interpsafe writes.
//!
//! Hazard verdicts, bench figures, handle sizes, the Send/Sync table and the adversarial search's
//! summaries and findings and the extension-module driver's cells are all [`ResultRecord`]s:
//! one [`Environment`] (interpreter build and exact version, PyO3 version, machine) plus the
//! figure itself ([`RecordData`]). Every record carries its environment, so files from different
//! builds and machines (a CI matrix) can be merged without losing where a number came from.
//! Producers write a [`ResultFile`]; the report and the docs generator read them back with
//! [`ResultFile::read`]. A file whose `schema` differs from [`SCHEMA`] is refused, never guessed
//! at. The vocabulary module (re-exported here) holds the words they share: [`VerdictKind`] and the
//! orders of strategies, cases and builds.

mod environment;
mod file;
mod record;
mod vocabulary;

pub use environment::{Environment, InterpreterBuild, Machine};
pub use file::{ResultFile, SchemaError};
pub use record::{
    BenchFigure, CompileCase, ExtBenchFigure, ExtCell, ExtOutcome, FuzzFinding, FuzzSummary,
    HandleSize, HazardVerdict, Interval, RecordData, ResultRecord, SendSyncCell, Verdict,
};
pub use vocabulary::{
    build_rank, case_rank, hazard_number, strategy_rank, VerdictKind, BASELINE, REFERENCE,
    STRATEGY_ORDER,
};

/// The schema identifier written into every file; bump the number on incompatible changes.
pub const SCHEMA: &str = "interpsafe-results/1";
