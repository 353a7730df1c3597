//! A local Bitrix24 portal: serves recorded portal data (one JSON Lines file per REST method)
//! over the inbound-webhook wire format, so demo projects and tests pull through the same
//! connector code as a real portal.
//!
//! It follows the documented format: `/rest/{user}/{code}/{method}[.json]`, GET or POST, JSON or
//! form-encoded parameters (`filter[>=DATE_MODIFY]=...`, `order[ID]=ASC`, `select[]=*`,
//! `start=N`); 50 rows a page, `{result, total, next, time}` with `next` only while rows remain;
//! `start=-1` (fast mode) without `total`; `crm.stagehistory.list` under `result.items`;
//! `batch` with up to 50 commands; `*` in `select` leaving out `UF_*` fields of CRM entities;
//! errors as `{"error", "error_description"}`. Tests can switch on a leaky-bucket limiter
//! (HTTP 503 `QUERY_LIMIT_EXCEEDED`), a forced 429 `OPERATION_TIME_LIMIT`, HTML answers, and
//! read how many requests each method received.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;

use crate::{Error, Result};

/// Rows a list method returns per page.
pub const PAGE_SIZE: usize = 50;
/// Most commands one `batch` call may carry.
pub const MAX_BATCH: usize = 50;

/// List methods the portal always answers (empty when the folder has no file for them).
pub const LIST_METHODS: [&str; 7] = [
    "department.get",
    "user.get",
    "crm.status.list",
    "crm.company.list",
    "crm.deal.list",
    "crm.stagehistory.list",
    "crm.activity.list",
];

/// CRM list methods whose `select[]=*` leaves out user fields (`UF_*`), as Bitrix24 does.
const UF_SEPARATE: [&str; 2] = ["crm.company.list", "crm.deal.list"];

/// Scopes the portal reports for its webhook (`scope` method).
const SCOPES: [&str; 3] = ["crm", "user", "department"];

/// Recorded portal data: for each method, its records by ID, as JSON text.
///
/// Records are kept as text rather than parsed values: a three-year portal holds close to a
/// million of them, and a request only parses the few it looks at.
#[derive(Debug, Default)]
pub struct PortalData {
    tables: BTreeMap<String, Table>,
}

#[derive(Debug, Default)]
struct Table {
    rows: BTreeMap<i64, Box<str>>,
    /// Sorted views by order spec, rebuilt after a change.
    indexes: Mutex<HashMap<Vec<OrderBy>, Arc<Vec<IndexEntry>>>>,
}

#[derive(Debug)]
struct IndexEntry {
    keys: Vec<Key>,
    id: i64,
}

