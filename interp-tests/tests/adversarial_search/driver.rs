//! The parent's side: seeds to children (several sequences each), crash isolation, shrinking a
//! failure to a minimal sequence, and the results file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use interp_tests::child::run_test_in_child;
use interpsafe::results::{FuzzFinding, FuzzSummary, RecordData, ResultRecord};

use super::model::{generate, Op, Strat};

/// The environment variable that makes the test binary a child: `seeds:1,2,3` runs those
/// sequences, `ops:SEED:0.3.4` runs the listed operations of SEED's sequence.
pub const CHILD_ENV: &str = "INTERPSAFE_FUZZ_CHILD";
/// The prefix of every line a child reports.
pub const PREFIX: &str = "interpsafe-fuzz ";
/// How long a child may run before it counts as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// What the search runs, read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Stop after this many sequences...
    pub cases: usize,
    /// ...or after this long, whichever comes first.
    pub seconds: f64,
    /// The first seed; sequence `k` uses `base + k`.
    pub base: u64,
    /// The strategies generated.
    pub strategies: Vec<Strat>,
    /// Sequences per child process.
    pub batch: usize,
    /// Children at a time.
    pub workers: usize,
    /// The time cap of shrinking (all failures together).
    pub shrink: Duration,
    /// Where to write the results file, if anywhere.
    pub out: Option<PathBuf>,
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The strategies named in `INTERPSAFE_FUZZ_STRATEGIES` (comma-separated), else all four.
pub fn strategies_from_env() -> Vec<Strat> {
    match std::env::var("INTERPSAFE_FUZZ_STRATEGIES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|n| {
                let n = n.trim();
                Strat::ALL.into_iter().find(|s| s.name() == n).unwrap_or_else(|| {
                    panic!(
                        "INTERPSAFE_FUZZ_STRATEGIES: unknown strategy {n:?}; valid: {}",
                        Strat::ALL.map(Strat::name).join(", ")
                    )
                })
            })
            .collect(),
        _ => Strat::ALL.to_vec(),
    }
}

impl Config {
    /// From `INTERPSAFE_FUZZ_{CASES,SECONDS,SEED,STRATEGIES,BATCH,SHRINK_SECONDS,OUT}`;
    /// `default_cases` when neither a case count nor a time is given.
    pub fn from_env(default_cases: usize) -> Config {
        let seconds: Option<f64> = env("INTERPSAFE_FUZZ_SECONDS");
        let cases = env("INTERPSAFE_FUZZ_CASES").unwrap_or(if seconds.is_some() {
            usize::MAX
        } else {
            default_cases
        });
        Config {
            cases,
            seconds: seconds.unwrap_or(f64::INFINITY),
            base: env("INTERPSAFE_FUZZ_SEED").unwrap_or(0x5eed_0000),
            strategies: strategies_from_env(),
            batch: env("INTERPSAFE_FUZZ_BATCH").unwrap_or(6).max(1),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 2),
            shrink: Duration::from_secs(env("INTERPSAFE_FUZZ_SHRINK_SECONDS").unwrap_or(60)),
            out: std::env::var_os("INTERPSAFE_FUZZ_OUT").map(PathBuf::from),
        }
    }
}

/// How one sequence went in a child.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every result matched; this many operations ran.
    Pass(usize),
    /// A divergence, a failed teardown check or a crash.
    Fail(String),
}

/// What a child did.
#[derive(Debug)]
struct ChildRun {
    /// Per seed, in the order reported.
    verdicts: Vec<(u64, Verdict)>,
    /// The seed started but never finished (the child died in it).
    in_progress: Option<u64>,
    /// What went wrong with the process itself: a signal, a sanitizer report, a hang.
    crash: Option<String>,
    /// Killed because the search stopped (a failure elsewhere was enough): nothing to count.
    cancelled: bool,
}

/// What the child's stderr says went wrong: a sanitizer report, a CPython fatal error, a glibc
/// heap check.
fn stderr_findings(stderr: &str) -> Vec<String> {
    let mut found = Vec::new();
    for l in stderr.lines().map(str::trim) {
        if l.contains("ERROR: AddressSanitizer:")
            || l.starts_with("SUMMARY: AddressSanitizer:")
            || l.starts_with("Fatal Python error:")
            || (l.contains("Assertion") && l.contains("failed"))
            || l.starts_with("free():")
            || l.starts_with("double free")
            || l.starts_with("malloc():")
            || l.starts_with("munmap_chunk()")
            || l.starts_with("corrupted ")
            || l.contains("Debug memory block at address")
        {
            found.push(l.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(200).collect());
            if found.len() >= 4 {
                break;
            }
        }
    }
    found
}

