//! The warehouse: project config, the canonical schema, Delta table storage, the SQL model DAG
//! and the query session. It depends on no other dealhouse crate; `ingest` writes through it and
//! `api` reads through it.

mod changes;
pub mod config;
pub mod deadline;
pub mod models;
pub mod schema;
pub mod scope;
pub mod session;
pub mod sql_guard;
pub mod storage;
pub mod udf;

use std::path::PathBuf;

pub use changes::FileDiff;
pub use config::{Project, ProjectConfig};
pub use datafusion;
pub use storage::{CommitMark, CommitMeta, TableInfo, Warehouse, WriteStats};
/// The TOML crate the config is read with, for crates that read parts of it (`[sources.*]`).
pub use toml;

/// Errors of the warehouse crate. Each says what failed, where, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config file (`dealhouse.toml`, a tokens file) is unreadable or invalid: the issue
    /// names the key and what to do, placed on its line.
    #[error("{}:{line}: {issue}", file.display())]
    Config {
        /// The config file.
        file: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The key and what is wrong with it.
        issue: config::ConfigIssue,
    },
    /// A Delta table could not be read or written.
    #[error("table `{table}`: {source}")]
    Delta {
        /// Table name.
        table: String,
        /// The delta-rs error.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// Storage-level failure outside a table.
    #[error("storage: {0}")]
    Storage(String),
    /// A value does not fit its column.
    #[error("{0}")]
    Value(String),
    /// A SQL statement failed or was refused.
    #[error("{0}")]
    Sql(String),
    /// Untrusted SQL refused before planning (too large, too complex, a refused function).
    #[error("{message}")]
    Refused {
        /// Stable code: `sql_too_large`, `sql_too_complex`, `function_not_allowed`, `bad_sql`.
        code: &'static str,
        /// What was refused and how to fix it.
        message: String,
    },
    /// A model file is broken or the DAG is invalid.
    #[error("{0}")]
    Model(String),
    /// Arrow error.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// DataFusion error.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Bad URL.
    #[error(transparent)]
    Url(#[from] url::ParseError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    fn delta(table: &str, source: deltalake::DeltaTableError) -> Self {
        Error::Delta { table: table.to_string(), source: Box::new(source) }
    }
}

impl From<deltalake::DeltaTableError> for Error {
    fn from(e: deltalake::DeltaTableError) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Result with the warehouse [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
