//! The extension modules' stages (`ext-modules/`): build the one `.so` against an interpreter,
//! then run its driver with that interpreter.
//!
//! The model: the crate is built per interpreter into `target/ext-NAME` (it must not link
//! libpython, so it is built on its own: `cargo build -p interpsafe-ext`, never together with
//! crates that embed Python, whose link the `extension-module` feature would break); the driver,
//! `ext-modules/tests/ext_driver.py`, needs nothing but the interpreter under test: it gives the
//! `.so` one name per variant, runs every variant × interpreter kind in a child process, writes
//! `target/interpsafe/ext/NAME.json` and fails if a checked strategy's cell did not pass.

use std::path::PathBuf;

use crate::cli::{cargo, with_python};
use crate::paths;
use crate::python::interpreter::Interpreter;
use crate::stage::Stage;
use crate::step::Step;

/// The cargo package of the extension modules, which workspace-wide test runs exclude.
pub const PACKAGE: &str = "interpsafe-ext";

/// Where `py`'s build of the extension modules goes.
pub fn target_dir(py: &Interpreter) -> PathBuf {
    paths::target_dir(&format!("ext-{}", py.name))
}

/// The `.so` built against `py`.
pub fn shared_object(py: &Interpreter) -> PathBuf {
    target_dir(py).join("debug").join("libinterpsafe_ext.so")
}

/// `ext-modules build`: `cargo build -p interpsafe-ext` against `py`.
pub fn build_stage(py: &Interpreter) -> Stage {
    Stage {
        name: "ext-modules build".to_string(),
        python: Some(py.name.clone()),
        step: with_python(cargo().args(["build", "-p", PACKAGE]), py, &target_dir(py)),
    }
}

/// `ext-modules driver`: `py` runs the driver over its own build of the `.so`.
pub fn driver_stage(py: &Interpreter) -> Stage {
    let driver = paths::workspace_root().join("ext-modules").join("tests").join("ext_driver.py");
    let build = format!("{}={}={}", py.name, py.executable.display(), shared_object(py).display());
    let mut step = Step::new(&py.executable).arg(driver).env("INTERPSAFE_EXT_BUILDS", build);
    // The interpreter's run-time environment (`ASAN_OPTIONS` on a sanitizer build); the
    // driver's children inherit it.
    for (key, value) in &py.env {
        step = step.env(key, value);
    }
    // An interpreter of the sid root runs there, as its cargo stages do (the workspace is at the
    // same path inside, so the `.so` and the output paths are the same).
    if let Some(root) = py.root() {
        step = crate::python::chroot::toolchain_jail(&root).wrap(step);
    }
    Stage { name: "ext-modules driver".to_string(), python: Some(py.name.clone()), step }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_build_and_drive_one_interpreter() {
        let py = Interpreter {
            name: "3.13t".into(),
            executable: PathBuf::from("/c/python/3.13t/bin/python3.13t"),
            version: "3.13.15".into(),
            free_threaded: true,
            libdir: None,
            env: vec![("ASAN_OPTIONS".into(), "detect_leaks=0".into())],
        };
        let s = build_stage(&py).step.to_string();
        assert!(s.contains("target/ext-3.13t"), "{s}");
        assert!(s.ends_with("build -p interpsafe-ext"), "{s}");
        let s = driver_stage(&py).step.to_string();
        assert!(s.contains("INTERPSAFE_EXT_BUILDS=3.13t=/c/python/3.13t/bin/python3.13t="), "{s}");
        assert!(s.contains("target/ext-3.13t/debug/libinterpsafe_ext.so"), "{s}");
        assert!(s.ends_with("ext-modules/tests/ext_driver.py"), "{s}");
        assert!(s.contains("ASAN_OPTIONS=detect_leaks=0"), "{s}");
    }
}
