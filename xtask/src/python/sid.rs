//! Known names of [`Origin::SidRoot`]: an install is the sid root holding the packages
//! ([`super::root`]) plus an install marker in `<cache>/python/NAME` naming the interpreter there
//! and the Debian version of its package, the same marker a source build writes (its
//! `executable` is the host's view of the root's `/usr/bin/pythonX.Y`).

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::chroot;
use super::facts;
use super::marker::{self, InstallState, Marker};
use super::mounts;
use super::names::{KnownPython, Origin, KNOWN};
use super::root;
use crate::error::Error;
use crate::paths::{self, Cache};
use crate::stage;
use crate::step::Step;

/// Every package the root holds for the known names: one root serves them all, so it is built
/// once with everything.
pub fn all_packages() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for known in KNOWN {
        if let Origin::SidRoot { packages, stamp_package } = known.origin {
            for p in packages.iter().copied().chain([stamp_package]) {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
    }
    all
}

/// The interpreter of `known` inside the root (`/usr/bin/<executable>`).
pub fn executable_inside(known: &KnownPython) -> PathBuf {
    Path::new("/usr/bin").join(known.executable)
}

/// Returns the marker of `known`'s install, building the root first if needed.
pub fn ensure_installed(known: &KnownPython, cache: &Cache) -> Result<Marker, Error> {
    let Origin::SidRoot { stamp_package, .. } = known.origin else {
        return Err(Error::new(format!("{} is not installed from the sid root", known.name)));
    };
    let name = known.name;
    // Everything below (the root, and every run in it) needs root and the namespace tools; say
    // so before anything else fails less clearly.
    chroot::check_host()?;
    let root_marker = root::ensure(name, &all_packages(), cache)?;
    let root_dir = root::dir(cache);
    let inside = executable_inside(known);
    let host_exe = root::host_path(&root_dir, &inside);
    let debian_version = root_marker.versions.get(stamp_package).cloned().ok_or_else(|| {
        Error::new(format!(
            "the sid root's {} lists no {stamp_package}; remove {} and retry",
            root::MARKER_FILE,
            root_dir.display()
        ))
    })?;
    let prefix = cache.python_dir(name);
    match marker::state(&prefix) {
        InstallState::Installed(m)
            if m.debian_source_version == debian_version && m.executable == host_exe =>
        {
            println!(
                "{name} already installed ({}, Debian {stamp_package} {debian_version}) in the sid root at {}",
                m.version,
                root_dir.display()
            );
            return Ok(*m);
        }
        InstallState::Absent => {}
        // A marker of another package version, or of an interrupted install: written again.
        _ => mounts::remove_dir_all_unmounted(&prefix)?,
    }
    let facts = facts::query_through(&inside, known.env, |step| {
        step.run_through("chroot", [root_dir.as_os_str()])
    })
    .map_err(|e| {
        e.reword(|m| format!("[{name}] the sid root's {} does not run: {m}", inside.display()))
    })?;
    if facts.free_threaded() != known.free_threaded {
        return Err(Error::new(format!(
            "[{name}] {} in the sid root reports Py_GIL_DISABLED={:?}, not what {name} expects",
            inside.display(),
            facts.py_gil_disabled
        )));
    }
    std::fs::create_dir_all(&prefix).map_err(|e| Error::io("create directory", &prefix, &e))?;
    let package = (known.source_package.to_string(), debian_version);
    let marker = Marker::new(name, facts, host_exe, package, Vec::new());
    marker::write(&prefix, &marker)?;
    println!(
        "[{name}] installed {} (Debian {stamp_package} {}) in the sid root at {}",
        marker.version,
        marker.debian_source_version,
        root_dir.display()
    );
    Ok(marker)
}

/// Fetches the crates of the workspace and of `compile-fail/` on the host (once per run): the
/// root has no CA certificates, so cargo runs there offline against the host's registry.
///
/// A failed fetch (no network) is a warning, not an error: the registry may already hold every
/// crate, and if not, the offline build in the root names the missing one.
pub fn fetch_crates(label: &str, cache: &Cache) {
    static FETCHED: AtomicBool = AtomicBool::new(false);
    if FETCHED.load(Ordering::Relaxed) {
        return;
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let root = paths::workspace_root();
    let fetched = stage::logged(
        label,
        "cargo fetch (the root builds offline)",
        &cache.log_path(label, "fetch-crates"),
        |log| {
            log.run(&Step::new(&cargo).arg("fetch").current_dir(&root))?;
            let compile_fail = root.join("compile-fail/Cargo.toml");
            if compile_fail.is_file() {
                log.run(
                    &Step::new(&cargo)
                        .arg("fetch")
                        .arg("--manifest-path")
                        .arg(&compile_fail)
                        .current_dir(&root),
                )?;
            }
            Ok(())
        },
    );
    match fetched {
        Ok(()) => FETCHED.store(true, Ordering::Relaxed),
        Err(err) => eprintln!(
            "warning: {err}\n  going on: cargo runs offline in the root with the crates the \
             host's registry already has"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::names;

    #[test]
    fn one_root_holds_every_sid_name_and_its_stamp_package() {
        let all = all_packages();
        for p in ["python3.14-dev", "python3.15-dev", "python3.14-dbg", "python3.15-dbg"] {
            assert!(all.contains(&p), "{p} missing from {all:?}");
        }
        for known in names::KNOWN {
            if let Origin::SidRoot { stamp_package, .. } = known.origin {
                assert!(all.contains(&stamp_package), "{}", known.name);
            }
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "duplicates in {all:?}");
    }

    #[test]
    fn executables_live_in_the_roots_usr_bin() {
        let debug = names::lookup("3.14-debug").unwrap();
        assert_eq!(executable_inside(debug), Path::new("/usr/bin/python3.14d"));
    }

    #[test]
    fn a_source_build_is_refused_here() {
        let err = ensure_installed(names::lookup("3.13").unwrap(), &Cache::at("/nonexistent"))
            .unwrap_err();
        assert!(err.message().contains("not installed from the sid root"));
    }
}
