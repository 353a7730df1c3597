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
        let mut settled = Vec::with_capacity(records.len());
        for (record, location) in records {
            if let Some(id) = (self.id)(record) {
                settled.push(self.key(endpoint, &id));
            }
            match map(record) {
                Ok(row) => rows.push(row),
                Err(reason) => quarantined.push(self.quarantine(table, endpoint, location, record, reason)),
            }
        }
        if !quarantined.is_empty() {
            warn!(source = self.source, table, count = quarantined.len(), "records quarantined");
        }
        Ok(Chunk { settled, ..Chunk::new(table, R::to_batch(&rows)?, quarantined, cursor) })
    }

    /// The quarantine key of the record `id` read from `endpoint`: one row per upstream record,
    /// so a re-read replaces it instead of adding one, and a replay finds it.
    pub(crate) fn key(&self, endpoint: &str, id: &str) -> String {
        format!("{endpoint}:{}={id}", self.id_field)
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
            Some(id) => self.key(endpoint, id),
            None => format!("{endpoint}:sha256={}", hex::encode(&sha2::Sha256::digest(raw.as_bytes())[..8])),
        };
        QuarantineRecord {
            entity: table.to_string(),
            location: format!("{} {location} {}={}", self.shown, self.id_field, id.clone().unwrap_or_default()),
            raw,
            reason,
            quarantined_at: Utc::now(),
            record_id: id,
            // The sync runner stamps the source's mapping fingerprint when it writes the row.
            mapping: None,
            source_system: self.source.to_string(),
            source_id: key,
        }
    }
}
