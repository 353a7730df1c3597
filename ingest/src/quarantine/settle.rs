//! Writing a chunk together with what it changes in the quarantine, in an order a crash
//! between two commits cannot turn into a lost or duplicated record.
//!
//! A chunk touches two Delta tables (its canonical table and `quarantine`), so it cannot be one
//! commit; each table gets one, in this order:
//!
//! - **Cursor reads** ([`write_read`]): first the quarantine commit (new failures written,
//!   rows of records that now loaded cleared), then the rows with the cursor. Killed in between,
//!   the cursor has not moved, so the next sync reads the same records again: a cleared record
//!   is loaded then, and a failure is written again under the same key (replaced, not added).
//!   Writing failures first is what keeps a bad record from being skipped: its row is stored
//!   before the cursor passes it.
//! - **Replays** ([`write_replayed`]): first the rows (no cursor is involved), then the
//!   quarantine commit. Killed in between, the records are loaded and their quarantine rows are
//!   still there, still marked with the old fingerprint (a forced replay marks them stale
//!   first): the next sync replays them again, the upsert finds the rows unchanged, and the
//!   rows are cleared. Clearing first could lose a record: gone from the quarantine, never
//!   loaded, and behind the cursor.
//!
//! Rows are upserted by `(source_system, source_id)`, so loading a record twice never makes two.

use dealhouse_warehouse::schema::{CanonicalRow, QuarantineRecord, TableDef};
use dealhouse_warehouse::{CommitMeta, Warehouse, WriteStats};

use super::Ledger;
use crate::Result;
use crate::source::Chunk;

/// What writing a chunk did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Written {
    /// The rows' upsert.
    pub rows: WriteStats,
    /// Quarantine rows cleared (their records loaded, or are no longer upstream).
    pub cleared: u64,
}

/// A chunk of a cursor read (or of a push request, `operation` = `intake`): quarantine first,
/// then the rows with the cursor.
pub(crate) async fn write_read(
    warehouse: &Warehouse,
    operation: &str,
    source: &str,
    def: &TableDef,
    chunk: Chunk,
    ledger: &mut Ledger,
    mapping: Option<&str>,
) -> Result<Written> {
    let cleared = write_quarantine(warehouse, source, &chunk, ledger, mapping).await?;
    let meta = CommitMeta { operation: operation.into(), source: source.into(), cursor: chunk.cursor };
    let rows = warehouse.upsert(def, vec![chunk.batch], &meta).await?;
    Ok(Written { rows, cleared })
}

/// A chunk of a replay: the rows first, then the quarantine. `between` runs between the two
/// commits (tests inject a crash there).
pub(crate) async fn write_replayed(
    warehouse: &Warehouse,
    source: &str,
    def: &TableDef,
    chunk: Chunk,
    ledger: &mut Ledger,
    mapping: Option<&str>,
    between: impl FnOnce() -> Result<()>,
) -> Result<Written> {
    let meta = CommitMeta { operation: "replay".into(), source: source.into(), cursor: None };
    let rows = warehouse.upsert(def, vec![chunk.batch.clone()], &meta).await?;
    between()?;
    let cleared = write_quarantine(warehouse, source, &chunk, ledger, mapping).await?;
    Ok(Written { rows, cleared })
}

/// Marks `rows` stale (no fingerprint) in one commit, so that a forced replay cut short is
/// picked up by the next plain sync like a changed mapping.
pub(crate) async fn mark_stale(warehouse: &Warehouse, source: &str, rows: &[QuarantineRecord]) -> Result<()> {
    if rows.iter().all(|q| q.mapping.is_none()) {
        return Ok(());
    }
    let stale: Vec<QuarantineRecord> = rows.iter().map(|q| QuarantineRecord { mapping: None, ..q.clone() }).collect();
    let meta = CommitMeta { operation: "quarantine".into(), source: source.into(), cursor: None };
    warehouse.upsert(&QuarantineRecord::table_def(), vec![QuarantineRecord::to_batch(&stale)?], &meta).await?;
    Ok(())
}

/// One quarantine commit: `chunk`'s failures, stamped with `mapping`, written, and the stored
/// rows it answers for without failing again cleared. Returns how many were cleared.
async fn write_quarantine(
    warehouse: &Warehouse,
    source: &str,
    chunk: &Chunk,
    ledger: &mut Ledger,
    mapping: Option<&str>,
) -> Result<u64> {
    let cleared = ledger.cleared(chunk);
    if chunk.quarantined.is_empty() && cleared.is_empty() {
        return Ok(0);
    }
    let failed: Vec<QuarantineRecord> = chunk
        .quarantined
        .iter()
        .map(|q| QuarantineRecord { mapping: mapping.map(str::to_string), ..q.clone() })
        .collect();
    let meta = CommitMeta { operation: "quarantine".into(), source: source.into(), cursor: None };
    let batch = QuarantineRecord::to_batch(&failed)?;
    let stats =
        warehouse.upsert_and_delete(&QuarantineRecord::table_def(), vec![batch], source, &cleared, &meta).await?;
    ledger.apply(&failed, &cleared);
    tracing::debug!(
        source,
        written = failed.len(),
        cleared = cleared.len(),
        deleted = stats.deleted,
        "quarantine updated"
    );
    Ok(cleared.len() as u64)
}
