//! `docs`: regenerates the generated regions of the docs and RFCs (or, with `--check`, fails
//! when one is stale).
//!
//! First the Send/Sync snapshot, `docs/data/send-sync.json`. Its source is the
//! `send_sync_table!` in the library's `src/send_sync.rs`, which also expands into the static
//! assertions of the rule set a build is compiled for. xtask does not link the library (it builds
//! without Python), so it runs the library's `send_sync_table` example once per rule set, each
//! built against an interpreter of the right kind, and each writing a results file of its cells:
//! - `gil`: a GIL interpreter;
//! - `free-threaded`: a free-threaded interpreter (`cfg(Py_GIL_DISABLED)`);
//! - `own-gil`: the GIL interpreter again, with `--features own-gil-rules`.
//!
//! Each run reports only the cells its own build checked, so every column of the table comes
//! from a build whose assertions held. `--tables-only` skips these builds (no Python needed).
//!
//! Then every generated region of `docs/*.md`, `RFCs/*.md` and README.md ([`regions`]): the
//! tables, from the committed snapshot in `docs/data/` only ([`snapshot`], [`tables`]), and the
//! copies of `examples/*.rs`. `--refresh` first copies the latest results from
//! `target/interpsafe/` into the snapshot; `--check` fails on anything stale.

pub mod regions;
pub mod snapshot;
pub mod tables;

pub use snapshot::SEND_SYNC;
pub use tables::RULE_SETS;

use std::fs;
use std::path::Path;

use interpsafe_results::{RecordData, ResultFile};

use crate::cli::{self, cargo, with_python};
use crate::error::Error;
use crate::paths::{self, Cache};
use crate::python::interpreter::{self, Interpreter};

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

/// The Send/Sync snapshot from the three builds' files, in [`RULE_SETS`] order: refused unless
/// each build reported its own rule set's cells, for the same types.
pub fn collect(generated: Vec<ResultFile>) -> Result<ResultFile, String> {
    let names = |file: &ResultFile| -> Result<Vec<(String, String)>, String> {
        file.records
            .iter()
            .map(|r| match &r.data {
                RecordData::SendSync(c) => Ok((c.type_name.clone(), c.rules.clone())),
                other => Err(format!("a Send/Sync file holds another record: {other:?}")),
            })
            .collect()
    };
    if generated.len() != RULE_SETS.len() {
        return Err(format!("expected {} rule sets, got {}", RULE_SETS.len(), generated.len()));
    }
    let mut first: Option<Vec<String>> = None;
    for (file, (rules, ..)) in generated.iter().zip(RULE_SETS) {
        let cells = names(file)?;
        if let Some((_, other)) = cells.iter().find(|(_, r)| r != rules) {
            return Err(format!(
                "a build meant for the `{rules}` rules reported `{other}`; check the interpreter and features"
            ));
        }
        let types: Vec<String> = cells.into_iter().map(|(t, _)| t).collect();
        if types.is_empty() || first.as_ref().is_some_and(|f| *f != types) {
            return Err(format!(
                "the `{rules}` build lists other types than the `gil` one (or none); the table in \
                 src/send_sync.rs must name the same types for every rule set"
            ));
        }
        first = Some(types);
    }
    let records = generated.into_iter().flat_map(|f| f.records).collect();
    Ok(ResultFile::new("cargo xtask docs", records))
}

/// Chooses the interpreter of each rule set from the selected ones: the first GIL one for `gil`
/// and `own-gil`, the first free-threaded one for `free-threaded`.
pub fn choose(pythons: &[Interpreter]) -> Result<Vec<&Interpreter>, Error> {
    RULE_SETS
        .iter()
        .map(|(name, _, free_threaded, _)| {
            pythons.iter().find(|p| p.free_threaded == *free_threaded).ok_or_else(|| {
                let kind = if *free_threaded { "a free-threaded" } else { "a GIL" };
                Error::usage(format!(
                    "the `{name}` rules need {kind} interpreter; pass one with --python \
                         (e.g. --python 3.13 --python 3.13t)"
                ))
            })
        })
        .collect()
}

/// Runs the generator against `py` with `features`, returning the cells it wrote.
fn generate(py: &Interpreter, features: &[&str]) -> Result<ResultFile, Error> {
    let out = py.target_dir().join("interpsafe-send-sync.json");
    let _ = fs::remove_file(&out);
    let mut step = cargo().args(["run", "--quiet", "--example", "send_sync_table"]);
    if !features.is_empty() {
        step = step.args(["--features", &features.join(",")]);
    }
    let step = with_python(step.arg("--").arg(&out), py, &py.target_dir());
    eprintln!("docs: {step}");
    let status = step.command().status().map_err(|e| crate::stage::spawn_error(&step, &e))?;
    if !status.success() {
        return Err(Error::new(format!(
            "the Send/Sync table generator failed against {} ({status}); see the output above",
            py.name
        )));
    }
    ResultFile::read(&out).map_err(|e| Error::new(e.to_string()))
}

/// Runs the `docs` command with the arguments after `docs`.
pub fn docs_command(args: &[String], cache: &Cache) -> Result<(), Error> {
    let options = parse_args(args)?;
    let root = paths::workspace_root();
    if options.refresh {
        for line in snapshot::refresh(&root)? {
            println!("docs: {line}");
        }
    }
    if options.tables_only {
        return generated_regions(&root, options.check);
    }
    let send_sync = send_sync_command(&options, cache, &root);
    // The regions are regenerated even if the Send/Sync step failed, and after it, since
    // `send-sync-matrix` tables copy its rows.
    let regions = generated_regions(&root, options.check);
    match (send_sync, regions) {
        (Ok(()), result) => result,
        (Err(e), Ok(())) => Err(e),
        (Err(a), Err(b)) => Err(Error::new(format!("{}\n{}", a.message(), b.message()))),
    }
}

