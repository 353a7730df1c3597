//! List queries of the Bitrix24 simulator: `filter`, `order`, `select` and `start` over a
//! method's records, through sorted indexes rebuilt after each change.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use serde_json::Value;

use super::Table;
use super::params::Param;
use crate::bitrix24::wire::{PAGE_SIZE, USER_FIELDS_APART};

/// One record's place in a sorted view.
#[derive(Debug)]
pub(super) struct IndexEntry {
    keys: Vec<Key>,
    id: i64,
}

impl Table {
    pub(super) fn invalidate(&mut self) {
        self.indexes.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Rows sorted by `order` (then ID), built once per change.
    fn index(&self, order: &[OrderBy]) -> Arc<Vec<IndexEntry>> {
        if let Some(ix) = self.indexes.lock().unwrap_or_else(|e| e.into_inner()).get(order) {
            return ix.clone();
        }
        let id_only = order.iter().all(|o| o.field == "ID");
        let mut entries: Vec<IndexEntry> = self
            .rows
            .iter()
            .map(|(id, text)| {
                let keys = if id_only {
                    order.iter().map(|_| Key::Num(*id as f64)).collect()
                } else {
                    let record: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                    order.iter().map(|o| field_key(&record, *id, &o.field)).collect()
                };
                IndexEntry { keys, id: *id }
            })
            .collect();
        entries.sort_by(|a, b| {
            for (i, o) in order.iter().enumerate() {
                let c = a.keys[i].cmp(&b.keys[i]);
                let c = if o.ascending { c } else { c.reverse() };
                if c != std::cmp::Ordering::Equal {
                    return c;
                }
            }
            a.id.cmp(&b.id)
        });
        let ix = Arc::new(entries);
        self.indexes.lock().unwrap_or_else(|e| e.into_inner()).insert(order.to_vec(), ix.clone());
        ix
    }
}

/// A comparable field value: numbers as numbers, datetimes as instants, the rest as text.
#[derive(Debug, Clone)]
enum Key {
    Null,
    Num(f64),
    Time(i64),
    Str(String),
}

impl Key {
    fn parse(s: &str) -> Key {
        let s = s.trim();
        if s.is_empty() {
            return Key::Null;
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
            && let Ok(n) = s.parse::<f64>()
        {
            return Key::Num(n);
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Key::Time(t.timestamp_micros());
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            && let Some(t) = d.and_hms_opt(0, 0, 0)
        {
            return Key::Time(t.and_utc().timestamp_micros());
        }
        match s {
            "true" => Key::Str("Y".into()),
            "false" => Key::Str("N".into()),
            _ => Key::Str(s.to_string()),
        }
    }

    fn of(value: &Value) -> Key {
        match value {
            Value::Null => Key::Null,
            Value::String(s) => Key::parse(s),
            Value::Number(n) => n.as_f64().map_or(Key::Null, Key::Num),
            Value::Bool(b) => Key::Str(if *b { "Y" } else { "N" }.into()),
            other => Key::Str(other.to_string()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::Num(_) => 1,
            Key::Time(_) => 2,
            Key::Str(_) => 3,
        }
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Time(a), Key::Time(b)) => a.cmp(b),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Key {}

fn field_key(record: &Value, id: i64, field: &str) -> Key {
    if field == "ID" {
        return Key::Num(id as f64);
    }
    record.get(field).map_or(Key::Null, Key::of)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct OrderBy {
    field: String,
    ascending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    In,
    NotIn,
}

#[derive(Debug, Clone)]
struct Filter {
    field: String,
    op: Op,
    values: Vec<Key>,
}

impl Filter {
    fn parse(key: &str, value: &Param) -> Filter {
        const OPS: [(&str, Op); 9] = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("!@", Op::NotIn),
            ("@", Op::In),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
            ("!", Op::Ne),
        ];
        let (op, field) = OPS.iter().find_map(|(p, op)| key.strip_prefix(p).map(|f| (*op, f))).unwrap_or((Op::Eq, key));
        let values: Vec<Key> = value.strings().iter().map(|s| Key::parse(s)).collect();
        let op = match (op, matches!(value, Param::Str(_))) {
            (Op::Eq, false) => Op::In,
            (Op::Ne, false) => Op::NotIn,
            (op, _) => op,
        };
        Filter { field: field.to_string(), op, values }
    }

    fn matches(&self, value: &Value, id: i64) -> bool {
        if self.field == "ID" {
            return self.matches_key(&Key::Num(id as f64));
        }
        match value.get(&self.field) {
            // Multiple fields (UF_DEPARTMENT) match when any element does.
            Some(Value::Array(items)) => items.iter().any(|v| self.matches_key(&Key::of(v))),
            Some(v) => self.matches_key(&Key::of(v)),
            None => self.matches_key(&Key::Null),
        }
    }

    fn matches_key(&self, k: &Key) -> bool {
        let Some(v) = self.values.first() else { return matches!(self.op, Op::Ne | Op::NotIn) };
        // Like SQL, a missing value satisfies no comparison.
        if matches!(k, Key::Null) && matches!(self.op, Op::Gt | Op::Ge | Op::Lt | Op::Le) {
            return false;
        }
        match self.op {
            Op::Gt => k > v,
            Op::Ge => k >= v,
            Op::Lt => k < v,
            Op::Le => k <= v,
            Op::Eq => k == v,
            Op::Ne => k != v,
            Op::In => self.values.contains(k),
            Op::NotIn => !self.values.contains(k),
        }
    }

    /// The key lies below the range this filter allows (for the leading order field).
    fn below(&self, k: &Key) -> bool {
        let Some(v) = self.values.first() else { return false };
        match self.op {
            Op::Gt => k <= v,
            Op::Ge | Op::Eq => k < v,
            _ => false,
        }
    }

    /// The key lies above the range this filter allows.
    fn above(&self, k: &Key) -> bool {
        let Some(v) = self.values.first() else { return false };
        match self.op {
            Op::Lt => k >= v,
            Op::Le | Op::Eq => k > v,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub(super) struct ListQuery {
    filters: Vec<Filter>,
    order: Vec<OrderBy>,
    select: Vec<String>,
    /// Offset; negative = fast mode (no count).
    pub(super) start: i64,
}

/// Top-level keys that are parameters rather than filters (for methods that take filters inline).
const PARAM_KEYS: [&str; 14] = [
    "start",
    "START",
    "sort",
    "SORT",
    "order",
    "ORDER",
    "by",
    "select",
    "filter",
    "FILTER",
    "ADMIN_MODE",
    "entityTypeId",
    "auth",
    "IMAGE_RESIZE",
];

impl ListQuery {
    pub(super) fn from_params(method: &str, params: &Param) -> ListQuery {
        let start = params
            .get("start")
            .or_else(|| params.get("START"))
            .and_then(Param::as_str)
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let mut filters = vec![];
        for key in ["filter", "FILTER"] {
            if let Some(f) = params.get(key) {
                filters.extend(f.entries().iter().map(|(k, v)| Filter::parse(k, v)));
            }
        }
        // user.get and department.get also take filter fields inline.
        if matches!(method, "user.get" | "department.get") {
            for (k, v) in params.entries() {
                if !PARAM_KEYS.contains(&k.as_str()) {
                    filters.push(Filter::parse(k, v));
                }
            }
        }
        let direction = |s: &str| !s.trim().eq_ignore_ascii_case("desc");
        let mut order = vec![];
        let sort_field = params.get("sort").or_else(|| params.get("SORT")).and_then(Param::as_str);
        match params.get("order").or_else(|| params.get("ORDER")) {
            Some(Param::Map(m)) => {
                for (field, dir) in m {
                    order.push(OrderBy { field: field.clone(), ascending: dir.as_str().is_none_or(direction) });
                }
            }
            Some(Param::Str(dir)) => {
                order.push(OrderBy { field: sort_field.unwrap_or("ID").to_string(), ascending: direction(dir) })
            }
            _ => {
                if let Some(field) = sort_field {
                    order.push(OrderBy { field: field.to_string(), ascending: true });
                }
            }
        }
        if order.is_empty() {
            order.push(OrderBy { field: "ID".into(), ascending: true });
        }
        let select = params.get("select").map(Param::strings).unwrap_or_default();
        ListQuery { filters, order, select, start }
    }
}

/// One page of a list, as JSON text pieces.
pub(super) struct ListPage {
    pub(super) rows: Vec<String>,
    pub(super) total: u64,
}

impl Table {
    pub(super) fn query(&self, method: &str, q: &ListQuery) -> ListPage {
        let index = self.index(&q.order);
        let lead = &q.order[0];
        let lead_filters: Vec<&Filter> =
            q.filters.iter().filter(|f| f.field == lead.field && f.values.len() == 1).collect();
        // Rows of the leading order field's range are contiguous in the index.
        let before = |k: &Key| lead_filters.iter().any(|f| if lead.ascending { f.below(k) } else { f.above(k) });
        let after = |k: &Key| lead_filters.iter().any(|f| if lead.ascending { f.above(k) } else { f.below(k) });
        let first = index.partition_point(|e| before(&e.keys[0]));
        let id_only = q.filters.iter().all(|f| f.field == "ID");
        let fast = q.start < 0;
        let skip = q.start.max(0) as u64;
        let mut matched = 0u64;
        let mut picked = vec![];
        for e in &index[first..] {
            if after(&e.keys[0]) {
                break;
            }
            let Some(text) = self.rows.get(&e.id) else { continue };
            let ok = if q.filters.is_empty() {
                true
            } else if id_only {
                q.filters.iter().all(|f| f.matches_key(&Key::Num(e.id as f64)))
            } else {
                let record: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                q.filters.iter().all(|f| f.matches(&record, e.id))
            };
            if !ok {
                continue;
            }
            if matched >= skip && picked.len() < PAGE_SIZE {
                picked.push(text);
            }
            matched += 1;
            if fast && picked.len() == PAGE_SIZE {
                break;
            }
        }
        let rows = picked.into_iter().map(|text| select_fields(method, text, &q.select)).collect();
        ListPage { rows, total: matched }
    }
}

/// Applies `select` to a record's JSON text.
fn select_fields(method: &str, text: &str, select: &[String]) -> String {
    let star = select.is_empty() || select.iter().any(|s| s == "*");
    let uf_star = select.iter().any(|s| s == "UF_*");
    let uf_separate = USER_FIELDS_APART.contains(&method);
    if star && (uf_star || !uf_separate) {
        return text.to_string();
    }
    let Ok(Value::Object(record)) = serde_json::from_str::<Value>(text) else { return text.to_string() };
    let kept: serde_json::Map<String, Value> = record
        .into_iter()
        .filter(|(k, _)| {
            let uf = k.starts_with("UF_");
            k == "ID" || (star && !(uf && uf_separate)) || (uf && uf_star) || select.iter().any(|s| s == k)
        })
        .collect();
    Value::Object(kept).to_string()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_compare_as_instants_not_text() {
        // 10:00+03:00 is 07:00Z, earlier than 08:00Z although its text sorts later.
        let f = Filter::parse(">=DATE_MODIFY", &Param::Str("2025-03-04T08:00:00+00:00".into()));
        let rec = serde_json::json!({"DATE_MODIFY": "2025-03-04T10:00:00+03:00"});
        assert!(!f.matches(&rec, 1));
        let rec = serde_json::json!({"DATE_MODIFY": "2025-03-04T11:30:00+03:00"});
        assert!(f.matches(&rec, 1));
        let f = Filter::parse(">ID", &Param::Str("9".into()));
        assert!(f.matches(&Value::Null, 10) && !f.matches(&Value::Null, 9));
        let f = Filter::parse("UF_DEPARTMENT", &Param::Str("7".into()));
        assert!(f.matches(&serde_json::json!({"UF_DEPARTMENT": [3, 7]}), 1));
    }
}
