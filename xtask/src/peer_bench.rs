//! `bench --only peers`: the extension-module comparison's benches, per interpreter.
//!
//! Every variant of the module surface (stock PyO3, the toolkit's strategies from the one
//! `interpsafe-ext` `.so` given one file name per variant, and the peers `cargo xtask peers
//! build` made) is measured by `ext-modules/bench/peer_bench.py` in five stages: pyperf with only
//! main alive and with an own-GIL subinterpreter alive (through the peers' venv python, which has
//! pyperf; `--quick` runs 2 workers of 2 values of 1000 loops per benchmark, less than pyperf's
//! `--fast`),
//! timed loops inside an own-GIL subinterpreter, 1 vs 2
//! subinterpreters on their own threads against a pure-Python control, and callgrind instruction
//! counts (never on the ASan build). The script writes [`ExtBenchFigure`] JSON; this module
//! stamps the environment on each and hands them to the report.
//!
//! The `.so` is built in release mode here (`cargo build --release -p interpsafe-ext` into the
//! same `target/ext-NAME` as the test stage's debug build): the peers are optimised builds too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use interpsafe_results::{Environment, ExtBenchFigure, RecordData, ResultRecord};

use crate::cli::{cargo, with_python};
use crate::error::Error;
use crate::paths::{self, Cache};
use crate::peers::venv::{with_runtime_env, Venv};
use crate::python::interpreter::Interpreter;
use crate::stage::{self, Outcome, Stage, StageResult};
use crate::step::Step;

/// The `--only` part this module runs.
pub const PART: &str = "peers";

/// The toolkit's variants, exported by the one `.so` (`PyInit_<variant>`).
pub const EXT_VARIANTS: [&str; 6] = [
    "stock_pyo3",
    "interpsafe_unchecked",
    "interpsafe_tagged",
    "interpsafe_scoped",
    "interpsafe_branded",
    "interpsafe_affine",
];

/// The variants whose instructions are also counted with a second interpreter alive: those
/// whose paths change then (the tagged fast path, pybind11's per-interpreter internals), and
/// the unchecked baseline beside them.
pub const COUNTED_WITH_SECOND: [&str; 3] =
    ["interpsafe_unchecked", "interpsafe_tagged", "peer_pybind11"];

/// Calls per region of the instruction counts (N; the script also runs 2N).
pub const COUNT_N: u32 = 500;

/// The bench script.
pub fn script() -> PathBuf {
    paths::workspace_root().join("ext-modules").join("bench").join("peer_bench.py")
}

/// Where this part keeps its files for `build`: `target/interpsafe/peer-bench/<build>`.
pub fn work_dir(build: &str) -> PathBuf {
    paths::target_dir("interpsafe").join("peer-bench").join(build)
}

/// The release `.so` of the toolkit's variants built against `py`.
pub fn release_object(py: &Interpreter) -> PathBuf {
    crate::ext_modules::target_dir(py).join("release").join("libinterpsafe_ext.so")
}

/// The peer modules built for `build` (`peer_*.so` in the peers' output directory), by name.
pub fn peer_modules(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("peer_") && n.ends_with(".so"))
        .filter_map(|n| n.split('.').next().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Gives the `.so` one file name per variant (`<variant>.so` symlinks in `dir`).
fn link_variants(so: &Path, dir: &Path) -> Result<(), Error> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, &e))?;
    for v in EXT_VARIANTS {
        let link = dir.join(format!("{v}.so"));
        std::os::unix::fs::symlink(so, &link).map_err(|e| Error::io("link", &link, &e))?;
    }
    Ok(())
}

