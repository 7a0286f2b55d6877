//! One venv per interpreter, `<cache>/peers/NAME/venv`, holding the wheelhouse's packages: the
//! peers build in it (`--no-build-isolation`) and the later benches and tests run from it.
//!
//! Made offline: `python -m venv` installs pip from the interpreter's bundled wheel (the cached
//! builds are configured `--without-ensurepip` but keep `ensurepip/_bundled`), and everything
//! else comes from the wheelhouse with `--no-index`. A venv is reused while its stamp matches the
//! interpreter and the requirements.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::wheelhouse::{self, pip, Wheelhouse, REQUIREMENTS};
use crate::error::Error;
use crate::paths::Cache;
use crate::python::interpreter::Interpreter;
use crate::stage::StageLog;
use crate::step::Step;

/// The stamp's file name inside the venv, written last.
const STAMP: &str = "interpsafe-peers.json";

/// A ready venv of one interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venv {
    /// The venv directory.
    pub dir: PathBuf,
    /// Its `bin/python`.
    pub python: PathBuf,
}

impl Venv {
    /// The venv of interpreter `name` in `cache` (whether or not it exists yet).
    pub fn of(name: &str, cache: &Cache) -> Venv {
        let dir = cache.root().join("peers").join(name).join("venv");
        let python = dir.join("bin").join("python");
        Venv { dir, python }
    }

    /// A program the venv installed (`cmake`, `ninja`), if it is there.
    pub fn program(&self, name: &str) -> Option<PathBuf> {
        Some(self.dir.join("bin").join(name)).filter(|p| p.is_file())
    }
}

/// The stamp a venv of `py` with today's requirements carries.
fn stamp_for(py: &Interpreter) -> Value {
    json!({
        "python": py.executable.display().to_string(),
        "version": py.version,
        "requirements": REQUIREMENTS,
    })
}

/// `step` with the interpreter's run-time environment (e.g. `ASAN_OPTIONS`).
pub fn with_runtime_env(mut step: Step, py: &Interpreter) -> Step {
    for (k, v) in &py.env {
        step = step.env(k, v);
    }
    step
}

/// Returns `py`'s venv, making it (and filling the wheelhouse for its wheel tag, the only
/// networked step) if it is missing or stale.
pub fn ensure(
    py: &Interpreter,
    cache: &Cache,
    wheelhouse: &Wheelhouse,
    log: &mut StageLog,
) -> Result<Venv, Error> {
    let venv = Venv::of(&py.name, cache);
    let stamp_path = venv.dir.join(STAMP);
    let current =
        fs::read_to_string(&stamp_path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let tag = wheelhouse::wheel_tag(&py.version, py.free_threaded);
    if current.as_ref() == Some(&stamp_for(py)) && wheelhouse.tags().contains(&tag) {
        log.note(&format!("reusing {}", venv.dir.display()));
        return Ok(venv);
    }
    let make = Step::new(&py.executable).args(["-m", "venv", "--clear"]).arg(&venv.dir);
    log.run(&with_runtime_env(make, py)).map_err(|e| {
        e.reword(|m| {
            format!(
                "{m}\n  `python -m venv` installs pip from the interpreter's bundled wheel \
                 (lib/python3.X/ensurepip/_bundled); reinstall the interpreter if that is missing"
            )
        })
    })?;
    wheelhouse.ensure(&tag, &venv.python, log)?;
    let install = pip(&venv.python, wheelhouse)
        .args(["install", "--no-index", "--find-links"])
        .arg(wheelhouse.dir())
        .args(REQUIREMENTS);
    log.run(&with_runtime_env(install, py)).map_err(|e| {
        e.reword(|m| {
            format!(
                "{m}\n  the wheelhouse {} lacks a wheel (or an sdist and its build requirements) \
                 for this interpreter; delete its interpsafe-wheelhouse.json to download again",
                wheelhouse.dir().display()
            )
        })
    })?;
    fs::write(&stamp_path, format!("{:#}\n", stamp_for(py)))
        .map_err(|e| Error::io("write the venv stamp", &stamp_path, &e))?;
    Ok(venv)
}

/// The packages installed in `venv` and their versions (`pip list`), name to version.
pub fn installed(
    venv: &Venv,
    py: &Interpreter,
    wheelhouse: &Wheelhouse,
    log: &mut StageLog,
) -> Result<Vec<(String, String)>, Error> {
    let list = pip(&venv.python, wheelhouse).args(["list", "--format", "json"]);
    let out = log.capture(&with_runtime_env(list, py))?;
    if !out.success {
        return Err(Error::new(format!(
            "`pip list` in {} failed ({})",
            venv.dir.display(),
            out.status
        )));
    }
    parse_pip_list(&out.stdout).ok_or_else(|| {
        Error::new(format!("`pip list` in {} printed no JSON list", venv.dir.display()))
    })
}

/// The `(name, version)` pairs of `pip list --format json` output, sorted by name.
fn parse_pip_list(text: &str) -> Option<Vec<(String, String)>> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    let mut pairs: Vec<(String, String)> = value
        .as_array()?
        .iter()
        .filter_map(|p| {
            Some((p.get("name")?.as_str()?.to_string(), p.get("version")?.as_str()?.to_string()))
        })
        .collect();
    pairs.sort_by_key(|(name, _)| name.to_lowercase());
    Some(pairs)
}

/// What `python` says its extension-module suffix is (`.cpython-313t-x86_64-linux-gnu.so`).
pub fn ext_suffix(python: &Path, py: &Interpreter, log: &mut StageLog) -> Result<String, Error> {
    let query = Step::new(python)
        .args(["-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"]);
    let out = log.capture(&with_runtime_env(query, py))?;
    let suffix = out.stdout.trim().to_string();
    if out.success && suffix.starts_with('.') {
        Ok(suffix)
    } else {
        Err(Error::new(format!(
            "{} did not report its EXT_SUFFIX ({}): {}",
            python.display(),
            out.status,
            out.stderr.trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_list_output_becomes_sorted_pairs() {
        let text =
            r#"[{"name": "pybind11", "version": "3.1.0"}, {"name": "Cython", "version": "3.3.1"}]"#;
        assert_eq!(
            parse_pip_list(text).unwrap(),
            [("Cython".to_string(), "3.3.1".to_string()), ("pybind11".into(), "3.1.0".into())]
        );
        assert!(parse_pip_list("WARNING: x").is_none());
    }
}
