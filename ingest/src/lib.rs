//! Ingest: connectors that pull deals, stage changes, activities, clients, plans and intake
//! requests from department systems into the canonical tables, incrementally and idempotently.
//!
//! Every connector has one shape ([`source::Source`]): built from its config, it can `check`
//! the connection, `discover` which canonical tables it fills, and `read` a stream of
//! [`source::Chunk`]s, each carrying the cursor to resume after it. The [`sync`] runner writes
//! each chunk and its cursor in one Delta commit, and quarantines bad rows with their reason.
//!
//! Layout: one folder or file per connector (`bitrix24/`, `amocrm/`, `sql/`, `files/`, `push`),
//! each CRM connector with a `wire` module holding its vendor's constants; [`http`] is the
//! plumbing the CRM connectors share (retries, pacing, failures, records to chunks);
//! [`mapping`] turns loosely typed records into canonical rows; [`quarantine`] keeps what does
//! not map and reads it again when the mapping changes. Apart from the connectors:
//! [`simulators`] (in-process CRM servers for tests and `simulate_from`) and [`demo`] (the
//! deterministic demo company), which use only the connectors' public constants.

pub mod amocrm;
pub mod bitrix24;
pub mod column_specs;
mod currency;
pub mod demo;
pub mod files;
pub mod http;
pub mod mapping;
pub mod org;
pub mod project;
pub mod push;
pub mod quarantine;
mod reconcile;
pub mod simulators;
pub mod source;
pub mod source_config;
pub mod sql;
pub mod sync;
mod vocabulary;

use std::path::PathBuf;

pub use source::{Chunk, Source, SourceContext, StreamInfo};
pub use sync::{SyncOptions, SyncReport, sync_project};

/// Errors of the ingest crate: each names the source and the place (file:line, API page).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source is misconfigured.
    #[error("source `{source_name}`: {message}")]
    Config {
        /// Source name in dealhouse.toml.
        source_name: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A source could not be read.
    #[error("source `{source_name}` at {location}: {message}")]
    Read {
        /// Source name.
        source_name: String,
        /// file:line, URL and page, table.
        location: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// An upstream API call failed: refused, or still failing when the retry budget ran out.
    #[error("source `{source_name}` at {location}: {failure}")]
    Http {
        /// Source name.
        source_name: String,
        /// The API address and method or path (secrets masked).
        location: String,
        /// What failed; [`http::HttpFailure::GaveUp`] when retries ran out.
        #[source]
        failure: http::HttpFailure,
    },
    /// The shared HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A file is refused whole (wrong encoding, missing columns); nothing of it is written.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it is refused.
        message: String,
    },
    /// A sync quarantined more of a source's records than its limit allows. What loaded is
    /// committed and the rest stays in quarantine, to be read again once the mapping is fixed.
    #[error(
        "source `{source_name}`: {quarantined} of {read} records read were quarantined ({share}%), more than the \
         {limit} allowed by {set_by}; the {loaded} that mapped are loaded and the quarantined ones are kept. Run \
         `dealhouse quarantine` to see why and what to change in dealhouse.toml (after the change, the next \
         `dealhouse sync` reads them again by itself); raise the limit there, or pass `--max-quarantined N` or `--max-quarantined N%` for \
         one run",
        loaded = read.saturating_sub(*quarantined),
        share = quarantine::limit::percent(*quarantined, *read)
    )]
    TooManyBad {
        /// Source name.
        source_name: String,
        /// Records quarantined in this sync (cursor reads; replays of held records do not count).
        quarantined: u64,
        /// Records read in this sync: loaded and quarantined.
        read: u64,
        /// The limit they exceeded.
        limit: quarantine::limit::QuarantineLimit,
        /// Where the limit is set (`--max-quarantined`, a `[sync]` key, the default).
        set_by: String,
    },
    /// The warehouse refused a write.
    #[error(transparent)]
    Warehouse(#[from] dealhouse_warehouse::Error),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Arrow.
    #[error(transparent)]
    Arrow(#[from] dealhouse_warehouse::datafusion::arrow::error::ArrowError),
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