/// Runs this test binary as a child with `spec`, extra environment `envs`; kills it if `cancel`
/// turns true.
fn run_child(spec: &str, envs: &[(&str, &str)], cancel: &AtomicBool) -> ChildRun {
    let mut all = vec![(CHILD_ENV, spec)];
    all.extend_from_slice(envs);
    let out = run_test_in_child("fuzz_child", &all, CHILD_TIMEOUT, cancel);
    let (status, stderr) = (out.status, &out.stderr);
    let mut verdicts = Vec::new();
    let mut in_progress = None;
    let mut done = false;
    for line in out.reported(PREFIX) {
        let mut parts = line.splitn(3, ' ');
        let (word, seed, rest) =
            (parts.next(), parts.next().and_then(|s| s.parse().ok()), parts.next());
        match (word, seed) {
            (Some("start"), Some(seed)) => in_progress = Some(seed),
            (Some("pass"), Some(seed)) => {
                in_progress = None;
                verdicts
                    .push((seed, Verdict::Pass(rest.and_then(|r| r.parse().ok()).unwrap_or(0))));
            }
            (Some("fail"), Some(seed)) => {
                in_progress = None;
                verdicts.push((seed, Verdict::Fail(rest.unwrap_or("").to_string())));
            }
            (Some("done"), _) => done = true,
            _ => {}
        }
    }
    use std::os::unix::process::ExitStatusExt;
    let mut problems = Vec::new();
    match status {
        None => problems.push(format!("hang: killed after {}s", CHILD_TIMEOUT.as_secs())),
        Some(s) if s.success() && done => {}
        Some(s) => problems.push(match (s.code(), s.signal()) {
            (_, Some(sig)) => format!("crash: killed by signal {sig}"),
            (Some(code), _) => format!("crash: exit status {code}"),
            _ => "crash: ended abnormally".into(),
        }),
    }
    let findings = stderr_findings(stderr);
    if !findings.is_empty() {
        problems.push(findings.join("; "));
    }
    if problems.is_empty() && verdicts.is_empty() && !done {
        problems.push("the child reported nothing".into());
    }
    let crash = (!problems.is_empty()).then(|| problems.join("; "));
    ChildRun {
        verdicts,
        in_progress,
        crash,
        cancelled: status.is_none() && cancel.load(Ordering::Relaxed),
    }
}

/// The verdict of one sequence (or the listed operations of it) run alone in a child.
pub fn run_alone(seed: u64, ops: Option<&[usize]>, envs: &[(&str, &str)]) -> Verdict {
    let spec = match ops {
        None => format!("seeds:{seed}"),
        Some(ops) => {
            format!("ops:{seed}:{}", ops.iter().map(usize::to_string).collect::<Vec<_>>().join("."))
        }
    };
    run_spec(&spec, seed, envs)
}

/// The verdict a child running `spec` reports for `seed` (or its crash).
pub fn run_spec(spec: &str, seed: u64, envs: &[(&str, &str)]) -> Verdict {
    let run = run_child(spec, envs, &AtomicBool::new(false));
    let mine = run.verdicts.into_iter().find(|(s, _)| *s == seed).map(|(_, v)| v);
    match (mine, run.crash) {
        (Some(Verdict::Fail(m)), _) => Verdict::Fail(m),
        (_, Some(crash)) => Verdict::Fail(crash),
        (Some(v), None) => v,
        (None, None) => Verdict::Fail("the child did not report the sequence".into()),
    }
}

/// One failing sequence.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its seed.
    pub seed: u64,
    /// What went wrong.
    pub message: String,
    /// The operations of the shrunk sequence (indices into the generated one).
    pub kept: Vec<usize>,
    /// The generated sequence's length.
    pub generated: usize,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Sequences run.
    pub cases: usize,
    /// Operations executed (not skipped) by the sequences that passed.
    pub ops: usize,
    /// Failures, by seed.
    pub failures: Vec<Failure>,
    /// The 1-based position of the first failing sequence, if any.
    pub first_failure_at: Option<usize>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs the search: batches of seeds in children, `workers` at a time; with `stop_at_first`
