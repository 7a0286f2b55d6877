//! Building one peer project against one interpreter: a fresh copy of its sources (so builds for
//! different interpreters never share a build tree, and nothing is written into `peers/`), `pip
//! install --target` with the project's own backend from the venv, then the module files copied
//! into the output directory.

use std::fs;
use std::path::{Path, PathBuf};

use super::catalog::Project;
use super::venv::{with_runtime_env, Venv};
use super::wheelhouse::{pip, Wheelhouse};
use crate::error::Error;
use crate::paths;
use crate::python::interpreter::Interpreter;
use crate::stage::StageLog;

/// Where the peers' sources live in the checkout.
pub fn sources_dir() -> PathBuf {
    paths::workspace_root().join("peers")
}

/// What one project build needs to know.
#[derive(Debug, Clone, Copy)]
pub struct BuildEnv<'a> {
    /// The interpreter built for.
    pub py: &'a Interpreter,
    /// Its venv, which holds the build backends.
    pub venv: &'a Venv,
    /// The wheelhouse (only searched; builds run offline).
    pub wheelhouse: &'a Wheelhouse,
    /// The interpreter's extension suffix, which every module file built must carry.
    pub ext_suffix: &'a str,
    /// The output directory, `target/interpsafe/peers/<build>/`.
    pub out_dir: &'a Path,
}

/// Builds `project` and copies its modules into `env.out_dir`, returning their file paths in the
/// order of [`Project::modules`].
pub fn build(
    project: &Project,
    env: &BuildEnv<'_>,
    log: &mut StageLog,
) -> Result<Vec<PathBuf>, Error> {
    let work = env.out_dir.join(".work").join(project.dir);
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| Error::io("remove the old build tree", &work, &e))?;
    }
    let src = work.join("src");
    let stage = work.join("stage");
    let from = sources_dir().join(project.dir);
    if !from.is_dir() {
        return Err(Error::new(format!(
            "no sources at {}; run from a checkout that has peers/",
            from.display()
        )));
    }
    copy_tree(&from, &src)?;
    let install = pip(&env.venv.python, env.wheelhouse)
        .args(["install", "--verbose", "--no-index", "--no-build-isolation", "--no-deps"])
        .arg("--find-links")
        .arg(env.wheelhouse.dir())
        .arg("--target")
        .arg(&stage)
        .arg(&src)
        .current_dir(&work);
    log.run(&with_runtime_env(install, env.py))?;
    project
        .modules
        .iter()
        .map(|module| {
            let file = format!("{module}{}", env.ext_suffix);
            let built = stage.join(&file);
            if !built.is_file() {
                return Err(Error::new(format!(
                    "the build did not produce {file} in {} (it holds: {}); did the backend pick \
                     another interpreter?",
                    stage.display(),
                    listing(&stage)
                )));
            }
            remove_stale(env.out_dir, module)?;
            let dest = env.out_dir.join(&file);
            fs::copy(&built, &dest).map_err(|e| Error::io("copy the module to", &dest, &e))?;
            log.note(&format!("{} -> {}", built.display(), dest.display()));
            Ok(dest)
        })
        .collect()
}

/// Removes earlier builds of `module` from `dir` (any suffix), so exactly one file imports.
pub fn remove_stale(dir: &Path, module: &str) -> Result<(), Error> {
    let prefix = format!("{module}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".so") {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| Error::io("remove the old module", &path, &e))?;
        }
    }
    Ok(())
}

/// The names in `dir`, comma separated, for messages.
fn listing(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

/// Whether a file or directory found in a source tree is a build product, not a source.
fn is_build_product(name: &str) -> bool {
    matches!(name, "build" | "dist" | "__pycache__" | ".work")
        || name.ends_with(".egg-info")
        || name.ends_with(".so")
}

/// Copies the source tree `from` to `to` (created), leaving out build products.
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    fs::create_dir_all(to).map_err(|e| Error::io("create", to, &e))?;
    let entries = fs::read_dir(from).map_err(|e| Error::io("read", from, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read", from, &e))?;
        let name = entry.file_name();
        if is_build_product(&name.to_string_lossy()) {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_tree(&source, &dest)?;
        } else {
            fs::copy(&source, &dest).map_err(|e| Error::io("copy", &source, &e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    #[test]
    fn sources_are_copied_without_build_products() {
        let dir = TestDir::new("peers-copy");
        let from = dir.path().join("from");
        fs::create_dir_all(from.join("build/temp")).unwrap();
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::write(from.join("a.c"), "int a;").unwrap();
        fs::write(from.join("sub/b.pxi"), "").unwrap();
        fs::write(from.join("old.cpython-313-x86_64-linux-gnu.so"), "").unwrap();
        fs::write(from.join("build/temp/x.o"), "").unwrap();
        let to = dir.path().join("to");
        copy_tree(&from, &to).unwrap();
        assert_eq!(listing(&to), "a.c, sub");
        assert!(to.join("sub/b.pxi").is_file());
    }

    #[test]
    fn stale_builds_of_a_module_go_and_others_stay() {
        let dir = TestDir::new("peers-stale");
        for name in
            ["peer_c.cpython-313-x86_64-linux-gnu.so", "peer_cython.cpython-313.so", "peer_c.json"]
        {
            fs::write(dir.path().join(name), "").unwrap();
        }
        remove_stale(dir.path(), "peer_c").unwrap();
        assert_eq!(listing(dir.path()), "peer_c.json, peer_cython.cpython-313.so");
    }
}
