//! Push intake: records delivered to the server (`POST /api/v1/intake/<source>`) by the
//! self-service portal and CRM webhooks, rather than pulled by `sync`.
//!
//! A request's records are mapped like a SQL source's rows (JSON keys = canonical column names)
//! and written as one Delta commit before the server answers, so an acknowledged record is
//! durable; a replayed record (same `source_id`) replaces the stored one instead of adding a row.
//!
//! A record that does not map is quarantined under its `source_id` with the record as sent, so
//! sending it again fixed clears it, and `sync` replays it from that copy when the source's
//! mapping (`values`, `time_zone`, branch codes) changes: nothing upstream can be asked again.

pub mod config;

use std::sync::Arc;

use dealhouse_warehouse::schema::{CanonicalRow, QuarantineRecord, canonical_table};
use dealhouse_warehouse::{Project, Warehouse};
use futures::stream::BoxStream;
use serde_json::Value;

use self::config::PushConfig;
use crate::mapping::{MappingOptions, RawValue, Record, RecordMapper, RecordOrigin, parse_time_zone};
use crate::quarantine::Ledger;
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::source_config::{SourceConfig, parse_sources};
use crate::{Error, Result};

/// Most records one request may carry.
pub const MAX_RECORDS: usize = 10_000;

/// The connector `sync` sees for a push source: nothing to pull, but its quarantined records
/// to replay from the copies kept.
pub struct PushSource {
    ctx: SourceContext,
    config: PushConfig,
}

impl PushSource {
    /// The push source `ctx.source_name` configured by `config`.
    pub fn new(ctx: SourceContext, config: PushConfig) -> Self {
        Self { ctx, config }
    }
}

#[async_trait::async_trait]
impl Source for PushSource {
    async fn check(&self) -> Result<()> {
        Ok(())
    }
    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        let def = canonical_table(&self.config.table).ok_or_else(|| Error::Config {
            source_name: self.ctx.source_name.clone(),
            message: format!("`{}` is not a canonical table", self.config.table),
        })?;
        Ok(vec![StreamInfo { table: def.name, estimated_rows: None }])
    }
    fn read(&self, _table: &'static str, _cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        Box::pin(futures::stream::empty())
    }
    fn mapping_fingerprint(&self) -> Option<String> {
        Some(fingerprint(&self.ctx.project, &self.ctx.source_name, &self.config))
    }
    fn replay(&self, _table: &'static str, held: Vec<QuarantineRecord>) -> BoxStream<'_, Result<Chunk>> {
        let chunk = async move {
            let mut mapper = mapper(self.ctx.project.clone(), &self.ctx.source_name, &self.config)?;
            for row in &held {
                // The record as it was sent; a row that never was one is replayed as nothing
                // and stays.
                let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&row.raw) else { continue };
                mapper.push_as(&record(&map), &row.location, Some(&row.source_id), || row.raw.clone());
            }
            mapper.chunk(None)
        };
        Box::pin(futures::stream::once(chunk))
    }
}

/// The mapping fingerprint of a push source (see [`Source::mapping_fingerprint`]).
fn fingerprint(project: &Project, source: &str, config: &PushConfig) -> String {
    let mapping = format!("{}|{:?}|{:?}|{:?}", config.table, config.time_zone, config.values, config.currency);
    crate::quarantine::fingerprint(&project.config, source, &mapping)
}

fn mapper(project: Arc<Project>, source: &str, config: &PushConfig) -> Result<RecordMapper> {
    let options = MappingOptions {
        origin: RecordOrigin::Push,
        time_zone: parse_time_zone(source, config.time_zone.as_deref())?,
        values: config.values.clone(),
        columns_hint: "the record's keys (canonical column names)".into(),
        currency: config.currency.clone(),
        ..Default::default()
    };
    RecordMapper::new(project, source, &config.table, options)
}

fn record(map: &serde_json::Map<String, Value>) -> Record {
    let mut record = Record::new();
    for (k, v) in map {
        record.push(k.clone(), raw(v));
    }
    record
}

/// What a request did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    /// Canonical table written.
    pub table: String,
    /// Records received.
    pub received: u64,
    /// Records new to the table.
    pub inserted: u64,
    /// Records that replaced a stored version with different content.
    pub updated: u64,
    /// Records quarantined (with their reason, in the `quarantine` table).
    pub quarantined: u64,
}

