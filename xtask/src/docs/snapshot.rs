//! The committed snapshot of results that the docs and RFCs cite, `docs/data/*.json` (CI does
//! not run the benches, so the pages cannot cite `target/`): one [`ResultFile`] per source, every
//! record with its environment, refreshed by [`crate::snapshot_refresh`]. Every table names the
//! files it was generated from, so a mixed snapshot is visible.

use std::fs;
use std::path::{Path, PathBuf};

use interpsafe_results::{ResultFile, ResultRecord};

/// The snapshot directory, relative to the workspace root.
pub const DATA_DIR: &str = "docs/data";

/// What `--quick` adds to a producer's command line.
pub const QUICK: &str = "--quick";

/// One snapshot file.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Its path from the workspace root, e.g. `docs/data/bench.json`.
    pub file: String,
    /// Its contents.
    pub result: ResultFile,
}

/// Whether a producer string records a `--quick` run.
pub fn is_quick(producer: &str) -> bool {
    producer.split_whitespace().any(|w| w == QUICK)
}

/// Every snapshot file, in file-name order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The files.
    pub sources: Vec<Source>,
}

impl Snapshot {
    /// Reads every `*.json` in `root/docs/data` (none if the directory does not exist).
    pub fn load(root: &Path) -> Result<Snapshot, String> {
        let dir = root.join(DATA_DIR);
        let mut sources = Vec::new();
        for path in json_files(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let file = format!("{DATA_DIR}/{name}");
            let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {file}: {e}"))?;
            let result = ResultFile::parse(&file, &text).map_err(|e| e.to_string())?;
            sources.push(Source { file, result });
        }
        Ok(Snapshot { sources })
    }

    /// The file `record` (one of this snapshot's records) came from.
    pub fn source_of(&self, record: &ResultRecord) -> &Source {
        let at = std::ptr::from_ref(record);
        let mine = |s: &&Source| s.result.records.as_ptr_range().contains(&at);
        self.sources.iter().find(mine).expect("a record of this snapshot")
    }

    /// Every record with the file it came from.
    pub fn records(&self) -> impl Iterator<Item = (&Source, &ResultRecord)> {
        let sources = self.sources.iter();
        sources.flat_map(|s| s.result.records.iter().map(move |r| (s, r)))
    }
}

/// The `*.json` files in `dir`, sorted (none if it does not exist).
pub fn json_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries?,
    };
    let paths = entries.filter_map(|e| e.ok().map(|e| e.path()));
    let mut paths: Vec<PathBuf> =
        paths.filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    #[test]
    fn a_missing_snapshot_is_empty_and_a_broken_one_is_an_error() {
        let dir = TestDir::new("docs-snapshot");
        assert_eq!(Snapshot::load(dir.path()).unwrap(), Snapshot::default());
        let data = dir.path().join(DATA_DIR);
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("bad.json"), "{}").unwrap();
        let err = Snapshot::load(dir.path()).unwrap_err();
        assert!(err.contains("docs/data/bad.json"), "{err}");
    }
}
