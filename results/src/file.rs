//! A results file: the schema tag, who produced it, and its records.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::record::ResultRecord;
use crate::SCHEMA;

/// A file of results as written to disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFile {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// What produced it (`interp-tests hazards`, `benches`, `xtask docs`).
    pub producer: String,
    /// The records.
    pub records: Vec<ResultRecord>,
}

/// Why a results file could not be read or written.
#[derive(Debug)]
pub enum SchemaError {
    /// Reading or writing the file failed.
    Io {
        /// The file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not valid JSON for this schema.
    Parse {
        /// The file.
        path: String,
        /// serde's message (names the field).
        error: String,
    },
    /// The file declares another schema version.
    WrongSchema {
        /// The file.
        path: String,
        /// What it declares.
        found: String,
    },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Io { path, error } => write!(f, "{path}: {error}"),
            SchemaError::Parse { path, error } => {
                write!(f, "{path} is not an interpsafe results file: {error}")
            }
            SchemaError::WrongSchema { path, found } => write!(
                f,
                "{path} uses schema {found:?}, this build reads {SCHEMA:?}; regenerate it with \
                 this version of interpsafe"
            ),
        }
    }
}

impl std::error::Error for SchemaError {}

impl ResultFile {
    /// A new file for `producer`.
    pub fn new(producer: impl Into<String>, records: Vec<ResultRecord>) -> Self {
        ResultFile { schema: SCHEMA.to_string(), producer: producer.into(), records }
    }

    /// Parses a file's text, refusing other schema versions.
    pub fn parse(path: &str, text: &str) -> Result<Self, SchemaError> {
        let file: ResultFile = serde_json::from_str(text)
            .map_err(|e| SchemaError::Parse { path: path.to_string(), error: e.to_string() })?;
        if file.schema != SCHEMA {
            return Err(SchemaError::WrongSchema { path: path.to_string(), found: file.schema });
        }
        Ok(file)
    }

    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, SchemaError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|error| SchemaError::Io { path: name.clone(), error })?;
        Self::parse(&name, &text)
    }

    /// Writes the file as pretty JSON, creating parent directories.
    pub fn write(&self, path: &Path) -> Result<(), SchemaError> {
        let name = path.display().to_string();
        let io = |error| SchemaError::Io { path: name.clone(), error };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| SchemaError::Parse { path: name.clone(), error: e.to_string() })?;
        std::fs::write(path, text + "\n").map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn env() -> Environment {
        Environment {
            interpreter: InterpreterBuild {
                name: "3.13t".into(),
                version: "3.13.15".into(),
                free_threaded: true,
                variant: None,
                debian_version: Some("3.13.15-1".into()),
            },
            pyo3_version: "0.28.3".into(),
            machine: Machine::detect(),
        }
    }

    #[test]
    fn round_trips_every_record_kind() {
        let records = vec![
            ResultRecord {
                environment: env(),
                data: RecordData::Hazard(HazardVerdict {
                    hazard: "H1".into(),
                    strategy: "tagged".into(),
                    isolation: Some("own-gil".into()),
                    observed: Verdict::RuntimeError { message: "m".into() },
                    expected: Verdict::RuntimeError { message: "m".into() },
                    threat: Some("safe code through the public API".into()),
                }),
            },
            ResultRecord {
                environment: env(),
                data: RecordData::Bench(BenchFigure {
                    operation: "bind".into(),
                    strategy: "unchecked".into(),
                    threads: 1,
                    interpreters: 1,
                    ns_per_op: Some(1.5),
                    instructions_per_op: None,
                    scaling: None,
                    ns_interval: None,
                }),
            },
            ResultRecord {
                environment: env(),
                data: RecordData::HandleSize(HandleSize {
                    strategy: "tagged".into(),
                    type_name: "Tagged".into(),
                    size: 16,
                    option_size: 16,
                }),
            },
            ResultRecord {
                environment: env(),
                data: RecordData::FuzzSummary(FuzzSummary {
                    strategies: vec!["tagged".into(), "affine".into()],
                    base_seed: u64::MAX - 1,
                    cases: 12,
                    ops: 300,
                    failures: 1,
                    seconds: 4.5,
                    hole: Some("once-foreign-init".into()),
                    first_failure_at: Some(7),
                }),
            },
            ResultRecord {
                environment: env(),
                data: RecordData::FuzzFinding(FuzzFinding {
                    seed: 42,
                    failure: "op #3: the model predicts Cross(1), observed Ok".into(),
                    generated_ops: 30,
                    minimal_ops: 3,
                    reproduction: "run_sequence(&[Create { t: 0, kind: PythonMade }]);".into(),
                    hole: None,
                }),
            },
        ];
        let file = ResultFile::new("test", records);
        let text = serde_json::to_string(&file).unwrap();
        assert!(text.contains("\"kind\":\"hazard\""), "{text}");
        assert!(text.contains("\"kind\":\"fuzz_summary\""), "{text}");
        assert!(text.contains("\"kind\":\"fuzz_finding\""), "{text}");
        assert_eq!(ResultFile::parse("x.json", &text).unwrap(), file);
    }

    #[test]
    fn refuses_other_schemas_and_missing_fields() {
        let text = r#"{"schema":"interpsafe-results/0","producer":"p","records":[]}"#;
        let err = ResultFile::parse("old.json", text).unwrap_err();
        assert!(err.to_string().contains("interpsafe-results/0"), "{err}");
        let text =
            r#"{"schema":"interpsafe-results/1","producer":"p","records":[{"kind":"bench"}]}"#;
        let err = ResultFile::parse("bad.json", text).unwrap_err();
        assert!(matches!(err, SchemaError::Parse { .. }), "{err}");
    }

    #[test]
    fn write_then_read() {
        let dir = std::env::temp_dir().join(format!("interpsafe-results-{}", std::process::id()));
        let path = dir.join("nested/out.json");
        let file = ResultFile::new("test", vec![]);
        file.write(&path).unwrap();
        assert_eq!(ResultFile::read(&path).unwrap(), file);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