impl PortalData {
    /// An empty portal (every list method answers with no rows).
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads `{method}.jsonl` files from `dir`: one record per line, each with an `ID`.
    pub fn load(dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::File {
            path: dir.to_path_buf(),
            message: format!("cannot read the recorded portal folder ({e}); check `simulate_from`"),
        })?;
        let mut data = Self::new();
        let mut files = 0;
        for entry in entries {
            let path = entry?.path();
            let Some(method) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            let method = method.to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::File { path: path.clone(), message: format!("cannot read it: {e}") })?;
            let table = data.tables.entry(method).or_default();
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let record: Value = serde_json::from_str(line).map_err(|e| Error::File {
                    path: path.clone(),
                    message: format!("line {}: not a JSON record ({e})", i + 1),
                })?;
                let id = record_id(&record).ok_or_else(|| Error::File {
                    path: path.clone(),
                    message: format!("line {}: the record has no integer `ID`", i + 1),
                })?;
                table.rows.insert(id, line.into());
            }
            files += 1;
        }
        if files == 0 {
            return Err(Error::File {
                path: dir.to_path_buf(),
                message: "no `<method>.jsonl` files here (expected e.g. crm.deal.list.jsonl); check `simulate_from`"
                    .into(),
            });
        }
        Ok(data)
    }

    /// Adds a record, or replaces the one with the same `ID`.
    pub fn upsert(&mut self, method: &str, record: Value) -> Result<()> {
        let id = record_id(&record).ok_or_else(|| Error::Read {
            source_name: "portal".into(),
            location: method.into(),
            message: format!("record without an integer `ID`: {record}"),
        })?;
        let table = self.tables.entry(method.to_string()).or_default();
        table.rows.insert(id, record.to_string().into());
        table.invalidate();
        Ok(())
    }

    /// A record by ID.
    pub fn get(&self, method: &str, id: i64) -> Option<Value> {
        let text = self.tables.get(method)?.rows.get(&id)?;
        serde_json::from_str(text).ok()
    }

    /// Changes a record in place; false when there is no such record.
    pub fn update(&mut self, method: &str, id: i64, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> bool {
        let Some(table) = self.tables.get_mut(method) else { return false };
        let Some(text) = table.rows.get(&id) else { return false };
        let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(text) else { return false };
        change(&mut record);
        table.rows.insert(id, Value::Object(record).to_string().into());
        table.invalidate();
        true
    }

    /// Sets a datetime field (DATE_MODIFY, LAST_UPDATED) as Bitrix24 writes it.
    pub fn touch(&mut self, method: &str, id: i64, field: &str, at: DateTime<Utc>) -> bool {
        let value = at.to_rfc3339_opts(SecondsFormat::Secs, false);
        self.update(method, id, |r| {
            r.insert(field.to_string(), Value::String(value));
        })
    }

    /// Deletes a record; false when there was none.
    pub fn remove(&mut self, method: &str, id: i64) -> bool {
        let Some(table) = self.tables.get_mut(method) else { return false };
        let removed = table.rows.remove(&id).is_some();
        table.invalidate();
        removed
    }

    /// Number of records of a method.
    pub fn len(&self, method: &str) -> usize {
        self.tables.get(method).map_or(0, |t| t.rows.len())
    }

    /// True when no method has records.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(|t| t.rows.is_empty())
    }

    /// IDs of a method's records, ascending.
    pub fn ids(&self, method: &str) -> Vec<i64> {
        self.tables.get(method).map(|t| t.rows.keys().copied().collect()).unwrap_or_default()
    }
}

