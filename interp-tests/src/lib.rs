//! interp-tests
