//! `kind = "push"`: the canonical table pushed records go to and how their values read.

use std::collections::BTreeMap;

use dealhouse_warehouse::config::{ConfigIssue, KeyPath};
use serde::Deserialize;

use crate::source_config::{check_source_table, check_time_zone};

/// `kind = "push"`: JSON objects (one, an array, or JSON Lines) POSTed to
/// `/api/v1/intake/<name>`, keyed by the canonical column names of `table` (`source_id`
/// required), like the columns of a SQL source's query. Each request's accepted records are one
/// Delta commit before the server answers; a replayed `source_id` replaces, never duplicates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Canonical table the records go to (e.g. `intake_requests`).
    pub table: String,
    /// Zone of timestamps sent without an offset; default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Canonical column -> (raw value -> canonical value).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// ISO 4217 code of the money this source's rows carry when a row names none (a `currency`
    /// column, Bitrix24's CURRENCY_ID); default the reporting currency (`[reporting]`).
    #[serde(default)]
    pub currency: Option<String>,
}

impl PushConfig {
    /// A table sources fill and a known time zone. `at` is `sources.<name>`.
    pub(crate) fn validate(&self, at: &KeyPath) -> Result<(), ConfigIssue> {
        check_source_table(&self.table).map_err(|m| at.key("table").issue(m))?;
        check_time_zone(self.time_zone.as_ref()).map_err(|m| at.key("time_zone").issue(m))
    }
}
