//! Test records written as one-line fixtures, for every test that renders, judges or
//! snapshots results (tests only).

use interpsafe_results::{BenchFigure, CompileCase, Environment, ExtBenchFigure, ExtCell};
use interpsafe_results::{ExtOutcome, HandleSize, HazardVerdict, InterpreterBuild, Interval};
use interpsafe_results::{Machine, RecordData, ResultRecord, SendSyncCell, Verdict};

/// The environment of a test record: a build named `NAME-VARIANT` has that variant, one
/// ending in `t` is free-threaded.
pub fn env(name: &str) -> Environment {
    let interpreter = InterpreterBuild {
        name: name.into(),
        version: "3.13.15".into(),
        free_threaded: name.ends_with('t'),
        variant: name.split_once('-').map(|(_, v)| v.into()),
        debian_version: None,
    };
    let (os, arch, cpu_model) = ("linux".into(), "x86_64".into(), Some("Test CPU".into()));
    let machine = Machine { os, arch, cpus: 2, cpu_model, threads_per_core: Some(1) };
    Environment { interpreter, pyo3_version: "0.28.3".into(), machine }
}

/// A verdict written `KIND:TEXT`, the kind `c` (compile error), `e` (runtime error), `u`
/// (undetected) or `n` (not applicable).
pub fn verdict(text: &str) -> Verdict {
    let (kind, text) = text.split_once(':').expect("KIND:TEXT");
    match kind {
        "c" => Verdict::CompileError { case: text.into() },
        "e" => Verdict::RuntimeError { message: text.into() },
        "u" => Verdict::Undetected { how: text.into() },
        _ => Verdict::NotApplicable { why: text.into() },
    }
}

/// Test records, one a line, fields separated by `|`:
/// - `BUILD|ns|OPERATION|STRATEGY|INTERPRETERS|NS[|LOW|HIGH]`: wall clock (with its spread);
/// - `BUILD|in|OPERATION|STRATEGY|INTERPRETERS|INSTRUCTIONS`: an instruction count;
/// - `BUILD|sc|SCENARIO|STRATEGY|THREADS|RATIO[|LOW|HIGH]`: a scaling figure (1 ns/op);
/// - `BUILD|size|STRATEGY|TYPE|SIZE|OPTION SIZE`: a handle size;
/// - `BUILD|hz|CASE|STRATEGY|SETTING|OBSERVED|EXPECTED[|THREAT]`: a hazard verdict;
/// - `BUILD|ss|TYPE|RULES|TRAITS`: a Send/Sync cell, `TRAITS` naming `send`, `sync` and
///   `hazard` where true (with one compile-fail case, `ui/a.rs`);
/// - `BUILD|ext|VARIANT|KIND|OUTCOME|TYPES|FOREIGN|DRIFT`: an extension-module cell,
///   `OUTCOME` `ok`, `refused MESSAGE` or `crash SIGNAL`, `TYPES` (modules and types per
///   interpreter) and `FOREIGN` (isinstance passed) `yes`, `no` or `-`, `DRIFT` numbers; the
///   variant `interpsafe_tagged` asserted.
pub fn records(text: &str) -> Vec<ResultRecord> {
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    lines.map(|line| record(&line.split('|').collect::<Vec<_>>())).collect()
}

