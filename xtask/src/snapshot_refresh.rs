//! The `--refresh` step of `cargo xtask docs`: the latest results under `target/interpsafe/`
//! copied into the committed snapshot, `docs/data/` ([`crate::docs::snapshot`] reads it). It
//! writes the snapshot and renders nothing.

use std::fs;
use std::path::Path;

use interpsafe_results::{RecordData, ResultFile};

use crate::docs::snapshot::{is_quick, json_files, DATA_DIR, QUICK};
use crate::error::Error;

/// The bench snapshot made from the bench results file `file`: its hazard records removed (the
/// hazard files are snapshotted on their own), and its producer naming the quick run when it
/// was one.
pub fn bench_snapshot(mut file: ResultFile, quick: bool) -> ResultFile {
    file.records.retain(|r| !matches!(r.data, RecordData::Hazard(_)));
    if quick && !is_quick(&file.producer) {
        file.producer = format!("{} {QUICK}", file.producer);
    }
    file
}

/// Copies the latest results under `root/target/interpsafe/` into `root/docs/data/`, returning
/// one line per file (copied, or kept because nothing newer exists): `bench.json` from the
/// report's `results.json` as [`bench_snapshot`] makes it (quick if the report's header says
/// so), `hazards-<build>.json` from the hazard suite's `hazards/<build>.json`, and
/// `fuzz-<build>-seeds.json` from the seeded-holes search's `fuzz/<build>-seeds.json`, and
/// `ext-<build>.json` from the extension-module driver's `ext/<build>.json`, byte for byte.
pub fn refresh(root: &Path) -> Result<Vec<String>, Error> {
    let (from, to) = (root.join("target/interpsafe"), root.join(DATA_DIR));
    fs::create_dir_all(&to).map_err(|e| Error::io("create", &to, &e))?;
    let shown = |path: &Path| path.strip_prefix(root).unwrap_or(path).display().to_string();
    let read = |path: &Path| ResultFile::read(path).map_err(|e| Error::new(e.to_string()));
    let mut lines = Vec::new();
    let results = from.join("report/results.json");
    if results.is_file() {
        // The results file does not say whether the run was quick; the report's header does.
        let report = fs::read_to_string(results.with_file_name("report.md")).unwrap_or_default();
        let quick = report.lines().take(5).any(|l| l.contains("cargo xtask bench --quick"));
        let snapshot = bench_snapshot(read(&results)?, quick);
        snapshot.write(&to.join("bench.json")).map_err(|e| Error::new(e.to_string()))?;
        let run = if is_quick(&snapshot.producer) { "a quick run" } else { "a full run" };
        let (n, from) = (snapshot.records.len(), shown(&results));
        lines.push(format!("{DATA_DIR}/bench.json: {n} records from {from} ({run})"));
    } else {
        let why = format!("no {}; run `cargo xtask bench`", shown(&results));
        lines.push(format!("{DATA_DIR}/bench.json: kept ({why})"));
    }
    // (directory, snapshot prefix, only the seeded-hole searches): the hazard suite's verdicts,
    // and of the fuzz runs only the seeded-hole searches (no page cites the others).
    // The extension-module driver's cells too (`ext/<build>.json`).
    let copies = [("hazards", "hazards-", false), ("fuzz", "fuzz-", true), ("ext", "ext-", false)];
    for (dir, prefix, seeds_only) in copies {
        let dir = from.join(dir);
        let mut copied = Vec::new();
        for path in json_files(&dir).unwrap_or_default() {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("unknown");
            if seeds_only && !stem.ends_with("-seeds") {
                continue;
            }
            // Refuse anything that is not a results file of this schema before committing it.
            let n = read(&path)?.records.len();
            let name = format!("{prefix}{stem}.json");
            fs::copy(&path, to.join(&name)).map_err(|e| Error::io("copy", &path, &e))?;
            lines.push(format!("{DATA_DIR}/{name}: {n} records from {}", shown(&path)));
            copied.push(name);
        }
        for path in json_files(&to).unwrap_or_default() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with(prefix) && !copied.iter().any(|c| c == name) {
                lines.push(format!("{DATA_DIR}/{name}: kept (no newer file in {})", shown(&dir)));
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::snapshot::Snapshot;
    use crate::fixtures::records;
    use crate::testdir::TestDir;

    const BENCH: &str = "3.13|ns|bind|unchecked|1|1.0";
    const HAZARD: &str = "3.13|hz|H1|tagged|own-gil|e:bind: x|e:bind: x";

    #[test]
    fn bench_snapshot_drops_hazards_and_marks_quick_runs() {
        let file = ResultFile::new("cargo xtask bench", records(&format!("{BENCH}\n{HAZARD}")));
        let s = bench_snapshot(file.clone(), true);
        assert_eq!((s.producer.as_str(), s.records), ("cargo xtask bench --quick", records(BENCH)));
        assert_eq!(bench_snapshot(file, false).producer, "cargo xtask bench");
        let already = ResultFile::new("cargo xtask bench --quick", vec![]);
        assert_eq!(bench_snapshot(already, true).producer, "cargo xtask bench --quick");
        assert!(!is_quick("cargo xtask bench --quickly"));
    }

    #[test]
    fn refresh_copies_the_latest_results_and_keeps_the_rest() {
        let dir = TestDir::new("docs-refresh");
        let root = dir.path();
        let write = |path: &str, producer: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            ResultFile::new(producer, records(text)).write(&path).unwrap();
        };
        let both = format!("{BENCH}\n{HAZARD}");
        write("target/interpsafe/report/results.json", "cargo xtask bench", &both);
        let header = "# interpsafe bench report\n\nGenerated by `cargo xtask bench --quick` from \
                      the figures in `results.json`.\n";
        fs::write(root.join("target/interpsafe/report/report.md"), header).unwrap();
        write("target/interpsafe/hazards/3.13.json", "interp-tests hazards", HAZARD);
        write("docs/data/hazards-3.13-asan.json", "interp-tests hazards", "");
        write("target/interpsafe/ext/3.13t.json", "ext-modules/tests/ext_driver.py", "");
        // The driver's raw cells sit in a directory per build, never copied.
        fs::create_dir_all(root.join("target/interpsafe/ext/3.13t")).unwrap();
        fs::write(root.join("target/interpsafe/ext/3.13t/cells.json"), "{}").unwrap();

        let lines = refresh(root).unwrap().join("\n");
        for want in [
            "(a quick run)",
            "hazards-3.13.json: 1 records",
            "hazards-3.13-asan.json: kept",
            "ext-3.13t.json: 0 records",
        ] {
            assert!(lines.contains(want), "{want}: {lines}");
        }
        let snap = Snapshot::load(root).unwrap();
        let files: Vec<&str> = snap.sources.iter().map(|s| s.file.as_str()).collect();
        let data = ["bench.json", "ext-3.13t.json", "hazards-3.13-asan.json", "hazards-3.13.json"];
        assert_eq!(files, data.map(|f| format!("{DATA_DIR}/{f}")));
        assert!(is_quick(&snap.sources[0].result.producer));
        assert_eq!(snap.sources[0].result.records, records(BENCH));
        assert_eq!(snap.records().count(), 2);
        // The hazard file is a byte-for-byte copy.
        let read = |p: &str| fs::read(root.join(p)).unwrap();
        assert_eq!(
            read("target/interpsafe/hazards/3.13.json"),
            read("docs/data/hazards-3.13.json")
        );
    }
}
