//! The install marker: `<prefix>/interpsafe-build.json`, written last by a successful install.
//!
//! An install directory without a readable marker (or whose executable is gone) is an
//! interrupted install: it is wiped and rebuilt.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use super::facts::Facts;
use crate::clock;
use crate::error::Error;
use crate::host;

/// The marker's file name inside an install prefix.
pub const MARKER_FILE: &str = "interpsafe-build.json";

/// What a finished install recorded about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The known name, e.g. `3.13t`.
    pub name: String,
    /// The exact upstream version reported by the interpreter, e.g. `3.13.15`.
    pub version: String,
    /// The Debian source package the tarball came from, e.g. `python3.13`.
    pub source_package: String,
    /// The Debian source version, e.g. `3.13.15-1`.
    pub debian_source_version: String,
    /// The full `configure` command line arguments.
    pub configure_flags: Vec<String>,
    /// The interpreter executable.
    pub executable: PathBuf,
    /// `sys.version`.
    pub sys_version: String,
    /// `sysconfig.get_config_var('Py_GIL_DISABLED')` (`None` if the variable is absent).
    pub py_gil_disabled: Option<i64>,
    /// `sys.abiflags`.
    pub abiflags: String,
    /// When the install finished, RFC 3339 UTC.
    pub built_at: String,
}

impl Marker {
    /// The marker of a finished install of `name` at `executable`, from what the interpreter
    /// said about itself and where it came from: the Debian package and version, and the
    /// `configure` flags it was built with (none for a Debian binary).
    pub fn new(
        name: &str,
        facts: Facts,
        executable: PathBuf,
        (source_package, debian_source_version): (String, String),
        configure_flags: Vec<String>,
    ) -> Marker {
        Marker {
            name: name.to_string(),
            version: facts.version,
            source_package,
            debian_source_version,
            configure_flags,
            executable,
            sys_version: facts.sys_version,
            py_gil_disabled: facts.py_gil_disabled,
            abiflags: facts.abiflags,
            built_at: clock::utc_timestamp(SystemTime::now()),
        }
    }

    /// The marker as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let value = json!({
            "name": self.name,
            "version": self.version,
            "source_package": self.source_package,
            "debian_source_version": self.debian_source_version,
            "configure_flags": self.configure_flags,
            "executable": self.executable.to_string_lossy(),
            "sys_version": self.sys_version,
            "py_gil_disabled": self.py_gil_disabled,
            "abiflags": self.abiflags,
            "built_at": self.built_at,
        });
        pretty_json(&value)
    }

    /// Parses a marker; the error says which field is missing or wrong.
    pub fn from_json(text: &str) -> Result<Marker, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let string = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("field `{key}` missing or not a string"))
        };
        let name = string("name")?;
        let flags = value
            .get("configure_flags")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter().map(|f| f.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()
            })
            .ok_or("field `configure_flags` missing or not a list of strings")?;
        Ok(Marker {
            name,
            version: string("version")?,
            source_package: string("source_package")?,
            debian_source_version: string("debian_source_version")?,
            configure_flags: flags,
            executable: PathBuf::from(string("executable")?),
            sys_version: string("sys_version")?,
            py_gil_disabled: value.get("py_gil_disabled").and_then(Value::as_i64),
            abiflags: string("abiflags")?,
            built_at: string("built_at")?,
        })
    }
}

/// What is in an install prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallState {
    /// A complete install.
    Installed(Box<Marker>),
    /// The directory exists but holds no complete install; the text says why.
    Interrupted(String),
    /// Nothing there.
    Absent,
}

/// Inspects the install prefix `prefix`.
pub fn state(prefix: &Path) -> InstallState {
    if !prefix.exists() {
        return InstallState::Absent;
    }
    let path = prefix.join(MARKER_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => return InstallState::Interrupted(format!("no {MARKER_FILE}")),
    };
    match Marker::from_json(&text) {
        Ok(marker) if host::is_executable(&marker.executable) => {
            InstallState::Installed(Box::new(marker))
        }
        Ok(marker) => {
            InstallState::Interrupted(format!("{} is missing", marker.executable.display()))
        }
        Err(why) => InstallState::Interrupted(format!("unreadable {MARKER_FILE}: {why}")),
    }
}

/// Writes the marker into `prefix` atomically (temporary file, then rename).
pub fn write(prefix: &Path, marker: &Marker) -> Result<(), Error> {
    write_atomically(prefix, MARKER_FILE, &marker.to_json())
}

/// Writes `text` to `dir/file` through a temporary file and a rename, so a reader sees the old
/// file or the whole new one: how every marker is written (last, when its work is done).
pub fn write_atomically(dir: &Path, file: &str, text: &str) -> Result<(), Error> {
    let path = dir.join(file);
    let tmp = dir.join(format!("{file}.tmp"));
    fs::write(&tmp, text).map_err(|e| Error::io("write", &tmp, &e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io("write", &path, &e))
}

/// `value` as pretty-printed JSON with a final newline.
pub fn pretty_json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::os::unix::fs::PermissionsExt;

    fn sample(executable: PathBuf) -> Marker {
        Marker {
            name: "3.13t".into(),
            version: "3.13.15".into(),
            source_package: "python3.13".into(),
            debian_source_version: "3.13.15-1".into(),
            configure_flags: vec!["--prefix=/p".into(), "--disable-gil".into()],
            executable,
            sys_version: "3.13.15 experimental free-threading build".into(),
            py_gil_disabled: Some(1),
            abiflags: "t".into(),
            built_at: "2025-05-20T13:04:05Z".into(),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample(PathBuf::from("/p/bin/python3.13t"));
        assert_eq!(Marker::from_json(&m.to_json()), Ok(m));
        assert!(Marker::from_json("{}").unwrap_err().contains("`name`"));
        assert!(Marker::from_json("nope").is_err());
    }

    #[test]
    fn missing_marker_means_not_installed() {
        let dir = TestDir::new("marker");
        let prefix = dir.path().join("python").join("3.13t");
        assert_eq!(state(&prefix), InstallState::Absent);

        let bin = prefix.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("python3.13t");
        fs::write(&exe, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            matches!(state(&prefix), InstallState::Interrupted(why) if why.contains(MARKER_FILE))
        );

        fs::write(prefix.join(MARKER_FILE), "{ half a marker").unwrap();
        assert!(matches!(state(&prefix), InstallState::Interrupted(_)));

        let marker = sample(exe.clone());
        write(&prefix, &marker).unwrap();
        assert_eq!(state(&prefix), InstallState::Installed(Box::new(marker)));
        assert!(!prefix.join(format!("{MARKER_FILE}.tmp")).exists());

        fs::remove_file(&exe).unwrap();
        assert!(
            matches!(state(&prefix), InstallState::Interrupted(why) if why.contains("missing"))
        );
    }
}
