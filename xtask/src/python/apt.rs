//! A private apt configuration for `deb-src` look-ups and downloads, kept under the cache.
//!
//! It never touches the system's apt state: its own sources (suites `sid forky trixie`, the
//! machine's Debian mirror read at runtime from [`DEBIAN_SOURCES`]), its own index lists and
//! cache, selected per command with `APT_CONFIG`. No root needed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host;
use crate::paths::Cache;
use crate::stage::StageLog;
use crate::step::Step;

/// The machine's apt sources, whose first `URIs:` line names the Debian mirror to use.
pub const DEBIAN_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

/// The suites searched for source packages, newest first.
pub const SUITES: &str = "sid forky trixie";

/// The keyring that signs the Debian archive.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The URI of the first `URIs:` field in a deb822 sources file (field names are case-insensitive).
pub fn mirror_uri(sources: &str) -> Option<String> {
    sources.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        if !field.trim().eq_ignore_ascii_case("URIs") || line.starts_with([' ', '\t']) {
            return None;
        }
        value.split_whitespace().next().map(str::to_string)
    })
}

/// The host part of a mirror URI (`http://host/debian` gives `host`; the URI itself if it has
/// no scheme).
pub fn mirror_host(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// The Debian mirror URI configured on this machine, from [`DEBIAN_SOURCES`] at `path`.
pub fn read_mirror_uri(path: &Path) -> Result<String, Error> {
    let text = fs::read_to_string(path).map_err(|e| {
        Error::new(format!(
            "cannot read {} ({e}); xtask reads the Debian mirror URI from its first `URIs:` line \
             to fetch CPython sources. On a machine without it pass --python /path/to/python",
            path.display()
        ))
    })?;
    mirror_uri(&text).ok_or_else(|| {
        Error::new(format!(
            "{} has no `URIs:` line, so the Debian mirror to fetch CPython sources from is unknown; \
             pass --python /path/to/python instead",
            path.display()
        ))
    })
}

/// The deb822 `deb-src` stanza of the private configuration.
pub fn sources_stanza(uri: &str) -> String {
    format!(
        "Types: deb-src\nURIs: {uri}\nSuites: {SUITES}\nComponents: main\nSigned-By: {KEYRING}\n"
    )
}

/// The `apt.conf` pointing apt at the private directories under `dir`.
pub fn apt_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "Dir::Etc::SourceList \"/dev/null\";\n\
         Dir::Etc::SourceParts \"{d}/etc/sources.list.d\";\n\
         Dir::State::Lists \"{d}/lists\";\n\
         Dir::Cache \"{d}/cache\";\n\
         Dir::Etc::Preferences \"/dev/null\";\n\
         Dir::Etc::PreferencesParts \"{d}/prefs\";\n"
    )
}

/// The Debian versions of source package `package` in `apt-cache showsrc` output, deduplicated,
/// in the order listed.
pub fn parse_showsrc(text: &str, package: &str) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')).map(str::trim)
            })
        };
        if field("Package") != Some(package) {
            continue;
        }
        if let Some(v) = field("Version").filter(|v| !v.is_empty()) {
            if !versions.iter().any(|known| known == v) {
                versions.push(v.to_string());
            }
        }
    }
    versions
}

/// The line that best explains a failed apt command: its first `E:` line, else its first stderr
/// line, else `fallback`; runs of whitespace collapsed.
pub fn first_error_line(stderr: &str, stdout: &str, fallback: &str) -> String {
    let error_line = stderr
        .lines()
        .chain(stdout.lines())
        .find(|l| l.starts_with("E:"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()));
    match error_line {
        Some(line) => line.split_whitespace().collect::<Vec<_>>().join(" "),
        None => fallback.to_string(),
    }
}

/// The private apt configuration, prepared on disk.
#[derive(Debug, Clone)]
pub struct PrivateApt {
    dir: PathBuf,
    conf: PathBuf,
    as_root: bool,
    /// The mirror's host, which apt's output names and which logs and messages replace with
    /// `<mirror>`: it is read from the machine at run time and never written down.
    mirror_host: String,
}

