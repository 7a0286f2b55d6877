//! The table of interpreters xtask knows how to build, by name (`3.13t`, `3.13-asan`, ...).
//!
//! To add a variant, add one entry to [`KNOWN`], usually as `KnownPython { name, configure_flags,
//! .., ..BASE }` where `BASE` is the plain build of the same CPython series.
//!
//! Most names are built here from a source tarball ([`Origin::Source`]). The newest series,
//! whose tarballs the mirror does not serve, come as Debian's binary packages of the development
//! distribution installed into one shared root under the cache ([`Origin::SidRoot`]): those
//! binaries need a newer glibc than the host's, so they and everything built against them run
//! inside that root (`python/root.rs`).

use crate::error::Error;

/// Where an interpreter comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Built here from the upstream tarball of [`KnownPython::source_package`].
    Source,
    /// Debian's binary packages of the development distribution (sid), in the shared root.
    SidRoot {
        /// The binary package whose Debian version the install records (e.g. `python3.14-dbg`).
        stamp_package: &'static str,
        /// The packages this name needs in the root (on top of the root's common tools).
        packages: &'static [&'static str],
    },
}

/// One buildable interpreter: which Debian source package it comes from and how to configure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPython {
    /// The name used on the command line and for the install directory, e.g. `3.13t`.
    pub name: &'static str,
    /// One line for `python list`.
    pub summary: &'static str,
    /// The CPython series, e.g. `3.13`.
    pub series: &'static str,
    /// The Debian source package that carries the upstream tarball, e.g. `python3.13`.
    pub source_package: &'static str,
    /// The upstream version tried first (the one the project's measurements used), if any.
    pub preferred_upstream: Option<&'static str>,
    /// `configure` flags of this variant, on top of the common ones.
    pub configure_flags: &'static [&'static str],
    /// Environment for building and for running the result (e.g. `ASAN_OPTIONS`).
    pub env: &'static [(&'static str, &'static str)],
    /// The executable installed in `<prefix>/bin`, e.g. `python3.13t`.
    pub executable: &'static str,
    /// Whether the build is free-threaded (`Py_GIL_DISABLED=1`).
    pub free_threaded: bool,
    /// Whether libpython is a shared library (`--enable-shared`); if not, binaries link it
    /// statically and reach its thread-locals without `__tls_get_addr`.
    pub shared: bool,
    /// Whether `python install` without names and `test` without `--python` use it.
    pub default: bool,
    /// Built from source here, or Debian binaries in the sid root.
    pub origin: Origin,
}

/// CPython 3.13 with the GIL: the base of the 3.13 variants.
const CPYTHON_3_13: KnownPython = KnownPython {
    name: "3.13",
    summary: "CPython 3.13 with the GIL (own-GIL subinterpreters)",
    series: "3.13",
    source_package: "python3.13",
    preferred_upstream: Some("3.13.15"),
    configure_flags: &[],
    env: &[],
    executable: "python3.13",
    free_threaded: false,
    shared: true,
    default: true,
    origin: Origin::Source,
};

/// CPython 3.14 with the GIL, Debian's sid package: the base of the 3.14 variants.
const CPYTHON_3_14: KnownPython = KnownPython {
    name: "3.14",
    summary: "CPython 3.14 with the GIL (Debian sid package, run in a sid root)",
    series: "3.14",
    source_package: "python3.14",
    preferred_upstream: None,
    executable: "python3.14",
    default: false,
    origin: Origin::SidRoot {
        stamp_package: "python3.14",
        packages: &["python3.14-dev", "python3.14-venv"],
    },
    ..CPYTHON_3_13
};

/// CPython 3.15 with the GIL, Debian's sid package: the base of the 3.15 variants.
const CPYTHON_3_15: KnownPython = KnownPython {
    name: "3.15",
    summary: "CPython 3.15 with the GIL (Debian sid package, run in a sid root)",
    series: "3.15",
    source_package: "python3.15",
    preferred_upstream: None,
    executable: "python3.15",
    default: false,
    origin: Origin::SidRoot {
        stamp_package: "python3.15",
        packages: &["python3.15-dev", "python3.15-venv"],
    },
    ..CPYTHON_3_13
};

