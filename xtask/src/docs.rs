//! `docs`: regenerates the Send/Sync table in `docs/send-sync.md` (or, with `--check`, fails when
//! the committed one is stale).
//!
//! The table's source is the `send_sync_table!` in the library's `src/send_sync.rs`, which also
//! expands into the static assertions of the rule set a build is compiled for. xtask does not
//! link the library (it builds without Python), so it runs the library's `send_sync_table`
//! example once per rule set, each built against an interpreter of the right kind:
//! - `gil`: a GIL interpreter;
//! - `free-threaded`: a free-threaded interpreter (`cfg(Py_GIL_DISABLED)`);
//! - `own-gil`: the GIL interpreter again, with `--features own-gil-rules`.
//!
//! Each run prints only the rows its own build checked, so every column of the table comes from
//! a build whose assertions held. The rows are spliced between `<!-- send-sync:start -->` and
//! `<!-- send-sync:end -->`; the rest of the page is hand-written.
//!
//! It then regenerates every other generated region of `docs/*.md` and `RFCs/*.md`
//! ([`regions`]): the evaluation tables, from the committed snapshot in `docs/data/` only
//! ([`snapshot`], [`tables`]), and the copies of `examples/*.rs`. `--refresh` first copies the
//! latest results from `target/interpsafe/` into the snapshot; `--tables-only` skips the
//! interpreter builds of the Send/Sync table (no Python needed);
//! `--check` fails on any stale region, Send/Sync table included.

pub mod regions;
pub mod snapshot;
pub mod tables;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::error::Error;
use crate::paths::{self, Cache};
use crate::python::interpreter::{self, Interpreter};
use crate::python::names;
use crate::test::{cargo, with_python};

/// The page, relative to the workspace root.
pub const DOC: &str = "docs/send-sync.md";
/// The marker before the generated region.
pub const START: &str = "<!-- send-sync:start -->";
/// The marker after the generated region.
pub const END: &str = "<!-- send-sync:end -->";
/// The first line the generator prints (then a tab and the rule set).
pub const HEADER: &str = "interpsafe-send-sync/1";

/// The rule sets, in column order: name, column heading, whether it needs a free-threaded
/// interpreter, and the cargo features of its build.
pub const RULE_SETS: [(&str, &str, bool, &[&str]); 3] = [
    ("gil", "GIL build", false, &[]),
    ("free-threaded", "free-threaded build", true, &[]),
    (
        "own-gil",
        "own-GIL subinterpreters",
        false,
        &["own-gil-rules"],
    ),
];

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
    let mut options = Options::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--check" {
            options.check = true;
        } else if arg == "--refresh" {
            options.refresh = true;
        } else if arg == "--tables-only" {
            options.tables_only = true;
        } else if arg == "--python" {
            match rest.next() {
                Some(spec) => options.pythons.push(spec.clone()),
                None => {
                    return Err(Error::usage(
                        "--python needs a value: a known name (e.g. 3.13t) or a path to a python executable",
                    ))
                }
            }
        } else if let Some(spec) = arg.strip_prefix("--python=") {
            options.pythons.push(spec.to_string());
        } else {
            return Err(Error::usage(format!(
                "unknown argument `{arg}` for `docs`; usage: cargo xtask docs [--check | --refresh] \
                 [--tables-only] [--python SPEC]..."
            )));
        }
    }
    if options.check && options.refresh {
        return Err(Error::usage(
            "`--check` compares the pages with the committed snapshot and `--refresh` replaces it; \
             run `cargo xtask docs --refresh`, then `cargo xtask docs --check`",
        ));
    }
    Ok(options)
}

/// One row as one build reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRow {
    /// The type as the docs spell it (without backticks).
    pub type_name: String,
    /// What it stands for.
    pub stands_for: String,
    /// The matrix cell.
    pub cell: String,
    /// The detail table's line.
    pub detail: String,
}

/// What one build reported: its rule set and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The rule set the build was compiled for.
    pub rules: String,
    /// Its rows, in table order.
    pub rows: Vec<GeneratedRow>,
}

/// Parses the generator's output (see `interpsafe::send_sync::generator_lines`).
pub fn parse_generated(text: &str) -> Result<Generated, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("no output")?;
    let rules = header
        .strip_prefix(HEADER)
        .and_then(|r| r.strip_prefix('\t'))
        .ok_or_else(|| format!("the first line is not `{HEADER}<TAB>rules`: {header:?}"))?
        .to_string();
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["row", type_name, stands_for, cell, detail] => rows.push(GeneratedRow {
                type_name: type_name.to_string(),
                stands_for: stands_for.to_string(),
                cell: cell.to_string(),
                detail: detail.to_string(),
            }),
            _ => return Err(format!("unexpected line: {line:?}")),
        }
    }
    if rows.is_empty() {
        return Err("no rows".to_string());
    }
    Ok(Generated { rules, rows })
}

