//! Building CPython from a source tarball: extract, out-of-tree configure, make, make install.
//!
//! Each step is a logged stage (`[3.13t] configure ... done in 17.0s`) writing to
//! `<cache>/logs/NAME-<stage>.log`. The build tree `<cache>/build/NAME` is removed on success and
//! kept on failure for inspection.

use std::fs;
use std::path::Path;

use super::names::KnownPython;
use super::source::{self, SourceTarball};
use crate::error::Error;
use crate::host;
use crate::paths::Cache;
use crate::stage;
use crate::step::Step;

/// The `configure` arguments for `known` installed into `prefix`: the common ones (with
/// `--enable-shared` unless the variant links libpython statically), the variant's flags, and an
/// rpath so the interpreter and `libpython` users find the shared library.
pub fn configure_args(known: &KnownPython, prefix: &Path) -> Vec<String> {
    let mut args = vec![format!("--prefix={}", prefix.display())];
    if known.shared {
        args.push("--enable-shared".to_string());
    }
    args.extend(["--disable-test-modules".to_string(), "--without-ensurepip".to_string()]);
    args.extend(known.configure_flags.iter().map(|f| f.to_string()));
    args.push(format!("LDFLAGS=-Wl,-rpath,{}/lib", prefix.display()));
    args
}

/// Builds `tarball` as `known` and installs it into `<cache>/python/NAME`.
///
/// Returns the `configure` arguments used. The install prefix must not exist yet or be
/// disposable: `make install` writes into it.
pub fn build(
    known: &KnownPython,
    tarball: &SourceTarball,
    cache: &Cache,
) -> Result<Vec<String>, Error> {
    let name = known.name;
    let prefix = cache.python_dir(name);
    if prefix.to_string_lossy().contains(char::is_whitespace) {
        return Err(Error::new(format!(
            "the install path {} contains whitespace, which CPython's build cannot handle; \
             set INTERPSAFE_CACHE to a path without spaces",
            prefix.display()
        )));
    }
    let build_dir = cache.build_dir(name);
    let src = build_dir.join("src");
    let obj = build_dir.join("obj");
    let args = configure_args(known, &prefix);
    let with_env = |mut step: Step| {
        for (k, v) in known.env {
            step = step.env(k, v);
        }
        step
    };

    stage::logged(name, "extract", &cache.log_path(name, "extract"), |log| {
        source::reset_dir(&build_dir)?;
        for dir in [&src, &obj] {
            fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, &e))?;
        }
        log.run(
            &Step::new("tar")
                .arg("-xf")
                .arg(&tarball.path)
                .arg("-C")
                .arg(&src)
                .arg("--strip-components=1"),
        )
        .map_err(|e| {
            e.reword(|m| {
                format!(
                    "{m}; if {} is damaged, delete it to fetch it again",
                    tarball.path.display()
                )
            })
        })
    })?;
    stage::logged(name, "configure", &cache.log_path(name, "configure"), |log| {
        log.run(&with_env(Step::new(src.join("configure")).args(&args).current_dir(&obj)))
    })?;
    let jobs = host::parallel_jobs();
    stage::logged(name, "build", &cache.log_path(name, "build"), |log| {
        log.run(&with_env(Step::new("make").arg(format!("-j{jobs}")).current_dir(&obj)))
    })?;
    stage::logged(name, "install", &cache.log_path(name, "install"), |log| {
        log.run(&with_env(Step::new("make").arg("install").current_dir(&obj)))
    })?;
    let _ = fs::remove_dir_all(&build_dir);
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::names;

    #[test]
    fn configure_args_have_common_and_variant_flags() {
        let known = names::lookup("3.13t").unwrap();
        let args = configure_args(known, Path::new("/c/python/3.13t"));
        assert_eq!(
            args,
            [
                "--prefix=/c/python/3.13t",
                "--enable-shared",
                "--disable-test-modules",
                "--without-ensurepip",
                "--disable-gil",
                "LDFLAGS=-Wl,-rpath,/c/python/3.13t/lib",
            ]
        );
        let args = configure_args(names::lookup("3.13-static").unwrap(), Path::new("/c/python/s"));
        assert!(!args.iter().any(|a| a == "--enable-shared"), "{args:?}");
    }
}
