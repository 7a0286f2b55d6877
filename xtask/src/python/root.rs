//! The sid root: a Debian development-distribution tree under the cache (`<cache>/roots/sid`)
//! holding Debian's binary packages of the CPython series whose sources the mirror does not
//! serve (3.14, 3.15, their `-dbg` builds), built once with `debootstrap --variant=minbase` and
//! reused.
//!
//! Those packages need a newer glibc than the host's, so the interpreters, and every cargo run
//! built against them, run inside the root ([`super::chroot`]). The root's marker
//! (`interpsafe-root.json`, written last) records the packages asked for and the Debian version
//! of each installed; a root without one is an interrupted build and is removed (never while
//! anything is mounted below it) and built again. The mirror URI is read from the machine's apt
//! sources at run time and not left behind: the root's apt sources and index lists are emptied
//! after each install, and logs show `<mirror>` in its place.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use super::apt;
use super::chroot::{self, Jail};
use super::marker;
use super::mounts;
use crate::clock;
use crate::error::Error;
use crate::host;
use crate::paths::Cache;
use crate::stage::{self, Captured};
use crate::step::Step;

/// The Debian suite of the root.
pub const SUITE: &str = "sid";

/// Packages every root gets besides the interpreters': a C toolchain for build scripts and
/// linking, and valgrind for the instruction-count bench.
pub const TOOLS: &[&str] = &["gcc", "libc6-dev", "valgrind"];

/// The marker's file name, at the top of the root.
pub const MARKER_FILE: &str = "interpsafe-root.json";

/// apt options for the mirror's development suite, whose Release files may be past
/// `Valid-Until` on a snapshot mirror.
const APT_OPTIONS: &[&str] = &["-q", "-o", "Acquire::Check-Valid-Until=false"];

/// What a finished root recorded about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMarker {
    /// The suite, [`SUITE`].
    pub suite: String,
    /// The packages asked for (with their dependencies, installed).
    pub packages: Vec<String>,
    /// The installed Debian version of each package asked for.
    pub versions: BTreeMap<String, String>,
    /// When the root was last installed into, RFC 3339 UTC.
    pub built_at: String,
}

impl RootMarker {
    /// The marker as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let value = json!({
            "suite": self.suite,
            "packages": self.packages,
            "versions": self.versions,
            "built_at": self.built_at,
        });
        marker::pretty_json(&value)
    }

    /// Parses a marker; the error says which field is missing or wrong.
    pub fn from_json(text: &str) -> Result<RootMarker, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let suite = value.get("suite").and_then(Value::as_str).ok_or("field `suite` missing")?;
        let packages = value
            .get("packages")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|p| p.as_str().map(str::to_string)).collect())
            .ok_or("field `packages` missing or not a list of strings")?;
        let versions = value
            .get("versions")
            .and_then(Value::as_object)
            .and_then(|o| {
                o.iter().map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()
            })
            .ok_or("field `versions` missing or not an object of strings")?;
        let built_at =
            value.get("built_at").and_then(Value::as_str).ok_or("field `built_at` missing")?;
        Ok(RootMarker {
            suite: suite.to_string(),
            packages,
            versions,
            built_at: built_at.to_string(),
        })
    }

    /// The packages of `wanted` this root was not asked for.
    pub fn missing<'a>(&self, wanted: &[&'a str]) -> Vec<&'a str> {
        wanted.iter().copied().filter(|w| !self.versions.contains_key(*w)).collect()
    }
}

/// What is in the root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootState {
    /// A finished root.
    Ready(Box<RootMarker>),
    /// A directory without a readable marker; the text says why.
    Interrupted(String),
    /// Nothing there.
    Absent,
}

/// The root's directory in `cache`.
pub fn dir(cache: &Cache) -> PathBuf {
    cache.root().join("roots").join(SUITE)
}

