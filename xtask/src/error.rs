//! The one error type of xtask: a message for the user and the process exit code.

use std::fmt;
use std::path::Path;

/// Exit code for a command that ran and failed (a build, a fetch, a test stage).
pub const EXIT_FAILURE: i32 = 1;

/// Exit code for a command line that was wrong (unknown name, unknown option).
pub const EXIT_USAGE: i32 = 2;

/// An error that ends an xtask command.
///
/// The message says what went wrong and, where there is one, what to do about it; `main`
/// prints it as `error: <message>` and exits with [`Error::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    exit_code: i32,
    self_explanatory: bool,
}

impl Error {
    /// A failure of the command itself (exit code 1).
    pub fn new(message: impl Into<String>) -> Self {
        Error { message: message.into(), exit_code: EXIT_FAILURE, self_explanatory: false }
    }

    /// A wrong command line (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Error { message: message.into(), exit_code: EXIT_USAGE, self_explanatory: false }
    }

    /// An I/O error while doing `what` on `path`.
    pub fn io(what: &str, path: &Path, err: &std::io::Error) -> Self {
        Error::new(format!("could not {what} {}: {err}", path.display()))
    }

    /// The same error (same exit code) with its message rewritten by `f`, e.g. to add context.
    pub fn reword(self, f: impl FnOnce(&str) -> String) -> Self {
        Error { message: f(&self.message), ..self }
    }

    /// Marks the message as the whole story (e.g. "source cannot be fetched"), so a failed stage
    /// does not dump its log after it.
    pub fn self_explanatory(self) -> Self {
        Error { self_explanatory: true, ..self }
    }

    /// Whether the message is the whole story (see [`Error::self_explanatory`]).
    pub fn is_self_explanatory(&self) -> bool {
        self.self_explanatory
    }

    /// The message shown to the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