fn record_id(record: &Value) -> Option<i64> {
    match record.get("ID")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

impl Table {
    fn invalidate(&mut self) {
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

// ---------------------------------------------------------------------------------------------
// Request parameters

/// A request parameter tree as PHP builds it from `a[b][]=c` or a JSON body, in written order
/// (the order of `order[...]` keys matters).
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Str(String),
    List(Vec<Param>),
    Map(Vec<(String, Param)>),
}

impl Param {
    fn get(&self, key: &str) -> Option<&Param> {
        match self {
            Param::Map(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Param::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A list's (or numbered map's) values as text.
    fn strings(&self) -> Vec<String> {
        match self {
            Param::Str(s) => vec![s.clone()],
            Param::List(l) => l.iter().filter_map(|p| p.as_str().map(str::to_string)).collect(),
            Param::Map(m) => m.iter().filter_map(|(_, p)| p.as_str().map(str::to_string)).collect(),
        }
    }

    fn entries(&self) -> &[(String, Param)] {
        match self {
            Param::Map(m) => m,
            _ => &[],
        }
    }

    /// Inserts `value` at `a[b][c]` (segments after the name); an empty segment appends.
    fn insert(&mut self, path: &[&str], value: String) {
        let Some((first, rest)) = path.split_first() else {
            *self = Param::Str(value);
            return;
        };
        if first.is_empty() {
            if let Param::Map(m) = self
                && m.is_empty()
            {
                *self = Param::List(vec![]);
            }
            match self {
                Param::List(l) => {
                    let mut p = Param::Map(vec![]);
                    p.insert(rest, value);
                    l.push(p);
                }
                Param::Map(m) => {
                    let mut p = Param::Map(vec![]);
                    p.insert(rest, value);
                    m.push((m.len().to_string(), p));
                }
                Param::Str(_) => {
                    *self = Param::List(vec![]);
                    self.insert(path, value);
                }
            }
            return;
        }
        if !matches!(self, Param::Map(_)) {
            *self = match std::mem::replace(self, Param::Map(vec![])) {
                Param::List(l) => Param::Map(l.into_iter().enumerate().map(|(i, p)| (i.to_string(), p)).collect()),
                _ => Param::Map(vec![]),
            };
        }
        if let Param::Map(m) = self {
            let pos = match m.iter().position(|(k, _)| k == first) {
                Some(pos) => pos,
                None => {
                    m.push((first.to_string(), Param::Map(vec![])));
                    m.len() - 1
                }
            };
            m[pos].1.insert(rest, value);
        }
    }

    fn merge(&mut self, other: Param) {
        if let (Param::Map(a), Param::Map(b)) = (&mut *self, other) {
            for (k, v) in b {
                a.retain(|(key, _)| key != &k);
                a.push((k, v));
            }
        }
    }

    fn from_json(v: JsonParam) -> Param {
        v.0
    }
}

/// Parses `a[b][]=c&d=e` into a [`Param`] map.
fn parse_form(text: &str) -> Param {
    let mut root = Param::Map(vec![]);
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let (name, rest) = match key.find('[') {
            Some(i) => (&key[..i], &key[i..]),
            None => (&key[..], ""),
        };
        let mut path = vec![name];
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            path.push(&stripped[..end]);
            rest = &stripped[end + 1..];
        }
        root.insert(&path, value.into_owned());
    }
    root
}

/// A JSON body read into a [`Param`] keeping the order of object keys.
struct JsonParam(Param);

impl<'de> serde::Deserialize<'de> for JsonParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonParam;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(if v { "true" } else { "false" }.into())))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_unit<E>(self) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(String::new())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<JsonParam, A::Error> {
                let mut out = vec![];
                while let Some(JsonParam(p)) = seq.next_element()? {
                    out.push(p);
                }
                Ok(JsonParam(Param::List(out)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<JsonParam, A::Error> {
                let mut out = vec![];
                while let Some((k, JsonParam(v))) = map.next_entry::<String, JsonParam>()? {
                    out.push((k, v));
                }
                Ok(JsonParam(Param::Map(out)))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// List queries

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OrderBy {
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
struct ListQuery {
    filters: Vec<Filter>,
    order: Vec<OrderBy>,
    select: Vec<String>,
    /// Offset; negative = fast mode (no count).
    start: i64,
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
    fn from_params(method: &str, params: &Param) -> ListQuery {
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
struct ListPage {
    rows: Vec<String>,
    total: u64,
}

impl Table {
    fn query(&self, method: &str, q: &ListQuery) -> ListPage {
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
    let uf_separate = UF_SEPARATE.contains(&method);
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

// ---------------------------------------------------------------------------------------------
// The server

/// A leaky bucket as Bitrix24 meters REST calls: `burst` requests at once, draining at
/// `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limiter {
    /// Requests accepted at once before answering 503.
    pub burst: f64,
    /// Requests drained per second.
    pub per_second: f64,
}

impl Default for Limiter {
    /// The cloud limits of non-Enterprise plans.
    fn default() -> Self {
        Self { burst: 50.0, per_second: 2.0 }
    }
}

/// Switchable misbehaviour for tests. Method fields take a method name or `*` for all.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Throttle every request through a leaky bucket (503 `QUERY_LIMIT_EXCEEDED` when full).
    pub limiter: Option<Limiter>,
    /// Answer 429 `OPERATION_TIME_LIMIT` to this method.
    pub force_429: Option<String>,
    /// Answer an HTML page (HTTP 200) instead of JSON to this method.
    pub html: Option<String>,
}

fn applies(rule: &Option<String>, method: &str) -> bool {
    rule.as_deref().is_some_and(|m| m == "*" || m == method)
}

struct Bucket {
    level: f64,
    last: Instant,
}

struct PortalState {
    data: RwLock<PortalData>,
    behaviour: Mutex<Behaviour>,
    bucket: Mutex<Bucket>,
    requests: Mutex<BTreeMap<String, u64>>,
    calls: Mutex<BTreeMap<String, u64>>,
    user: String,
    code: String,
}

/// A running local portal. The server stops when this is dropped.
pub struct Portal {
    state: Arc<PortalState>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Portal {
    /// Serves `data` on 127.0.0.1 at a free port.
    pub async fn start(data: PortalData) -> Result<Portal> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let code = webhook_code(addr);
        let state = Arc::new(PortalState {
            data: RwLock::new(data),
            behaviour: Mutex::new(Behaviour::default()),
            bucket: Mutex::new(Bucket { level: 0.0, last: Instant::now() }),
            requests: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(BTreeMap::new()),
            user: "1".into(),
            code,
        });
        let app = axum::Router::new().route("/rest/{user}/{code}/{method}", any(handle)).with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "local Bitrix24 portal stopped");
            }
        });
        tracing::info!(%addr, "local Bitrix24 portal started");
        Ok(Portal { state, addr, task })
    }

    /// The inbound webhook URL, `http://127.0.0.1:PORT/rest/1/CODE/`.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/rest/{}/{}/", self.addr, self.state.user, self.state.code)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the test behaviours (and empties the limiter's bucket).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.state.behaviour) = behaviour;
        *lock(&self.state.bucket) = Bucket { level: 0.0, last: Instant::now() };
    }

    /// Reads or changes the served data.
    pub fn edit<R>(&self, f: impl FnOnce(&mut PortalData) -> R) -> R {
        let mut data = self.state.data.write().unwrap_or_else(|e| e.into_inner());
        f(&mut data)
    }

    /// HTTP requests whose URL named `method` (rejected ones included).
    pub fn requests(&self, method: &str) -> u64 {
        lock(&self.state.requests).get(method).copied().unwrap_or(0)
    }

    /// Executions of `method`, directly or inside `batch`.
    pub fn calls(&self, method: &str) -> u64 {
        lock(&self.state.calls).get(method).copied().unwrap_or(0)
    }

    /// Zeroes the request and call counters.
    pub fn reset_counts(&self) {
        lock(&self.state.requests).clear();
        lock(&self.state.calls).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A webhook code unique to this run, so a stale URL from another run is refused.
fn webhook_code(addr: SocketAddr) -> String {
    use rand::{Rng, SeedableRng};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(nanos as u64 ^ u64::from(addr.port()));
    (0..16).map(|_| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.random_range(0..36)])).collect()
}

/// A REST error: status, code and description.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self { status, code, description: description.into() }
    }

