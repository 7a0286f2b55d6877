//! Compile-fail tests of interpsafe's Send/Sync model; the cases are in `tests/ui*/`, run by
//! `tests/compile_fail.rs` with trybuild. This library is empty.
//!
//! - `tests/ui/`: misuses that must not compile on any build;
//! - `tests/ui-gil/`: cases that must compile (and run) on a GIL build;
//! - `tests/ui-free-threaded/`: the same cases, which must not compile on a free-threaded build.
//!
//! The expected compiler output (`*.stderr`) was recorded with this machine's rustc
//! (`TRYBUILD=overwrite cargo test --manifest-path compile-fail/Cargo.toml`, with `PYO3_PYTHON`
//! set to a GIL and then to a free-threaded interpreter); another rustc may word errors
//! differently.
