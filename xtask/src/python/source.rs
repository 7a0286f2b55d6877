//! Getting a CPython source tarball: from the cache, else from Debian's source packages.
//!
//! Versions are tried in order of preference (see [`candidate_order`]); a listed version whose
//! tarball the mirror does not have (404) is skipped. Tarballs are kept in `<cache>/src/` next to
//! a `<package>_<upstream>.debian-version` file naming the Debian version they came from.

use std::fs;
use std::path::{Path, PathBuf};

use super::apt::PrivateApt;
use super::debversion;
use super::names::KnownPython;
use crate::error::Error;
use crate::paths::Cache;
use crate::stage::StageLog;

/// What to do on a machine where the source cannot be fetched.
pub const FETCH_HINT: &str =
    "on GitHub Actions use --python /path/to/python from actions/setup-python";

/// An upstream source tarball in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTarball {
    /// The Debian source package, e.g. `python3.13`.
    pub package: String,
    /// The Debian version it was fetched as, e.g. `3.13.15-1`.
    pub debian_version: String,
    /// The upstream version, e.g. `3.13.15`.
    pub upstream: String,
    /// The tarball, e.g. `<cache>/src/python3.13_3.13.15.orig.tar.xz`.
    pub path: PathBuf,
}

/// The order to try Debian versions in: those of upstream `preferred` first, then the rest;
/// newest first within each group.
pub fn candidate_order(versions: &[String], preferred: Option<&str>) -> Vec<String> {
    let mut ordered = versions.to_vec();
    ordered.sort_by(|a, b| {
        let is_preferred = |v: &str| preferred == Some(debversion::upstream(v));
        is_preferred(b).cmp(&is_preferred(a)).then_with(|| debversion::compare(b, a))
    });
    ordered.dedup();
    ordered
}

/// The error for a source that cannot be fetched, with why and what to do instead.
pub fn cannot_fetch(why: &str) -> Error {
    Error::new(format!("source cannot be fetched on this machine ({why}); {FETCH_HINT}"))
        .self_explanatory()
}

/// The file recording which Debian version a cached tarball came from.
fn sidecar(cache: &Cache, package: &str, upstream: &str) -> PathBuf {
    cache.src_dir().join(format!("{package}_{upstream}.debian-version"))
}

/// The cached tarball of `package` at `upstream`, if a complete one is there.
///
/// Complete means: the sidecar exists (it is written after the tarball was moved in place).
pub fn cached(cache: &Cache, package: &str, upstream: &str) -> Option<SourceTarball> {
    let debian_version = fs::read_to_string(sidecar(cache, package, upstream)).ok()?;
    let prefix = format!("{package}_{upstream}.orig.tar.");
    let path = fs::read_dir(cache.src_dir()).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.starts_with(&prefix) && !n.ends_with(".asc")
        })
    })?;
    Some(SourceTarball {
        package: package.to_string(),
        debian_version: debian_version.trim().to_string(),
        upstream: upstream.to_string(),
        path,
    })
}

