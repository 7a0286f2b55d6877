//! Build script of the extension modules: the target interpreter's cfgs (`Py_GIL_DISABLED`,
//! `Py_3_13`, ...) and nothing else.
//!
//! Unlike the workspace's `build.rs` it sets no rpath to libpython's directory: an extension
//! module resolves CPython's symbols against the interpreter that loads it.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
