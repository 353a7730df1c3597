//! A page of JSON records -> one [`Chunk`]: records mapped to canonical rows, those that do not
//! map quarantined with their reason, one quarantine entry per upstream record.

use std::sync::Arc;

use chrono::Utc;
use dealhouse_warehouse::schema::{CanonicalRow, QuarantineRecord};
use serde_json::Value;
use sha2::Digest;
use tracing::warn;

use crate::Result;
use crate::source::Chunk;

/// Where records come from, for quarantine entries.
pub(crate) struct Upstream<'a> {
    /// Source name in dealhouse.toml (`source_system`).
    pub source: &'a str,
    /// The host or account address, safe to show (no secret in it).
    pub shown: &'a str,
    /// How the vendor names a record's id (`ID`, `id`).
    pub id_field: &'static str,
    /// A record's id as text.
    pub id: fn(&Value) -> Option<String>,
}

impl Upstream<'_> {
    /// Maps `records` (each with the page it was read from) to rows of `table`; a record that
    /// does not map is quarantined under `endpoint` (the method or path read) with the reason.
    pub(crate) fn chunk<R: CanonicalRow>(
        &self,
        table: &'static str,
        endpoint: &str,
        records: &[(Value, Arc<str>)],
        cursor: Option<String>,
        mut map: impl FnMut(&Value) -> std::result::Result<R, String>,
    ) -> Result<Chunk> {
        let mut rows = Vec::with_capacity(records.len());
        let mut quarantined = vec![];
        for (record, location) in records {
            match map(record) {
                Ok(row) => rows.push(row),
                Err(reason) => quarantined.push(self.quarantine(table, endpoint, location, record, reason)),
            }
        }
        if !quarantined.is_empty() {
            warn!(source = self.source, table, count = quarantined.len(), "records quarantined");
        }
        Ok(Chunk { table, batch: R::to_batch(&rows)?, quarantined, cursor })
    }

    fn quarantine(
        &self,
        table: &str,
        endpoint: &str,
        location: &str,
        record: &Value,
        reason: String,
    ) -> QuarantineRecord {
        let raw = record.to_string();
        let id = (self.id)(record);
        // One quarantine row per upstream record: a re-read replaces it instead of adding one.
        let key = match &id {
            Some(id) => format!("{endpoint}:{}={id}", self.id_field),
            None => format!("{endpoint}:sha256={}", hex::encode(&sha2::Sha256::digest(raw.as_bytes())[..8])),
        };
        QuarantineRecord {
            entity: table.to_string(),
            location: format!("{} {location} {}={}", self.shown, self.id_field, id.unwrap_or_default()),
            raw,
            reason,
            quarantined_at: Utc::now(),
            source_system: self.source.to_string(),
            source_id: key,
        }
    }
}
