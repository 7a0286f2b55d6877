//! `python install`: fetch, build and install known interpreters into the cache, once.

use std::time::Instant;

use super::build;
use super::deps;
use super::facts;
use super::marker::{self, InstallState, Marker};
use super::mounts;
use super::names::{self, KnownPython, Origin};
use super::sid;
use super::source;
use crate::clock;
use crate::error::Error;
use crate::paths::Cache;
use crate::stage;

/// Installs each of `names` in turn (the default set if empty); already installed ones are skipped.
///
/// All names are checked before anything is built. A failed install does not stop the others.
pub fn install_command(names: &[String], cache: &Cache) -> Result<(), Error> {
    let selected: Vec<&KnownPython> = if names.is_empty() {
        names::defaults()
    } else {
        names.iter().map(|n| names::lookup(n)).collect::<Result<_, _>>()?
    };
    let mut failed: Vec<&str> = Vec::new();
    for known in &selected {
        if let Err(err) = ensure_installed(known, cache) {
            if selected.len() == 1 {
                return Err(err);
            }
            eprintln!("error: {err}");
            failed.push(known.name);
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "{} of {} installs failed: {} (see the errors above)",
        failed.len(),
        selected.len(),
        failed.join(", ")
    )))
}

/// Returns the marker of `known`'s install, building and installing it first if needed.
///
/// An interrupted install (directory without a valid marker) is wiped and rebuilt.
pub fn ensure_installed(known: &KnownPython, cache: &Cache) -> Result<Marker, Error> {
    if let Origin::SidRoot { .. } = known.origin {
        return sid::ensure_installed(known, cache);
    }
    let prefix = cache.python_dir(known.name);
    match marker::state(&prefix) {
        InstallState::Installed(marker) => {
            println!(
                "{} already installed ({}) at {}",
                known.name,
                marker.version,
                marker.executable.display()
            );
            Ok(*marker)
        }
        InstallState::Interrupted(why) => {
            println!(
                "[{}] removing interrupted install at {} ({why})",
                known.name,
                prefix.display()
            );
            mounts::remove_dir_all_unmounted(&prefix).map_err(|e| {
                e.reword(|m| format!("{m}; remove the interrupted install by hand and retry"))
            })?;
            install_fresh(known, cache)
        }
        InstallState::Absent => install_fresh(known, cache),
    }
}

/// Fetches, builds, installs and checks `known`, then writes its marker (last).
fn install_fresh(known: &KnownPython, cache: &Cache) -> Result<Marker, Error> {
    let name = known.name;
    let prefix = cache.python_dir(name);
    let start = Instant::now();
    println!("[{name}] installing {} into {}", known.summary, prefix.display());

    let tarball = stage::logged(name, "fetch", &cache.log_path(name, "fetch"), |log| {
        source::fetch(known, cache, log)
    })?;
    if let Some(preferred) = known.preferred_upstream.filter(|p| *p != tarball.upstream) {
        println!(
            "[{name}] note: {preferred} (the version the project measured) is not fetchable; \
             building {} instead",
            tarball.upstream
        );
    }
    deps::ensure(name, cache)?;
    let configure_flags = build::build(known, &tarball, cache)?;

    let executable = prefix.join("bin").join(known.executable);
    let facts = facts::query(&executable, known.env).map_err(|e| {
        e.reword(|m| format!("[{name}] built and installed, but the result does not run: {m}"))
    })?;
    if facts.free_threaded() != known.free_threaded {
        return Err(Error::new(format!(
            "[{name}] built, but Py_GIL_DISABLED is {:?} where a {} build was expected; \
             check {}",
            facts.py_gil_disabled,
            if known.free_threaded { "free-threaded" } else { "GIL" },
            cache.log_path(name, "configure").display()
        )));
    }
    let marker = Marker::new(
        name,
        facts,
        executable,
        (tarball.package, tarball.debian_version),
        configure_flags,
    );
    marker::write(&prefix, &marker)?;
    println!(
        "[{name}] installed {} at {} in {}",
        marker.version,
        marker.executable.display(),
        clock::secs(start.elapsed())
    );
    Ok(marker)
}