/// The generated region (without the markers) from the three builds' outputs, in
/// [`RULE_SETS`] order.
pub fn render(generated: &[Generated]) -> Result<String, String> {
    if generated.len() != RULE_SETS.len() {
        return Err(format!(
            "expected {} rule sets, got {}",
            RULE_SETS.len(),
            generated.len()
        ));
    }
    for (g, (name, ..)) in generated.iter().zip(RULE_SETS) {
        if g.rules != name {
            return Err(format!(
                "a build meant for the `{name}` rules reported `{}`; check the interpreter and features",
                g.rules
            ));
        }
    }
    let first = &generated[0];
    for g in &generated[1..] {
        let names = |g: &Generated| -> Vec<(String, String)> {
            g.rows
                .iter()
                .map(|r| (r.type_name.clone(), r.stands_for.clone()))
                .collect()
        };
        if names(g) != names(first) {
            return Err(format!(
                "the `{}` and `{}` builds list different types (or descriptions); the table in \
                 src/send_sync.rs must name the same types for every rule set",
                first.rules, g.rules
            ));
        }
    }
    let mut out = String::new();
    out.push_str(
        "<!-- Generated by `cargo xtask docs` from the table in src/send_sync.rs: edit that, not this. -->\n\n",
    );
    out.push_str("| type | stands for |");
    for (_, heading, ..) in RULE_SETS {
        out.push_str(&format!(" {heading} |"));
    }
    out.push_str("\n|---|---|");
    for _ in RULE_SETS {
        out.push_str("---|");
    }
    out.push('\n');
    for (i, row) in first.rows.iter().enumerate() {
        out.push_str(&format!("| `{}` | {} |", row.type_name, row.stands_for));
        for g in generated {
            out.push_str(&format!(" {} |", g.rows[i].cell));
        }
        out.push('\n');
    }
    out.push_str("\n| type | rules | Send | Sync | enforced by | note |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for i in 0..first.rows.len() {
        for g in generated {
            out.push_str(&g.rows[i].detail);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `page` with the region between the markers replaced by `region`.
pub fn splice(page: &str, region: &str) -> Result<String, String> {
    let start = page
        .find(START)
        .ok_or_else(|| format!("no `{START}` marker"))?;
    let end = page.find(END).ok_or_else(|| format!("no `{END}` marker"))?;
    if end < start {
        return Err(format!("`{END}` comes before `{START}`"));
    }
    Ok(format!(
        "{}{START}\n{region}{}",
        &page[..start],
        &page[end..]
    ))
}

/// Chooses the interpreter of each rule set from the selected ones: the first GIL one for `gil`
/// and `own-gil`, the first free-threaded one for `free-threaded`.
pub fn choose(pythons: &[Interpreter]) -> Result<Vec<&Interpreter>, Error> {
    RULE_SETS
        .iter()
        .map(|(name, _, free_threaded, _)| {
            pythons
                .iter()
                .find(|p| p.free_threaded == *free_threaded)
                .ok_or_else(|| {
                    let kind = if *free_threaded {
                        "a free-threaded"
                    } else {
                        "a GIL"
                    };
                    Error::usage(format!(
                        "the `{name}` rules need {kind} interpreter; pass one with --python \
                         (e.g. --python 3.13 --python 3.13t)"
                    ))
                })
        })
        .collect()
}

/// Runs the generator against `py` with `features`, returning what it printed.
fn generate(py: &Interpreter, features: &[&str]) -> Result<Generated, Error> {
    let mut step = cargo().args(["run", "--quiet", "--example", "send_sync_table"]);
    if !features.is_empty() {
        step = step.args(["--features", &features.join(",")]);
    }
    let step = with_python(step, py, &py.target_dir());
    eprintln!("docs: {step}");
    let out = step
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| crate::stage::spawn_error(&step, &e))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "the Send/Sync table generator failed against {} ({}); see the output above",
            py.name, out.status
        )));
    }
    parse_generated(&String::from_utf8_lossy(&out.stdout)).map_err(|why| {
        Error::new(format!(
            "the generator's output against {} is malformed: {why}",
            py.name
        ))
    })
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

/// The Send/Sync table.
fn send_sync_command(options: &Options, cache: &Cache, root: &Path) -> Result<(), Error> {
    let specs: Vec<String> = if options.pythons.is_empty() {
        names::defaults()
            .iter()
            .map(|k| k.name.to_string())
            .collect()
    } else {
        options.pythons.clone()
    };
    let parsed = specs
        .iter()
        .map(|s| interpreter::parse_spec(s))
        .collect::<Result<Vec<_>, _>>()?;
    let pythons = parsed
        .iter()
        .map(|spec| interpreter::resolve_spec(spec, cache))
        .collect::<Result<Vec<_>, _>>()?;
    let chosen = choose(&pythons)?;
    let mut generated = Vec::new();
    for (py, (_, _, _, features)) in chosen.iter().zip(RULE_SETS) {
        generated.push(generate(py, features)?);
    }
    let region = render(&generated).map_err(Error::new)?;
    update(&root.join(DOC), &region, options.check)
}

