//! The amoCRM simulator: serves leads, events, users, pipelines, companies, loss reasons, tasks
//! and notes held in memory over the API v4 wire format, so tests (and `simulate_from` projects) pull
//! through the same connector code as a real account. Paths, page limits and the rate limit
//! come from the connector's [`crate::amocrm::wire`].
//!
//! What it follows (amoCRM / Kommo API v4 reference):
//! - `GET /api/v4/{leads,companies,users,events}` page by page: `page` (from 1) and `limit`
//!   (default 50; at most 250, events 100). Answers are `application/hal+json`
//!   `{_page, _links{self, next}, _embedded{<entity>[]}}` with no total for leads, companies and
//!   events; `_links.next` is present only while rows remain. A page with no rows is HTTP 204
//!   with an empty body.
//! - A `limit` above the maximum is not an error: as integrators report (amocrm-api-php #210,
//!   Krukov/amocrm_api #76 and its fix #95), amoCRM then pages by the default 50. A client that
//!   stops at the first short page therefore loses rows; one that follows `_links.next` does not.
//! - `filter[id][]` (leads, companies, events: only the records with those ids),
//!   `filter[updated_at][from|to]` (leads, companies), `filter[created_at][from|to]`,
//!   `filter[type]`, `filter[entity]` (events, newest first), `order[id|updated_at|created_at]`,
//!   `with=contacts` (contacts under each lead's `_embedded`, companies always there),
//!   `with=only_deleted` (deleted leads as `{id, updated_at, is_deleted}`; otherwise deleted leads
//!   are left out). `GET /api/v4/leads/pipelines` (statuses under `_embedded.statuses`) and
//!   `GET /api/v4/leads/loss_reasons` are not paged.
//! - `GET /api/v4/tasks` and `GET /api/v4/{leads,contacts,companies}/notes`, paged like leads
//!   (at most 250), with their documented filters and orders ([`tasks_notes`]).
//! - `Authorization: Bearer <token>`; anything else is 401 `application/problem+json`
//!   `{title, type, status, detail}`. Bad parameters are 400 with `validation-errors`.
//! - At most 7 requests a second (a sliding one-second window); above it 429 with a non-JSON
//!   body, as the account's front proxy answers. Tests can switch it off.
//!
//! Tests can also inject failures (N answers of 429 or 5xx after M good ones, for one path or
//! all), read how many requests each path received and served, and what queries were sent.

// Request parsers answer the HTTP error response itself (an axum `Response`, which clippy finds
// large): it is what the simulator sends, and a test server's error path is not a hot path.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

mod leads;
mod params;
mod tasks_notes;

use self::params::Query;
use crate::amocrm::wire::{
    COMPANIES, COMPANY_NOTES, CONTACT_NOTES, EVENTS, LEAD_NOTES, LEADS, LOSS_REASONS, MAX_REQUESTS_PER_SECOND,
    PIPELINES, TASKS, USERS,
};
use crate::{Error, Result};

/// The simulated account's data, by id. Records are kept as amoCRM returns them, minus `_links`.
#[derive(Debug, Default, Clone)]
pub struct AmoCrmSimulatorData {
    /// Leads by id; `_embedded.contacts` / `_embedded.companies` hold `{id}` references.
    pub leads: BTreeMap<i64, Value>,
    /// Events by id (amoCRM event ids are strings).
    pub events: BTreeMap<String, Value>,
    /// Users by id.
    pub users: BTreeMap<i64, Value>,
    /// Pipelines by id, each with `_embedded.statuses`.
    pub pipelines: BTreeMap<i64, Value>,
    /// Companies by id.
    pub companies: BTreeMap<i64, Value>,
    /// Loss reasons by id.
    pub loss_reasons: BTreeMap<i64, Value>,
    /// Tasks by id, each with its `entity_type` and `entity_id`.
    pub tasks: BTreeMap<i64, Value>,
    /// Notes of leads by id (`entity_id` is the lead).
    pub lead_notes: BTreeMap<i64, Value>,
    /// Notes of contacts by id.
    pub contact_notes: BTreeMap<i64, Value>,
    /// Notes of companies by id.
    pub company_notes: BTreeMap<i64, Value>,
}

/// Files of a recorded account folder, one JSON record per line; `<entity>_notes` hold the
/// notes of that entity type (a note does not name its entity type itself).
pub const FILES: [&str; 10] = [
    "leads",
    "events",
    "users",
    "pipelines",
    "companies",
    "loss_reasons",
    "tasks",
    "leads_notes",
    "contacts_notes",
    "companies_notes",
];

