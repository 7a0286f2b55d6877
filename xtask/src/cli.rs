//! What every command shares on its command line and in the cargo runs it starts: `--python` and
//! the other options ([`parse`]), the default interpreter set ([`or_defaults`]), and `cargo` run
//! against one interpreter ([`cargo`], [`with_python`]).

use std::env;
use std::ffi::OsString;
use std::path::Path;

use crate::error::Error;
use crate::paths;
use crate::python::interpreter::Interpreter;
use crate::python::names;
use crate::step::Step;

/// A parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// The `--python` values, in order.
    pub pythons: Vec<String>,
    /// The flags given (options without a value).
    pub flags: Vec<&'static str>,
    /// The other options with a value, in order: `(option, value)`.
    pub values: Vec<(&'static str, String)>,
}

impl Args {
    /// Whether `flag` was given.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// The values given to `option`, in order.
    pub fn all(&self, option: &str) -> Vec<&str> {
        self.values.iter().filter(|(o, _)| *o == option).map(|(_, v)| v.as_str()).collect()
    }
}

/// `pythons`, or the default interpreter set when it is empty.
pub fn or_defaults(pythons: Vec<String>) -> Vec<String> {
    if pythons.is_empty() {
        names::defaults().iter().map(|k| k.name.to_string()).collect()
    } else {
        pythons
    }
}

/// Parses the arguments after `command`: `--python SPEC` (repeatable), the `flags`, and the
/// options in `valued` (`--opt VALUE` or `--opt=VALUE`). Anything else, or an option without its
/// value, is a usage error that shows `usage` (the options after `cargo xtask COMMAND`).
pub fn parse(
    args: &[String],
    command: &str,
    usage: &str,
    flags: &[&'static str],
    valued: &[&'static str],
) -> Result<Args, Error> {
    let usage = format!("usage: cargo xtask {command} {usage}");
    let mut out = Args::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        if let Some(flag) = flags.iter().find(|f| **f == arg) {
            out.flags.push(flag);
        } else if let Some(option) = ["--python"].iter().chain(valued).find(|o| **o == name) {
            let value = inline.or_else(|| rest.next().cloned()).ok_or_else(|| {
                let what = if *option == "--python" {
                    "a known name (e.g. 3.13t) or a path to a python executable"
                } else {
                    "a value"
                };
                Error::usage(format!("{option} needs {what}; {usage}"))
            })?;
            if *option == "--python" {
                out.pythons.push(value);
            } else {
                out.values.push((option, value));
            }
        } else {
            return Err(Error::usage(format!("unknown argument `{arg}` for `{command}`; {usage}")));
        }
    }
    Ok(out)
}

/// `cargo` as invoked by `cargo xtask` (`$CARGO`), else `cargo` from PATH, run at the workspace root.
pub fn cargo() -> Step {
    Step::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
        .current_dir(paths::workspace_root())
}

/// `step` set up to build and run against `py`: `PYO3_PYTHON`, its own target dir, its
/// `libpython` directory on `LD_LIBRARY_PATH`, and the interpreter's runtime environment; for
/// an interpreter that lives in a root (3.14, 3.15), run inside that root, offline.
pub fn with_python(step: Step, py: &Interpreter, target_dir: &Path) -> Step {
    let mut step = step
        .env("PYO3_PYTHON", &py.executable)
        .env("INTERPSAFE_PYTHON_NAME", &py.name)
        .env("INTERPSAFE_PYTHON_VARIANT", py.variant().unwrap_or_default())
        .env("CARGO_TARGET_DIR", target_dir);
    if let Some(libdir) = &py.libdir {
        let mut dirs = vec![libdir.clone()];
        if let Some(old) = env::var_os("LD_LIBRARY_PATH") {
            dirs.extend(env::split_paths(&old));
        }
        if let Ok(joined) = env::join_paths(dirs) {
            step = step.env("LD_LIBRARY_PATH", joined);
        }
    }
    for (k, v) in &py.env {
        step = step.env(k, v);
    }
    match py.root() {
        Some(root) => crate::python::chroot::cargo_in_root(&root, step),
        None => step,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A command line from string literals.
    pub(crate) fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_pythons_flags_and_values_in_both_spellings() {
        let a = parse(
            &args(&[
                "--python",
                "3.13t",
                "--quick",
                "--only=scaling",
                "--python=/usr/bin/python3",
                "--only",
                "x",
            ]),
            "bench",
            "[--python SPEC]...",
            &["--quick"],
            &["--only"],
        )
        .unwrap();
        assert_eq!(a.pythons, ["3.13t", "/usr/bin/python3"]);
        assert!(a.has("--quick") && !a.has("--check"));
        assert_eq!(a.all("--only"), ["scaling", "x"]);
        assert_eq!(or_defaults(a.pythons.clone()), a.pythons);
        let none = parse(&[], "test", "", &[], &[]).unwrap();
        assert_eq!(or_defaults(none.pythons), ["3.13t", "3.13"]);
    }

    #[test]
    fn unknown_arguments_and_missing_values_are_usage_errors() {
        for bad in [&["--fast"][..], &["--python"], &["--only"], &["--quick=1"], &["3.13"]] {
            let err = parse(&args(bad), "hazards", "[--python SPEC]...", &["--quick"], &["--only"])
                .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
            assert!(
                err.message().contains("usage: cargo xtask hazards [--python SPEC]..."),
                "{}",
                err.message()
            );
        }
    }
}
