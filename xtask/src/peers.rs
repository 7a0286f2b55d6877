//! `peers`: the other bindings' versions of the extension-module comparison (pybind11, nanobind,
//! Cython twice, and a hand-written C floor; sources and the surface in `peers/`), built per
//! interpreter into `target/interpsafe/peers/<build>/` and smoke-checked.
//!
//! `peers build` makes (once) the wheelhouse and a venv per interpreter (`venv.rs`,
//! `wheelhouse.rs`), builds each project with its own backend (`build.rs`), records the versions
//! used (`versions.json`) and runs the smoke probes (`smoke.rs`, results in `smoke.json`).
//! `peers smoke` runs the probes again on what is built. A peer that does not build, or does not
//! pass its checks in the main interpreter, fails the command; what a second interpreter makes of
//! a peer (a refusal, a crash) is a finding, recorded and printed, not a failure.

pub mod build;
pub mod catalog;
pub mod smoke;
pub mod venv;
pub mod wheelhouse;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};

use self::catalog::Project;
use self::smoke::Outcome;
use self::venv::Venv;
use self::wheelhouse::Wheelhouse;
use crate::cli;
use crate::clock;
use crate::error::Error;
use crate::host;
use crate::paths::{self, Cache};
use crate::python::interpreter::{self, Interpreter};
use crate::stage::{self, StageLog, StageResult};
use crate::step::Step;

/// The interpreters the peers are built for when no `--python` is given.
pub const DEFAULT_BUILDS: &[&str] = &["3.13", "3.13t", "3.13-debug"];

/// The interpreters `cargo xtask test` (without `--python`) builds the peers for, so that the
/// extension-module driver runs them beside the Rust variants: the free-threaded build and the
/// debug build (whose refcount totals the driver reads).
pub const TEST_BUILDS: &[&str] = &["3.13t", "3.13-debug"];

/// The options after `peers build` / `peers smoke`.
const OPTIONS: &str = "[--python SPEC]... [--peer NAME]...";

/// The output directory of the peers built for interpreter `name`.
pub fn out_dir(name: &str) -> PathBuf {
    paths::target_dir("interpsafe").join("peers").join(name)
}

/// Runs `cargo xtask peers build|smoke ...`.
pub fn peers_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    match args.split_first() {
        Some((sub, rest)) if sub == "build" => run(rest, cache, true),
        Some((sub, rest)) if sub == "smoke" => run(rest, cache, false),
        Some((sub, _)) => Err(Error::usage(format!(
            "unknown `peers` subcommand `{sub}`; use `peers build {OPTIONS}` or `peers smoke {OPTIONS}`"
        ))),
        None => Err(Error::usage(format!(
            "`peers` needs a subcommand: `peers build {OPTIONS}` or `peers smoke {OPTIONS}`"
        ))),
    }
}

/// What happened to one module on one interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ModuleState {
    /// Built (or found built) at this path.
    Built(PathBuf),
    /// Not built; why.
    Failed(String),
}