/// Regenerates (or, with `check`, compares) every generated region of the docs and RFCs.
fn generated_regions(root: &Path, check: bool) -> Result<(), Error> {
    let outcome = regions::update_all(root, check).map_err(Error::new)?;
    if !outcome.errors.is_empty() {
        return Err(Error::new(format!(
            "generated regions that cannot be generated:\n  {}",
            outcome.errors.join("\n  ")
        )));
    }
    if outcome.stale.is_empty() {
        println!(
            "docs: {} generated regions (tables from docs/data/, example copies) are up to date",
            outcome.regions
        );
        return Ok(());
    }
    if check {
        return Err(Error::new(format!(
            "stale generated regions; regenerate them with `cargo xtask docs --tables-only` (or \
             `cargo xtask docs`):\n  {}",
            outcome.stale.join("\n  ")
        )));
    }
    for region in &outcome.stale {
        println!("docs: regenerated {region}");
    }
    Ok(())
}

/// The Send/Sync snapshot: regenerated from the three builds, written (or, with `--check`,
/// compared) when its cells differ; the environments alone do not make it stale.
fn send_sync_command(options: &Options, cache: &Cache, root: &Path) -> Result<(), Error> {
    let specs = cli::or_defaults(options.pythons.clone());
    let parsed = specs.iter().map(|s| interpreter::parse_spec(s)).collect::<Result<Vec<_>, _>>()?;
    let pythons = parsed
        .iter()
        .map(|spec| interpreter::resolve_spec(spec, cache))
        .collect::<Result<Vec<_>, _>>()?;
    let chosen = choose(&pythons)?;
    let mut generated = Vec::new();
    for (py, (_, _, _, features)) in chosen.iter().zip(RULE_SETS) {
        generated.push(generate(py, features)?);
    }
    let file = collect(generated).map_err(Error::new)?;
    let path = root.join(SEND_SYNC);
    let data = |f: &ResultFile| f.records.iter().map(|r| r.data.clone()).collect::<Vec<_>>();
    match ResultFile::read(&path) {
        Ok(old) if data(&old) == data(&file) => {
            println!("{SEND_SYNC}: up to date");
            Ok(())
        }
        _ if options.check => {
            Err(Error::new(format!("{SEND_SYNC} is stale; regenerate it with `cargo xtask docs`")))
        }
        _ => {
            file.write(&path).map_err(|e| Error::new(e.to_string()))?;
            println!("{SEND_SYNC}: regenerated");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interpsafe_results::{ResultRecord, SendSyncCell};
    use std::path::PathBuf;

    #[test]
    fn parses_options() {
        let args: Vec<String> = ["--check", "--python", "3.13", "--python=3.13t"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse_args(&args).unwrap();
        assert!(o.check);
        assert_eq!(o.pythons, ["3.13", "3.13t"]);
        assert!(!o.refresh && !o.tables_only);
        let o = parse_args(&["--refresh".into(), "--tables-only".into()]).unwrap();
        assert!(o.refresh && o.tables_only && !o.check);
        let both = parse_args(&["--check".into(), "--refresh".into()]).unwrap_err();
        assert_eq!(both.exit_code(), 2);
        assert_eq!(parse_args(&["--fix".into()]).unwrap_err().exit_code(), 2);
        assert_eq!(parse_args(&["--python".into()]).unwrap_err().exit_code(), 2);
    }

    fn file(rules: &str, types: &[&str]) -> ResultFile {
        let records = types
            .iter()
            .map(|t| ResultRecord {
                environment: crate::docs::snapshot::tests::env("3.13"),
                data: RecordData::SendSync(SendSyncCell {
                    type_name: t.to_string(),
                    stands_for: "a thing".into(),
                    rules: rules.into(),
                    send: true,
                    sync: false,
                    hazard: false,
                    cases: vec![],
                    note: "n".into(),
                }),
            })
            .collect();
        ResultFile::new("examples/send_sync_table", records)
    }

    #[test]
    fn collects_three_rule_sets_of_the_same_types() {
        let good = || {
            vec![
                file("gil", &["A", "B"]),
                file("free-threaded", &["A", "B"]),
                file("own-gil", &["A", "B"]),
            ]
        };
        let all = collect(good()).unwrap();
        assert_eq!(all.records.len(), 6);
        assert_eq!(all.producer, "cargo xtask docs");
        let mut wrong_order = good();
        wrong_order.swap(0, 1);
        assert!(collect(wrong_order).unwrap_err().contains("meant for the `gil` rules"));
        let mut different = good();
        different[2] = file("own-gil", &["A"]);
        assert!(collect(different).unwrap_err().contains("other types"));
        assert!(collect(good()[..2].to_vec()).is_err());
    }

    #[test]
    fn chooses_an_interpreter_per_rule_set() {
        let py = |name: &str, free_threaded: bool| Interpreter {
            name: name.into(),
            executable: PathBuf::from(format!("/p/{name}/bin/python")),
            version: "3.13.15".into(),
            free_threaded,
            libdir: None,
            env: vec![],
        };
        let both = [py("3.13t", true), py("3.13", false)];
        let chosen: Vec<&str> = choose(&both).unwrap().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(chosen, ["3.13", "3.13t", "3.13"]);
        let err = choose(&both[1..]).unwrap_err();
        assert!(err.message().contains("free-threaded"));
        assert_eq!(err.exit_code(), 2);
    }
}
