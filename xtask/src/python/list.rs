//! `python list`: every known interpreter with its state here, and interpreters already present.

use super::discover;
use super::facts;
use super::marker::{self, InstallState};
use super::names::{KnownPython, Origin, KNOWN};
use super::probe::{self, Availability};
use super::root::{self, RootState};
use crate::paths::Cache;

/// Prints the state of every known name, then the interpreters found on `PATH` and in pyenv.
pub fn list_command(cache: &Cache) {
    // States first: working one out may probe apt, which prints a line of its own.
    let states: Vec<String> = KNOWN.iter().map(|k| state_line(k, cache)).collect();
    println!("known interpreters (cache: {}):", cache.root().display());
    for (known, state) in KNOWN.iter().zip(states) {
        let default = if known.default { " (default)" } else { "" };
        println!("  {}{default}: {}", known.name, known.summary);
        println!("      {state}");
    }
    println!();
    println!("found on this machine (use with --python PATH):");
    let found = discover::candidates();
    if found.is_empty() {
        println!("  none (no python3* on PATH, no ~/.pyenv/versions/*/bin/python3)");
    }
    for exe in found {
        match facts::query(&exe, &[]) {
            Ok(facts) => {
                let kind = if facts.free_threaded() { "free-threaded" } else { "GIL" };
                println!("  {:<40} {:<10} {kind}", exe.display(), facts.version);
            }
            Err(err) => println!("  {:<40} does not run: {err}", exe.display()),
        }
    }
}

/// The state of `known` in `cache`, as shown by `python list`.
fn state_line(known: &KnownPython, cache: &Cache) -> String {
    let prefix = cache.python_dir(known.name);
    let interrupted = match marker::state(&prefix) {
        InstallState::Installed(m) => {
            let debian = match known.origin {
                Origin::SidRoot { stamp_package, .. } => {
                    format!(", Debian sid {stamp_package} {}", m.debian_source_version)
                }
                Origin::Source => String::new(),
            };
            return format!("installed ({}{debian}) at {}", m.version, m.executable.display());
        }
        InstallState::Interrupted(why) => Some(why),
        InstallState::Absent => None,
    };
    if let Origin::SidRoot { stamp_package, .. } = known.origin {
        return sid_state(stamp_package, cache);
    }
    let state = match probe::availability(known, cache) {
        Availability::Fetchable(_) => "installable".to_string(),
        Availability::NotFetchable(why) => not_buildable(&why),
        Availability::Unknown(why) => format!("unknown (the source probe failed: {why})"),
    };
    match interrupted {
        Some(why) => format!(
            "{state}; an interrupted install at {} ({why}) will be wiped first",
            prefix.display()
        ),
        None => state,
    }
}

/// The state of a sid-root name that is not installed yet.
fn sid_state(stamp_package: &str, cache: &Cache) -> String {
    let dir = root::dir(cache);
    match root::state(&dir) {
        RootState::Ready(m) => match m.versions.get(stamp_package) {
            Some(v) => format!(
                "installable (Debian {stamp_package} {v} is in the sid root at {})",
                dir.display()
            ),
            None => {
                format!("installable (adds {stamp_package} to the sid root at {})", dir.display())
            }
        },
        RootState::Interrupted(why) => format!(
            "installable; the interrupted sid root at {} ({why}) will be rebuilt first",
            dir.display()
        ),
        RootState::Absent => format!(
            "installable as root (Debian sid binary package; builds the sid root at {} first, \
             about a minute)",
            dir.display()
        ),
    }
}

/// `not buildable on this machine (source cannot be fetched: ...)` from a fetch refusal.
fn not_buildable(why: &str) -> String {
    let inner = why
        .strip_prefix("source cannot be fetched on this machine (")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(why);
    let detail = match inner.strip_prefix("apt-get source answered: ") {
        Some(answer) => format!("listed by apt, fetch fails: {answer}"),
        None => inner.to_string(),
    };
    format!("not buildable on this machine (source cannot be fetched: {detail})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_plainly() {
        assert_eq!(
            not_buildable(
                "source cannot be fetched on this machine (apt-get source answered: E: 404 Not Found)"
            ),
            "not buildable on this machine (source cannot be fetched: listed by apt, fetch fails: E: 404 Not Found)"
        );
        assert_eq!(
            not_buildable("source cannot be fetched on this machine (apt-cache showsrc lists no python3.15 source (E: x))"),
            "not buildable on this machine (source cannot be fetched: apt-cache showsrc lists no python3.15 source (E: x))"
        );
    }
}