/// The source tarball for `known`: the cached one of its preferred version, else fetched.
pub fn fetch(
    known: &KnownPython,
    cache: &Cache,
    log: &mut StageLog,
) -> Result<SourceTarball, Error> {
    let package = known.source_package;
    if let Some(tarball) = known.preferred_upstream.and_then(|up| cached(cache, package, up)) {
        log.note(&format!("reusing cached {}", tarball.path.display()));
        return Ok(tarball);
    }
    let apt = PrivateApt::prepare(cache)?;
    apt.update_if_stale(log)?;
    let versions = apt.versions(package, log)?.map_err(|why| cannot_fetch(&why))?;
    let order = candidate_order(&versions, known.preferred_upstream);
    log.note(&format!("candidate versions, in order: {}", order.join(" ")));

    let src_dir = cache.src_dir();
    fs::create_dir_all(&src_dir).map_err(|e| Error::io("create directory", &src_dir, &e))?;
    let mut first_refusal: Option<String> = None;
    for version in &order {
        let upstream = debversion::upstream(version);
        if let Some(tarball) = cached(cache, package, upstream) {
            log.note(&format!("reusing cached {}", tarball.path.display()));
            return Ok(tarball);
        }
        let scratch = src_dir.join(format!(".download-{package}-{version}"));
        reset_dir(&scratch)?;
        match apt.download_tarball(package, version, &scratch, log)? {
            Ok(downloaded) => {
                let tarball = store(cache, package, version, &downloaded)?;
                let _ = fs::remove_dir_all(&scratch);
                return Ok(tarball);
            }
            Err(refusal) => {
                log.note(&format!("{package}={version} is not fetchable: {refusal}"));
                let _ = fs::remove_dir_all(&scratch);
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    let why = first_refusal.unwrap_or_else(|| "no version to try".to_string());
    Err(cannot_fetch(&format!("apt-get source answered: {why}")))
}

/// Moves a downloaded tarball into the cache and writes its sidecar (last).
fn store(
    cache: &Cache,
    package: &str,
    version: &str,
    downloaded: &Path,
) -> Result<SourceTarball, Error> {
    let upstream = debversion::upstream(version);
    let file_name = downloaded
        .file_name()
        .ok_or_else(|| Error::new(format!("odd download path {}", downloaded.display())))?;
    let path = cache.src_dir().join(file_name);
    fs::rename(downloaded, &path).map_err(|e| Error::io("move tarball to", &path, &e))?;
    let side = sidecar(cache, package, upstream);
    fs::write(&side, format!("{version}\n")).map_err(|e| Error::io("write", &side, &e))?;
    Ok(SourceTarball {
        package: package.to_string(),
        debian_version: version.to_string(),
        upstream: upstream.to_string(),
        path,
    })
}

/// Empties (or creates) the directory `dir`.
pub fn reset_dir(dir: &Path) -> Result<(), Error> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, &e))?;
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn preferred_upstream_first_then_newest_first() {
        let listed = strings(&["3.13.5-2+deb13u5", "3.13.18-1", "3.13.15-1", "3.13.15-2"]);
        assert_eq!(
            candidate_order(&listed, Some("3.13.15")),
            ["3.13.15-2", "3.13.15-1", "3.13.18-1", "3.13.5-2+deb13u5"]
        );
        assert_eq!(
            candidate_order(&strings(&["3.14.9-1", "3.14.10-1", "3.14.8-1"]), None),
            ["3.14.10-1", "3.14.9-1", "3.14.8-1"]
        );
        assert_eq!(
            candidate_order(&strings(&["3.13.18-1", "3.13.5-2"]), Some("3.13.15")),
            ["3.13.18-1", "3.13.5-2"]
        );
    }

    #[test]
    fn cannot_fetch_message_says_what_to_do() {
        let msg =
            cannot_fetch("apt-get source answered: E: Failed to fetch x 404 Not Found").to_string();
        assert!(msg
            .starts_with("source cannot be fetched on this machine (apt-get source answered: E:"));
        assert!(msg.ends_with("use --python /path/to/python from actions/setup-python"));
    }

    #[test]
    fn cached_tarball_needs_its_sidecar() {
        let dir = crate::testdir::TestDir::new("source-cache");
        let cache = Cache::at(dir.path());
        fs::create_dir_all(cache.src_dir()).unwrap();
        let tar = cache.src_dir().join("python3.13_3.13.15.orig.tar.xz");
        fs::write(&tar, b"not really xz").unwrap();
        assert_eq!(cached(&cache, "python3.13", "3.13.15"), None);
        fs::write(sidecar(&cache, "python3.13", "3.13.15"), "3.13.15-1\n").unwrap();
        let found = cached(&cache, "python3.13", "3.13.15").unwrap();
        assert_eq!(found.debian_version, "3.13.15-1");
        assert_eq!(found.path, tar);
        assert_eq!(cached(&cache, "python3.13", "3.13.18"), None);
    }
}
