//! Runs the trybuild cases against the interpreter build this crate was compiled for.

use std::path::Path;

/// Makes `libpython` findable by the cases that must compile and run (trybuild runs them).
fn libpython_on_library_path() {
    let lib_dir = env!("INTERPSAFE_PYTHON_LIB_DIR");
    if lib_dir.is_empty() {
        return;
    }
    let mut dirs = vec![std::path::PathBuf::from(lib_dir)];
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&old));
    }
    if let Ok(joined) = std::env::join_paths(dirs) {
        std::env::set_var("LD_LIBRARY_PATH", joined);
    }
}

#[test]
fn send_sync_model() {
    libpython_on_library_path();
    let t = trybuild::TestCases::new();
    // Every build.
    t.compile_fail("tests/ui/*.rs");
    // A `Send + !Sync` payload shared across threads: allowed under the GIL, not without it.
    #[cfg(not(Py_GIL_DISABLED))]
    t.pass("tests/ui-gil/*.rs");
    #[cfg(Py_GIL_DISABLED)]
    t.compile_fail("tests/ui-free-threaded/*.rs");
}

/// The per-build directories hold the same cases, so the two builds judge the same code.
#[test]
fn per_build_cases_are_the_same_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let names = |sub: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".rs"))
            .collect();
        v.sort();
        v
    };
    let gil = names("ui-gil");
    assert_eq!(gil, names("ui-free-threaded"));
    assert!(!gil.is_empty());
    for name in gil {
        let a = std::fs::read_to_string(dir.join("ui-gil").join(&name)).unwrap();
        let b = std::fs::read_to_string(dir.join("ui-free-threaded").join(&name)).unwrap();
        assert_eq!(
            a, b,
            "tests/ui-gil/{name} and tests/ui-free-threaded/{name} differ"
        );
    }
}
