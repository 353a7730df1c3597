//! The quarantine: records a source read but could not map, kept with their place, the raw
//! record, the reason (what to change) and what it takes to read them again, so that fixing the
//! mapping brings them in instead of leaving them stranded behind a cursor that moved on.
//!
//! Each row is keyed by `(source, key)`, the key naming the upstream record stably run to run
//! (`crm.deal.list:ID=7`, `postgres:deals:source_id=17`, `exports/deals.csv:12`), with its id
//! upstream (`record_id`) and the fingerprint of the source's mapping it failed under
//! (`mapping`). The sync runner ([`crate::sync`]) keeps a [`Ledger`] of a source's rows per table:
//!
//! - every chunk names the keys it answers for ([`crate::Chunk::settled`]): a stored row whose
//!   record was read again and mapped is cleared, one that failed again is replaced;
//! - after the cursor read, rows whose fingerprint differs from the source's current one (the
//!   user changed the stage map, `values`, branch codes or a query) are replayed: the connector
//!   reads exactly those records again by id ([`crate::Source::replay`]); `sync
//!   --replay-quarantine` replays every row of the chosen sources.
//!
//! How a crash between commits is safe is in [`settle`]; [`report`] is what `dealhouse
//! quarantine` shows; [`limit`] is how much of a sync may be quarantined before it fails.

pub mod limit;
pub mod report;
pub(crate) mod settle;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use dealhouse_warehouse::config::VocabulariesConfig;
use dealhouse_warehouse::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use dealhouse_warehouse::datafusion::arrow::compute::cast;
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use dealhouse_warehouse::datafusion::arrow::error::ArrowError;
use dealhouse_warehouse::datafusion::prelude::{SessionContext, col, lit};
use dealhouse_warehouse::schema::{CanonicalRow, QuarantineRecord};
use dealhouse_warehouse::{ProjectConfig, Warehouse};
use sha2::{Digest, Sha256};

use crate::source::Chunk;
use crate::{Error, Result};

/// The stored quarantine rows of `source` (every source when None), oldest first.
pub async fn rows(warehouse: &Warehouse, source: Option<&str>) -> Result<Vec<QuarantineRecord>> {
    let table = QuarantineRecord::TABLE;
    let reading = |e: &dyn std::fmt::Display| Error::Read {
        source_name: source.unwrap_or("*").to_string(),
        location: format!("stored `{table}`"),
        message: e.to_string(),
    };
    let Some(provider) = warehouse.provider(table).await? else { return Ok(vec![]) };
    let ctx = SessionContext::new();
    let mut frame = ctx.read_table(provider).map_err(|e| reading(&e))?;
    if let Some(source) = source {
        frame = frame.filter(col("source_system").eq(lit(source))).map_err(|e| reading(&e))?;
    }
    let batches = frame.collect().await.map_err(|e| reading(&e))?;
    let mut out = vec![];
    for batch in &batches {
        records_of(batch, &mut out).map_err(|e| reading(&e))?;
    }
    out.sort_by(|a, b| (a.quarantined_at, &a.source_id).cmp(&(b.quarantined_at, &b.source_id)));
    Ok(out)
}

/// Quarantine rows from a scanned batch (strings may come as views; columns added by a later
/// version may be missing from an old table and read as empty).
fn records_of(batch: &RecordBatch, out: &mut Vec<QuarantineRecord>) -> std::result::Result<(), ArrowError> {
    let text = |name: &str| -> std::result::Result<Option<Vec<Option<String>>>, ArrowError> {
        let Some(c) = batch.column_by_name(name) else { return Ok(None) };
        let c = cast(c, &DataType::Utf8)?;
        let c = c.as_string::<i32>();
        Ok(Some((0..c.len()).map(|i| (!c.is_null(i)).then(|| c.value(i).to_string())).collect()))
    };
    let column = |name: &str| text(name).map(Option::unwrap_or_default);
    let (entity, location, raw, reason) = (column("entity")?, column("location")?, column("raw")?, column("reason")?);
    let (system, id) = (column("source_system")?, column("source_id")?);
    let record_id = text("record_id")?;
    let mapping = text("mapping")?;
    let at: Vec<DateTime<Utc>> = match batch.column_by_name("quarantined_at") {
        Some(c) => {
            let c = cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let c = c.as_primitive::<TimestampMicrosecondType>();
            (0..c.len()).map(|i| DateTime::from_timestamp_micros(c.value(i)).unwrap_or_default()).collect()
        }
        None => vec![DateTime::<Utc>::default(); batch.num_rows()],
    };
    for (i, quarantined_at) in at.into_iter().enumerate() {
        let get = |v: &Vec<Option<String>>| v.get(i).cloned().flatten().unwrap_or_default();
        out.push(QuarantineRecord {
            entity: get(&entity),
            location: get(&location),
            raw: get(&raw),
            reason: get(&reason),
            quarantined_at,
            record_id: record_id.as_ref().and_then(|v| v.get(i).cloned().flatten()),
            mapping: mapping.as_ref().and_then(|v| v.get(i).cloned().flatten()),
            source_system: get(&system),
            source_id: get(&id),
        });
    }
    Ok(())
}