/// it stops scheduling at the first failure. A crashed child's unfinished sequences run again,
/// the one it died in alone.
pub fn search(cfg: &Config, envs: &[(&str, &str)], stop_at_first: bool) -> Outcome {
    let start = Instant::now();
    let deadline = cfg.seconds;
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, u64, Verdict)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        for _ in 0..cfg.workers {
            sc.spawn(|| loop {
                if stop.load(Ordering::Relaxed) || start.elapsed().as_secs_f64() > deadline
                {
                    break;
                }
                let batch: Vec<usize> = {
                    let mut n = next.lock().unwrap();
                    let from = *n;
                    let to = (from + cfg.batch).min(cfg.cases);
                    *n = to;
                    (from..to).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let mut todo: Vec<usize> = batch;
                while !todo.is_empty() {
                    let seeds: Vec<u64> = todo.iter().map(|&k| cfg.base + k as u64).collect();
                    let spec = format!("seeds:{}", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
                    let run = run_child(&spec, envs, &stop);
                    if run.cancelled {
                        break;
                    }
                    let mut reported = Vec::new();
                    for (seed, v) in &run.verdicts {
                        let k = (seed - cfg.base) as usize;
                        reported.push(k);
                        if stop_at_first && matches!(v, Verdict::Fail(_)) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        results.lock().unwrap().push((k, *seed, v.clone()));
                    }
                    let crash = run.crash.clone();
                    todo.retain(|k| !reported.contains(k));
                    if let Some(crash) = crash {
                        // The sequence it died in runs alone: its own verdict, or the crash.
                        if let Some(seed) = run.in_progress {
                            let k = (seed - cfg.base) as usize;
                            // A known finding's crash needs no second run to be blamed.
                            let alone = if crate::known_finding(&crash).is_some() {
                                Verdict::Fail(crash.clone())
                            } else {
                                run_alone(seed, None, envs)
                            };
                            let v = match alone {
                                Verdict::Pass(_) => Verdict::Fail(format!(
                                    "{crash} (in a child that had run other sequences first; alone it passes)"
                                )),
                                fail => fail,
                            };
                            if stop_at_first {
                                stop.store(true, Ordering::Relaxed);
                            }
                            results.lock().unwrap().push((k, seed, v));
                            todo.retain(|&j| j != k);
                        } else if run.verdicts.is_empty() {
                            // Died before any sequence: blame the first.
                            let k = todo.remove(0);
                            results.lock().unwrap().push((k, cfg.base + k as u64, Verdict::Fail(crash)));
                        }
                    } else if run.verdicts.is_empty() {
                        break;
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(k, _, _)| *k);
    let mut out = Outcome { cases: results.len(), ..Outcome::default() };
    for (k, seed, v) in results {
        match v {
            Verdict::Pass(n) => out.ops += n,
            Verdict::Fail(message) => {
                out.first_failure_at.get_or_insert(k + 1);
                let generated = generate(seed, &cfg.strategies).len();
                out.failures.push(Failure {
                    seed,
                    message,
                    kept: (0..generated).collect(),
                    generated,
                });
            }
        }
    }
    out.elapsed = start.elapsed();
    out
}

/// Greedy deletion (chunks, then single operations), each candidate run alone in a child, until
/// no deletion keeps it failing or `budget` runs out.
pub fn shrink(f: &mut Failure, envs: &[(&str, &str)], budget: Duration) {
    let start = Instant::now();
    let mut chunk = (f.kept.len() / 2).max(1);
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < f.kept.len() {
            if start.elapsed() > budget {
                return;
            }
            let mut cand = f.kept.clone();
            cand.drain(i..(i + chunk).min(cand.len()));
            match run_alone(f.seed, Some(&cand), envs) {
                Verdict::Fail(m) => {
                    f.kept = cand;
                    f.message = m;
                    progress = true;
                }
                Verdict::Pass(_) => i += chunk,
            }
        }
        if chunk == 1 && !progress {
            return;
        }
        if !progress || chunk > 1 {
            chunk = (chunk / 2).max(1);
        }
    }
}

/// The shrunk sequence as Rust code to paste into this test file.
pub fn reproduction(f: &Failure, strategies: &[Strat], hole: Option<&str>) -> String {
    let ops = generate(f.seed, strategies);
    let mut s = String::new();
    let name = match hole {
        Some(h) => format!("seeded_{}_seed_{}", h.replace('-', "_"), f.seed),
        None => format!("finding_seed_{}", f.seed),
    };
    s.push_str(&format!("#[test]\nfn {name}() {{\n"));
    if let Some(h) = hole {
        s.push_str(&format!(
            "    // needs a --cfg interpsafe_seeds build with INTERPSAFE_SEEDS={h}\n"
        ));
    }
    s.push_str("    use Act::*; use Init::*; use Kind::*; use Obj::*; use Op::*; use Strat::*; use Via::*;\n");
    s.push_str("    run_sequence(&[\n");
    for &k in &f.kept {
        s.push_str(&format!("        {:?},\n", ops[k]));
    }
    s.push_str("    ]);\n}\n");
    s
}

/// The operations `kept` of `seed`'s sequence.
pub fn ops_of(seed: u64, kept: &[usize], strategies: &[Strat]) -> Vec<Op> {
    let ops = generate(seed, strategies);
    kept.iter().filter_map(|&k| ops.get(k).copied()).collect()
}

/// The records of a search: its summary, and one finding per failure.
pub fn records(
    cfg: &Config,
    out: &Outcome,
    hole: Option<&str>,
    repros: &[(Failure, String)],
) -> Vec<ResultRecord> {
    let environment = interpsafe::environment::current_environment();
    let mut records = vec![ResultRecord {
        environment: environment.clone(),
        data: RecordData::FuzzSummary(FuzzSummary {
            strategies: cfg.strategies.iter().map(|s| s.name().to_string()).collect(),
            base_seed: cfg.base,
            cases: out.cases as u64,
            ops: out.ops as u64,
            failures: out.failures.len() as u64,
            seconds: out.elapsed.as_secs_f64(),
            hole: hole.map(str::to_string),
            first_failure_at: out.first_failure_at.map(|n| n as u64),
        }),
    }];
    for (f, code) in repros {
        records.push(ResultRecord {
            environment: environment.clone(),
            data: RecordData::FuzzFinding(FuzzFinding {
                seed: f.seed,
                failure: f.message.clone(),
                generated_ops: f.generated as u64,
                minimal_ops: f.kept.len() as u64,
                reproduction: code.clone(),
                hole: hole.map(str::to_string),
            }),
        });
    }
    records
}