    fn json(&self) -> String {
        serde_json::json!({ "error": self.code, "error_description": self.description }).to_string()
    }
}

/// A successful method result as JSON text.
struct Reply {
    result: String,
    total: Option<u64>,
    next: Option<u64>,
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

async fn handle(
    State(state): State<Arc<PortalState>>,
    UrlPath((user, code, method)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Utc::now();
    let method = method.strip_suffix(".json").unwrap_or(&method).to_string();
    *lock(&state.requests).entry(method.clone()).or_default() += 1;
    if user != state.user || code != state.code {
        let e = ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "Invalid request credentials");
        return json_response(e.status, e.json());
    }
    let behaviour = lock(&state.behaviour).clone();
    if applies(&behaviour.html, &method) {
        let page = "<!DOCTYPE html>\n<html><head><title>Bitrix24 is under maintenance</title></head>\
                    <body><h1>Bitrix24 is under maintenance</h1><p>Please come back later.</p></body></html>\n";
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    if applies(&behaviour.force_429, &method) {
        let e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "OPERATION_TIME_LIMIT",
            "Method is blocked due to operation time limit.",
        );
        return json_response(e.status, e.json());
    }
    if let Some(limiter) = behaviour.limiter {
        let mut bucket = lock(&state.bucket);
        let now = Instant::now();
        let drained = now.duration_since(bucket.last).as_secs_f64() * limiter.per_second;
        bucket.level = (bucket.level - drained).max(0.0);
        bucket.last = now;
        if bucket.level + 1.0 > limiter.burst {
            drop(bucket);
            let e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "QUERY_LIMIT_EXCEEDED", "Too many requests");
            return json_response(e.status, e.json());
        }
        bucket.level += 1.0;
    }
    let mut params = query.as_deref().map(parse_form).unwrap_or(Param::Map(vec![]));
    if !body.is_empty() {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
            || body.first() == Some(&b'{');
        if is_json {
            match serde_json::from_slice::<JsonParam>(&body) {
                Ok(p) => params.merge(Param::from_json(p)),
                Err(e) => {
                    let e =
                        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("Invalid JSON body: {e}"));
                    return json_response(e.status, e.json());
                }
            }
        } else {
            params.merge(parse_form(&String::from_utf8_lossy(&body)));
        }
    }
    match dispatch(&state, &method, &params, true) {
        Ok(reply) => {
            let mut out = format!("{{\"result\":{}", reply.result);
            if let Some(total) = reply.total {
                out.push_str(&format!(",\"total\":{total}"));
            }
            if let Some(next) = reply.next {
                out.push_str(&format!(",\"next\":{next}"));
            }
            out.push_str(&format!(",\"time\":{}}}", time_block(started)));
            json_response(StatusCode::OK, out)
        }
        Err(e) => json_response(e.status, e.json()),
    }
}