/// One module's row of the summary: its state and its probes' outcomes.
struct ModuleReport {
    /// The module name (`peer_c`).
    module: &'static str,
    /// Built or not.
    state: ModuleState,
    /// The probes run, in [`smoke::PROBES`] order (none if it was not built).
    probes: Vec<(&'static str, Outcome)>,
}

/// What the builds on one interpreter used, recorded in `versions.json`.
struct Toolchain {
    /// The venv the builds ran in.
    venv: Venv,
    /// The interpreter's extension suffix.
    ext_suffix: String,
    /// The venv's packages, name and version.
    packages: Vec<(String, String)>,
    /// The build tools' `--version` lines.
    tools: BTreeMap<String, String>,
}

/// One interpreter's block of the summary.
struct BuildReport {
    /// The interpreter's name (`3.13t`).
    name: String,
    /// Why nothing could be done for it (it did not resolve, or its venv failed), if so.
    failure: Option<String>,
    /// Each selected module.
    modules: Vec<ModuleReport>,
}

/// `peers build` (`build` true) or `peers smoke`.
fn run(args: &[String], cache: &Cache, build: bool) -> Result<(), Error> {
    let command = if build { "peers build" } else { "peers smoke" };
    let parsed = cli::parse(args, command, OPTIONS, &[], &["--peer"])?;
    let projects = catalog::select(&parsed.all("--peer"))?;
    let pythons: Vec<String> = if parsed.pythons.is_empty() {
        DEFAULT_BUILDS.iter().map(|s| s.to_string()).collect()
    } else {
        parsed.pythons
    };
    let specs =
        pythons.iter().map(|p| interpreter::parse_spec(p)).collect::<Result<Vec<_>, _>>()?;
    if build {
        check_compilers(&projects)?;
    }
    let wheelhouse = Wheelhouse::in_cache(cache);
    let mut reports = Vec::new();
    for (spec, label) in specs.iter().zip(&pythons) {
        let report = match interpreter::resolve_spec(spec, cache) {
            Ok(py) => for_interpreter(&py, &projects, cache, &wheelhouse, build),
            Err(err) => {
                eprintln!("error: {err}");
                BuildReport {
                    name: label.clone(),
                    failure: Some(err.to_string()),
                    modules: Vec::new(),
                }
            }
        };
        reports.push(report);
    }
    print_summary(&reports);
    let failures = failures(&reports);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!("{command}: {}", failures.join("; "))))
    }
}

/// `cargo xtask test`'s stage `peers build` on `py`: what `peers build --python NAME` does
/// (the wheelhouse downloaded once if it lacks the interpreter's tag, the venv, every peer, the
/// smoke probes), failing on what fails that command.
pub fn test_stage(py: &Interpreter, cache: &Cache) -> StageResult {
    let start = Instant::now();
    println!(
        "==> stage peers build [{}]: every peer into {}",
        py.name,
        out_dir(&py.name).display()
    );
    let outcome = catalog::select(&[])
        .and_then(|projects| check_compilers(&projects).map(|()| projects))
        .map(|projects| {
            let wheelhouse = Wheelhouse::in_cache(cache);
            let report = for_interpreter(py, &projects, cache, &wheelhouse, true);
            print_summary(std::slice::from_ref(&report));
            failures(std::slice::from_ref(&report))
        });
    let outcome = match outcome {
        Ok(failures) if failures.is_empty() => stage::Outcome::Ok,
        Ok(failures) => stage::Outcome::Failed(failures.join("; ")),
        Err(err) => stage::Outcome::Failed(err.to_string()),
    };
    let result = StageResult {
        name: "peers build".to_string(),
        python: Some(py.name.clone()),
        outcome,
        elapsed: start.elapsed(),
    };
    println!("{result}");
    result
}

/// The C compiler, and the C++ one if a selected project needs it, must be on PATH.
fn check_compilers(projects: &[&Project]) -> Result<(), Error> {
    let mut needed = vec!["gcc"];
    if projects.iter().any(|p| p.needs_cxx) {
        needed.push("g++");
    }
    let missing: Vec<&str> =
        needed.into_iter().filter(|c| host::find_in_path(c).is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "no {} on PATH; the peers are C and C++ extension modules: install them \
         (Debian: apt-get install gcc g++) and retry",
        missing.join(" or ")
    )))
}

