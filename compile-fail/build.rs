//! Exposes the interpreter's cfgs (`Py_GIL_DISABLED`) to the tests, which pick the per-build
//! cases with them, and tells them where `libpython` is, for the cases that must compile and run.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    let lib_dir = pyo3_build_config::get().lib_dir.clone().unwrap_or_default();
    println!("cargo:rustc-env=INTERPSAFE_PYTHON_LIB_DIR={lib_dir}");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