impl PrivateApt {
    /// Writes (or refreshes) the configuration under the cache's `apt/` directory.
    ///
    /// If the mirror changed since the last run the indexes are marked stale.
    pub fn prepare(cache: &Cache) -> Result<PrivateApt, Error> {
        if host::find_in_path("apt-get").is_none() || host::find_in_path("apt-cache").is_none() {
            return Err(Error::new(
                "apt-get/apt-cache not found: CPython sources are fetched as Debian source packages, \
                 which needs a Debian-like system. Elsewhere pass --python /path/to/python",
            ));
        }
        let uri = read_mirror_uri(Path::new(DEBIAN_SOURCES))?;
        let dir = cache.apt_dir();
        for sub in ["etc/sources.list.d", "prefs", "lists/partial", "cache/archives/partial"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(|e| Error::io("create directory", &d, &e))?;
        }
        let mirror_host = mirror_host(&uri).to_string();
        let apt =
            PrivateApt { conf: dir.join("apt.conf"), dir, as_root: host::is_root(), mirror_host };
        let sources = apt.dir.join("etc/sources.list.d/interpsafe-src.sources");
        if write_if_changed(&sources, &sources_stanza(&uri))? {
            let _ = fs::remove_file(apt.stamp());
        }
        write_if_changed(&apt.conf, &apt_conf(&apt.dir))?;
        Ok(apt)
    }

    /// The file whose age is the age of the indexes.
    fn stamp(&self) -> PathBuf {
        self.dir.join("updated.stamp")
    }

    /// An apt command (`apt-get` or `apt-cache`) using the private configuration.
    fn step(&self, program: &str) -> Step {
        let step = Step::new(program).env("APT_CONFIG", &self.conf).arg("-q");
        if self.as_root {
            // Downloads into a root-owned cache dir; avoids the harmless `_apt` sandbox warning.
            step.args(["-o", "APT::Sandbox::User=root"])
        } else {
            step
        }
    }

    /// Whether the indexes are missing or older than a day.
    pub fn is_stale(&self) -> bool {
        let has_sources = fs::read_dir(self.dir.join("lists")).is_ok_and(|entries| {
            entries.flatten().any(|e| e.file_name().to_string_lossy().contains("_Sources"))
        });
        !has_sources || !host::is_fresh(&self.stamp(), host::ONE_DAY)
    }

    /// Runs `apt-get update` on the private configuration if the indexes are stale.
    pub fn update_if_stale(&self, log: &mut StageLog) -> Result<(), Error> {
        if !self.is_stale() {
            log.note("deb-src indexes are less than a day old; not updating");
            return Ok(());
        }
        let out = log.capture_redacted(&self.step("apt-get").arg("update"), &self.mirror_host)?;
        if !out.success {
            let why = first_error_line(&out.stderr, &out.stdout, &out.status);
            return Err(Error::new(format!(
                "`apt-get update` failed ({why}); the private deb-src configuration is in {}",
                self.dir.display()
            )));
        }
        let stamp = self.stamp();
        fs::write(&stamp, "apt-get update succeeded\n").map_err(|e| Error::io("write", &stamp, &e))
    }

    /// The Debian versions of `package` that the indexes list; `Err(reason)` inside `Ok` if
    /// `apt-cache showsrc` knows no such source package.
    pub fn versions(
        &self,
        package: &str,
        log: &mut StageLog,
    ) -> Result<Result<Vec<String>, String>, Error> {
        let showsrc = self.step("apt-cache").args(["showsrc", package]);
        let out = log.capture_redacted(&showsrc, &self.mirror_host)?;
        let versions = parse_showsrc(&out.stdout, package);
        if versions.is_empty() {
            let why = first_error_line(&out.stderr, "", &out.status);
            return Ok(Err(format!("apt-cache showsrc lists no {package} source ({why})")));
        }
        Ok(Ok(versions))
    }

    /// Downloads the upstream tarball of `package=version` into the empty directory `into`.
    ///
    /// Returns `Ok(Err(first error line))` when apt refuses (e.g. the pool answers 404).
    pub fn download_tarball(
        &self,
        package: &str,
        version: &str,
        into: &Path,
        log: &mut StageLog,
    ) -> Result<Result<PathBuf, String>, Error> {
        let step = self
            .step("apt-get")
            .args(["source", "--tar-only", "--download-only"])
            .arg(format!("{package}={version}"))
            .current_dir(into);
        let out = log.capture_redacted(&step, &self.mirror_host)?;
        if !out.success {
            return Ok(Err(first_error_line(&out.stderr, &out.stdout, &out.status)));
        }
        let prefix = format!("{package}_");
        let found = fs::read_dir(into)
            .map_err(|e| Error::io("list", into, &e))?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(&prefix) && n.contains(".orig.tar.") && !n.ends_with(".asc")
                })
            });
        Ok(found.ok_or_else(|| {
            format!(
                "apt-get source succeeded but left no {package}_*.orig.tar.* in {}",
                into.display()
            )
        }))
    }
}

