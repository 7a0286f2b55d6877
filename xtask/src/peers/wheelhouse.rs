//! The wheelhouse: every package the peers' builds (and the later benches and tests) install,
//! downloaded once into the cache, so that venvs are made and peers built offline.
//!
//! `<cache>/wheels/` holds the files and a stamp, `interpsafe-wheelhouse.json`, naming the
//! requirements and the wheel tags (`cp313`, `cp313t`) they were downloaded for. A build on an
//! interpreter whose tag the stamp lists does not touch the network.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::Error;
use crate::paths::Cache;
use crate::stage::StageLog;
use crate::step::Step;

/// What every peer venv installs: the bindings at the versions compared, their build backends
/// and tools, and pyperf and pytest for the benches and tests that will import the peers.
pub const REQUIREMENTS: &[&str] = &[
    "pybind11==3.1.0",
    "nanobind==3.1.0",
    "Cython==3.3.1",
    "scikit-build-core",
    "cmake",
    "ninja",
    "setuptools",
    "wheel",
    "pyperf",
    "pytest",
];

/// The stamp's file name inside the wheelhouse.
const STAMP: &str = "interpsafe-wheelhouse.json";

/// The wheelhouse directory in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheelhouse {
    dir: PathBuf,
}

impl Wheelhouse {
    /// The wheelhouse of `cache`: `<cache>/wheels`.
    pub fn in_cache(cache: &Cache) -> Wheelhouse {
        Wheelhouse { dir: cache.root().join("wheels") }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The wheel tags the stamp says the current [`REQUIREMENTS`] were downloaded for.
    pub fn tags(&self) -> Vec<String> {
        let Ok(text) = fs::read_to_string(self.dir.join(STAMP)) else {
            return Vec::new();
        };
        stamped_tags(&text)
    }

    /// Makes sure the wheelhouse holds [`REQUIREMENTS`] for wheel tag `tag` (e.g. `cp313t`),
    /// downloading them with `python`'s pip (a venv of an interpreter with that tag) if the stamp
    /// does not list it yet. Only this step uses the network.
    pub fn ensure(&self, tag: &str, python: &Path, log: &mut StageLog) -> Result<(), Error> {
        let mut tags = self.tags();
        if tags.iter().any(|t| t == tag) {
            log.note(&format!("wheelhouse {} already holds {tag}", self.dir.display()));
            return Ok(());
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io("create the wheelhouse", &self.dir, &e))?;
        log.note(&format!("downloading the requirements for {tag} (needs network access once)"));
        let download =
            pip(python, self).args(["download", "--dest"]).arg(&self.dir).args(REQUIREMENTS);
        log.run(&download).map_err(|e| {
            e.reword(|m| {
                format!(
                    "{m}\n  downloading the wheelhouse needs network access to the package index once; \
                     or fill {} by hand (`pip download --dest DIR {}` with a {tag} interpreter) and retry",
                    self.dir.display(),
                    REQUIREMENTS.join(" ")
                )
            })
        })?;
        tags.push(tag.to_string());
        tags.sort();
        let stamp = json!({ "requirements": REQUIREMENTS, "tags": tags });
        let path = self.dir.join(STAMP);
        fs::write(&path, format!("{stamp:#}\n"))
            .map_err(|e| Error::io("write the wheelhouse stamp", &path, &e))
    }
}

/// The tags in a stamp's text, or none when its requirements are not today's [`REQUIREMENTS`].
fn stamped_tags(text: &str) -> Vec<String> {
    let Ok(stamp) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let requirements: Vec<&str> = stamp
        .get("requirements")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if requirements != REQUIREMENTS {
        return Vec::new();
    }
    stamp
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// The wheel tag whose wheels an interpreter of `version` installs: `cp313`, or `cp313t` for a
/// free-threaded build (a debug build installs the release build's wheels).
pub fn wheel_tag(version: &str, free_threaded: bool) -> String {
    let series: String = version.split('.').take(2).collect();
    format!("cp{series}{}", if free_threaded { "t" } else { "" })
}

/// `python -m pip` with the wheelhouse as its only extra place to look (the inherited
/// `PIP_FIND_LINKS` would add another) and no version check.
pub fn pip(python: &Path, wheelhouse: &Wheelhouse) -> Step {
    Step::new(python)
        .args(["-m", "pip"])
        .env("PIP_FIND_LINKS", wheelhouse.dir())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_the_abi_a_wheel_must_have() {
        assert_eq!(wheel_tag("3.13.15", false), "cp313");
        assert_eq!(wheel_tag("3.13.15", true), "cp313t");
    }

    #[test]
    fn a_stamp_counts_only_for_todays_requirements() {
        let today = json!({ "requirements": REQUIREMENTS, "tags": ["cp313", "cp313t"] });
        assert_eq!(stamped_tags(&today.to_string()), ["cp313", "cp313t"]);
        let old = json!({ "requirements": ["pybind11==2.13.6"], "tags": ["cp313"] });
        assert!(stamped_tags(&old.to_string()).is_empty());
        assert!(stamped_tags("not json").is_empty());
    }
}