/// One stage of the script: `python peer_bench.py MODE --path P --variants V --out O ARGS`,
/// with `(P, V)` = `modules`.
pub fn script_stage(
    py: &Interpreter,
    python: &Path,
    (name, mode): (&str, &str),
    (path, variants): (&str, &[String]),
    out: &Path,
    more: &[String],
) -> Stage {
    let step = Step::new(python)
        .arg(script())
        .arg(mode)
        .args(["--path", path, "--variants", &variants.join(",")])
        .arg("--out")
        .arg(out)
        .args(more);
    let step = with_runtime_env(step, py).env("PYTHONHASHSEED", "0");
    Stage { name: format!("bench peers {name}"), python: Some(py.name.clone()), step }
}

/// Reads the script's figures from `out`, stamped with `env`.
pub fn read_figures(out: &Path, env: &Environment) -> Result<Vec<ResultRecord>, Error> {
    let text = std::fs::read_to_string(out).map_err(|e| Error::io("read", out, &e))?;
    let figures: Vec<ExtBenchFigure> = serde_json::from_str(&text)
        .map_err(|e| Error::new(format!("{}: not a list of figures: {e}", out.display())))?;
    let stamp = |f| ResultRecord { environment: env.clone(), data: RecordData::ExtBench(f) };
    Ok(figures.into_iter().map(stamp).collect())
}

/// Runs `stage`, then reads its figures into `records` (a run without readable figures fails).
fn run_one(
    stage: Stage,
    out: &Path,
    env: &Environment,
    records: &mut Vec<ResultRecord>,
) -> StageResult {
    let _ = std::fs::remove_file(out);
    let mut result = stage::run_streamed(&stage);
    if result.ok() {
        match read_figures(out, env) {
            Ok(mut got) => records.append(&mut got),
            Err(e) => result.outcome = Outcome::Failed(e.to_string()),
        }
    }
    result
}

/// The peers' venv and modules for `py`, built by `cargo xtask peers build` if missing.
fn ensure_peers(py: &Interpreter, cache: &Cache) -> Result<(Venv, Vec<String>), Error> {
    let venv = Venv::of(&py.name, cache);
    let dir = crate::peers::out_dir(&py.name);
    if !venv.python.is_file() || peer_modules(&dir).is_empty() {
        println!("[bench peers] no peers built for {}: cargo xtask peers build", py.name);
        let args = ["build".to_string(), "--python".to_string(), py.name.clone()];
        crate::peers::peers_command(&args, cache)?;
    }
    if !venv.python.is_file() {
        return Err(Error::new(format!(
            "{} is missing after `cargo xtask peers build --python {}`",
            venv.python.display(),
            py.name
        )));
    }
    Ok((venv, peer_modules(&dir)))
}

