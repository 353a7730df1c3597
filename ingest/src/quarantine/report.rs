//! What `dealhouse quarantine` shows: the quarantined records grouped by source, table and
//! reason (the reason says what to change), with how each group gets read again once it is
//! changed, and the rows themselves up to a limit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use dealhouse_warehouse::schema::QuarantineRecord;
use dealhouse_warehouse::{ProjectConfig, Warehouse};
use serde::Serialize;

use crate::Result;
use crate::source_config::{SourceConfig, parse_sources};

/// Which rows to show.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only these sources (all when empty).
    pub sources: Vec<String>,
    /// Only rows whose reason contains this text (case-insensitive).
    pub reason_contains: Option<String>,
    /// Rows listed at most (the groups always count them all).
    pub limit: usize,
}

/// Records quarantined for the same reason.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Source name.
    pub source: String,
    /// Its kind in dealhouse.toml (`bitrix24`, `postgres`, ...), or `removed` when it is gone.
    pub kind: String,
    /// Canonical table the records were meant for.
    pub table: String,
    /// What is wrong and what to change.
    pub reason: String,
    /// Records.
    pub count: u64,
    /// When the first and the latest of them were quarantined.
    pub first_at: DateTime<Utc>,
    /// See `first_at`.
    pub last_at: DateTime<Utc>,
    /// Where one of them was read, as an example.
    pub example: String,
    /// How the records get read again once the reason is dealt with.
    pub then: String,
}

/// One quarantined record.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Source name.
    pub source: String,
    /// Canonical table.
    pub table: String,
    /// The record's id upstream, when it has one.
    pub record_id: Option<String>,
    /// Where it was read.
    pub location: String,
    /// What is wrong and what to change.
    pub reason: String,
    /// When it was quarantined.
    pub quarantined_at: DateTime<Utc>,
    /// The record as read.
    pub raw: String,
}

/// The quarantine as `dealhouse quarantine` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// Records matching the filter.
    pub total: u64,
    /// Grouped by source, table and reason; the largest groups first.
    pub groups: Vec<Group>,
    /// The records, newest first, at most the filter's limit.
    pub rows: Vec<Row>,
}

/// The quarantine of the project's warehouse, filtered, grouped and listed.
pub async fn listing(config: &ProjectConfig, warehouse: &Warehouse, filter: &Filter) -> Result<Listing> {
    let sources = parse_sources(config)?;
    let needle = filter.reason_contains.as_deref().map(str::to_lowercase);
    let mut rows: Vec<QuarantineRecord> = super::rows(warehouse, None)
        .await?
        .into_iter()
        .filter(|q| filter.sources.is_empty() || filter.sources.contains(&q.source_system))
        .filter(|q| needle.as_deref().is_none_or(|n| q.reason.to_lowercase().contains(n)))
        .collect();
    let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
    for q in &rows {
        let key = (q.source_system.clone(), q.entity.clone(), q.reason.clone());
        let group = groups.entry(key).or_insert_with(|| {
            let source = sources.get(&q.source_system);
            Group {
                source: q.source_system.clone(),
                kind: source.map_or("removed", SourceConfig::kind).to_string(),
                table: q.entity.clone(),
                reason: q.reason.clone(),
                count: 0,
                first_at: q.quarantined_at,
                last_at: q.quarantined_at,
                example: q.location.clone(),
                then: then(&q.source_system, source),
            }
        });
        group.count += 1;
        group.first_at = group.first_at.min(q.quarantined_at);
        group.last_at = group.last_at.max(q.quarantined_at);
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.source, &a.table).cmp(&(&b.source, &b.table))));
    let total = rows.len() as u64;
    rows.reverse();
    rows.truncate(filter.limit);
    let rows = rows
        .into_iter()
        .map(|q| Row {
            source: q.source_system,
            table: q.entity,
            record_id: q.record_id,
            location: q.location,
            reason: q.reason,
            quarantined_at: q.quarantined_at,
            raw: q.raw,
        })
        .collect();
    Ok(Listing { total, groups, rows })
}

/// How records of `source` are read again, by kind.
fn then(name: &str, source: Option<&SourceConfig>) -> String {
    let replay = format!("`dealhouse sync --replay-quarantine {name}`");
    let Some(source) = source else {
        return format!(
            "source `{name}` is no longer in dealhouse.toml: nothing reads these records again; add it back, or \
             leave them"
        );
    };
    match source {
        SourceConfig::Bitrix24(_) | SourceConfig::AmoCrm(_) => format!(
            "after a change to dealhouse.toml, `dealhouse sync` reads these records again by id; a record fixed in \
             the CRM is read with its next change, or at once with {replay}"
        ),
        SourceConfig::Sqlite(_) | SourceConfig::Postgres(_) | SourceConfig::Mysql(_) => format!(
            "after a change to dealhouse.toml (a query, branch codes), `dealhouse sync` reads these rows again by \
             source_id; a row fixed in the database is read when its cursor column moves, or at once with {replay}"
        ),
        SourceConfig::Csv(_) | SourceConfig::Xlsx(_) | SourceConfig::Jsonl(_) => {
            "after a change to dealhouse.toml, `dealhouse sync` reads the files again; a file fixed and saved is \
             read again by the next `dealhouse sync`"
                .to_string()
        }
        SourceConfig::Push(_) => format!(
            "after a change to dealhouse.toml, `dealhouse sync` maps the records kept here again; or send the record \
             again, fixed, with the same source_id ({replay} forces the first)"
        ),
    }
}
