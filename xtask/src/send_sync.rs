//! The Send/Sync snapshot's producer: `docs/data/send-sync.json`, the cells of the library's
//! Send/Sync model as each rule set's own build checked them. xtask does not link the library
//! (it builds without Python), so it runs the library's `send_sync_table` example once per rule
//! set ([`RULE_SETS`]), each built for that rule set's static assertions and reporting only the
//! cells they checked. `cargo xtask docs` runs it before regenerating the pages; the `send-sync`
//! tables (`docs/tables.rs`) render its file.

use std::fs;
use std::path::Path;

use interpsafe_results::{RecordData, ResultFile};

use crate::cli::{self, cargo, with_python};
use crate::error::Error;
use crate::paths::Cache;
use crate::python::interpreter::{self, Interpreter};

/// The Send/Sync snapshot, relative to the workspace root.
pub const SEND_SYNC: &str = "docs/data/send-sync.json";

/// Which threads can reach one object at once: the Send/Sync model's rule sets, in column
/// order: name, column heading, whether its build needs a free-threaded interpreter, and the
/// cargo features of its build.
pub const RULE_SETS: [(&str, &str, bool, &[&str]); 3] = [
    ("gil", "GIL build", false, &[]),
    ("free-threaded", "free-threaded build", true, &[]),
    ("own-gil", "own-GIL subinterpreters", false, &["own-gil-rules"]),
];

/// The Send/Sync snapshot from the three builds' files, in [`RULE_SETS`] order: refused unless
/// each build reported its own rule set's cells, for the same types.
pub fn collect(generated: Vec<ResultFile>) -> Result<ResultFile, String> {
    if generated.len() != RULE_SETS.len() {
        return Err(format!("expected {} rule sets, got {}", RULE_SETS.len(), generated.len()));
    }
    let mut first: Option<Vec<&str>> = None;
    for (file, (rules, ..)) in generated.iter().zip(RULE_SETS) {
        let mut types = Vec::new();
        for r in &file.records {
            let RecordData::SendSync(c) = &r.data else {
                return Err(format!("a Send/Sync file holds another record: {:?}", r.data));
            };
            if c.rules != rules {
                return Err(format!(
                    "a build meant for the `{rules}` rules reported `{}`; check the interpreter \
                     and features",
                    c.rules
                ));
            }
            types.push(c.type_name.as_str());
        }
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

/// The Send/Sync snapshot: regenerated from the three builds of the `--python` values
/// `pythons` (default: the default set), written (or, with `check`, compared) when its cells
/// differ; the environments alone do not make it stale.
pub fn refresh(pythons: &[String], check: bool, cache: &Cache, root: &Path) -> Result<(), Error> {
    let specs = cli::or_defaults(pythons.to_vec());
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
        _ if check => {
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
    use crate::fixtures::records;
    use std::path::PathBuf;

    fn file(rules: &str, types: &[&str]) -> ResultFile {
        let cells: Vec<String> =
            types.iter().map(|t| format!("3.13|ss|{t}|{rules}|send")).collect();
        ResultFile::new("examples/send_sync_table", records(&cells.join("\n")))
    }

    #[test]
    fn collects_three_rule_sets_of_the_same_types() {
        let good = || RULE_SETS.map(|r| file(r.0, &["A", "B"])).to_vec();
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
