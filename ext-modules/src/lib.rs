//! interpsafe's extension modules: one `PyInit_<variant>` per design, all in one shared object.
//!
//! The model: Python code imports a variant into whichever interpreter it chooses (main, an
//! own-GIL interpreter from `_interpreters.create('isolated')`, a legacy shared-GIL one). The
//! same `.so` is given one file name per variant (`<variant>.so`, symlinks in a directory on
//! `sys.path`); CPython finds `PyInit_<variant>` by the name it imports, and the dynamic loader
//! maps the file once, so every variant shares one copy of the toolkit's runtime (its registry of
//! interpreters, its once-cells). The `.so` does not link libpython: CPython's symbols resolve
//! against the interpreter that loads it.
//!
//! Variants, each with the same Python surface (`Counter`, `identity`, `Error`, `raise_error`,
//! `interned`, `cached`, `call`):
//! - `stock_pyo3` ([`stock`]): stock PyO3 `#[pymodule]` and `#[pyclass]`, today's status quo.
//!   PyO3 keeps its module, type objects and `intern!`/`PyOnceLock` caches in process-global
//!   statics and refuses a second interpreter; that refusal is a finding, recorded by the driver.
//! - `interpsafe_unchecked`, `interpsafe_tagged`, `interpsafe_scoped`, `interpsafe_branded`,
//!   `interpsafe_affine` ([`module`]): one per [`Strategy`](interpsafe::Strategy), written once,
//!   generically, and instantiated per strategy by one macro line. Multi-phase initialisation
//!   declaring `Py_MOD_PER_INTERPRETER_GIL_SUPPORTED` and `Py_MOD_GIL_NOT_USED`; the `Counter`
//!   type and the `Error` class are made per module from a spec and kept in module state (with
//!   `m_traverse` and `m_clear`) as the strategy's stored handles; `interned()` and `cached()`
//!   come from the strategy's once-cells in process statics, which are per interpreter for the
//!   checked strategies and process-global for the `unchecked` baseline (PyO3's behaviour, kept
//!   as the reference the others are measured against).
//!
//! Every entry point CPython calls catches panics and turns them, and the toolkit's
//! [`Error`](interpsafe::Error)s, into Python exceptions ([`entry`]). The driver is
//! `tests/test_ext.py` (pytest): every variant × interpreter kind in a child process, results in
//! `target/interpsafe/ext/<build>.json`.

pub mod counter;
pub mod entry;
pub mod module;
pub mod stock;
pub mod stored;

use interpsafe::strategy::{Affine, Branded, Scoped, Tagged, Unchecked};

module::variant!(PyInit_interpsafe_unchecked, UncheckedModule, Unchecked, "interpsafe_unchecked");
module::variant!(PyInit_interpsafe_tagged, TaggedModule, Tagged, "interpsafe_tagged");
module::variant!(PyInit_interpsafe_scoped, ScopedModule, Scoped, "interpsafe_scoped");
module::variant!(PyInit_interpsafe_branded, BrandedModule, Branded, "interpsafe_branded");
module::variant!(PyInit_interpsafe_affine, AffineModule, Affine, "interpsafe_affine");
