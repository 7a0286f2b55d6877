//! Where things live: the workspace checkout and the interpreter cache outside it.

use std::env;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host;

/// The environment variable that overrides the cache root.
pub const CACHE_ENV: &str = "INTERPSAFE_CACHE";

/// The root of the cargo workspace (the parent of the `xtask` crate).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cache that holds fetched sources, build trees, logs and installed interpreters.
///
/// Layout under the root: `apt/` (private apt configuration and indexes), `src/` (source
/// tarballs), `build/NAME/` (temporary build trees), `python/NAME/` (installs), `logs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at `$INTERPSAFE_CACHE` if set, else `$HOME/.cache/interpsafe`.
    pub fn from_env() -> Result<Cache, Error> {
        if let Some(dir) = env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            let root = if dir.is_absolute() {
                dir
            } else {
                env::current_dir()
                    .map_err(|e| {
                        Error::new(format!(
                            "{CACHE_ENV} is a relative path and the current directory is unreadable ({e}); \
                             set {CACHE_ENV} to an absolute path"
                        ))
                    })?
                    .join(dir)
            };
            return Ok(Cache::at(root));
        }
        match host::home_dir() {
            Some(home) => Ok(Cache::at(home.join(".cache").join("interpsafe"))),
            None => Err(Error::new(format!(
                "neither {CACHE_ENV} nor HOME is set, so there is no place for the interpreter cache; \
                 set {CACHE_ENV}=/some/dir"
            ))),
        }
    }

    /// A cache rooted at `root` (used by tests and by [`Cache::from_env`]).
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The private apt configuration directory.
    pub fn apt_dir(&self) -> PathBuf {
        self.root.join("apt")
    }

    /// Where source tarballs are kept.
    pub fn src_dir(&self) -> PathBuf {
        self.root.join("src")
    }

    /// The temporary build tree of interpreter `name`.
    pub fn build_dir(&self, name: &str) -> PathBuf {
        self.root.join("build").join(name)
    }

    /// The install prefix of interpreter `name`.
    pub fn python_dir(&self, name: &str) -> PathBuf {
        self.root.join("python").join(name)
    }

    /// The log file of `stage` of the job `name`, e.g. `logs/3.13t-build.log`.
    pub fn log_path(&self, name: &str, stage: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}-{stage}.log"))
    }
}

/// The cargo target directory used for interpreter-specific builds: `<workspace>/target/<leaf>`.
pub fn target_dir(leaf: &str) -> PathBuf {
    workspace_root().join("target").join(leaf)
}