/// Every interpreter xtask can name, in the order `python list` shows them.
pub const KNOWN: &[KnownPython] = &[
    KnownPython {
        name: "3.13t",
        summary: "CPython 3.13 free-threaded (--disable-gil)",
        configure_flags: &["--disable-gil"],
        executable: "python3.13t",
        free_threaded: true,
        ..CPYTHON_3_13
    },
    CPYTHON_3_13,
    KnownPython {
        name: "3.13-asan",
        summary: "CPython 3.13 with the GIL, AddressSanitizer",
        configure_flags: &["--with-address-sanitizer"],
        // Without this the build's freeze step fails on LeakSanitizer reports.
        env: &[("ASAN_OPTIONS", "detect_leaks=0")],
        default: false,
        ..CPYTHON_3_13
    },
    KnownPython {
        name: "3.13-static",
        summary: "CPython 3.13 with the GIL, libpython linked statically (no --enable-shared)",
        shared: false,
        default: false,
        ..CPYTHON_3_13
    },
    KnownPython {
        name: "3.13-debug",
        summary: "CPython 3.13 with the GIL, debug build (--with-pydebug)",
        configure_flags: &["--with-pydebug"],
        executable: "python3.13d",
        default: false,
        ..CPYTHON_3_13
    },
    CPYTHON_3_14,
    KnownPython {
        name: "3.14-debug",
        summary:
            "CPython 3.14 with the GIL, debug build (Debian sid python3.14-dbg, in a sid root)",
        executable: "python3.14d",
        origin: Origin::SidRoot {
            stamp_package: "python3.14-dbg",
            packages: &["python3.14-dbg", "python3.14-dev"],
        },
        ..CPYTHON_3_14
    },
    KnownPython {
        name: "3.14t",
        summary: "CPython 3.14 free-threaded (--disable-gil)",
        configure_flags: &["--disable-gil"],
        executable: "python3.14t",
        free_threaded: true,
        // Debian ships no free-threaded 3.14 package: this one is built from source, whose
        // tarball the mirror does not serve here.
        origin: Origin::Source,
        ..CPYTHON_3_14
    },
    CPYTHON_3_15,
    KnownPython {
        name: "3.15-debug",
        summary:
            "CPython 3.15 with the GIL, debug build (Debian sid python3.15-dbg, in a sid root)",
        executable: "python3.15d",
        origin: Origin::SidRoot {
            stamp_package: "python3.15-dbg",
            packages: &["python3.15-dbg", "python3.15-dev"],
        },
        ..CPYTHON_3_15
    },
    KnownPython {
        name: "3.15t",
        summary: "CPython 3.15 free-threaded (--disable-gil)",
        configure_flags: &["--disable-gil"],
        executable: "python3.15t",
        free_threaded: true,
        origin: Origin::Source,
        ..CPYTHON_3_15
    },
];

/// The known interpreter called `name`, exactly.
pub fn find(name: &str) -> Option<&'static KnownPython> {
    KNOWN.iter().find(|k| k.name == name)
}

/// The known interpreter called `name`, or an error (exit code 2) listing the valid names.
pub fn lookup(name: &str) -> Result<&'static KnownPython, Error> {
    find(name).ok_or_else(|| {
        Error::usage(format!(
            "unknown interpreter name `{name}`; valid names: {}. \
             To use another interpreter pass its path (it must contain a `/`), e.g. --python /usr/bin/python3",
            valid_names()
        ))
    })
}

/// The default interpreters: those installed by a bare `python install` and tested by `test`.
pub fn defaults() -> Vec<&'static KnownPython> {
    KNOWN.iter().filter(|k| k.default).collect()
}

/// The valid names, comma separated, for messages.
pub fn valid_names() -> String {
    KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_USAGE;

    #[test]
    fn known_names_resolve() {
        let t = lookup("3.13t").unwrap();
        assert!(t.free_threaded);
        assert_eq!(t.configure_flags, &["--disable-gil"]);
        assert_eq!(t.source_package, "python3.13");
        assert_eq!(lookup("3.13-debug").unwrap().executable, "python3.13d");
        assert_eq!(lookup("3.13-asan").unwrap().env, &[("ASAN_OPTIONS", "detect_leaks=0")]);
        assert_eq!(lookup("3.15t").unwrap().source_package, "python3.15");
        assert_eq!(lookup("3.15t").unwrap().origin, Origin::Source);
        assert_eq!(lookup("3.14-debug").unwrap().executable, "python3.14d");
        assert!(matches!(
            lookup("3.15-debug").unwrap().origin,
            Origin::SidRoot { stamp_package: "python3.15-dbg", .. }
        ));
        assert!(matches!(lookup("3.14").unwrap().origin, Origin::SidRoot { .. }));
    }

    #[test]
    fn unknown_name_is_a_usage_error_listing_valid_names() {
        let err = lookup("3.12x").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.message().contains("`3.12x`"));
        for k in KNOWN {
            assert!(err.message().contains(k.name), "{} missing", k.name);
        }
    }

    #[test]
    fn default_set_is_313t_and_313() {
        let names: Vec<_> = defaults().iter().map(|k| k.name).collect();
        assert_eq!(names, ["3.13t", "3.13"]);
    }

    #[test]
    fn names_are_unique_and_path_safe() {
        for (i, k) in KNOWN.iter().enumerate() {
            assert!(!k.name.contains('/'));
            assert!(KNOWN[i + 1..].iter().all(|o| o.name != k.name));
            assert!(k.executable.starts_with(&format!("python{}", k.series)));
        }
    }
}
