//! The peer projects under `peers/`: which modules each builds, with which binding and backend.

use crate::error::Error;

/// One source project under `peers/`, built once per interpreter into one or more modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Project {
    /// Its directory under `peers/`, also its name on the command line (`--peer cython`).
    pub dir: &'static str,
    /// The binding, as recorded beside the builds.
    pub binding: &'static str,
    /// The build backend its `pyproject.toml` names, as recorded beside the builds.
    pub backend: &'static str,
    /// The extension modules it builds (each is a peer of the comparison).
    pub modules: &'static [&'static str],
    /// Whether it needs a C++ compiler (the C and Cython peers need only C).
    pub needs_cxx: bool,
}

/// Every peer project, in the order they are built and reported.
pub const PROJECTS: &[Project] = &[
    Project {
        dir: "c",
        binding: "hand-written C (PEP 489 multi-phase init, module state)",
        backend: "setuptools",
        modules: &["peer_c"],
        needs_cxx: false,
    },
    Project {
        dir: "pybind11",
        binding: "pybind11 (per_interpreter_gil, mod_gil_not_used)",
        backend: "scikit-build-core + CMake",
        modules: &["peer_pybind11"],
        needs_cxx: true,
    },
    Project {
        dir: "nanobind",
        binding: "nanobind (FREE_THREADED)",
        backend: "scikit-build-core + CMake",
        modules: &["peer_nanobind"],
        needs_cxx: true,
    },
    Project {
        dir: "cython",
        binding:
            "Cython (subinterpreters_compatible=own_gil; default and CYTHON_USE_MODULE_STATE=1)",
        backend: "setuptools + Cython",
        modules: &["peer_cython", "peer_cython_modstate"],
        needs_cxx: false,
    },
];

/// The projects named by `--peer` values (a project directory or one of its modules), in catalog
/// order; all of them when `names` is empty. An unknown name is a usage error listing the valid
/// ones.
pub fn select(names: &[&str]) -> Result<Vec<&'static Project>, Error> {
    if let Some(bad) = names.iter().find(|n| find(n).is_none()) {
        return Err(Error::usage(format!(
            "unknown peer `{bad}`; valid: {} (or a module: {})",
            PROJECTS.iter().map(|p| p.dir).collect::<Vec<_>>().join(", "),
            PROJECTS.iter().flat_map(|p| p.modules).copied().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(PROJECTS
        .iter()
        .filter(|p| names.is_empty() || names.iter().any(|n| find(n) == Some(*p)))
        .collect())
}

/// The project called `name`, or the one building the module `name`.
fn find(name: &str) -> Option<&'static Project> {
    PROJECTS.iter().find(|p| p.dir == name || p.modules.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_selected_by_directory_or_module_in_catalog_order() {
        let all = select(&[]).unwrap();
        assert_eq!(all.len(), PROJECTS.len());
        let some = select(&["peer_cython_modstate", "c"]).unwrap();
        assert_eq!(some.iter().map(|p| p.dir).collect::<Vec<_>>(), ["c", "cython"]);
        let err = select(&["swig"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message().contains("pybind11") && err.message().contains("peer_c"));
    }

    #[test]
    fn module_names_are_unique_and_prefixed() {
        let modules: Vec<_> = PROJECTS.iter().flat_map(|p| p.modules).collect();
        for (i, m) in modules.iter().enumerate() {
            assert!(m.starts_with("peer_"));
            assert!(!modules[i + 1..].contains(m));
        }
    }
}
