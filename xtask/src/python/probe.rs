//! Whether a known interpreter's source can be fetched here, answered once a day.
//!
//! The probe is a real fetch (which caches the tarball when it works); its answer is kept in
//! `<cache>/apt/probe-<package>.txt` as `ok <debian version>` or `fail <reason>`.

use std::fs;
use std::path::PathBuf;

use super::names::KnownPython;
use super::source;
use crate::error::Error;
use crate::host;
use crate::paths::Cache;
use crate::stage::StageLog;

/// Whether a source package can be fetched on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// It can; the text is the Debian version that was (or would be) used.
    Fetchable(String),
    /// It cannot; the text says why (e.g. the mirror's 404).
    NotFetchable(String),
    /// The probe itself failed (e.g. no network); nothing was cached.
    Unknown(String),
}

/// The file caching the probe answer for `package`.
fn probe_file(cache: &Cache, package: &str) -> PathBuf {
    cache.apt_dir().join(format!("probe-{package}.txt"))
}

/// Parses a probe file's content.
pub fn parse_probe(text: &str) -> Option<Availability> {
    let line = text.lines().next()?;
    if let Some(version) = line.strip_prefix("ok ") {
        return Some(Availability::Fetchable(version.to_string()));
    }
    line.strip_prefix("fail ").map(|why| Availability::NotFetchable(why.to_string()))
}

/// Whether `known`'s source can be fetched: from the cached tarball, a probe answer less than a
/// day old, or a new probe (which prints one line saying so, as it may download).
pub fn availability(known: &KnownPython, cache: &Cache) -> Availability {
    let package = known.source_package;
    if let Some(tarball) =
        known.preferred_upstream.and_then(|up| source::cached(cache, package, up))
    {
        return Availability::Fetchable(tarball.debian_version);
    }
    let file = probe_file(cache, package);
    if host::is_fresh(&file, host::ONE_DAY) {
        if let Some(answer) = fs::read_to_string(&file).ok().and_then(|t| parse_probe(&t)) {
            return answer;
        }
    }
    let log_path = cache.log_path("probe", package);
    println!(
        "probing whether the {package} source can be fetched (answer kept for a day; log: {})",
        log_path.display()
    );
    let result: Result<source::SourceTarball, Error> =
        StageLog::create(&log_path).and_then(|mut log| source::fetch(known, cache, &mut log));
    let (answer, line) = match result {
        Ok(tarball) => (
            Availability::Fetchable(tarball.debian_version.clone()),
            format!("ok {}", tarball.debian_version),
        ),
        Err(err) if err.message().starts_with("source cannot be fetched") => {
            let hint = format!("; {}", source::FETCH_HINT);
            let why =
                err.message().strip_suffix(hint.as_str()).unwrap_or(err.message()).to_string();
            (Availability::NotFetchable(why.clone()), format!("fail {why}"))
        }
        Err(err) => return Availability::Unknown(err.message().to_string()),
    };
    let _ = fs::create_dir_all(cache.apt_dir());
    let _ = fs::write(&file, format!("{line}\n"));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_parse() {
        assert_eq!(
            parse_probe("ok 3.13.15-1\n"),
            Some(Availability::Fetchable("3.13.15-1".into()))
        );
        assert_eq!(
            parse_probe("fail source cannot be fetched (404)\n"),
            Some(Availability::NotFetchable("source cannot be fetched (404)".into()))
        );
        assert_eq!(parse_probe("garbage"), None);
        assert_eq!(parse_probe(""), None);
    }
}
