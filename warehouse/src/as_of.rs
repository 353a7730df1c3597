//! Reading tables as they were: a Delta version or a point in time ([`TableAt`]), and which
//! version that turned out to be ([`ReadAt`]), so a report can say what it read and be run
//! again on exactly the same rows.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use datafusion::catalog::TableProvider;
use deltalake::DeltaTable;

use crate::{Error, Result, Warehouse};

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableAt {
    /// The current version.
    Latest,
    /// Exactly this Delta version.
    Version(i64),
    /// The latest version committed at or before this instant.
    Time(DateTime<Utc>),
}

impl std::fmt::Display for TableAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableAt::Latest => f.write_str("latest version"),
            TableAt::Version(v) => write!(f, "version {v}"),
            TableAt::Time(t) => write!(f, "version at {}", t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        }
    }
}

/// The version a read resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAt {
    /// Table name.
    pub table: String,
    /// The Delta version read.
    pub version: i64,
    /// When that version was committed (from the commit's own record, so the same version
    /// always reports the same time).
    pub committed_at: Option<DateTime<Utc>>,
}

impl Warehouse {
    /// Opens `name` at `at`, or `None` if the table was never written. A version that does not
    /// exist, or a time before the table's first commit, is an error naming what exists.
    pub async fn open_at(&self, name: &str, at: TableAt) -> Result<Option<(DeltaTable, ReadAt)>> {
        let Some(latest) = self.open(name).await? else { return Ok(None) };
        let latest_version = latest.version().map_or(0, |v| v as i64);
        let version = match at {
            TableAt::Latest => latest_version,
            TableAt::Version(v) => {
                if v < 0 || v > latest_version {
                    return Err(Error::NoVersionAt {
                        table: name.into(),
                        at: at.to_string(),
                        fix: format!("its versions are 0 to {latest_version}; pass --version 0..={latest_version}"),
                    });
                }
                v
            }
            TableAt::Time(when) => {
                version_at(&latest, latest_version, when).await.ok_or_else(|| Error::NoVersionAt {
                    table: name.into(),
                    at: at.to_string(),
                    fix: "the table was first written later; pass a later --as-of or a --version".into(),
                })?
            }
        };
        let committed_at = commit_time(&latest, version).await;
        let table = if version == latest_version {
            latest
        } else {
            let mut t = self.builder(name)?.build().map_err(|e| Error::delta(name, e))?;
            t.load_version(version as u64).await.map_err(|e| Error::delta(name, e))?;
            t
        };
        Ok(Some((table, ReadAt { table: name.into(), version, committed_at })))
    }

    /// A DataFusion provider over `name` at `at`, and the version it reads.
    pub async fn provider_at(&self, name: &str, at: TableAt) -> Result<Option<(Arc<dyn TableProvider>, ReadAt)>> {
        let Some((table, read)) = self.open_at(name, at).await? else { return Ok(None) };
        let provider = table.table_provider().await.map_err(|e| Error::delta(name, e.into()))?;
        Ok(Some((provider, read)))
    }
}

/// When `version` was committed, from the `commitInfo` of its log entry (the writer's clock,
/// recorded once: copying the table does not change it, unlike file times); `None` when the
/// entry is gone (log cleanup) or records no time.
async fn commit_time(table: &DeltaTable, version: i64) -> Option<DateTime<Utc>> {
    let bytes = table.log_store().read_commit_entry(u64::try_from(version).ok()?).await.ok()??;
    bytes.split(|b| *b == b'\n').find_map(|line| {
        let action: serde_json::Value = serde_json::from_slice(line).ok()?;
        let millis = action.get("commitInfo")?.get("timestamp")?.as_i64()?;
        Utc.timestamp_millis_opt(millis).single()
    })
}

/// The latest version committed at or before `when`, by the commits' own times.
async fn version_at(table: &DeltaTable, latest: i64, when: DateTime<Utc>) -> Option<i64> {
    for version in (0..=latest).rev() {
        if commit_time(table, version).await.is_some_and(|t| t <= when) {
            return Some(version);
        }
    }
    None
}
