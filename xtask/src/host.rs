//! Facts about the machine xtask runs on: the user, `PATH` look-ups, CPU count, file ages.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// One day: how long apt indexes and source probes stay fresh.
pub const ONE_DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether xtask runs as root (`id -u` answers 0). Unknown counts as not root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The home directory from `$HOME`, if set and not empty.
pub fn home_dir() -> Option<PathBuf> {
    env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// Whether `path` is a regular file (after following links) with an execute bit set.
pub fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable called `program` in the directories of `$PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    path_dirs().into_iter().map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

/// The directories of `$PATH`, in order, empty entries skipped.
pub fn path_dirs() -> Vec<PathBuf> {
    env::var_os("PATH")
        .map(|p| env::split_paths(&p).filter(|d| d.as_os_str() != OsStr::new("")).collect())
        .unwrap_or_default()
}

/// How many jobs to give `make -j`: the CPUs available to this process (at least 1).
pub fn parallel_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether `path` exists and was modified less than `max_age` ago.
pub fn is_fresh(path: &Path, max_age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age < max_age)
}
