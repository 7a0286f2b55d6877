//! Build script shared by every crate that links libpython (the library and interp-tests).
//!
//! It exposes the target interpreter's cfgs (`Py_GIL_DISABLED`, `Py_3_13`, ...) to the crate and
//! records the interpreter's library directory as an rpath, so binaries run without
//! `LD_LIBRARY_PATH`. The interpreter is the one PyO3 resolves: `PYO3_PYTHON`, which
//! `cargo xtask` sets per interpreter build.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    let config = pyo3_build_config::get();
    if let Some(lib_dir) = &config.lib_dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
