//! Push intake: records delivered to the server (`POST /api/v1/intake/<source>`) by the
//! self-service portal and CRM webhooks, rather than pulled by `sync`.
//!
//! A request's records are mapped like a SQL source's rows (JSON keys = canonical column names)
//! and written as one Delta commit before the server answers, so an acknowledged record is
//! durable; a replayed record (same `source_id`) replaces the stored one instead of adding a row.

pub mod config;

use std::sync::Arc;

use dealhouse_warehouse::schema::canonical_table;
use dealhouse_warehouse::{CommitMeta, Project, Warehouse};
use futures::stream::BoxStream;
use serde_json::Value;

use crate::mapping::{MappingOptions, RawValue, Record, RecordMapper, parse_time_zone};
use crate::source::{Chunk, Source, StreamInfo};
use crate::source_config::{SourceConfig, parse_sources};
use crate::{Error, Result};

/// Most records one request may carry.
pub const MAX_RECORDS: usize = 10_000;

/// The connector `sync` sees for a push source: nothing to pull.
pub struct PushSource;

#[async_trait::async_trait]
impl Source for PushSource {
    async fn check(&self) -> Result<()> {
        Ok(())
    }
    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        Ok(vec![])
    }
    fn read(&self, _table: &'static str, _cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        Box::pin(futures::stream::empty())
    }
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
    let options = MappingOptions {
        time_zone: parse_time_zone(source, config.time_zone.as_deref())?,
        values: config.values.clone(),
        columns_hint: "the record's keys (canonical column names)".into(),
        ..Default::default()
    };
    let mut mapper = RecordMapper::new(project.clone(), source, &config.table, options)?;
    let def = canonical_table(mapper.table())
        .ok_or_else(|| Error::Config { source_name: source.into(), message: "not a canonical table".into() })?;
    for (i, map) in records.iter().enumerate() {
        let mut record = Record::new();
        for (k, v) in map {
            record.push(k.clone(), raw(v));
        }
        mapper.push(&record, &format!("POST /api/v1/intake/{source} record {}", i + 1), &record);
    }
    let (batch, quarantined) = mapper.finish()?;
    if !quarantined.is_empty() {
        crate::sync::write_quarantine(warehouse, source, &quarantined).await?;
    }
    let meta = CommitMeta { operation: "intake".into(), source: source.into(), cursor: None };
    let stats = warehouse.upsert(&def, vec![batch], &meta).await.map_err(Error::from)?;
    Ok(Accepted {
        table: def.name.to_string(),
        received: records.len() as u64,
        inserted: stats.inserted,
        updated: stats.updated,
        quarantined: quarantined.len() as u64,
    })
}
