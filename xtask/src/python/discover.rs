//! Python interpreters already on this machine: `python3*` on `PATH` and pyenv versions.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use crate::host;

/// Whether `name` is an interpreter executable name: `python3`, `python3t`, `python3.13`,
/// `python3.13t` (the pattern `python3(\.\d+)?t?`).
pub fn is_python_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("python3") else {
        return false;
    };
    let rest = rest.strip_suffix('t').unwrap_or(rest);
    match rest.strip_prefix('.') {
        None => rest.is_empty(),
        Some(minor) => !minor.is_empty() && minor.bytes().all(|c| c.is_ascii_digit()),
    }
}

/// Interpreter executables found on `PATH` (matching [`is_python_name`]; pyenv shims skipped)
/// and as `~/.pyenv/versions/*/bin/python3`, in that order, each real file listed once.
pub fn candidates() -> Vec<PathBuf> {
    let mut found = Vec::new();
    // pyenv's shims only dispatch to its versions, which are listed below in their own right.
    let is_shims = |dir: &PathBuf| dir.ends_with(".pyenv/shims");
    for dir in host::path_dirs().into_iter().filter(|d| !is_shims(d)) {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| is_python_name(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        names.sort();
        found.extend(names);
    }
    if let Some(home) = host::home_dir() {
        if let Ok(entries) = fs::read_dir(home.join(".pyenv").join("versions")) {
            let mut pyenv: Vec<PathBuf> =
                entries.flatten().map(|e| e.path().join("bin").join("python3")).collect();
            pyenv.sort();
            found.extend(pyenv);
        }
    }
    let mut seen = HashSet::new();
    found
        .into_iter()
        .filter(|p| host::is_executable(p))
        .filter(|p| seen.insert(fs::canonicalize(p).unwrap_or_else(|_| p.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_names() {
        for ok in ["python3", "python3t", "python3.13", "python3.13t", "python3.9"] {
            assert!(is_python_name(ok), "{ok}");
        }
        for bad in [
            "python",
            "python2.7",
            "python3.",
            "python3.13-config",
            "python3.13tt",
            "python3.x",
            "python3.13d",
            "ipython3",
        ] {
            assert!(!is_python_name(bad), "{bad}");
        }
    }
}
