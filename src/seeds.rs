//! Seeded holes: the soundness bugs found by attacking the checked strategies, switchable back
//! on at run time in a `--cfg interpsafe_seeds` build, so the adversarial search can show that
//! it finds each of them.
//!
//! Each [`Hole`] names one fix and undoes exactly it at the one place the fix lives. Outside a
//! `--cfg interpsafe_seeds` build [`active`] is a constant `false` and the hooks compile away;
//! in such a build the holes are read once from `INTERPSAFE_SEEDS` (comma-separated
//! [`Hole::name`]s) or switched with [`activate`]. One build (one ASAN build, in `cargo xtask
//! test`) serves every hole: they are chosen per process, not per build.

/// One fixed soundness hole that a seeds build can reopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hole {
    /// Once-cells keep whatever handle the initialiser returns, without the owner check.
    OnceForeignInit,
    /// Interpreters ended by Python code are not waited for: the end observer's `atexit` hook
    /// does nothing and a guard attaches through its stored pointer without the registry's
    /// in-flight handshake.
    PythonEndUnguarded,
    /// `Affine::store` and `Affine::send` tag with the storing scope's interpreter instead of
    /// the owner recorded at creation.
    AffineStoreScopeOwner,
    /// Tagged trusts the registry alone under a raw thread-state switch: the fast path does not
    /// ask CPython's interpreter list, and new owner tags take the scope's interpreter.
    TaggedRawSwitch,
}

impl Hole {
    /// Every hole.
    pub const ALL: [Hole; 4] = [
        Hole::OnceForeignInit,
        Hole::PythonEndUnguarded,
        Hole::AffineStoreScopeOwner,
        Hole::TaggedRawSwitch,
    ];

    /// The name used in `INTERPSAFE_SEEDS` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Hole::OnceForeignInit => "once-foreign-init",
            Hole::PythonEndUnguarded => "python-end-unguarded",
            Hole::AffineStoreScopeOwner => "affine-store-scope-owner",
            Hole::TaggedRawSwitch => "tagged-raw-switch",
        }
    }

    /// The hole called `name`, if any.
    pub fn find(name: &str) -> Option<Hole> {
        Hole::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// The environment variable a seeds build reads its holes from.
pub const SEEDS_ENV: &str = "INTERPSAFE_SEEDS";

#[cfg(interpsafe_seeds)]
mod switch {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    use super::{Hole, SEEDS_ENV};

    static ACTIVE: AtomicU32 = AtomicU32::new(0);

    impl Hole {
        fn bit(self) -> u32 {
            1 << self as u32
        }
    }
    static FROM_ENV: OnceLock<()> = OnceLock::new();

    fn from_env() {
        FROM_ENV.get_or_init(|| {
            let names = std::env::var(SEEDS_ENV).unwrap_or_default();
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match Hole::find(name) {
                    Some(hole) => {
                        ACTIVE.fetch_or(hole.bit(), Ordering::Relaxed);
                    }
                    None => eprintln!(
                        "interpsafe: unknown hole {name:?} in {SEEDS_ENV}; known: {}",
                        Hole::ALL.map(Hole::name).join(", ")
                    ),
                }
            }
        });
    }

    pub(super) fn active(hole: Hole) -> bool {
        from_env();
        ACTIVE.load(Ordering::Relaxed) & hole.bit() != 0
    }

    pub(super) fn activate(hole: Hole) {
        from_env();
        ACTIVE.fetch_or(hole.bit(), Ordering::Relaxed);
    }
}

/// Whether `hole` is reopened in this process (always `false` outside a seeds build).
#[inline(always)]
pub fn active(hole: Hole) -> bool {
    #[cfg(interpsafe_seeds)]
    {
        switch::active(hole)
    }
    #[cfg(not(interpsafe_seeds))]
    {
        let _ = hole;
        false
    }
}

/// Reopens `hole` for the rest of the process (seeds builds only).
#[cfg(interpsafe_seeds)]
pub fn activate(hole: Hole) {
    switch::activate(hole)
}

/// True in a `--cfg interpsafe_seeds` build.
pub const SEEDS_BUILD: bool = cfg!(interpsafe_seeds);
