//! CRM simulators: in-process HTTP servers that speak a vendor's wire format over recorded or
//! in-memory data, so tests, demo projects and `simulate_from` sources pull through the same
//! connector code as a real CRM. They share the vendor constants (paths, methods, page sizes,
//! rate limits, error codes) with the connectors' `wire` modules instead of copying them.
//!
//! - [`bitrix24`]: a Bitrix24 portal behind an inbound webhook (REST, keyset paging, `batch`,
//!   leaky-bucket limiter);
//! - [`amocrm`]: an amoCRM account behind API v4 (HAL pages, bearer token, 7 requests a second).
//!
//! Tests switch on failures (throttling, 5xx, HTML answers) and read request counters; nothing
//! here is used by a connector reading a real CRM.

pub mod amocrm;
pub mod bitrix24;

use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// The records of a recorded `.jsonl` file (blank lines skipped), each with the id `id_of` finds
/// in it and its line as written; a line that is not JSON or has no id refuses the file, naming
/// the line and `what_id` (the id field the vendor uses).
fn json_lines<'t, K>(
    path: &Path,
    text: &'t str,
    what_id: &str,
    id_of: impl Fn(&Value) -> Option<K>,
) -> Result<Vec<(K, Value, &'t str)>> {
    let mut records = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad =
            |message: String| Error::File { path: path.to_path_buf(), message: format!("line {}: {message}", i + 1) };
        let record: Value = serde_json::from_str(line).map_err(|e| bad(format!("not a JSON record ({e})")))?;
        let id = id_of(&record).ok_or_else(|| bad(format!("the record has no {what_id}")))?;
        records.push((id, record, line));
    }
    Ok(records)
}
