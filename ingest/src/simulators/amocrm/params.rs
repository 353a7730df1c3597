//! Request parameters as amoCRM reads them (`page`, `limit`, `filter[...]`, `order[...]`,
//! `with`) and the HAL page envelope every list answers with.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{SimulatorState, hal, invalid};
use crate::amocrm::wire::DEFAULT_LIMIT;

/// Query pairs as sent, decoded.
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(super) fn parse(text: &str) -> Self {
        Self { pairs: url::form_urlencoded::parse(text.as_bytes()).into_owned().collect() }
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Values of `key`, `key[]` and `key[N]`, comma lists split.
    pub(super) fn list(&self, key: &str) -> Vec<String> {
        let matches = |k: &str| {
            k == key
                || k.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix('['))
                    .and_then(|rest| rest.strip_suffix(']'))
                    .is_some_and(|inner| inner.is_empty() || inner.parse::<u32>().is_ok())
        };
        self.pairs
            .iter()
            .filter(|(k, _)| matches(k))
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .collect()
    }

    pub(super) fn with(&self, what: &str) -> bool {
        self.list("with").iter().any(|w| w == what)
    }

    /// `filter[f][from]` / `filter[f][to]`; a plain `filter[f]=t` means from `t`.
    pub(super) fn range(&self, field: &str) -> std::result::Result<(Option<i64>, Option<i64>), Response> {
        let int = |key: String| -> std::result::Result<Option<i64>, Response> {
            match self.get(&key) {
                None => Ok(None),
                Some(v) => {
                    v.trim().parse::<i64>().map(Some).map_err(|_| invalid(&key, "This value should be of type int."))
                }
            }
        };
        let from = match int(format!("filter[{field}][from]"))? {
            Some(f) => Some(f),
            None => int(format!("filter[{field}]"))?,
        };
        Ok((from, int(format!("filter[{field}][to]"))?))
    }

    /// (page, limit) with amoCRM's defaults; a limit above `max` falls back to the default.
    pub(super) fn paging(&self, max: usize) -> std::result::Result<(usize, usize), Response> {
        let page = match self.get("page") {
            None => 1,
            Some(p) => match p.trim().parse::<usize>() {
                Ok(p) if p >= 1 => p,
                _ => return Err(invalid("page", "This value should be a positive integer.")),
            },
        };
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => match l.trim().parse::<usize>() {
                Ok(0) | Err(_) => return Err(invalid("limit", "This value should be a positive integer.")),
                Ok(l) if l > max => DEFAULT_LIMIT,
                Ok(l) => l,
            },
        };
        Ok((page, limit))
    }

    /// The `order[...]` field and direction, if any.
    pub(super) fn order(&self) -> Option<(String, bool)> {
        self.pairs.iter().rev().find_map(|(k, v)| {
            let field = k.strip_prefix("order[")?.strip_suffix(']')?;
            Some((field.to_string(), !v.eq_ignore_ascii_case("desc")))
        })
    }

    /// This query with `page` set to `page`, for `_links`.
    pub(super) fn with_page(&self, page: usize) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if k != "page" {
                s.append_pair(k, v);
            }
        }
        s.append_pair("page", &page.to_string());
        s.finish()
    }
}

pub(super) fn int_field(record: &Value, field: &str) -> Option<i64> {
    record.get(field).and_then(Value::as_i64)
}

/// The record's id is one of `ids` (any record when none are asked for). Ids are integers
/// except the events', which are strings.
pub(super) fn has_id(record: &Value, ids: &[String]) -> bool {
    let id = match record.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    ids.is_empty() || ids.contains(&id)
}

pub(super) fn in_range(v: Option<i64>, (from, to): (Option<i64>, Option<i64>)) -> bool {
    match v {
        Some(v) => from.is_none_or(|f| v >= f) && to.is_none_or(|t| v <= t),
        None => from.is_none() && to.is_none(),
    }
}

/// One page of `rows`: 204 when empty, else the HAL envelope with `next` while rows remain.
pub(super) fn page_of(
    state: &SimulatorState,
    path: &str,
    key: &str,
    q: &Query,
    rows: &[Value],
    max: usize,
) -> Response {
    let (page, limit) = match q.paging(max) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match page_body(state, path, key, q, rows, page, limit) {
        Some(body) => hal(body),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// The HAL body of page `page`, or None when the page has no rows.
pub(super) fn page_body(
    state: &SimulatorState,
    path: &str,
    key: &str,
    q: &Query,
    rows: &[Value],
    page: usize,
    limit: usize,
) -> Option<Value> {
    let start = (page - 1).saturating_mul(limit);
    let items: Vec<Value> = rows.iter().skip(start).take(limit).cloned().collect();
    if items.is_empty() {
        return None;
    }
    let mut links = json!({"self": {"href": format!("{}{path}?{}", state.origin, q.with_page(page))}});
    if rows.len() > start + items.len() {
        links["next"] = json!({"href": format!("{}{path}?{}", state.origin, q.with_page(page + 1))});
    }
    let mut embedded = serde_json::Map::new();
    embedded.insert(key.to_string(), Value::Array(items));
    Some(json!({"_page": page, "_links": links, "_embedded": embedded}))
}

/// Sorts by `order[...]` (id, updated_at, created_at), then id; id ascending by default.
pub(super) fn sort(rows: &mut [Value], q: &Query) -> std::result::Result<(), Response> {
    sort_among(rows, q, &["created_at", "updated_at", "id"])
}

/// Sorts by `order[...]`, one of `fields` (what the list documents), then id; id ascending by
/// default.
pub(super) fn sort_among(rows: &mut [Value], q: &Query, fields: &[&str]) -> std::result::Result<(), Response> {
    let (field, ascending) = q.order().unwrap_or(("id".into(), true));
    if !fields.contains(&field.as_str()) {
        return Err(invalid(&format!("order[{field}]"), &format!("Sorting is available by {}.", fields.join(", "))));
    }
    rows.sort_by(|a, b| {
        let key = |r: &Value| (int_field(r, &field), int_field(r, "id"));
        let c = key(a).cmp(&key(b));
        if ascending { c } else { c.reverse() }
    });
    Ok(())
}
