//! The environment every result record is stamped with: this interpreter build, PyO3, machine.

use std::ffi::CStr;

use interpsafe_results::{Environment, InterpreterBuild, Machine};

use crate::pyo3_compat::{ffi, PYO3_VERSION};

/// The interpreter build this binary runs on.
///
/// The exact version comes from the running interpreter (`Py_GetVersion`); the name and variant
/// from `INTERPSAFE_PYTHON_NAME` / `INTERPSAFE_PYTHON_VARIANT`, which `cargo xtask` sets, falling
/// back to `<major.minor>` plus `t` on a free-threaded build; the Debian package version from
/// `INTERPSAFE_PYTHON_DEBIAN_VERSION`.
pub fn interpreter_build() -> InterpreterBuild {
    // SAFETY: Py_GetVersion returns a static string and may be called before initialisation.
    let full = unsafe { CStr::from_ptr(ffi::Py_GetVersion()) }.to_string_lossy().into_owned();
    let version = full.split_whitespace().next().unwrap_or("unknown").to_string();
    let free_threaded = cfg!(Py_GIL_DISABLED);
    let name = std::env::var("INTERPSAFE_PYTHON_NAME").unwrap_or_else(|_| {
        let minor: Vec<&str> = version.split('.').take(2).collect();
        format!("{}{}", minor.join("."), if free_threaded { "t" } else { "" })
    });
    InterpreterBuild {
        name,
        version,
        free_threaded,
        variant: std::env::var("INTERPSAFE_PYTHON_VARIANT").ok().filter(|v| !v.is_empty()),
        debian_version: std::env::var("INTERPSAFE_PYTHON_DEBIAN_VERSION")
            .ok()
            .filter(|v| !v.is_empty()),
    }
}

/// The full environment for a result record.
pub fn current_environment() -> Environment {
    Environment {
        interpreter: interpreter_build(),
        pyo3_version: PYO3_VERSION.to_string(),
        machine: Machine::detect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_linked_interpreters() {
        let build = interpreter_build();
        assert!(build.version.starts_with("3."), "{build:?}");
        assert_eq!(build.free_threaded, cfg!(Py_GIL_DISABLED));
    }
}
