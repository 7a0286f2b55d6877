//! What an interpreter says about itself: its exact version, whether it is free-threaded, where
//! its `libpython` lives. Asked by installing (to check a build) and by selecting (a path).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::Error;
use crate::step::Step;

/// The Python snippet that reports an interpreter's facts as one JSON object.
const QUERY: &str = "import json, platform, sys, sysconfig\n\
print(json.dumps({'version': platform.python_version(), 'sys_version': sys.version, \
'py_gil_disabled': sysconfig.get_config_var('Py_GIL_DISABLED'), \
'abiflags': getattr(sys, 'abiflags', ''), 'libdir': sysconfig.get_config_var('LIBDIR')}))";

/// What an interpreter says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The exact version, e.g. `3.13.15` (`platform.python_version()`).
    pub version: String,
    /// `sys.version`.
    pub sys_version: String,
    /// `sysconfig.get_config_var('Py_GIL_DISABLED')`.
    pub py_gil_disabled: Option<i64>,
    /// `sys.abiflags`.
    pub abiflags: String,
    /// `sysconfig.get_config_var('LIBDIR')`, where `libpython` lives.
    pub libdir: Option<PathBuf>,
}

impl Facts {
    /// Whether the interpreter is a free-threaded build.
    pub fn free_threaded(&self) -> bool {
        self.py_gil_disabled == Some(1)
    }

    /// `major.minor`, e.g. `3.13`.
    pub fn series(&self) -> String {
        self.version.split('.').take(2).collect::<Vec<_>>().join(".")
    }
}

/// Parses the JSON printed by [`QUERY`].
pub fn parse_facts(text: &str) -> Result<Facts, String> {
    let value: Value = serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let string = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(Facts {
        version: string("version").ok_or("no `version`")?,
        sys_version: string("sys_version").unwrap_or_default(),
        py_gil_disabled: value.get("py_gil_disabled").and_then(Value::as_i64),
        abiflags: string("abiflags").unwrap_or_default(),
        libdir: string("libdir").map(PathBuf::from),
    })
}

/// Runs `executable` (with the extra environment `env`) and asks for its [`Facts`].
pub fn query(executable: &Path, env: &[(&str, &str)]) -> Result<Facts, Error> {
    query_through(executable, env, |step| step)
}

/// [`query`], with the command run through `wrap` (e.g. into a chroot, where `executable` is a
/// path inside it).
pub fn query_through(
    executable: &Path,
    env: &[(&str, &str)],
    wrap: impl FnOnce(Step) -> Step,
) -> Result<Facts, Error> {
    let mut step = Step::new(executable).args(["-c", QUERY]);
    for (k, v) in env {
        step = step.env(k, v);
    }
    let out = wrap(step).command().output().map_err(|e| {
        Error::new(format!("cannot run {} ({e}); is it a Python executable?", executable.display()))
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no error output");
        return Err(Error::new(format!(
            "{} failed to report its version ({}): {last}",
            executable.display(),
            out.status
        )));
    }
    parse_facts(&String::from_utf8_lossy(&out.stdout)).map_err(|why| {
        Error::new(format!(
            "{} answered the version query oddly ({why}); is it CPython 3?",
            executable.display()
        ))
    })
}
