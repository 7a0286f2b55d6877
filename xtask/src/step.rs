//! A command to run: program, arguments, extra environment and working directory.
//!
//! Kept as plain data so it can be printed (into logs and progress output) exactly as run.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One external command, described before it is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
}

impl Step {
    /// A command running `program` with no arguments in the current directory.
    pub fn new(program: impl AsRef<OsStr>) -> Step {
        Step {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Step {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Step
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable for the command (in addition to the inherited ones).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Step {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Runs the command in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Step {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The working directory the command runs in, if set.
    pub fn dir(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// This command run through `program` (e.g. a wrapper that enters a chroot): `program`, then
    /// `leading` arguments, then this command's program and arguments; the environment and
    /// working directory stay.
    pub fn run_through<I, S>(self, program: impl AsRef<OsStr>, leading: I) -> Step
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args: Vec<OsString> =
            leading.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        args.push(self.program);
        args.extend(self.args);
        Step { program: program.as_ref().to_os_string(), args, env: self.env, cwd: self.cwd }
    }

    /// The program name, for error messages.
    pub fn program(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// A `std::process::Command` ready to spawn (stdio not yet configured).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }
}

impl fmt::Display for Step {
    /// Shell-like rendering: `(cd DIR &&) KEY=VALUE program args...`, quoting where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dir) = &self.cwd {
            write!(f, "(in {}) ", dir.display())?;
        }
        for (k, v) in &self.env {
            write!(f, "{}={} ", k.to_string_lossy(), quote(v))?;
        }
        write!(f, "{}", quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quote(a))?;
        }
        Ok(())
    }
}

/// Quotes `s` for display if it contains characters a shell would treat specially; the result
/// is also valid `sh` (single quotes), so scripts built from paths use it too.
pub fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain =
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_env_program_and_quoted_args() {
        let step = Step::new("cargo")
            .args(["test", "--workspace"])
            .env("RUSTFLAGS", "--cfg interpsafe_loom")
            .arg("it's");
        assert_eq!(
            step.to_string(),
            r"RUSTFLAGS='--cfg interpsafe_loom' cargo test --workspace 'it'\''s'"
        );
    }

    #[test]
    fn run_through_puts_the_wrapper_first_and_keeps_env_and_dir() {
        let step = Step::new("cargo").arg("test").env("K", "v").current_dir("/w");
        let wrapped = step.run_through("chroot", ["/r"]);
        assert_eq!(wrapped.to_string(), "(in /w) K=v chroot /r cargo test");
        assert_eq!(wrapped.dir(), Some(Path::new("/w")));
    }
}
