//! CPython interpreters: the known names, fetching and building them, selecting one.

pub mod apt;
pub mod build;
pub mod chroot;
pub mod debversion;
pub mod deps;
pub mod discover;
pub mod facts;
pub mod install;
pub mod interpreter;
pub mod list;
pub mod marker;
pub mod mounts;
pub mod names;
pub mod probe;
pub mod root;
pub mod run;
pub mod sid;
pub mod source;