fn record(f: &[&str]) -> ResultRecord {
    let num = |i: usize| f[i].parse::<f64>().expect("a number");
    let bench = |threads, ns_per_op, instructions_per_op, scaling: Option<f64>, ns_interval| {
        RecordData::Bench(BenchFigure {
            operation: f[2].into(),
            strategy: f[3].into(),
            threads,
            interpreters: if scaling.is_some() { 1 } else { num(4) as u32 },
            ns_per_op,
            instructions_per_op,
            scaling,
            ns_interval,
        })
    };
    let spread = || (f.len() > 6).then(|| Interval { low: num(6), high: num(7) });
    let data = match f[1] {
        "ns" => bench(1, Some(num(5)), None, None, spread()),
        "in" => bench(1, None, Some(num(5)), None, None),
        "sc" => bench(num(4) as u32, Some(1.0), None, Some(num(5)), spread()),
        "size" => RecordData::HandleSize(HandleSize {
            strategy: f[2].into(),
            type_name: f[3].into(),
            size: num(4) as usize,
            option_size: num(5) as usize,
        }),
        "ss" => RecordData::SendSync(SendSyncCell {
            type_name: f[2].into(),
            stands_for: "a | thing".into(),
            rules: f[3].into(),
            send: f[4].contains("send"),
            sync: f[4].contains("sync"),
            hazard: f[4].contains("hazard"),
            cases: vec![CompileCase { path: "ui/a.rs".into(), must_compile: false }],
            note: "why".into(),
        }),
        "ext" => {
            let flag = |i: usize| (f[i] != "-").then_some(f[i] == "yes");
            let outcome = match f[4].split_once(' ') {
                Some(("refused", message)) => ExtOutcome::Refused { message: message.into() },
                Some((_, signal)) => ExtOutcome::Crashed { signal: signal.into() },
                None => ExtOutcome::Imported,
            };
            RecordData::ExtCell(ExtCell {
                variant: f[2].into(),
                interpreter_kind: f[3].into(),
                build: f[0].into(),
                outcome,
                asserted: f[2] == "interpsafe_tagged",
                modules_per_interpreter: flag(5),
                types_per_interpreter: flag(5),
                exceptions_per_interpreter: None,
                caches_per_interpreter: None,
                foreign_instance_isinstance: flag(6),
                counts_exact: Some(true),
                refcount_drift: f[7].split_whitespace().map(|d| d.parse().unwrap()).collect(),
                failures: vec![],
            })
        }
        _ => RecordData::Hazard(HazardVerdict {
            hazard: f[2].into(),
            strategy: f[3].into(),
            isolation: Some(f[4].into()),
            observed: verdict(f[5]),
            expected: verdict(f[6]),
            threat: f.get(7).map(|t| t.to_string()),
        }),
    };
    ResultRecord { environment: env(f[0]), data }
}

/// Extension-module records of fixture lines `variant|mode|op|ns|instructions|refused`
/// (`-`: none), on build 3.13.
pub fn ext_records(text: &str) -> Vec<ResultRecord> {
    let opt = |s: &str| (s != "-").then(|| s.parse::<f64>().expect("a number"));
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let e = ExtBenchFigure {
                variant: f[0].into(),
                mode: f[1].into(),
                operation: f[2].into(),
                interpreters: 1,
                method: if f[4] == "-" { "pyperf" } else { "callgrind" }.into(),
                ns_per_op: opt(f[3]),
                ns_stdev: opt(f[3]).map(|_| 0.5),
                ns_interval: None,
                instructions_per_op: opt(f[4]),
                scaling: (f[1] == "scaling").then(|| opt(f[3]).unwrap_or(0.0)),
                scaling_interval: None,
                refused: (f[5] != "-").then(|| f[5].to_string()),
            };
            let env = env("3.13");
            ResultRecord { environment: env, data: RecordData::ExtBench(e) }
        })
        .collect()
}

pub const EXT: &str = "interpsafe_tagged|main|interned|20.0|-|-
    interpsafe_tagged|main|interned|-|12.0|-
    interpsafe_tagged|main|identity|15.0|-|-
    interpsafe_tagged|subinterpreter|interned|21.0|-|-
    peer_pybind11|main|interned|25.0|-|-
    peer_pybind11|main|identity|16.0|-|-
    peer_pybind11|subinterpreter|interned|26.0|-|-
    peer_cython|main|interned|10.0|-|-
    peer_cython|subinterpreter|interned|-|-|ImportError: no
    peer_c|main|interned|8.0|-|-
    peer_c|subinterpreter|interned|8.0|-|-
    interpsafe_tagged|scaling|incr|1.9|-|-
    python-control|scaling|incr|1.95|-|-";
