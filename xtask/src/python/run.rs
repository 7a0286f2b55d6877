//! `python run NAME [--] COMMAND [ARG]...`: a command inside the sid root of a known name, set
//! up as cargo runs there are (the workspace, toolchain and registry visible, `PYO3_PYTHON`
//! and the target directory of that name), e.g. `cargo xtask python run 3.14 python3.14 -V` or
//! a shell to look around in.

use std::env;

use super::interpreter::{self, Spec};
use crate::cli;
use crate::error::Error;
use crate::paths::Cache;
use crate::step::Step;

/// Runs `python run` with the arguments after `run`.
pub fn run_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    let usage = "usage: cargo xtask python run NAME [--] COMMAND [ARG]...";
    let Some((name, rest)) = args.split_first() else {
        return Err(Error::usage(format!("`python run` needs a name and a command; {usage}")));
    };
    let rest = match rest.split_first() {
        Some((dashes, after)) if dashes == "--" => after,
        _ => rest,
    };
    let Some((program, program_args)) = rest.split_first() else {
        return Err(Error::usage(format!("`python run {name}` needs a command; {usage}")));
    };
    let known = match interpreter::parse_spec(name)? {
        Spec::Known(known) => known,
        Spec::Path(_) => {
            return Err(Error::usage(format!(
                "`python run` takes a known name of the sid root, not a path; {usage}"
            )))
        }
    };
    let py = interpreter::resolve_spec(&Spec::Known(known), cache)?;
    if py.root().is_none() {
        return Err(Error::usage(format!(
            "{name} does not run in a root: run {} directly",
            py.executable.display()
        )));
    }
    let cwd = env::current_dir().map_err(|e| Error::new(format!("no current directory: {e}")))?;
    let step = Step::new(program).args(program_args).current_dir(cwd);
    let step = cli::with_python(step, &py, &py.target_dir());
    let status = step.command().status().map_err(|e| crate::stage::spawn_error(&step, &e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!("`{program}` in the sid root ended with {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        let cache = Cache::at("/nonexistent-cache");
        for bad in
            [&[][..], &["3.14"], &["3.14", "--"], &["3.12x", "sh"], &["/usr/bin/python3", "sh"]]
        {
            let err = run_command(&args(bad), &cache).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {}", err.message());
        }
    }
}
