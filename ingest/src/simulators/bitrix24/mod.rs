//! The Bitrix24 simulator: serves recorded portal data (one JSON Lines file per REST method)
//! over the inbound-webhook wire format, so demo projects and tests pull through the same
//! connector code as a real portal.
//!
//! It follows the documented format: `/rest/{user}/{code}/{method}[.json]`, GET or POST, JSON or
//! form-encoded parameters (`filter[>=DATE_MODIFY]=...`, `order[ID]=ASC`, `select[]=*`,
//! `start=N`); 50 rows a page, `{result, total, next, time}` with `next` only while rows remain;
//! `start=-1` (fast mode) without `total`; `crm.stagehistory.list` under `result.items`;
//! `batch` with up to 50 commands; `*` in `select` leaving out `UF_*` fields of CRM entities;
//! errors as `{"error", "error_description"}`. Page sizes, method names and error codes come from
//! the connector's [`crate::bitrix24::wire`]. Tests can switch on a leaky-bucket limiter
//! (HTTP 503 `QUERY_LIMIT_EXCEEDED`), a forced 429 `OPERATION_TIME_LIMIT`, HTML answers, and
//! read how many requests each method received and with which parameters.

mod params;
mod query;

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
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use self::params::{JsonParam, Param, parse_form};
use self::query::{IndexEntry, ListQuery, OrderBy};
use crate::bitrix24::wire::{
    BATCH, ENTITY_DEAL, ERROR_METHOD_NOT_FOUND, ID, INVALID_CREDENTIALS, LIST_METHODS, MAX_BATCH, OPERATION_TIME_LIMIT,
    PAGE_SIZE, QUERY_LIMIT_EXCEEDED, SCOPE, SCOPES, STAGE_HISTORY_LIST,
};
use crate::{Error, Result};

/// The simulator's recorded portal data: for each method, its records by ID, as JSON text.
///
/// Records are kept as text rather than parsed values: a three-year portal holds close to a
/// million of them, and a request only parses the few it looks at.
#[derive(Debug, Default)]
pub struct Bitrix24SimulatorData {
    tables: BTreeMap<String, Table>,
}

#[derive(Debug, Default)]
struct Table {
    rows: BTreeMap<i64, Box<str>>,
    /// Sorted views by order spec, rebuilt after a change.
    indexes: Mutex<HashMap<Vec<OrderBy>, Arc<Vec<IndexEntry>>>>,
}

impl Bitrix24SimulatorData {
    /// An empty portal (every list method answers with no rows).
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads `{method}.jsonl` files from `dir`: one record per line, each with an `ID`.
    pub fn load(dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::File {
            path: dir.to_path_buf(),
            message: format!("cannot read the folder of recorded Bitrix24 data ({e}); check `simulate_from`"),
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
            for (id, _, line) in super::json_lines(&path, &text, "integer `ID`", record_id)? {
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
            source_name: "bitrix24 simulator".into(),
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
    match record.get(ID)? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

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

struct SimulatorState {
    data: RwLock<Bitrix24SimulatorData>,
    behaviour: Mutex<Behaviour>,
    bucket: Mutex<Bucket>,
    requests: Mutex<BTreeMap<String, u64>>,
    calls: Mutex<BTreeMap<String, u64>>,
    /// Parameters of each request by method, decoded (`filter[>ID]=0&order[ID]=ASC`).
    queries: Mutex<BTreeMap<String, Vec<String>>>,
    user: String,
    code: String,
}

/// A running Bitrix24 simulator. The server stops when this is dropped.
pub struct Bitrix24Simulator {
    state: Arc<SimulatorState>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bitrix24Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bitrix24Simulator {
    /// Serves `data` on 127.0.0.1 at a free port.
    pub async fn start(data: Bitrix24SimulatorData) -> Result<Bitrix24Simulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let code = webhook_code(addr);
        let state = Arc::new(SimulatorState {
            data: RwLock::new(data),
            behaviour: Mutex::new(Behaviour::default()),
            bucket: Mutex::new(Bucket { level: 0.0, last: Instant::now() }),
            requests: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(BTreeMap::new()),
            queries: Mutex::new(BTreeMap::new()),
            user: "1".into(),
            code,
        });
        let app = axum::Router::new().route("/rest/{user}/{code}/{method}", any(handle)).with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "Bitrix24 simulator stopped");
            }
        });
        tracing::info!(%addr, "Bitrix24 simulator started");
        Ok(Bitrix24Simulator { state, addr, task })
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
    pub fn edit<R>(&self, f: impl FnOnce(&mut Bitrix24SimulatorData) -> R) -> R {
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

    /// The parameters of each HTTP request to `method`, in order, decoded and joined with `&`
    /// (query string first, then a form body; a JSON body as sent).
    pub fn queries(&self, method: &str) -> Vec<String> {
        lock(&self.state.queries).get(method).cloned().unwrap_or_default()
    }

    /// Zeroes the request and call counters and forgets the queries.
    pub fn reset_counts(&self) {
        lock(&self.state.requests).clear();
        lock(&self.state.calls).clear();
        lock(&self.state.queries).clear();
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
    State(state): State<Arc<SimulatorState>>,
    UrlPath((user, code, method)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Utc::now();
    let method = method.strip_suffix(".json").unwrap_or(&method).to_string();
    *lock(&state.requests).entry(method.clone()).or_default() += 1;
    let decoded =
        |text: &[u8]| url::form_urlencoded::parse(text).map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let sent = match (query.as_deref(), body.first()) {
        (q, Some(b'{')) => [decoded(q.unwrap_or("").as_bytes()), String::from_utf8_lossy(&body).into_owned()].join("&"),
        (q, _) => [decoded(q.unwrap_or("").as_bytes()), decoded(&body)].join("&"),
    };
    lock(&state.queries).entry(method.clone()).or_default().push(sent.trim_matches('&').to_string());
    if user != state.user || code != state.code {
        let e = ApiError::new(StatusCode::UNAUTHORIZED, INVALID_CREDENTIALS, "Invalid request credentials");
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
            OPERATION_TIME_LIMIT,
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
            let e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, QUERY_LIMIT_EXCEEDED, "Too many requests");
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
    state: &SimulatorState,
    method: &str,
    params: &Param,
    top_level: bool,
) -> std::result::Result<Reply, ApiError> {
    *lock(&state.calls).entry(method.to_string()).or_default() += 1;
    match method {
        BATCH if top_level => batch(state, params),
        BATCH => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERROR_BATCH_METHOD_NOT_ALLOWED",
            "Method is not allowed for batch usage",
        )),
        SCOPE => Ok(Reply { result: serde_json::json!(SCOPES).to_string(), total: None, next: None }),
        _ => {
            let data = state.data.read().unwrap_or_else(|e| e.into_inner());
            let empty = Table::default();
            let table = match data.tables.get(method) {
                Some(t) => t,
                None if LIST_METHODS.contains(&method) => &empty,
                None => {
                    return Err(ApiError::new(StatusCode::NOT_FOUND, ERROR_METHOD_NOT_FOUND, "Method not found!"));
                }
            };
            list(table, method, params)
        }
    }
}

fn list(table: &Table, method: &str, params: &Param) -> std::result::Result<Reply, ApiError> {
    let items = method == STAGE_HISTORY_LIST;
    if items {
        match params.get("entityTypeId").and_then(Param::as_str).map(str::trim) {
            Some(ENTITY_DEAL) => {}
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
fn batch(state: &SimulatorState, params: &Param) -> std::result::Result<Reply, ApiError> {
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
                "the Bitrix24 simulator does not substitute $result[...] references",
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
