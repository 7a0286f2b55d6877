//! `cargo xtask`: builds the CPython interpreter matrix and runs interpsafe's tests across it.
//!
//! Run `cargo xtask help` for the commands. Interpreters are built from Debian source packages
//! into a cache outside the checkout (`$INTERPSAFE_CACHE`, else `~/.cache/interpsafe`) and
//! selected by name (`--python 3.13t`) or by path (`--python /path/to/python`).

#![forbid(unsafe_code)]

mod bench;
mod cli;
mod clock;
mod docs;
mod error;
mod ext_modules;
#[cfg(test)]
mod fixtures;
mod fuzz;
mod hazards;
mod host;
mod instructions;
mod layers;
mod paths;
mod peer_bench;
mod peers;
mod python;
mod render;
mod report;
mod send_sync;
mod snapshot_refresh;
mod stage;
mod step;
mod targets;
mod test;
#[cfg(test)]
mod testdir;

use std::process::ExitCode;

use error::Error;
use paths::Cache;

/// The usage text printed by `cargo xtask help` and on a wrong command line.
fn usage() -> String {
    let mut known = String::new();
    for k in python::names::KNOWN {
        let default = if k.default { " (default)" } else { "" };
        known.push_str(&format!("  {:<11} {}{default}\n", k.name, k.summary));
    }
    format!(
        "usage: cargo xtask <command> [args]

commands:
  python install [NAME]...  build and install interpreters into the cache (default: the default set)
  python list               known interpreters and their state here; interpreters found on PATH
  python run NAME [--] COMMAND [ARG]...
                            a command inside the sid root of NAME (3.14, 3.15, ...), set up as
                            the cargo runs against NAME are
  test [--python SPEC]...   run every test stage against each interpreter (default: the default set)
  bench [--python SPEC]... [--quick] [--only PART]...
                            benches on each interpreter, then target/interpsafe/report/
                            (--only scaling|single_interpreter|several_interpreters|instructions:
                            re-run just those, keep the previous report's other figures)
  hazards [--python SPEC]...
                            the hazard suite and its verdict matrix (default: the default set;
                            also 3.13-asan and 3.13-debug, which `test` runs it on too)
  fuzz [--python SPEC]... [--strategy S]... [--cases N | --seconds S] [--seed N]
                            the adversarial search, longer than `test` runs it (default: the
                            default set, 300s each); findings in target/interpsafe/fuzz/<build>.json
  docs [--check] [--refresh] [--tables-only] [--python SPEC]...
                            regenerate the Send/Sync snapshot (docs/data/send-sync.json) and every
                            generated table in docs/, RFCs/ and README.md from docs/data/
                            (--refresh: copy the latest results there first; --check: fail if
                            anything is stale; --tables-only: no interpreter builds)
  report [RESULTS.json]     render target/interpsafe/report/ again from a results file (default:
                            the last bench run's results.json; docs/data/bench.json works too)
  peers build [--python SPEC]... [--peer NAME]...
                            build the peer modules (pybind11, nanobind, Cython, C; peers/) per
                            interpreter (default: 3.13, 3.13t, 3.13-debug) into
                            target/interpsafe/peers/<build>/, from a wheelhouse downloaded once,
                            then smoke-check each in main and in subinterpreters
  peers smoke [--python SPEC]... [--peer NAME]...
                            the smoke checks again on what is built
  layers [--print | --write]
                            fail on any import circle in src/ or xtask/src/ (or a stale drawing
                            in ARCHITECTURE.md); --print: the layer drawing; --write: put it there
  help                      this text

SPEC is a known NAME or a path to a python executable (anything containing '/').
Known names:
{known}
Cache: ${} if set, else ~/.cache/interpsafe (interpreters in <cache>/python/NAME, logs in <cache>/logs).
",
        paths::CACHE_ENV
    )
}

/// Dispatches the command line (without the program name).
fn run(args: &[String]) -> Result<(), Error> {
    let Some((command, rest)) = args.split_first() else {
        print!("{}", usage());
        return Ok(());
    };
    match command.as_str() {
        "help" | "--help" | "-h" => {
            print!("{}", usage());
            Ok(())
        }
        "python" => match rest.split_first() {
            Some((sub, names)) if sub == "install" => {
                python::install::install_command(names, &Cache::from_env()?)
            }
            Some((sub, extra)) if sub == "list" => {
                if let Some(arg) = extra.first() {
                    return Err(Error::usage(format!(
                        "`python list` takes no arguments (got `{arg}`)"
                    )));
                }
                python::list::list_command(&Cache::from_env()?);
                Ok(())
            }
            Some((sub, rest)) if sub == "run" => {
                python::run::run_command(rest, &Cache::from_env()?)
            }
            Some((sub, _)) => Err(Error::usage(format!(
                "unknown `python` subcommand `{sub}`; use `python install [NAME]...`, \
                 `python list` or `python run NAME COMMAND...`"
            ))),
            None => Err(Error::usage(
                "`python` needs a subcommand: `python install [NAME]...`, `python list` or \
                 `python run NAME COMMAND...`",
            )),
        },
        "test" => test::test_command(rest, &Cache::from_env()?),
        "bench" => bench::bench_command(rest, &Cache::from_env()?),
        "hazards" => hazards::hazards_command(rest, &Cache::from_env()?),
        "fuzz" => fuzz::fuzz_command(rest, &Cache::from_env()?),
        "docs" => docs::docs_command(rest, &Cache::from_env()?),
        "report" => report::report_command(rest),
        "layers" => layers::layers_command(rest),
        "peers" => peers::peers_command(rest, &Cache::from_env()?),
        other => Err(Error::usage(format!(
            "unknown command `{other}`; run `cargo xtask help` for the list"
        ))),
    }
}

/// The command line as UTF-8 strings, or a usage error naming the bad argument.
fn args() -> Result<Vec<String>, Error> {
    std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string().map_err(|bad| {
                Error::usage(format!(
                    "argument {} is not valid UTF-8; xtask names and paths must be UTF-8",
                    bad.to_string_lossy()
                ))
            })
        })
        .collect()
}

fn main() -> ExitCode {
    match args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for args in [
            &["frobnicate"][..],
            &["python"],
            &["python", "remove"],
            &["python", "list", "x"],
            &["hazards", "--fast"],
            &["fuzz", "--strategy", "unchecked"],
            &["fuzz", "--cases"],
        ] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert_eq!(run(&args).unwrap_err().exit_code(), 2, "{args:?}");
        }
        let err = run(&["python".into(), "install".into(), "3.12x".into()]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message().contains("3.13t, 3.13"));
    }

    #[test]
    fn usage_lists_every_known_name() {
        let text = usage();
        for k in python::names::KNOWN {
            assert!(text.contains(k.name));
        }
    }
}