/// Writes `content` to `path` unless it already holds exactly that; returns whether it wrote.
fn write_if_changed(path: &Path, content: &str) -> Result<bool, Error> {
    if fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    fs::write(path, content).map_err(|e| Error::io("write", path, &e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_SOURCES_SAMPLE: &str = "Types: deb\n\
        # http://snapshot.example.org/archive/debian/20250520T000000Z\n\
        URIs: http://mirror.example.org/debian\n\
        Suites: bookworm bookworm-updates\n\
        Components: main\n\
        \n\
        Types: deb\n\
        URIs: http://mirror.example.org/debian-security\n\
        Suites: bookworm-security\n";

    #[test]
    fn the_mirror_host_is_what_logs_hide() {
        assert_eq!(mirror_host("http://mirror.example.org/debian"), "mirror.example.org");
        assert_eq!(mirror_host("mirror.example.org"), "mirror.example.org");
    }

    #[test]
    fn mirror_uri_is_the_first_uris_line() {
        assert_eq!(
            mirror_uri(DEBIAN_SOURCES_SAMPLE).as_deref(),
            Some("http://mirror.example.org/debian")
        );
        assert_eq!(
            mirror_uri("uris:   https://a.example/debian https://b.example/debian\n").as_deref(),
            Some("https://a.example/debian")
        );
        assert_eq!(mirror_uri("Types: deb\nSuites: x\n"), None);
        assert_eq!(mirror_uri("URIs:\n"), None);
    }

    #[test]
    fn missing_sources_file_is_named_in_the_error() {
        let err = read_mirror_uri(Path::new("/nonexistent/debian.sources")).unwrap_err();
        assert!(err.message().contains("/nonexistent/debian.sources"));
    }

    #[test]
    fn private_config_files() {
        let stanza = sources_stanza("http://mirror.example.org/debian");
        assert!(stanza.starts_with("Types: deb-src\nURIs: http://mirror.example.org/debian\n"));
        assert!(stanza.contains("Suites: sid forky trixie\n"));
        assert!(stanza.contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"));
        let conf = apt_conf(Path::new("/c/apt"));
        assert!(conf.contains("Dir::Etc::SourceList \"/dev/null\";"));
        assert!(conf.contains("Dir::Etc::SourceParts \"/c/apt/etc/sources.list.d\";"));
        assert!(conf.contains("Dir::State::Lists \"/c/apt/lists\";"));
        assert!(conf.contains("Dir::Cache \"/c/apt/cache\";"));
        assert!(conf.contains("Dir::Etc::PreferencesParts \"/c/apt/prefs\";"));
    }

    #[test]
    fn showsrc_versions_of_the_right_package() {
        let text = "Package: python3.13\nBinary: python3.13, libpython3.13\n\
                    Version: 3.13.15-1\nFiles:\n abc 123 python3.13_3.13.15-1.dsc\n\n\
                    Package: python3.13\nVersion: 3.13.18-1\n\n\
                    Package: python3.13\nVersion: 3.13.15-1\n\n\
                    Package: python3-defaults\nVersion: 3.13.5-1\n\n\
                    Package: python3.13\nVersion: 3.13.5-2+deb13u5\n";
        assert_eq!(
            parse_showsrc(text, "python3.13"),
            ["3.13.15-1", "3.13.18-1", "3.13.5-2+deb13u5"]
        );
        assert!(parse_showsrc("", "python3.13").is_empty());
    }

    #[test]
    fn first_error_line_prefers_e_lines() {
        let stderr =
            "W: something\nE: Failed to fetch http://m/x.tar.xz  404  Not Found\nE: Failed\n";
        assert_eq!(
            first_error_line(stderr, "", "exit status 100"),
            "E: Failed to fetch http://m/x.tar.xz 404 Not Found"
        );
        assert_eq!(first_error_line("W: odd\n", "", "x"), "W: odd");
        assert_eq!(first_error_line("", "", "exit status 100"), "exit status 100");
    }
}