fn time_block(started: DateTime<Utc>) -> String {
    let finished = Utc::now();
    let secs = |t: DateTime<Utc>| t.timestamp_micros() as f64 / 1e6;
    let duration = secs(finished) - secs(started);
    serde_json::json!({
        "start": secs(started),
        "finish": secs(finished),
        "duration": duration,
        "processing": duration,
        "date_start": started.to_rfc3339_opts(SecondsFormat::Secs, false),
        "date_finish": finished.to_rfc3339_opts(SecondsFormat::Secs, false),
        "operating": 0,
    })
    .to_string()
}

fn dispatch(
    state: &PortalState,
    method: &str,
    params: &Param,
    top_level: bool,
) -> std::result::Result<Reply, ApiError> {
    *lock(&state.calls).entry(method.to_string()).or_default() += 1;
    match method {
        "batch" if top_level => batch(state, params),
        "batch" => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERROR_BATCH_METHOD_NOT_ALLOWED",
            "Method is not allowed for batch usage",
        )),
        "scope" => Ok(Reply { result: serde_json::json!(SCOPES).to_string(), total: None, next: None }),
        _ => {
            let data = state.data.read().unwrap_or_else(|e| e.into_inner());
            let empty = Table::default();
            let table = match data.tables.get(method) {
                Some(t) => t,
                None if LIST_METHODS.contains(&method) => &empty,
                None => {
                    return Err(ApiError::new(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!"));
                }
            };
            list(table, method, params)
        }
    }
}

fn list(table: &Table, method: &str, params: &Param) -> std::result::Result<Reply, ApiError> {
    let items = method == "crm.stagehistory.list";
    if items {
        match params.get("entityTypeId").and_then(Param::as_str).map(str::trim) {
            Some("2") => {}
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARG_VALUE",
                    format!("entityTypeId {other} is not recorded here (only 2, deals)"),
                ));
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARG_VALUE",
                    "Parameter 'entityTypeId' is required",
                ));
            }
        }
    }
    let q = ListQuery::from_params(method, params);
    let page = table.query(method, &q);
    let rows = format!("[{}]", page.rows.join(","));
    let result = if items { format!("{{\"items\":{rows}}}") } else { rows };
    if q.start < 0 {
        return Ok(Reply { result, total: None, next: None });
    }
    let end = q.start as u64 + PAGE_SIZE as u64;
    Ok(Reply { result, total: Some(page.total), next: (page.total > end).then_some(end) })
}

