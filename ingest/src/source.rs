//! The shape every connector shares.

use std::sync::Arc;

use dealhouse_warehouse::Project;
use dealhouse_warehouse::datafusion::arrow::record_batch::RecordBatch;
use dealhouse_warehouse::schema::QuarantineRecord;
use futures::stream::BoxStream;

use crate::Result;

/// Runtime pieces a connector uses, passed in rather than global so tests can build their own.
#[derive(Clone)]
pub struct SourceContext {
    /// The project (config, directory).
    pub project: Arc<Project>,
    /// The source's name in dealhouse.toml; it becomes `source_system` in every row.
    pub source_name: String,
    /// Shared HTTP client.
    pub http: reqwest::Client,
}

/// A canonical table a source fills.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Canonical table name (`deals`, `activities`, ...).
    pub table: &'static str,
    /// Rows upstream, when the source can tell cheaply (for progress bars).
    pub estimated_rows: Option<u64>,
}

/// A piece of one stream: rows for one canonical table, rows that failed, and the cursor to
/// resume after this chunk (stored in the same commit as the rows).
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Canonical table.
    pub table: &'static str,
    /// Rows with the canonical table's schema.
    pub batch: RecordBatch,
    /// Rows that could not be parsed or mapped, with the reason.
    pub quarantined: Vec<QuarantineRecord>,
    /// Where to resume after this chunk; `None` leaves the stored cursor as it is.
    pub cursor: Option<String>,
    /// Quarantine keys (the `source_id` of quarantine rows) this chunk answers for: every record
    /// it read, whether it loaded or failed again, and for a replay every record it asked for
    /// that is no longer upstream. A stored quarantine row with such a key and no new failure
    /// in this chunk is cleared.
    pub settled: Vec<String>,
    /// Key prefixes this chunk answers for as a whole: a file read again from its first line
    /// to its last (`exports/deals.csv:`), whose old quarantine rows all give way to this read's.
    pub settled_prefixes: Vec<String>,
    /// Records read and left out on purpose by a row filter (a file table's `where`): neither
    /// loaded nor quarantined, counted so the sync summary shows them.
    pub skipped: u64,
}

impl Chunk {
    /// A chunk of `batch` and `quarantined` that settles nothing.
    pub fn new(
        table: &'static str,
        batch: RecordBatch,
        quarantined: Vec<QuarantineRecord>,
        cursor: Option<String>,
    ) -> Self {
        Self { table, batch, quarantined, cursor, settled: vec![], settled_prefixes: vec![], skipped: 0 }
    }
}

/// A connector. Build it from its config, then `check`, `discover`, `read`.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Verifies the connection and credentials; errors say how to fix them.
    async fn check(&self) -> Result<()>;
    /// Canonical tables this source fills, in the order they should be read.
    async fn discover(&self) -> Result<Vec<StreamInfo>>;
    /// Reads one stream from `cursor` (None = from the beginning).
    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>>;
    /// The source ids of every record of `table` upstream now, for reconciliation: cursor reads
    /// never see deletions, so `sync --reconcile` marks stored records missing from this list
    /// as deleted. `None`: the source cannot list them (the table is not reconciled).
    async fn list_ids(&self, _table: &'static str) -> Result<Option<Vec<String>>> {
        Ok(None)
    }
    /// A digest of what decides how this source's records map (stage map, `values`, branch
    /// codes, queries), kept on every record it quarantines: a sync under a different digest
    /// replays those records, so fixing the mapping is enough to load them. `None`: the source
    /// has no mapping of its own.
    fn mapping_fingerprint(&self) -> Option<String> {
        None
    }
    /// Reads the quarantined records `held` of `table` again, by their ids upstream (never the
    /// whole history): chunks as [`Source::read`] yields them but without cursors, whose
    /// `settled` keys cover every held record they answer for, those no longer upstream
    /// included. Records the source cannot read again are left out (they stay quarantined).
    fn replay(&self, _table: &'static str, _held: Vec<QuarantineRecord>) -> BoxStream<'_, Result<Chunk>> {
        Box::pin(futures::stream::empty())
    }
}