/// Builds (if `build`) and smoke-checks `projects` on `py`.
fn for_interpreter(
    py: &Interpreter,
    projects: &[&'static Project],
    cache: &Cache,
    wheelhouse: &Wheelhouse,
    build: bool,
) -> BuildReport {
    let out = out_dir(&py.name);
    let mut report = BuildReport { name: py.name.clone(), failure: None, modules: Vec::new() };
    let states = if build {
        match build_all(py, projects, cache, wheelhouse, &out) {
            Ok(states) => states,
            Err(err) => {
                eprintln!("error: {err}");
                report.failure = Some(err.to_string());
                return report;
            }
        }
    } else {
        already_built(projects, &out, &py.name)
    };
    let scratch = out.join(".work").join("smoke");
    for (module, state) in states {
        let mut outcomes: Vec<(&'static str, Outcome)> = Vec::new();
        if matches!(state, ModuleState::Built(_)) {
            for probe in smoke::PROBES {
                let outcome = smoke::run(py, &out, module, probe, &scratch).unwrap_or_else(|e| {
                    Outcome::Crashed {
                        status: "not started".into(),
                        last_step: String::new(),
                        stderr: e.to_string(),
                    }
                });
                outcomes.push((*probe, outcome));
            }
            println!(
                "[{}] smoke {module}: {}",
                py.name,
                outcomes
                    .iter()
                    .map(|(p, o)| format!("{p}: {}", o.summary()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        report.modules.push(ModuleReport { module, state, probes: outcomes });
    }
    if let Err(err) = write_smoke(&out, py, &report) {
        eprintln!("error: {err}");
        report.failure = Some(err.to_string());
    }
    report
}

/// The venv, every project's build and `versions.json`; the modules' states.
fn build_all(
    py: &Interpreter,
    projects: &[&'static Project],
    cache: &Cache,
    wheelhouse: &Wheelhouse,
    out: &Path,
) -> Result<Vec<(&'static str, ModuleState)>, Error> {
    fs::create_dir_all(out).map_err(|e| Error::io("create", out, &e))?;
    let logs = out.join("logs");
    let toolchain = stage::logged(&py.name, "peers venv", &logs.join("venv.log"), |log| {
        let venv = venv::ensure(py, cache, wheelhouse, log)?;
        let ext_suffix = venv::ext_suffix(&venv.python, py, log)?;
        let packages = venv::installed(&venv, py, wheelhouse, log)?;
        let tools = tool_versions(&venv, log);
        Ok(Toolchain { venv, ext_suffix, packages, tools })
    })?;
    let env = build::BuildEnv {
        py,
        venv: &toolchain.venv,
        wheelhouse,
        ext_suffix: &toolchain.ext_suffix,
        out_dir: out,
    };
    let mut states = Vec::new();
    for project in projects {
        let log_path = logs.join(format!("{}.log", project.dir));
        let label = format!("build peers/{}", project.dir);
        match stage::logged(&py.name, &label, &log_path, |log| build::build(project, &env, log)) {
            Ok(files) => {
                states.extend(
                    project.modules.iter().copied().zip(files.into_iter().map(ModuleState::Built)),
                );
            }
            Err(err) => {
                let why = err.to_string();
                for module in project.modules {
                    // A failed build leaves no stale module behind to be mistaken for it.
                    let _ = build::remove_stale(out, module);
                    states.push((*module, ModuleState::Failed(why.clone())));
                }
            }
        }
    }
    write_versions(out, py, wheelhouse, &toolchain, projects, &states)?;
    Ok(states)
}

/// The modules of `projects` as `peers build` left them in `out`.
fn already_built(
    projects: &[&'static Project],
    out: &Path,
    name: &str,
) -> Vec<(&'static str, ModuleState)> {
    let files: Vec<PathBuf> = fs::read_dir(out)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    projects
        .iter()
        .flat_map(|p| p.modules.iter())
        .map(|module| {
            let prefix = format!("{module}.");
            let found = files.iter().find(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".so"))
            });
            let state = match found {
                Some(file) => ModuleState::Built(file.clone()),
                None => ModuleState::Failed(format!(
                    "not built in {}; run `cargo xtask peers build --python {name}` first",
                    out.display()
                )),
            };
            (*module, state)
        })
        .collect()
}

/// The first line of `program --version`, or why there is none.
fn version_line(program: &Path, log: &mut StageLog) -> String {
    match log.capture(&Step::new(program).arg("--version")) {
        Ok(out) if out.success => out.stdout.lines().next().unwrap_or("").trim().to_string(),
        Ok(out) => format!("`--version` failed ({})", out.status),
        Err(err) => err.to_string(),
    }
}

/// The versions of the build tools: the venv's cmake and ninja, and the compilers on PATH.
fn tool_versions(venv: &Venv, log: &mut StageLog) -> BTreeMap<String, String> {
    let mut tools = BTreeMap::new();
    for name in ["cmake", "ninja"] {
        let line = match venv.program(name) {
            Some(path) => version_line(&path, log),
            None => "not installed in the venv".to_string(),
        };
        tools.insert(name.to_string(), line);
    }
    for name in ["gcc", "g++"] {
        let line = match host::find_in_path(name) {
            Some(path) => version_line(&path, log),
            None => "not on PATH".to_string(),
        };
        tools.insert(name.to_string(), line);
    }
    tools
}

/// The JSON object in `path`'s `key`, if the file holds one (to merge a partial run into).
fn existing_entries(path: &Path, key: &str) -> Map<String, Value> {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get(key).and_then(Value::as_object).cloned())
        .unwrap_or_default()
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &Path, value: &Value) -> Result<(), Error> {
    fs::write(path, format!("{value:#}\n")).map_err(|e| Error::io("write", path, &e))
}

/// The interpreter as recorded in both JSON files.
fn python_json(py: &Interpreter) -> Value {
    json!({
        "name": py.name,
        "executable": py.executable.display().to_string(),
        "version": py.version,
        "free_threaded": py.free_threaded,
    })
}

/// `versions.json`: the interpreter, the packages and tools the builds used, and each peer
/// (merged into an earlier file's peers when only some were built).
fn write_versions(
    out: &Path,
    py: &Interpreter,
    wheelhouse: &Wheelhouse,
    toolchain: &Toolchain,
    projects: &[&'static Project],
    states: &[(&'static str, ModuleState)],
) -> Result<(), Error> {
    let path = out.join("versions.json");
    let mut peers = existing_entries(&path, "peers");
    for (module, state) in states {
        let Some(project) = projects.iter().find(|p| p.modules.contains(module)) else {
            continue;
        };
        let (file, error) = match state {
            ModuleState::Built(f) => {
                (f.file_name().map(|n| n.to_string_lossy().into_owned()), None)
            }
            ModuleState::Failed(why) => (None, Some(why.clone())),
        };
        peers.insert(
            module.to_string(),
            json!({
                "source": format!("peers/{}", project.dir),
                "binding": project.binding,
                "backend": project.backend,
                "built": file.is_some(),
                "file": file,
                "error": error,
            }),
        );
    }
    let packages: Map<String, Value> =
        toolchain.packages.iter().map(|(n, v)| (n.clone(), Value::String(v.clone()))).collect();
    let value = json!({
        "written_at": clock::utc_timestamp(SystemTime::now()),
        "python": python_json(py),
        "ext_suffix": toolchain.ext_suffix,
        "venv": toolchain.venv.dir.display().to_string(),
        "wheelhouse": wheelhouse.dir().display().to_string(),
        "packages": packages,
        "tools": toolchain.tools,
        "peers": peers,
    });
    write_json(&path, &value)
}

/// `smoke.json`: each module's probe outcomes (merged into an earlier file's modules).
fn write_smoke(out: &Path, py: &Interpreter, report: &BuildReport) -> Result<(), Error> {
    fs::create_dir_all(out).map_err(|e| Error::io("create", out, &e))?;
    let path = out.join("smoke.json");
    let mut modules = existing_entries(&path, "modules");
    for ModuleReport { module, state, probes } in &report.modules {
        let entry = match state {
            ModuleState::Built(file) => {
                let probes: Map<String, Value> =
                    probes.iter().map(|(p, o)| (p.to_string(), o.to_json())).collect();
                json!({ "file": file.display().to_string(), "probes": probes })
            }
            ModuleState::Failed(why) => json!({ "file": null, "not_built": why }),
        };
        modules.insert(module.to_string(), entry);
    }
    let value = json!({
        "written_at": clock::utc_timestamp(SystemTime::now()),
        "python": python_json(py),
        "probes": smoke::PROBES,
        "modules": modules,
    });
    write_json(&path, &value)
}

/// Prints one block per interpreter: each module, built or not, and its probes.
fn print_summary(reports: &[BuildReport]) {
    println!();
    println!("peers summary (outputs in {}):", out_dir("<build>").display());
    for report in reports {
        println!("  {}:", report.name);
        if let Some(why) = &report.failure {
            println!("    FAILED: {}", why.lines().next().unwrap_or(""));
        }
        let width = report.modules.iter().map(|m| m.module.len()).max().unwrap_or(0);
        for ModuleReport { module, state, probes } in &report.modules {
            match state {
                ModuleState::Failed(why) => {
                    println!(
                        "    {module:width$}  NOT BUILT: {}",
                        why.lines().next().unwrap_or("")
                    );
                }
                ModuleState::Built(_) => {
                    let probes: Vec<String> =
                        probes.iter().map(|(p, o)| format!("{p}: {}", o.summary())).collect();
                    println!("    {module:width$}  built; {}", probes.join("; "));
                }
            }
        }
    }
}

/// What fails the command: interpreters with nothing done, modules not built, and modules that
/// do not pass in the main interpreter.
fn failures(reports: &[BuildReport]) -> Vec<String> {
    let mut out = Vec::new();
    for report in reports {
        if report.failure.is_some() {
            out.push(format!("{}: failed (see above)", report.name));
        }
        for ModuleReport { module, state, probes } in &report.modules {
            match state {
                ModuleState::Failed(_) => {
                    out.push(format!("{module} on {} not built", report.name))
                }
                ModuleState::Built(_) => {
                    let main_ok = probes.iter().any(|(p, o)| *p == "main" && *o == Outcome::Ok);
                    if !main_ok {
                        out.push(format!(
                            "{module} on {} fails in the main interpreter",
                            report.name
                        ));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::args;

    #[test]
    fn bad_command_lines_are_usage_errors() {
        let cache = Cache::at("/nonexistent-cache");
        for bad in [
            &[][..],
            &["rebuild"],
            &["build", "--fast"],
            &["build", "--peer"],
            &["build", "--peer", "swig"],
            &["smoke", "--python", "3.12x"],
        ] {
            let err = peers_command(&args(bad), &cache).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {}", err.message());
        }
    }

    #[test]
    fn only_main_failures_and_missing_builds_fail_the_command() {
        let built = || ModuleState::Built(PathBuf::from("/x/peer.so"));
        let report = BuildReport {
            name: "3.13".into(),
            failure: None,
            modules: vec![
                ModuleReport {
                    module: "peer_c",
                    state: built(),
                    probes: vec![("main", Outcome::Ok), ("isolated", Outcome::Ok)],
                },
                ModuleReport {
                    module: "peer_nanobind",
                    state: built(),
                    probes: vec![
                        ("main", Outcome::Ok),
                        ("isolated", Outcome::ImportError("no".into())),
                    ],
                },
                ModuleReport {
                    module: "peer_cython",
                    state: built(),
                    probes: vec![("main", Outcome::CheckFailed("x".into()))],
                },
                ModuleReport {
                    module: "peer_pybind11",
                    state: ModuleState::Failed("cmake".into()),
                    probes: Vec::new(),
                },
            ],
        };
        assert_eq!(
            failures(&[report]),
            [
                "peer_cython on 3.13 fails in the main interpreter",
                "peer_pybind11 on 3.13 not built"
            ]
        );
    }
}
