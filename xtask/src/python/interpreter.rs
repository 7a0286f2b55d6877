//! Interpreter selection shared by every command: `--python 3.13t` or `--python /path/to/python`.

use std::env;
use std::path::{Path, PathBuf};

use super::facts::{query, Facts};
use super::install;
use super::names::{self, KnownPython, Origin};
use super::{root, sid};
use crate::error::Error;
use crate::host;
use crate::paths::{self, Cache};

/// A Python interpreter selected for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// The name used for target directories and output: the known name, or `path-3.11[t]`.
    pub name: String,
    /// The executable (absolute path), passed on as `PYO3_PYTHON`.
    pub executable: PathBuf,
    /// The exact version, e.g. `3.13.15`.
    pub version: String,
    /// Whether it is a free-threaded build.
    pub free_threaded: bool,
    /// Where its `libpython` lives, if known.
    pub libdir: Option<PathBuf>,
    /// Environment the interpreter needs at run time (e.g. `ASAN_OPTIONS` for sanitizer builds).
    pub env: Vec<(String, String)>,
}

impl Interpreter {
    /// The cargo target directory for builds against this interpreter: `<workspace>/target/py-NAME`.
    pub fn target_dir(&self) -> PathBuf {
        paths::target_dir(&format!("py-{}", self.name))
    }

    /// The root this interpreter runs in (cargo runs against it go in there too), if any: the
    /// value of [`ROOT_ENV`] in [`Interpreter::env`].
    pub fn root(&self) -> Option<PathBuf> {
        self.env.iter().find(|(k, _)| k == ROOT_ENV).map(|(_, v)| PathBuf::from(v))
    }

    /// The Debian package version it came from (a known name's), for the records: the value of
    /// [`DEBIAN_VERSION_ENV`] in [`Interpreter::env`].
    pub fn debian_version(&self) -> Option<String> {
        self.env.iter().find(|(k, _)| k == DEBIAN_VERSION_ENV).map(|(_, v)| v.clone())
    }

    /// The build variant named after the series (`asan` of `3.13-asan`, `static` of
    /// `3.13-static`), stamped on every result of this interpreter.
    pub fn variant(&self) -> Option<String> {
        self.name.split_once('-').map(|(_, v)| v.to_string())
    }
}

/// Set in [`Interpreter::env`] for an interpreter that runs inside a root: the root's directory.
pub const ROOT_ENV: &str = "INTERPSAFE_ROOT";

/// Set in [`Interpreter::env`] for a known name: the Debian version of the package it came from
/// (the source package of a build here, the binary package of a sid-root interpreter), which the
/// result records carry.
pub const DEBIAN_VERSION_ENV: &str = "INTERPSAFE_PYTHON_DEBIAN_VERSION";

/// The name given to an interpreter selected by path: `path-3.11`, or `path-3.13t` if free-threaded.
pub fn path_name(facts: &Facts) -> String {
    let t = if facts.free_threaded() { "t" } else { "" };
    format!("path-{}{t}", facts.series())
}

/// A parsed `--python` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// One of the [`names::KNOWN`] interpreters.
    Known(&'static KnownPython),
    /// An interpreter given by path.
    Path(PathBuf),
}

/// Parses a `--python` value: a path if it contains `/`, else a known name (exit code 2 if not).
pub fn parse_spec(spec: &str) -> Result<Spec, Error> {
    if spec.contains('/') {
        Ok(Spec::Path(PathBuf::from(spec)))
    } else {
        names::lookup(spec).map(Spec::Known)
    }
}

/// Selects the interpreter `spec`, installing a known one if it is not installed yet.
///
/// Selects the interpreter of an already parsed `spec`, installing a known one if needed.
pub fn resolve_spec(spec: &Spec, cache: &Cache) -> Result<Interpreter, Error> {
    match spec {
        Spec::Known(known) => {
            let marker = install::ensure_installed(known, cache)?;
            let mut env: Vec<(String, String)> =
                known.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            env.push((DEBIAN_VERSION_ENV.to_string(), marker.debian_source_version.clone()));
            let (executable, libdir) = match known.origin {
                Origin::Source => {
                    (marker.executable, Some(cache.python_dir(known.name).join("lib")))
                }
                Origin::SidRoot { .. } => {
                    let root_dir = root::dir(cache);
                    let inside = root::inside_path(&root_dir, &marker.executable)
                        .unwrap_or_else(|| sid::executable_inside(known));
                    sid::fetch_crates(known.name, cache);
                    env.push((ROOT_ENV.to_string(), root_dir.to_string_lossy().into_owned()));
                    // Debian's libpython is in the root's default library path.
                    (inside, None)
                }
            };
            Ok(Interpreter {
                name: known.name.to_string(),
                executable,
                version: marker.version,
                free_threaded: marker.py_gil_disabled == Some(1),
                libdir,
                env,
            })
        }
        Spec::Path(path) => {
            let executable = absolute(path)?;
            if !host::is_executable(&executable) {
                return Err(Error::new(format!(
                    "--python {}: no executable file there; pass the path of a python executable",
                    path.display()
                )));
            }
            let facts = query(&executable, &[])?;
            Ok(Interpreter {
                name: path_name(&facts),
                executable,
                version: facts.version.clone(),
                free_threaded: facts.free_threaded(),
                libdir: facts.libdir.clone(),
                env: Vec::new(),
            })
        }
    }
}

/// `path` made absolute against the current directory (not canonicalized: venv links stay).
fn absolute(path: &Path) -> Result<PathBuf, Error> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|e| Error::new(format!("cannot resolve {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_USAGE;
    use crate::python::facts::parse_facts;

    #[test]
    fn specs_are_names_or_paths() {
        assert!(matches!(parse_spec("3.13t"), Ok(Spec::Known(k)) if k.name == "3.13t"));
        assert_eq!(
            parse_spec("./venv/bin/python").unwrap(),
            Spec::Path(PathBuf::from("./venv/bin/python"))
        );
        let err = parse_spec("python3").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.message().contains("3.13t, 3.13, 3.13-asan"));
    }

    #[test]
    fn facts_parse_and_name_paths() {
        let facts = parse_facts(
            r#"{"version": "3.13.15", "sys_version": "3.13.15 (main) [GCC]", "py_gil_disabled": 1,
                "abiflags": "t", "libdir": "/p/lib"}"#,
        )
        .unwrap();
        assert!(facts.free_threaded());
        assert_eq!(path_name(&facts), "path-3.13t");
        let old = parse_facts(r#"{"version": "3.11.2", "py_gil_disabled": null, "libdir": null}"#)
            .unwrap();
        assert!(!old.free_threaded());
        assert_eq!(path_name(&old), "path-3.11");
        assert!(parse_facts("Python 2.7").is_err());
    }

    #[test]
    fn missing_path_is_a_clear_error() {
        let spec = Spec::Path(PathBuf::from("/nonexistent/bin/python3"));
        let err = resolve_spec(&spec, &Cache::at("/nonexistent-cache")).unwrap_err();
        assert!(err.message().contains("no executable file there"));
    }
}