/// Writes (or, with `check`, compares) the region into the page at `path`.
pub fn update(path: &Path, region: &str, check: bool) -> Result<(), Error> {
    let page = fs::read_to_string(path).map_err(|e| Error::io("read", path, &e))?;
    let new =
        splice(&page, region).map_err(|why| Error::new(format!("{}: {why}", path.display())))?;
    let shown = display_path(path);
    if new == page {
        println!("{shown}: the Send/Sync table is up to date");
        return Ok(());
    }
    if check {
        return Err(Error::new(format!(
            "{shown}: the Send/Sync table is stale; regenerate it with `cargo xtask docs`"
        )));
    }
    fs::write(path, new).map_err(|e| Error::io("write", path, &e))?;
    println!("{shown}: the Send/Sync table was regenerated");
    Ok(())
}

/// `path` relative to the workspace root, if it is inside it.
fn display_path(path: &Path) -> String {
    let root = paths::workspace_root();
    path.strip_prefix(&root)
        .map(PathBuf::from)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn output(rules: &str, cell: &str) -> String {
        format!(
            "{HEADER}\t{rules}\nrow\tA<'s>\ta thing\t{cell}\t| `A<'s>` | {rules} | yes | no | static assertion | n |\n\
             row\tB\tanother\t!Send, !Sync\t| `B` | {rules} | no | no | static assertion | m |\n"
        )
    }

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

    #[test]
    fn parses_generator_output() {
        let g = parse_generated(&output("gil", "Send, !Sync")).unwrap();
        assert_eq!(g.rules, "gil");
        assert_eq!(g.rows.len(), 2);
        assert_eq!(g.rows[0].type_name, "A<'s>");
        assert_eq!(g.rows[0].cell, "Send, !Sync");
        assert!(parse_generated("").is_err());
        assert!(parse_generated("something else\tgil\n").is_err());
        assert!(parse_generated(&format!("{HEADER}\tgil\n")).is_err());
        assert!(parse_generated(&format!("{HEADER}\tgil\nrow\tonly two\n")).is_err());
    }

    #[test]
    fn renders_a_matrix_and_grouped_details() {
        let g: Vec<Generated> = [
            ("gil", "Send, !Sync"),
            ("free-threaded", "Send + Sync"),
            ("own-gil", "x"),
        ]
        .iter()
        .map(|(r, c)| parse_generated(&output(r, c)).unwrap())
        .collect();
        let region = render(&g).unwrap();
        assert!(region.contains(
            "| type | stands for | GIL build | free-threaded build | own-GIL subinterpreters |"
        ));
        assert!(region.contains("| `A<'s>` | a thing | Send, !Sync | Send + Sync | x |\n"));
        let details: Vec<&str> = region
            .lines()
            .filter(|l| l.contains("static assertion"))
            .collect();
        assert_eq!(details.len(), 6);
        assert!(details[0].starts_with("| `A<'s>` | gil |"));
        assert!(details[1].starts_with("| `A<'s>` | free-threaded |"));
        assert!(details[2].starts_with("| `A<'s>` | own-gil |"));
        assert!(details[3].starts_with("| `B` | gil |"));

        let mut wrong_order = g.clone();
        wrong_order.swap(0, 1);
        assert!(render(&wrong_order)
            .unwrap_err()
            .contains("meant for the `gil` rules"));
        let mut different = g.clone();
        different[2].rows.pop();
        assert!(render(&different).unwrap_err().contains("different types"));
        assert!(render(&g[..2]).is_err());
    }

    #[test]
    fn splices_between_the_markers_only() {
        let page = format!("# Title\n\nprose\n\n{START}\nold\n{END}\n\nmore prose\n");
        let new = splice(&page, "new\n").unwrap();
        assert_eq!(
            new,
            format!("# Title\n\nprose\n\n{START}\nnew\n{END}\n\nmore prose\n")
        );
        assert_eq!(splice(&new, "new\n").unwrap(), new);
        assert!(splice("no markers", "x").is_err());
        assert!(splice(&format!("{END}\n{START}\n"), "x").is_err());
    }

    #[test]
    fn check_fails_on_a_stale_page_and_writing_fixes_it() {
        let dir = TestDir::new("docs");
        let path = dir.path().join("send-sync.md");
        fs::write(&path, format!("intro\n{START}\nold\n{END}\n")).unwrap();
        let err = update(&path, "new\n", true).unwrap_err();
        assert!(
            err.message().contains("cargo xtask docs"),
            "{}",
            err.message()
        );
        assert_eq!(err.exit_code(), 1);
        update(&path, "new\n", false).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("intro\n{START}\nnew\n{END}\n")
        );
        update(&path, "new\n", true).unwrap();
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
        let chosen: Vec<&str> = choose(&both)
            .unwrap()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(chosen, ["3.13", "3.13t", "3.13"]);
        let err = choose(&both[1..]).unwrap_err();
        assert!(err.message().contains("free-threaded"));
        assert_eq!(err.exit_code(), 2);
    }
}