/// `inside` (an absolute path in the root) as the host sees it.
pub fn host_path(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

/// `host` (a path under `root`) as the root sees it; `None` if it is not under `root`.
pub fn inside_path(root: &Path, host: &Path) -> Option<PathBuf> {
    host.strip_prefix(root).ok().map(|rest| Path::new("/").join(rest))
}

/// Inspects the root at `root`.
pub fn state(root: &Path) -> RootState {
    if !root.exists() {
        return RootState::Absent;
    }
    match fs::read_to_string(root.join(MARKER_FILE)) {
        Err(_) => RootState::Interrupted(format!("no {MARKER_FILE}")),
        Ok(text) => match RootMarker::from_json(&text) {
            Ok(marker) => RootState::Ready(Box::new(marker)),
            Err(why) => RootState::Interrupted(format!("unreadable {MARKER_FILE}: {why}")),
        },
    }
}

/// Makes sure the root exists and holds every package of `wanted` (plus [`TOOLS`]), building
/// or topping it up as needed; returns its marker. `label` prefixes the progress lines.
pub fn ensure(label: &str, wanted: &[&str], cache: &Cache) -> Result<RootMarker, Error> {
    let root = dir(cache);
    let mut packages: Vec<&str> = TOOLS.to_vec();
    packages.extend(wanted.iter().copied().filter(|p| !TOOLS.contains(p)));
    let marker = match state(&root) {
        RootState::Ready(marker) if marker.missing(&packages).is_empty() => return Ok(*marker),
        RootState::Ready(marker) => {
            chroot::check_host()?;
            let mut all: Vec<&str> = marker.packages.iter().map(String::as_str).collect();
            all.extend(marker.missing(&packages));
            println!("[{label}] adding {} to the sid root", marker.missing(&packages).join(" "));
            install_packages(label, &root, &all, cache)?
        }
        RootState::Interrupted(why) => {
            chroot::check_host()?;
            println!("[{label}] removing the interrupted sid root at {} ({why})", root.display());
            mounts::remove_dir_all_unmounted(&root)?;
            build_fresh(label, &root, &packages, cache)?
        }
        RootState::Absent => {
            chroot::check_host()?;
            build_fresh(label, &root, &packages, cache)?
        }
    };
    write_marker(&root, &marker)?;
    Ok(marker)
}

/// Bootstraps the root, then installs `packages` into it.
fn build_fresh(
    label: &str,
    root: &Path,
    packages: &[&str],
    cache: &Cache,
) -> Result<RootMarker, Error> {
    println!(
        "[{label}] building the sid root at {} (once; about a minute and 2 GB)",
        root.display()
    );
    let uri = apt::read_mirror_uri(Path::new(apt::DEBIAN_SOURCES))?;
    ensure_debootstrap(label, cache)?;
    if let Some(parent) = root.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, &e))?;
    }
    stage::logged(label, "debootstrap sid", &cache.log_path("sid-root", "debootstrap"), |log| {
        // Its own mount namespace: the /proc and /sys debootstrap mounts in the target vanish
        // with it, even if it is interrupted.
        let step = Step::new("unshare")
            .args(["--mount", "--propagation", "private", "debootstrap", "--variant=minbase"])
            .arg(SUITE)
            .arg(root)
            .arg(&uri);
        expect_success(log.capture_redacted(&step, &uri)?, "debootstrap", "the sid root")
    })?;
    install_packages(label, root, packages, cache)
}