/// Why a request was refused as a whole (nothing of it is written).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No push source of that name.
    #[error("{0}")]
    UnknownSource(String),
    /// The body is not JSON objects.
    #[error("{0}")]
    BadBody(String),
    /// Writing failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

/// The records of a body: one JSON object, an array of objects, or JSON Lines.
pub fn parse_body(body: &[u8]) -> std::result::Result<Vec<serde_json::Map<String, Value>>, Refused> {
    let text = std::str::from_utf8(body).map_err(|e| Refused::BadBody(format!("the body is not UTF-8: {e}")))?;
    let mut values = vec![];
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => values = items,
            Ok(_) => return Err(Refused::BadBody("a body starting with `[` must be one JSON array".into())),
            Err(e) => {
                return Err(Refused::BadBody(format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column())));
            }
        }
    } else {
        for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            values.push(value.map_err(|e| {
                Refused::BadBody(format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column()))
            })?);
        }
    }
    if values.is_empty() {
        return Err(Refused::BadBody("no records: send a JSON object, an array of objects or JSON Lines".into()));
    }
    if values.len() > MAX_RECORDS {
        return Err(Refused::BadBody(format!(
            "{} records in one request; send at most {MAX_RECORDS} per request",
            values.len()
        )));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(map) => Ok(map),
            other => Err(Refused::BadBody(format!(
                "record {} is {}, not a JSON object",
                i + 1,
                match other {
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            ))),
        })
        .collect()
}

fn raw(value: &Value) -> RawValue {
    match value {
        Value::Null => RawValue::Null,
        Value::Bool(b) => RawValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => RawValue::Int(i),
            // Money should come as a string ("1234.56"); a JSON number keeps its shortest text.
            None => RawValue::Text(n.to_string()),
        },
        Value::String(s) => RawValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => RawValue::Invalid("a nested JSON value".into()),
    }
}

/// Maps and stores one request's records for push source `source`.
pub async fn accept(
    project: Arc<Project>,
    warehouse: &Warehouse,
    source: &str,
    body: &[u8],
) -> std::result::Result<Accepted, Refused> {
    let sources = parse_sources(&project.config).map_err(Error::from)?;
    let push_sources = || {
        sources
            .iter()
            .filter(|(_, c)| matches!(c, SourceConfig::Push(_)))
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(SourceConfig::Push(config)) = sources.get(source) else {
        return Err(Refused::UnknownSource(format!(
            "no push source `{source}` in dealhouse.toml; push sources: {}",
            match push_sources() {
                s if s.is_empty() => "none (add one with kind = \"push\")".to_string(),
                s => s,
            }
        )));
    };
    let records = parse_body(body)?;
    let mut mapper = mapper(project.clone(), source, config)?;
    let def = canonical_table(mapper.table())
        .ok_or_else(|| Error::Config { source_name: source.into(), message: "not a canonical table".into() })?;
    for (i, map) in records.iter().enumerate() {
        let record = record(map);
        let location = format!("POST /api/v1/intake/{source} record {}", i + 1);
        // Keyed by the record's id, so that sending it again replaces (or clears) its entry.
        let key = record.get("source_id").and_then(RawValue::to_text).map(|id| format!("source_id={id}"));
        mapper.push_as(&record, &location, key.as_deref(), || Value::Object(map.clone()).to_string());
    }
    let chunk = mapper.chunk(None)?;
    let quarantined = chunk.quarantined.len() as u64;
    // The quarantine is read only when it may hold something of this source.
    let mut ledger = match warehouse.info(QuarantineRecord::TABLE).await.map_err(Error::from)? {
        Some(info) if info.rows > 0 => Ledger::load(warehouse, source).await?.remove(def.name).unwrap_or_default(),
        _ => Ledger::default(),
    };
    let mapping = fingerprint(&project, source, config);
    let written =
        crate::quarantine::settle::write_read(warehouse, "intake", source, &def, chunk, &mut ledger, Some(&mapping))
            .await?;
    Ok(Accepted {
        table: def.name.to_string(),
        received: records.len() as u64,
        inserted: written.rows.inserted,
        updated: written.rows.updated,
        quarantined,
    })
}
