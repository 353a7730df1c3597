//! The warehouse crate's one error type. Each variant carries the values that explain it and,
//! where there is one, the underlying error as its `source`, so callers match variants (never
//! message text) and a log shows the whole chain.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

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
        issue: crate::config::ConfigIssue,
    },

    // --- storage -------------------------------------------------------------------------------
    /// A Delta table could not be read or written.
    #[error("table `{table}`: {source}")]
    Delta {
        /// Table name.
        table: String,
        /// The delta-rs error.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// The warehouse location itself could not be opened or listed.
    #[error("cannot list {location}: {source}; {hint}")]
    Location {
        /// The warehouse root URL.
        location: String,
        /// What to check.
        hint: &'static str,
        /// The object store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A table name that cannot be a folder of the warehouse.
    #[error("`{name}` is not a valid table name (use a-z, 0-9, _)")]
    InvalidTableName {
        /// The name as given.
        name: String,
    },
    /// A write was given a schema without columns.
    #[error("table `{table}`: a table needs at least one column")]
    NoColumns {
        /// Table name.
        table: String,
    },
    /// A table an operation needs has never been written.
    #[error("table `{table}` does not exist")]
    TableMissing {
        /// Table name.
        table: String,
    },

    /// A table has no version at the point a reproducible read asked for.
    #[error("table `{table}` has no {at}: {fix}")]
    NoVersionAt {
        /// Table name.
        table: String,
        /// The point asked for (`version 12`, `at 2026-01-01T00:00:00Z`).
        at: String,
        /// What exists and what to ask for instead.
        fix: String,
    },

    // --- values ---------------------------------------------------------------------------------
    /// A money value does not fit `Decimal128(18,2)`.
    #[error("money value {value} {problem}")]
    Money {
        /// The value as given.
        value: rust_decimal::Decimal,
        /// What is wrong with it and the fix.
        problem: &'static str,
    },
    /// A scope names a holding or branch that `[organisation]` does not declare.
    #[error("{kind} `{id}` is not declared in [organisation]")]
    UnknownScope {
        /// `holding` or `branch`.
        kind: &'static str,
        /// The id as given.
        id: String,
    },

    // --- analyst SQL (the caller's query; an API answers 400) ----------------------------------------
    /// The query text is longer than any legitimate query.
    #[error("query is {bytes} bytes; the limit is {limit}")]
    SqlTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The query does not parse.
    #[error("SQL syntax error: {source}")]
    SqlSyntax {
        /// The parser's error.
        #[source]
        source: DataFusionError,
    },
    /// Several statements (or none) where one query is expected.
    #[error("expected exactly one statement, got {count}")]
    NotOneStatement {
        /// How many statements the text holds.
        count: usize,
    },
    /// A statement that could change something.
    #[error("only read-only queries ({}) are allowed; refused: {statement}", crate::sql_guard::READ_ONLY_STATEMENTS)]
    NotReadOnly {
        /// The statement's first words.
        statement: String,
    },
    /// Untrusted SQL refused before planning (too large, too complex, a refused function).
    #[error("{message}")]
    Refused {
        /// What kind of refusal (its stable code: `code.as_str()`).
        code: crate::sql_guard::RefusalCode,
        /// What was refused and how to fix it.
        message: String,
    },

    // --- models ---------------------------------------------------------------------------------
    /// A model file's header, test or incremental spec is malformed, or the file reads a table
    /// that does not exist.
    #[error("{origin}: {message}")]
    ModelFile {
        /// `file` or `file:line`.
        origin: String,
        /// What is wrong and the fix.
        message: String,
    },
    /// A model's SQL does not parse or its table references cannot be resolved.
    #[error("{origin}: {message}")]
    ModelSql {
        /// The model file.
        origin: String,
        /// The parser's message, with the line where it stopped.
        message: String,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// Models that read each other in a circle.
    #[error("dependency cycle among: {}", models.join(", "))]
    ModelCycle {
        /// The files of the models left unordered.
        models: Vec<String>,
    },
    /// A selector names no model.
    #[error("no model `{name}`; models: {}", known.join(", "))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Every model's name.
        known: Vec<String>,
    },
    /// A model failed to plan, run or be written.
    #[error("model `{model}` ({origin}{}): {source}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    ModelBuild {
        /// The model.
        model: String,
        /// Its file.
        origin: String,
        /// The line of the model's SQL the error points at, when known.
        line: Option<usize>,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The keys an incremental model must rebuild could not be read.
    #[error("reading `{column}` of changed rows of `{table}`: {source}")]
    ChangedRows {
        /// The input table.
        table: String,
        /// Its key column.
        column: String,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },

    // --- underlying libraries ------------------------------------------------------------------------
    /// Arrow error.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// DataFusion error.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Bad URL.
    #[error(transparent)]
    Url(#[from] url::ParseError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn delta(table: &str, source: deltalake::DeltaTableError) -> Self {
        Error::Delta { table: table.to_string(), source: Box::new(source) }
    }

    /// Whether this is the caller's SQL being wrong or refused (an API answers 4xx, not 500).
    pub fn is_bad_sql(&self) -> bool {
        matches!(
            self,
            Error::SqlTooLarge { .. }
                | Error::SqlSyntax { .. }
                | Error::NotOneStatement { .. }
                | Error::NotReadOnly { .. }
        )
    }
}

/// Result with the warehouse [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
