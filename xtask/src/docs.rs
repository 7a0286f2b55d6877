//! `docs`: regenerates the generated regions of the docs and RFCs ([`regions`]) from the snapshot
//! in `docs/data/` ([`snapshot`]), or with `--check` fails when one is stale. First, with
//! `--refresh`, [`crate::snapshot_refresh`] copies the latest results there; unless
//! `--tables-only`, [`crate::send_sync`] refreshes the Send/Sync snapshot.

pub mod regions;
pub mod snapshot;
pub mod tables;

use crate::cli;
use crate::error::Error;
use crate::paths::{self, Cache};

/// A parsed `docs` command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// Only compare; exit non-zero if the page is stale.
    pub check: bool,
    /// The `--python` values (default: the default interpreter set).
    pub pythons: Vec<String>,
    /// Copy the latest results into `docs/data/` first.
    pub refresh: bool,
    /// Only the snapshot tables and example copies: no interpreter builds.
    pub tables_only: bool,
}

/// Parses the arguments after `docs`.
pub fn parse_args(args: &[String]) -> Result<Options, Error> {
    let flags = ["--check", "--refresh", "--tables-only"];
    let usage = "[--check | --refresh] [--tables-only] [--python SPEC]...";
    let a = cli::parse(args, "docs", usage, &flags, &[])?;
    if a.has("--check") && a.has("--refresh") {
        return Err(Error::usage(
            "`--check` compares the pages with the committed snapshot and `--refresh` replaces it; \
             run `cargo xtask docs --refresh`, then `cargo xtask docs --check`",
        ));
    }
    Ok(Options {
        check: a.has("--check"),
        refresh: a.has("--refresh"),
        tables_only: a.has("--tables-only"),
        pythons: a.pythons,
    })
}

/// Runs the `docs` command with the arguments after `docs`.
pub fn docs_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    let options = parse_args(args)?;
    let root = paths::workspace_root();
    if options.refresh {
        for line in crate::snapshot_refresh::refresh(&root)? {
            println!("docs: {line}");
        }
    }
    // The regions are regenerated even if the Send/Sync step failed, and after it, since
    // `send-sync-matrix` tables copy its rows.
    let send_sync = match options.tables_only {
        true => Ok(()),
        false => crate::send_sync::refresh(&options.pythons, options.check, cache, &root),
    };
    let regions = regions::update_all(&root, options.check);
    for line in regions.iter().flatten() {
        println!("docs: {line}");
    }
    match (send_sync, regions) {
        (Ok(()), regions) => regions.map(drop).map_err(Error::new),
        (Err(e), Ok(_)) => Err(e),
        (Err(a), Err(b)) => Err(Error::new(format!("{}\n{b}", a.message()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let parse =
            |a: &str| parse_args(&a.split_whitespace().map(String::from).collect::<Vec<_>>());
        let o = parse("--check --python 3.13 --python=3.13t").unwrap();
        assert!(o.check && !o.refresh && !o.tables_only);
        assert_eq!(o.pythons, ["3.13", "3.13t"]);
        let o = parse("--refresh --tables-only").unwrap();
        assert!(o.refresh && o.tables_only && !o.check);
        for bad in ["--check --refresh", "--fix", "--python"] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