impl AmoCrmSimulatorData {
    /// Loads `<entity>.jsonl` files from `dir` (see [`FILES`]); a missing file is an empty entity.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::File {
                path: dir.to_path_buf(),
                message: "not a folder of recorded amoCRM data; check `simulate_from`".into(),
            });
        }
        let mut data = Self::default();
        let mut found = 0;
        for name in FILES {
            let path = dir.join(format!("{name}.jsonl"));
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::File { path, message: format!("cannot read it: {e}") }),
            };
            found += 1;
            if name == "events" {
                // Event ids are strings ("01abc..."); everything else has integer ids.
                let id_of = |r: &Value| match r.get("id") {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                data.events
                    .extend(super::json_lines(&path, &text, "`id`", id_of)?.into_iter().map(|(id, r, _)| (id, r)));
                continue;
            }
            let table = match name {
                "leads" => &mut data.leads,
                "users" => &mut data.users,
                "pipelines" => &mut data.pipelines,
                "companies" => &mut data.companies,
                "tasks" => &mut data.tasks,
                "leads_notes" => &mut data.lead_notes,
                "contacts_notes" => &mut data.contact_notes,
                "companies_notes" => &mut data.company_notes,
                _ => &mut data.loss_reasons,
            };
            let records = super::json_lines(&path, &text, "`id`", |r| r.get("id").and_then(Value::as_i64))?;
            table.extend(records.into_iter().map(|(id, r, _)| (id, r)));
        }
        if found == 0 {
            return Err(Error::File {
                path: dir.to_path_buf(),
                message: format!(
                    "no recorded amoCRM files here (expected {}.jsonl ...); check `simulate_from`",
                    FILES[0]
                ),
            });
        }
        Ok(data)
    }

    /// Changes a lead in place and stamps its `updated_at`; false when there is no such lead.
    pub fn update_lead(
        &mut self,
        id: i64,
        updated_at: i64,
        change: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> bool {
        let Some(Value::Object(lead)) = self.leads.get_mut(&id) else { return false };
        change(lead);
        lead.insert("updated_at".into(), json!(updated_at));
        true
    }

    /// Changes a task in place and stamps its `updated_at`; false when there is no such task.
    pub fn update_task(
        &mut self,
        id: i64,
        updated_at: i64,
        change: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> bool {
        let Some(Value::Object(task)) = self.tasks.get_mut(&id) else { return false };
        change(task);
        task.insert("updated_at".into(), json!(updated_at));
        true
    }
}

/// A failure to inject: after `pass` good answers on `path`, answer `status` `times` times
/// (for ever when None).
#[derive(Debug, Clone)]
pub struct FailurePlan {
    /// Exact request path (`/api/v4/leads`) or `*` for every path.
    pub path: String,
    /// HTTP status to answer (429, 500, 502, 503, 504).
    pub status: u16,
    /// Requests let through before failing.
    pub pass: u32,
    /// How many failures; None for every request after `pass`.
    pub times: Option<u32>,
    /// `Retry-After` seconds to send with the failure.
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
struct ActivePlan {
    plan: FailurePlan,
    seen: u32,
    failed: u32,
}

#[derive(Debug, Default)]
struct Counters {
    /// Requests per path, rejected ones included.
    requests: HashMap<String, u64>,
    /// Requests per path answered 200 or 204.
    served: HashMap<String, u64>,
    /// Query strings received per path, in order.
    queries: HashMap<String, Vec<String>>,
}

struct SimulatorState {
    data: RwLock<AmoCrmSimulatorData>,
    token: String,
    origin: String,
    limiter_on: Mutex<bool>,
    window: Mutex<VecDeque<Instant>>,
    plans: Mutex<Vec<ActivePlan>>,
    counters: Mutex<Counters>,
}

/// A running amoCRM simulator. The server stops when this is dropped.
pub struct AmoCrmSimulator {
    state: Arc<SimulatorState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AmoCrmSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AmoCrmSimulator {
    /// Serves `data` on 127.0.0.1 at a free port, accepting only `token`. The rate limiter is on.
    pub async fn start(data: AmoCrmSimulatorData, token: &str) -> Result<AmoCrmSimulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let state = Arc::new(SimulatorState {
            data: RwLock::new(data),
            token: token.to_string(),
            origin: format!("http://{addr}"),
            limiter_on: Mutex::new(true),
            window: Mutex::new(VecDeque::new()),
            plans: Mutex::new(vec![]),
            counters: Mutex::new(Counters::default()),
        });
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "amoCRM simulator stopped");
            }
        });
        tracing::info!(%addr, "amoCRM simulator started");
        Ok(AmoCrmSimulator { state, task })
    }

    /// `http://127.0.0.1:PORT`, the account's `base_url`.
    pub fn base_url(&self) -> String {
        self.state.origin.clone()
    }

    /// Reads or changes the served data.
    pub fn edit<R>(&self, f: impl FnOnce(&mut AmoCrmSimulatorData) -> R) -> R {
        let mut data = self.state.data.write().unwrap_or_else(|e| e.into_inner());
        f(&mut data)
    }

    /// Switches the 7-requests-a-second limiter on or off.
    pub fn set_rate_limit(&self, on: bool) {
        *lock(&self.state.limiter_on) = on;
        lock(&self.state.window).clear();
    }

    /// Adds a failure to inject.
    pub fn fail(&self, plan: FailurePlan) {
        lock(&self.state.plans).push(ActivePlan { plan, seen: 0, failed: 0 });
    }

    /// Removes every injected failure.
    pub fn clear_failures(&self) {
        lock(&self.state.plans).clear();
    }

    /// Requests `path` received (rejected ones included).
    pub fn requests(&self, path: &str) -> u64 {
        lock(&self.state.counters).requests.get(path).copied().unwrap_or(0)
    }

    /// Requests to `path` answered 200 or 204.
    pub fn served(&self, path: &str) -> u64 {
        lock(&self.state.counters).served.get(path).copied().unwrap_or(0)
    }

    /// Query strings `path` received, in order.
    pub fn queries(&self, path: &str) -> Vec<String> {
        lock(&self.state.counters).queries.get(path).cloned().unwrap_or_default()
    }

    /// Zeroes the counters.
    pub fn reset_counts(&self) {
        *lock(&self.state.counters) = Counters::default();
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

fn problem(status: StatusCode, detail: &str) -> Response {
    let body = json!({
        "title": status.canonical_reason().unwrap_or("Error"),
        "type": format!("https://httpstatus.es/{}", status.as_u16()),
        "status": status.as_u16(),
        "detail": detail,
    });
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// 400 with amoCRM's `validation-errors` block.
fn invalid(path: &str, detail: &str) -> Response {
    let body = json!({
        "validation-errors": [{"request_id": "0", "errors": [{"code": "InvalidType", "path": path, "detail": detail}]}],
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Request validation failed",
    });
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// What the account's front proxy answers for throttling and outages: an HTML page.
fn proxy_page(status: StatusCode, retry_after: Option<u64>) -> Response {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut response = (status, [(header::CONTENT_TYPE, "text/html")], body).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn hal(body: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/hal+json")], body.to_string()).into_response()
}

async fn handle(State(state): State<Arc<SimulatorState>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let query = uri.query().unwrap_or("").to_string();
    {
        let mut c = lock(&state.counters);
        *c.requests.entry(path.clone()).or_default() += 1;
        c.queries.entry(path.clone()).or_default().push(query.clone());
    }
    if let Some(response) = injected(&state, &path) {
        return response;
    }
    if *lock(&state.limiter_on) {
        let mut window = lock(&state.window);
        let now = Instant::now();
        while window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            window.pop_front();
        }
        if window.len() >= MAX_REQUESTS_PER_SECOND as usize {
            return proxy_page(StatusCode::TOO_MANY_REQUESTS, None);
        }
        window.push_back(now);
    }
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == state.token);
    if !authorized {
        return problem(StatusCode::UNAUTHORIZED, "Invalid user name or password");
    }
    if method != Method::GET {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "The amoCRM simulator serves GET only");
    }
    let q = Query::parse(&query);
    let response = {
        let data = state.data.read().unwrap_or_else(|e| e.into_inner());
        route(&state, &data, &path, &q)
    };
    if matches!(response.status(), StatusCode::OK | StatusCode::NO_CONTENT) {
        *lock(&state.counters).served.entry(path).or_default() += 1;
    }
    response
}

fn injected(state: &SimulatorState, path: &str) -> Option<Response> {
    let mut plans = lock(&state.plans);
    for active in plans.iter_mut() {
        if active.plan.path != "*" && active.plan.path != path {
            continue;
        }
        if active.seen < active.plan.pass {
            active.seen += 1;
            continue;
        }
        if active.plan.times.is_some_and(|t| active.failed >= t) {
            continue;
        }
        active.failed += 1;
        let status = StatusCode::from_u16(active.plan.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(proxy_page(status, active.plan.retry_after));
    }
    None
}

fn route(state: &SimulatorState, data: &AmoCrmSimulatorData, path: &str, q: &Query) -> Response {
    match path {
        LEADS => leads::leads(state, data, q),
        COMPANIES => leads::companies(state, data, q),
        USERS => leads::users(state, data, q),
        EVENTS => leads::events(state, data, q),
        TASKS => tasks_notes::tasks(state, data, q),
        LEAD_NOTES => tasks_notes::notes(state, "leads", &data.lead_notes, q),
        CONTACT_NOTES => tasks_notes::notes(state, "contacts", &data.contact_notes, q),
        COMPANY_NOTES => tasks_notes::notes(state, "companies", &data.company_notes, q),
        PIPELINES => {
            let items: Vec<Value> = data.pipelines.values().map(|p| with_self(state, "leads/pipelines", p)).collect();
            hal(json!({
                "_total_items": items.len(),
                "_links": {"self": {"href": format!("{}{path}", state.origin)}},
                "_embedded": {"pipelines": items},
            }))
        }
        LOSS_REASONS => {
            let items: Vec<Value> =
                data.loss_reasons.values().map(|r| with_self(state, "leads/loss_reasons", r)).collect();
            hal(json!({
                "_total_items": items.len(),
                "_page": 1,
                "_page_count": 1,
                "_links": {"self": {"href": format!("{}{path}", state.origin)}},
                "_embedded": {"loss_reasons": items},
            }))
        }
        _ => problem(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn with_self(state: &SimulatorState, collection: &str, record: &Value) -> Value {
    let mut r = record.clone();
    if let (Value::Object(m), Some(id)) = (&mut r, record.get("id")) {
        let id = id.as_str().map(str::to_string).unwrap_or_else(|| id.to_string());
        m.insert("_links".into(), json!({"self": {"href": format!("{}/api/v4/{collection}/{id}", state.origin)}}));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: &str, token: &str) -> (u16, String, String, Option<Value>) {
        let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let body = r.text().await.unwrap();
        let json = serde_json::from_str(&body).ok();
        (status, ct, body, json)
    }

    fn data(leads: i64, events: i64) -> AmoCrmSimulatorData {
        let mut d = AmoCrmSimulatorData::default();
        for i in 1..=leads {
            d.leads.insert(
                i,
                json!({"id": i, "name": format!("L{i}"), "price": i, "status_id": 1, "pipeline_id": 1,
                       "updated_at": 1000 + i, "created_at": 1000, "is_deleted": i == 3,
                       "_embedded": {"contacts": [{"id": 9}], "companies": [{"id": 4}]}}),
            );
        }
        for i in 1..=events {
            d.events.insert(
                format!("e{i:04}"),
                json!({"id": format!("e{i:04}"), "type": "lead_status_changed",
                "entity_type": "lead", "entity_id": 1, "created_at": 2000 + i, "created_by": 0}),
            );
        }
        d
    }

    #[tokio::test]
    async fn amocrm_simulator_follows_the_wire_format() {
        let sim = AmoCrmSimulator::start(data(260, 130), "tok").await.unwrap();
        sim.set_rate_limit(false);
        let base = sim.base_url();
        // 259 live leads (lead 3 is deleted): pages of 250 and 9.
        let (s, ct, _, j) = get(&format!("{base}/api/v4/leads?limit=250&with=contacts"), "tok").await;
        let j = j.unwrap();
        assert_eq!((s, ct.as_str()), (200, "application/hal+json"));
        assert_eq!(j["_page"], json!(1));
        assert_eq!(j["_embedded"]["leads"].as_array().unwrap().len(), 250);
        assert!(j.get("_total_items").is_none(), "leads carry no total");
        assert_eq!(j["_embedded"]["leads"][0]["_embedded"]["contacts"], json!([{"id": 9}]));
        assert_eq!(j["_embedded"]["leads"][2]["id"], json!(4), "the deleted lead 3 is left out");
        let next = j["_links"]["next"]["href"].as_str().unwrap().to_string();
        assert!(next.starts_with(&base) && next.contains("page=2") && next.contains("limit=250"), "{next}");
        let (_, _, _, j) = get(&next, "tok").await;
        let j = j.unwrap();
        assert_eq!(j["_embedded"]["leads"].as_array().unwrap().len(), 9);
        assert!(j["_links"].get("next").is_none(), "no next on the last page");
        // Without with=contacts the contacts are left out; companies stay.
        let (_, _, _, j) = get(&format!("{base}/api/v4/leads?limit=1"), "tok").await;
        let lead = &j.unwrap()["_embedded"]["leads"][0];
        assert!(lead["_embedded"].get("contacts").is_none() && lead["_embedded"]["companies"] == json!([{"id": 4}]));
        // A limit above the cap pages by the default 50 (no error).
        let (s, _, _, j) = get(&format!("{base}/api/v4/leads?limit=300"), "tok").await;
        assert_eq!((s, j.unwrap()["_embedded"]["leads"].as_array().unwrap().len()), (200, 50));
        let (_, _, _, j) = get(&format!("{base}/api/v4/events?limit=150"), "tok").await;
        assert_eq!(j.unwrap()["_embedded"]["events"].as_array().unwrap().len(), 50);
        let (_, _, _, j) = get(&format!("{base}/api/v4/events?limit=100&page=2"), "tok").await;
        let j = j.unwrap();
        let events = j["_embedded"]["events"].as_array().unwrap();
        // 130 events newest first: page 2 holds e0030 .. e0001.
        assert_eq!((events.len(), events[0]["id"].as_str()), (30, Some("e0030")));
        // Filters: updated_at from/to inclusive; 204 with no body when nothing matches.
        let (_, _, _, j) =
            get(&format!("{base}/api/v4/leads?filter[updated_at][from]=1250&filter[updated_at][to]=1252"), "tok").await;
        let ids: Vec<i64> =
            j.unwrap()["_embedded"]["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [250, 251, 252]);
        let (s, _, body, _) = get(&format!("{base}/api/v4/leads?filter%5Bupdated_at%5D%5Bfrom%5D=99999"), "tok").await;
        assert_eq!((s, body.as_str()), (204, ""));
        let (s, _, body, _) = get(&format!("{base}/api/v4/leads?page=9&limit=250"), "tok").await;
        assert_eq!((s, body.as_str()), (204, ""));
        let (_, _, _, j) = get(&format!("{base}/api/v4/leads?with=only_deleted"), "tok").await;
        let deleted = &j.unwrap()["_embedded"]["leads"];
        assert_eq!(deleted.as_array().unwrap().len(), 1);
        assert_eq!(
            (deleted[0]["id"].as_i64(), deleted[0]["is_deleted"].as_bool(), deleted[0].get("price")),
            (Some(3), Some(true), None)
        );
        // Bad parameters and tokens.
        let (s, ct, _, j) = get(&format!("{base}/api/v4/leads?page=0"), "tok").await;
        assert_eq!((s, ct.as_str()), (400, "application/problem+json"));
        assert_eq!(j.unwrap()["validation-errors"][0]["errors"][0]["path"], json!("page"));
        let (s, ct, _, j) = get(&format!("{base}/api/v4/leads"), "nope").await;
        assert_eq!((s, ct.as_str()), (401, "application/problem+json"));
        assert_eq!(
            j.unwrap(),
            json!({"title": "Unauthorized", "type": "https://httpstatus.es/401", "status": 401, "detail": "Invalid user name or password"})
        );
        assert_eq!(sim.requests("/api/v4/leads"), 10);
        assert_eq!(sim.served("/api/v4/leads"), 8, "200s and 204s");
    }

    #[tokio::test]
    async fn amocrm_simulator_limits_to_seven_a_second_and_injects_failures() {
        let sim = AmoCrmSimulator::start(data(3, 0), "tok").await.unwrap();
        let url = format!("{}/api/v4/leads", sim.base_url());
        let mut statuses = vec![];
        for _ in 0..9 {
            statuses.push(get(&url, "tok").await.0);
        }
        // Nine requests well inside one second: the first seven pass.
        assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 429, 429]);
        sim.set_rate_limit(false);
        sim.fail(FailurePlan {
            path: "/api/v4/leads".into(),
            status: 503,
            pass: 1,
            times: Some(2),
            retry_after: Some(3),
        });
        let r = reqwest::Client::new().get(&url).bearer_auth("tok").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = reqwest::Client::new().get(&url).bearer_auth("tok").send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers().get("retry-after").unwrap().to_str().unwrap()), (503, "3"));
        assert!(r.text().await.unwrap().contains("<html>"));
        assert_eq!(get(&url, "tok").await.0, 503);
        assert_eq!(get(&url, "tok").await.0, 200);
        assert_eq!(get(&format!("{}/api/v4/users", sim.base_url()), "tok").await.0, 204, "failures are per path");
    }
}