/// `batch`: runs `cmd[name]=method?params` in order; empty sections are `[]` as PHP writes them.
fn batch(state: &PortalState, params: &Param) -> std::result::Result<Reply, ApiError> {
    let halt = params.get("halt").and_then(Param::as_str).is_some_and(|h| matches!(h.trim(), "1" | "true" | "Y"));
    let commands = params.get("cmd").map(|c| match c {
        Param::List(l) => l.iter().enumerate().map(|(i, p)| (i.to_string(), p.clone())).collect(),
        other => other.entries().to_vec(),
    });
    let commands: Vec<(String, Param)> = commands.unwrap_or_default();
    if commands.len() > MAX_BATCH {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded"));
    }
    let mut results = vec![];
    let mut errors = vec![];
    let mut totals = vec![];
    let mut nexts = vec![];
    for (name, command) in commands {
        let command = command.as_str().unwrap_or("");
        let (method, query) = command.split_once('?').unwrap_or((command, ""));
        let method = method.strip_suffix(".json").unwrap_or(method);
        let outcome = if command.contains("$result[") {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "the local portal does not substitute $result[...] references",
            ))
        } else {
            dispatch(state, method, &parse_form(query), false)
        };
        let key = serde_json::to_string(&name).unwrap_or_else(|_| "\"\"".into());
        match outcome {
            Ok(reply) => {
                results.push(format!("{key}:{}", reply.result));
                if let Some(t) = reply.total {
                    totals.push(format!("{key}:{t}"));
                }
                if let Some(n) = reply.next {
                    nexts.push(format!("{key}:{n}"));
                }
            }
            Err(e) => {
                errors.push(format!("{key}:{}", e.json()));
                if halt {
                    break;
                }
            }
        }
    }
    let section =
        |parts: Vec<String>| if parts.is_empty() { "[]".to_string() } else { format!("{{{}}}", parts.join(",")) };
    let result = format!(
        "{{\"result\":{},\"result_error\":{},\"result_total\":{},\"result_next\":{},\"result_time\":[]}}",
        section(results),
        section(errors),
        section(totals),
        section(nexts)
    );
    Ok(Reply { result, total: None, next: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_params_keep_order_and_nesting() {
        let p = parse_form(
            "order%5BLAST_UPDATED%5D=ASC&order%5BID%5D=ASC&select%5B%5D=*&select%5B%5D=UF_*&filter%5B%3E%3DDATE_MODIFY%5D=2025-01-01T00%3A00%3A00%2B03%3A00&start=-1",
        );
        let order: Vec<&str> = p.get("order").map(|o| o.entries().iter().map(|(k, _)| k.as_str()).collect()).unwrap();
        assert_eq!(order, ["LAST_UPDATED", "ID"]);
        assert_eq!(p.get("select").unwrap().strings(), ["*", "UF_*"]);
        let f = p.get("filter").unwrap().entries();
        assert_eq!(f[0].0, ">=DATE_MODIFY");
        assert_eq!(f[0].1, Param::Str("2025-01-01T00:00:00+03:00".into()));
        let j: JsonParam = serde_json::from_str(r#"{"order":{"LAST_UPDATED":"ASC","ID":"ASC"},"start":-1}"#).unwrap();
        let order: Vec<&str> = j.0.get("order").map(|o| o.entries().iter().map(|(k, _)| k.as_str()).collect()).unwrap();
        assert_eq!(order, ["LAST_UPDATED", "ID"]);
        assert_eq!(j.0.get("start"), Some(&Param::Str("-1".into())));
    }

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