/// A digest of what decides how `source`'s records map: `mapping` (the source's own settings,
/// as the connector renders them), the organisation its rows are checked against (the branch
/// codes it claims for this source, the holdings) and the configured `[vocabularies]`.
pub(crate) fn fingerprint(project: &ProjectConfig, source: &str, mapping: &str) -> String {
    let org = &project.organisation;
    let codes: Vec<(&str, Option<&String>)> =
        org.branches.iter().map(|b| b.get_ref()).map(|b| (b.id.as_str(), b.codes.get(source))).collect();
    let holdings: Vec<&str> = org.holdings.iter().map(|h| h.id.as_str()).collect();
    let mut text = format!("{mapping}|{codes:?}|{holdings:?}");
    // Only when set: a project without [vocabularies] keeps the digests it had before they
    // existed, so upgrading replays nothing.
    if project.vocabularies != VocabulariesConfig::default() {
        text.push_str(&format!("|{:?}", project.vocabularies));
    }
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// The id a held row's record is read again by: its `record_id`, else (a row written before
/// record ids were kept) the id at the end of its key (`crm.deal.list:ID=7`,
/// `postgres:deals:source_id=17`).
pub(crate) fn record_id(row: &QuarantineRecord) -> Option<String> {
    if let Some(id) = row.record_id.as_ref().filter(|id| !id.is_empty()) {
        return Some(id.clone());
    }
    let key = row.source_id.split_once('#').map_or(row.source_id.as_str(), |(k, _)| k);
    key.rsplit_once('=').map(|(_, id)| id.to_string()).filter(|id| !id.is_empty() && !key.contains(":sha256="))
}

/// The quarantine rows of one source and table, as stored when its sync began and as this run
/// changed them.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    rows: HashMap<String, QuarantineRecord>,
    /// Keys quarantined by this run: a whole-file settlement must not clear what earlier chunks
    /// of the same read wrote.
    touched: HashSet<String>,
}

impl Ledger {
    /// Ledgers of `source`, by table.
    pub(crate) async fn load(warehouse: &Warehouse, source: &str) -> Result<BTreeMap<String, Ledger>> {
        let mut out: BTreeMap<String, Ledger> = BTreeMap::new();
        for row in rows(warehouse, Some(source)).await? {
            out.entry(row.entity.clone()).or_default().rows.insert(row.source_id.clone(), row);
        }
        Ok(out)
    }

    /// The stored keys `chunk` answers for and does not quarantine again: their rows give way.
    pub(crate) fn cleared(&self, chunk: &Chunk) -> Vec<String> {
        if self.rows.is_empty() {
            return vec![];
        }
        let again: HashSet<&str> = chunk.quarantined.iter().map(|q| q.source_id.as_str()).collect();
        let mut keys: Vec<String> = chunk
            .settled
            .iter()
            .filter(|k| self.rows.contains_key(*k) && !again.contains(k.as_str()))
            .cloned()
            .collect();
        for prefix in &chunk.settled_prefixes {
            keys.extend(
                self.rows
                    .keys()
                    .filter(|k| k.starts_with(prefix.as_str()))
                    .filter(|k| !again.contains(k.as_str()) && !self.touched.contains(*k))
                    .cloned(),
            );
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Records what a quarantine commit wrote and cleared.
    pub(crate) fn apply(&mut self, written: &[QuarantineRecord], cleared: &[String]) {
        for key in cleared {
            self.rows.remove(key);
        }
        for q in written {
            self.touched.insert(q.source_id.clone());
            self.rows.insert(q.source_id.clone(), q.clone());
        }
    }

    /// The rows to replay: those not read again by this run whose mapping fingerprint differs
    /// from `mapping` (all of them when `force`).
    pub(crate) fn stale(&self, mapping: Option<&str>, force: bool) -> Vec<QuarantineRecord> {
        let mut rows: Vec<QuarantineRecord> = self
            .rows
            .values()
            .filter(|q| !self.touched.contains(&q.source_id))
            .filter(|q| force || q.mapping.as_deref() != mapping)
            .cloned()
            .collect();
        rows.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        rows
    }

    /// Rows held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests;
