//! The Debian packages needed to build CPython, checked and (as root) installed.

use crate::error::Error;
use crate::host;
use crate::paths::Cache;
use crate::stage::{self, StageLog};
use crate::step::Step;

/// Every package a full CPython build here needs (Debian names).
pub const BUILD_DEPENDENCIES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libssl-dev",
    "zlib1g-dev",
    "libffi-dev",
    "libbz2-dev",
    "liblzma-dev",
    "libsqlite3-dev",
    "libreadline-dev",
    "libncurses-dev",
    "uuid-dev",
    "libexpat1-dev",
    "libgdbm-dev",
    "xz-utils",
];

/// Whether a `dpkg-query -f '${Status}'` answer means installed (`install ok installed`).
pub fn status_is_installed(status: &str) -> bool {
    status.split_whitespace().nth(2) == Some("installed")
}

/// The build dependencies that are not installed.
fn missing() -> Result<Vec<&'static str>, Error> {
    let mut missing = Vec::new();
    for package in BUILD_DEPENDENCIES {
        let out = Step::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .command()
            .output()
            .map_err(|e| {
                Error::new(format!(
                    "cannot run dpkg-query to check build dependencies ({e}); make sure these \
                     (Debian names) or their equivalents are installed: {}",
                    BUILD_DEPENDENCIES.join(" ")
                ))
            })?;
        if !out.status.success() || !status_is_installed(&String::from_utf8_lossy(&out.stdout)) {
            missing.push(*package);
        }
    }
    Ok(missing)
}

/// The command that installs `packages`.
fn install_line(packages: &[&str]) -> String {
    format!("apt-get install -y --no-install-recommends {}", packages.join(" "))
}

/// Makes sure every build dependency is installed: as root installs the missing ones with
/// apt-get (logging to `<cache>/logs/<label>-deps.log`), otherwise says what to run.
pub fn ensure(label: &str, cache: &Cache) -> Result<(), Error> {
    if host::find_in_path("apt-get").is_none() {
        return Err(Error::new(format!(
            "apt-get not found, so the CPython build dependencies cannot be checked or installed; \
             install these (Debian names) or their equivalents: {}",
            BUILD_DEPENDENCIES.join(" ")
        )));
    }
    let missing = missing()?;
    if missing.is_empty() {
        return Ok(());
    }
    if !host::is_root() {
        return Err(Error::new(format!(
            "missing build dependencies: {}. Install them with:\n  sudo {}",
            missing.join(" "),
            install_line(&missing)
        )));
    }
    println!("[{label}] installing build dependencies: {}", install_line(&missing));
    stage::logged(label, "deps", &cache.log_path(label, "deps"), |log: &mut StageLog| {
        let apt = |step: Step| step.env("DEBIAN_FRONTEND", "noninteractive");
        log.run(&apt(Step::new("apt-get").args(["-q", "update"])))?;
        log.run(&apt(Step::new("apt-get")
            .args(["-q", "install", "-y", "--no-install-recommends"])
            .args(&missing)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_status() {
        assert!(status_is_installed("install ok installed"));
        assert!(!status_is_installed("deinstall ok config-files"));
        assert!(!status_is_installed("unknown ok not-installed"));
        assert!(!status_is_installed(""));
    }

    #[test]
    fn install_line_lists_packages() {
        assert_eq!(
            install_line(&["libgdbm-dev", "uuid-dev"]),
            "apt-get install -y --no-install-recommends libgdbm-dev uuid-dev"
        );
    }
}