/// Runs the part against `py` and appends its figures to `records`, stamped with `env`.
pub fn run(
    py: &Interpreter,
    env: &Environment,
    quick: bool,
    cache: &Cache,
    records: &mut Vec<ResultRecord>,
) -> Vec<StageResult> {
    let not_run = |name: &str, why: String| {
        vec![StageResult::not_run(
            &format!("bench peers {name}"),
            Some(&py.name),
            why,
            Duration::ZERO,
        )]
    };
    let (venv, peers) = match ensure_peers(py, cache) {
        Ok(p) => p,
        Err(e) => return not_run("setup", format!("no peers: {e}")),
    };
    let build = Stage {
        name: "bench peers build interpsafe-ext (release)".to_string(),
        python: Some(py.name.clone()),
        step: with_python(
            cargo().args(["build", "--release", "-p", crate::ext_modules::PACKAGE]),
            py,
            &crate::ext_modules::target_dir(py),
        ),
    };
    let mut results = vec![stage::run_streamed(&build)];
    if !results[0].ok() {
        return results;
    }
    let work = work_dir(&py.name);
    let modules = work.join("modules");
    if let Err(e) = link_variants(&release_object(py), &modules) {
        results.extend(not_run("setup", e.to_string()));
        return results;
    }
    let path = std::env::join_paths([modules, crate::peers::out_dir(&py.name)])
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut variants: Vec<String> = EXT_VARIANTS.iter().map(|s| s.to_string()).collect();
    variants.extend(peers);
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // pyperf's fast mode still spawns 10 workers (and a calibration run) per benchmark, about
    // 160 benchmarks here: half an hour on 2 shared cores. `--quick` is a smoke run: 2 workers
    // of 2 values, 1000 loops each (no calibration).
    let smoke = ["--processes", "2", "--values", "2", "--warmups", "1", "--loops", "1000"];
    let smoke = [&smoke[..], &["--quiet"]].concat();
    let fast = if quick { strs(&smoke) } else { strs(&["--quiet"]) };
    let (iterations, repeats) = if quick { ("20000", "5") } else { ("200000", "20") };
    let (scale_n, scale_r) = if quick { ("100000", "3") } else { ("1000000", "7") };
    let loops = strs(&["--iterations", iterations, "--repeats", repeats]);
    let scaling = strs(&["--iterations", scale_n, "--repeats", scale_r]);
    let second = [fast.clone(), strs(&["--second"])].concat();
    let out = |n: &str| work.join(format!("{n}.json"));
    let py_venv = venv.python.as_path();
    let wall: [(&str, &str, &[String]); 4] = [
        ("main", "pyperf", &fast),
        ("second-alive", "pyperf", &second),
        ("subinterpreter", "subinterp", &loops),
        ("scaling", "scaling", &scaling),
    ];
    for (name, mode, more) in wall {
        let s = script_stage(py, py_venv, (name, mode), (&path, &variants), &out(name), more);
        results.push(run_one(s, &out(name), env, records));
    }
    // Instruction counts: deterministic, the same with and without --quick; never under ASan.
    let count = if py.variant().as_deref() == Some("asan") {
        Err(Error::new("no callgrind counts on the ASan build"))
    } else {
        crate::instructions::ensure_valgrind(cache)
    };
    let n = strs(&["--n", &COUNT_N.to_string()]);
    let with_second: Vec<String> =
        variants.iter().filter(|v| COUNTED_WITH_SECOND.contains(&v.as_str())).cloned().collect();
    let counted: [(&str, &[String], Vec<String>); 2] = [
        ("instructions", &variants, n.clone()),
        ("instructions second-alive", &with_second, [n.clone(), strs(&["--second"])].concat()),
    ];
    for (name, vs, more) in counted {
        let o = work.join(format!("{}.json", name.replace(' ', "-")));
        match &count {
            Ok(()) => {
                let s = script_stage(py, &py.executable, (name, "count"), (&path, vs), &o, &more);
                results.push(run_one(s, &o, env, records));
            }
            Err(e) => results.extend(not_run(name, e.to_string())),
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_peer_modules_and_reads_figures() {
        let dir = crate::testdir::TestDir::new("peer-bench");
        for f in ["peer_c.cpython-313-x86_64-linux-gnu.so", "peer_cython.cpython-313.so", "x.so"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(peer_modules(dir.path()), ["peer_c", "peer_cython"]);
        let out = dir.path().join("main.json");
        std::fs::write(
            &out,
            r#"[{"variant":"peer_c","operation":"incr","mode":"main","interpreters":1,"method":"pyperf","ns_per_op":20.5,"ns_stdev":0.5},
                {"variant":"peer_cython","operation":"incr","mode":"subinterpreter","method":"child","refused":"ImportError: no"}]"#,
        )
        .unwrap();
        let env = crate::fixtures::records("3.13|ns|bind|unchecked|1|0.3")[0].environment.clone();
        let recs = read_figures(&out, &env).unwrap();
        assert_eq!(recs.len(), 2);
        let RecordData::ExtBench(f) = &recs[1].data else { panic!("not an ExtBench record") };
        assert_eq!((f.interpreters, f.refused.as_deref()), (0, Some("ImportError: no")));
        std::fs::write(&out, "{}").unwrap();
        assert!(read_figures(&out, &env).unwrap_err().to_string().contains("not a list"));
    }
}
