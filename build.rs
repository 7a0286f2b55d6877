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
    if !config.shared {
        // A libpython linked statically (an interpreter built without `--enable-shared`, such as
        // `3.13-static`): its own link dependencies, and its symbols exported from the binary so
        // that the extension modules CPython loads from lib-dynload resolve against it, as
        // CPython's own `python` executable does (LINKFORSHARED).
        for lib in ["m", "pthread", "dl", "util"] {
            println!("cargo:rustc-link-lib={lib}");
        }
        println!("cargo:rustc-link-arg=-Wl,--export-dynamic");
    }
    // PEP 788's C API exists from CPython 3.15 on: refuse the feature, with what to do, before
    // the link fails on its missing symbols.
    let version = config.version;
    if std::env::var_os("CARGO_FEATURE_PEP788_NATIVE").is_some()
        && (version.major, version.minor) < (3, 15)
    {
        eprintln!(
            "error: the `pep788-native` feature needs CPython 3.15 or newer (PEP 788's \
             PyInterpreterGuard_* API), and PYO3_PYTHON is CPython {}.{}; build without the \
             feature (the emulation), or against 3.15 (`cargo xtask python run 3.15 -- cargo ...`)",
            version.major, version.minor
        );
        std::process::exit(1);
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