/// Installs `packages` with apt-get inside the root, then reads their versions.
fn install_packages(
    label: &str,
    root: &Path,
    packages: &[&str],
    cache: &Cache,
) -> Result<RootMarker, Error> {
    let uri = apt::read_mirror_uri(Path::new(apt::DEBIAN_SOURCES))?;
    let sources = host_path(root, Path::new("/etc/apt/sources.list"));
    let log_path = cache.log_path("sid-root", "apt");
    let result = stage::logged(label, "apt-get install in the sid root", &log_path, |log| {
        fs::write(&sources, format!("deb {uri} {SUITE} main\n"))
            .map_err(|e| Error::io("write", &sources, &e))?;
        let jail = Jail::new(root);
        let apt_get = || Step::new("apt-get").args(APT_OPTIONS);
        let update = jail.wrap(apt_get().arg("update"));
        expect_success(log.capture_redacted(&update, &uri)?, "apt-get update", "the sid root")?;
        let install = jail.wrap(
            apt_get()
                .args(["install", "-y", "--no-install-recommends"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
        expect_success(log.capture_redacted(&install, &uri)?, "apt-get install", "the sid root")?;
        log.run(&jail.wrap(Step::new("apt-get").arg("clean")))
    });
    // The mirror stays out of the root: no sources, no index lists (named after the mirror).
    scrub_mirror(root);
    result?;
    let versions = installed_versions(root, packages)?;
    Ok(RootMarker {
        suite: SUITE.to_string(),
        packages: packages.iter().map(|p| p.to_string()).collect(),
        versions,
        built_at: clock::utc_timestamp(SystemTime::now()),
    })
}

/// Empties the root's apt sources and removes its index lists (best effort).
fn scrub_mirror(root: &Path) {
    let sources = host_path(root, Path::new("/etc/apt/sources.list"));
    let _ =
        fs::write(&sources, "# emptied by cargo xtask: it writes the mirror here per install\n");
    let lists = host_path(root, Path::new("/var/lib/apt/lists"));
    if let Ok(entries) = fs::read_dir(&lists) {
        for entry in entries.flatten() {
            if entry.path().is_file() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// `Ok` if `out` succeeded, else an error with its first `E:` line, naming `what` and `where_`.
fn expect_success(out: Captured, what: &str, where_: &str) -> Result<(), Error> {
    if out.success {
        return Ok(());
    }
    let line = apt::first_error_line(&out.stderr, &out.stdout, &out.status);
    let hint = if line.contains("Unable to locate package")
        || line.contains("no installation candidate")
    {
        "; the development distribution may have dropped or renamed the package: check \
         `apt-cache search` there and update Origin::SidRoot in xtask/src/python/names.rs"
    } else {
        "; check the network and the mirror in /etc/apt/sources.list.d/debian.sources, then retry"
    };
    Err(Error::new(format!("{what} for {where_} failed: {line}{hint}")))
}

/// Installs debootstrap on the host with apt-get if it is missing.
fn ensure_debootstrap(label: &str, cache: &Cache) -> Result<(), Error> {
    if host::find_in_path("debootstrap").is_some() {
        return Ok(());
    }
    if host::find_in_path("apt-get").is_none() {
        return Err(Error::new(
            "debootstrap is not installed and there is no apt-get to install it; install \
             debootstrap and retry, or pass --python /path/to/python",
        ));
    }
    stage::logged(
        label,
        "apt-get install debootstrap",
        &cache.log_path("sid-root", "host"),
        |log| {
            let step = Step::new("apt-get")
                .args(["-q", "install", "-y", "--no-install-recommends", "debootstrap"])
                .env("DEBIAN_FRONTEND", "noninteractive");
            log.run(&step)
        },
    )
    .map_err(|e| {
        e.reword(|m| {
            format!("{m}\n  install debootstrap by hand (apt-get install debootstrap) and retry")
        })
    })?;
    if host::find_in_path("debootstrap").is_none() {
        return Err(Error::new(
            "apt-get installed debootstrap, but it is not on PATH; add /usr/sbin to PATH and retry",
        ));
    }
    Ok(())
}

/// The Debian version of each of `packages` installed in the root (`dpkg-query` there).
fn installed_versions(root: &Path, packages: &[&str]) -> Result<BTreeMap<String, String>, Error> {
    let step = Step::new("chroot")
        .arg(root)
        .args(["dpkg-query", "-W", "-f=${Package} ${Version} ${Status}\\n"])
        .args(packages);
    let out = step.command().output().map_err(|e| stage::spawn_error(&step, &e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let versions = parse_dpkg_query(&text);
    let missing: Vec<&str> =
        packages.iter().copied().filter(|p| !versions.contains_key(*p)).collect();
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "apt-get finished, but the sid root lacks {}; see {} and retry",
            missing.join(" "),
            root.display()
        )));
    }
    Ok(versions)
}

/// `package version` of each installed line of `dpkg-query -W -f='${Package} ${Version}
/// ${Status}\n'` output.
pub fn parse_dpkg_query(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let package = fields.next()?;
            let version = fields.next()?;
            let status: Vec<&str> = fields.collect();
            (status.last() == Some(&"installed"))
                .then(|| (package.to_string(), version.to_string()))
        })
        .collect()
}

/// Writes the marker into the root atomically (temporary file, then rename).
fn write_marker(root: &Path, marker: &RootMarker) -> Result<(), Error> {
    marker::write_atomically(root, MARKER_FILE, &marker.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn sample() -> RootMarker {
        RootMarker {
            suite: "sid".into(),
            packages: vec!["gcc".into(), "python3.14-dev".into()],
            versions: [("gcc", "4:15.2.0-1"), ("python3.14-dev", "3.14.10-1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            built_at: "2025-05-20T13:04:05Z".into(),
        }
    }

    #[test]
    fn marker_round_trips_and_names_missing_packages() {
        let m = sample();
        assert_eq!(RootMarker::from_json(&m.to_json()), Ok(m.clone()));
        assert!(RootMarker::from_json("{}").unwrap_err().contains("`suite`"));
        assert_eq!(m.missing(&["gcc", "python3.15-dev", "python3.14-dev"]), ["python3.15-dev"]);
    }

    #[test]
    fn root_states() {
        let dir = TestDir::new("root");
        let root = dir.path().join("roots/sid");
        assert_eq!(state(&root), RootState::Absent);
        fs::create_dir_all(&root).unwrap();
        assert!(matches!(state(&root), RootState::Interrupted(why) if why.contains(MARKER_FILE)));
        fs::write(root.join(MARKER_FILE), "{").unwrap();
        assert!(matches!(state(&root), RootState::Interrupted(why) if why.contains("unreadable")));
        write_marker(&root, &sample()).unwrap();
        assert_eq!(state(&root), RootState::Ready(Box::new(sample())));
    }

    #[test]
    fn paths_inside_and_out() {
        let root = Path::new("/c/roots/sid");
        let host = host_path(root, Path::new("/usr/bin/python3.14"));
        assert_eq!(host, Path::new("/c/roots/sid/usr/bin/python3.14"));
        assert_eq!(inside_path(root, &host).unwrap(), Path::new("/usr/bin/python3.14"));
        assert_eq!(inside_path(root, Path::new("/usr/bin/python3")), None);
    }

    #[test]
    fn dpkg_query_lines_of_installed_packages_only() {
        let text = "python3.14 3.14.10-1 install ok installed\n\
                    python3.15-dbg 3.15.2-1 install ok installed\n\
                    gone 1.0 deinstall ok config-files\n\
                    \n";
        let v = parse_dpkg_query(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v["python3.14"], "3.14.10-1");
        assert_eq!(v["python3.15-dbg"], "3.15.2-1");
    }

    #[test]
    fn failures_say_what_to_do() {
        let out = Captured {
            success: false,
            status: "exit status 100".into(),
            stdout: String::new(),
            stderr: "E: Unable to locate package python3.16-dev\n".into(),
        };
        let err = expect_success(out, "apt-get install", "the sid root").unwrap_err();
        assert!(err.message().contains("Unable to locate package python3.16-dev"));
        assert!(err.message().contains("names.rs"), "{}", err.message());
    }
}
