//! Where a result was produced: interpreter build, PyO3 version and machine.

use serde::{Deserialize, Serialize};

/// The CPython build a result was measured on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterpreterBuild {
    /// The name it was selected by (`3.13t`, `3.13`, `3.13-asan`, or `path-3.11` for a path).
    pub name: String,
    /// The exact version, e.g. `3.13.15`.
    pub version: String,
    /// Built with `--disable-gil`.
    pub free_threaded: bool,
    /// A sanitizer or debug variant (`asan`, `debug`), if any.
    pub variant: Option<String>,
    /// The Debian package version the interpreter came from, when xtask selected it by name:
    /// the source package's for a build here (`3.13.15-1`), the binary package's for an
    /// interpreter of the sid root (`3.14.10-1`). Absent in older files and for `--python PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian_version: Option<String>,
}

/// The machine a result was produced on (no host names: only what describes the hardware).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// `std::env::consts::OS`.
    pub os: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// The CPU model name, when the OS tells it.
    pub cpu_model: Option<String>,
    /// Hardware threads per core, when the OS tells it (2 means two vCPUs may be one core).
    pub threads_per_core: Option<u32>,
}

impl Machine {
    /// Reads the machine's description from the OS (Linux `/proc/cpuinfo`; elsewhere the model
    /// and topology are left unknown).
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let siblings: Option<u32> = field("siblings").and_then(|v| v.parse().ok());
        let cores: Option<u32> = field("cpu cores").and_then(|v| v.parse().ok());
        Machine {
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model: field("model name"),
            threads_per_core: match (siblings, cores) {
                (Some(s), Some(c)) if c > 0 => Some(s / c),
                _ => None,
            },
        }
    }
}

/// Everything a record needs to say where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// The interpreter build.
    pub interpreter: InterpreterBuild,
    /// The PyO3 version linked.
    pub pyo3_version: String,
    /// The machine.
    pub machine: Machine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_version_is_optional_in_files() {
        let old = r#"{"name":"3.13","version":"3.13.15","free_threaded":false,"variant":null}"#;
        let build: InterpreterBuild = serde_json::from_str(old).unwrap();
        assert_eq!(build.debian_version, None);
        assert!(!serde_json::to_string(&build).unwrap().contains("debian_version"));
        let stamped = InterpreterBuild { debian_version: Some("3.14.10-1".into()), ..build };
        let text = serde_json::to_string(&stamped).unwrap();
        assert!(text.contains(r#""debian_version":"3.14.10-1""#), "{text}");
        assert_eq!(serde_json::from_str::<InterpreterBuild>(&text).unwrap(), stamped);
    }
}
