//! Bitrix24 inbound-webhook API: one method call with retries inside a bounded time (503
//! `QUERY_LIMIT_EXCEEDED`, 429, 5xx, connection errors; `Retry-After` honoured, through
//! [`crate::http::RetryPolicy`]), answers checked for the REST error shape, `batch`, and keyset
//! paging over list methods.
//!
//! The webhook URL carries a secret code: it never appears in logs or errors, which name the
//! host and the path with the code masked (`portal.example/rest/1/***/crm.deal.list`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use tracing::{debug, warn};
use url::Url;

use super::records::{id_of, instant};
use super::wire::{
    BATCH, ERROR_METHOD_NOT_FOUND, INVALID_CREDENTIALS, MAX_BATCH, OPERATION_TIME_LIMIT, PAGE_SIZE,
    QUERY_LIMIT_EXCEEDED,
};
use crate::http::{HttpFailure, RetryPolicy, head};
use crate::{Error, Result};

/// Form parameters in PHP notation (`filter[>ID]`, `select[]`).
pub(crate) type Params = Vec<(String, String)>;

/// What to check when the portal cannot be reached.
const CHECK_WEBHOOK: &str = "the portal address in the webhook URL (webhook_url in dealhouse.toml, or the variable \
                             webhook_url_env names) and that the portal is up";

/// The REST API of one portal, reached through its inbound webhook.
pub(crate) struct Bitrix24Api {
    http: reqwest::Client,
    base: Url,
    /// The webhook URL with its secret code masked, for messages.
    shown: String,
    host: String,
    source: String,
    retry: RetryPolicy,
}

/// The useful part of a successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub result: Value,
    pub next: Option<u64>,
}

/// A `batch` answer by command name.
#[derive(Debug, Default)]
pub(crate) struct BatchReply {
    pub results: HashMap<String, Value>,
    pub errors: HashMap<String, String>,
    pub totals: HashMap<String, u64>,
}

impl Bitrix24Api {
    /// A client for the webhook `url` (`https://portal/rest/<user>/<code>/`).
    pub(crate) fn new(http: reqwest::Client, url: &str, source: &str, max_retry: Duration) -> Result<Self> {
        let config_error = |message: String| Error::Config { source_name: source.to_string(), message };
        let mut base = Url::parse(url.trim()).map_err(|e| {
            config_error(format!(
                "the webhook URL is not a valid URL ({e}); expected https://<portal>/rest/<user>/<code>/"
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(config_error("the webhook URL must be http(s)://<portal>/rest/<user>/<code>/".into()));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let segments: Vec<&str> = base.path().split('/').filter(|s| !s.is_empty()).collect();
        let Some(rest) = segments.iter().position(|s| *s == "rest") else {
            return Err(config_error("the webhook URL has no /rest/<user>/<code>/ part".into()));
        };
        if segments.len() < rest + 3 {
            return Err(config_error("the webhook URL must end in /rest/<user>/<code>/".into()));
        }
        let mut masked: Vec<&str> = segments.clone();
        masked[rest + 2] = "***";
        let host = match base.port() {
            Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_string(),
        };
        let shown = format!("{host}/{}/", masked.join("/"));
        let retry = RetryPolicy {
            max_retry,
            advice: "The portal is throttling or failing; retry later, or raise max_retry_seconds",
        };
        Ok(Self { http, base, shown, host, source: source.to_string(), retry })
    }

    /// The portal's host (safe to log).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Where a method lives, with the secret code masked.
    pub(crate) fn location(&self, method: &str) -> String {
        format!("{}{method}", self.shown)
    }

    fn error(&self, method: &str, message: String) -> Error {
        Error::Read { source_name: self.source.clone(), location: self.location(method), message }
    }

    /// Calls `method`, retrying throttled and failed attempts for at most `max_retry_seconds`.
    pub(crate) async fn call(&self, method: &str, params: &[(String, String)]) -> Result<Reply> {
        let on_retry = |attempt: u32, delay: Duration, why: &HttpFailure| {
            warn!(source = %self.source, host = %self.host, method, attempt, delay_ms = delay.as_millis() as u64, %why, "retrying Bitrix24 call");
        };
        self.retry.run(|| self.attempt(method, params), on_retry).await.map_err(|failure| Error::Http {
            source_name: self.source.clone(),
            location: self.location(method),
            failure,
        })
    }

    async fn attempt(&self, method: &str, params: &[(String, String)]) -> std::result::Result<Reply, HttpFailure> {
        let url = self
            .base
            .join(&format!("{method}.json"))
            .map_err(|e| HttpFailure::refused(format!("cannot build the method URL: {e}")))?;
        let response = match self.http.post(url).form(params).send().await {
            Ok(r) => r,
            Err(e) => return Err(HttpFailure::transport("request failed", e, CHECK_WEBHOOK)),
        };
        let status = response.status();
        let retry_after = crate::http::retry_after(response.headers());
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_string();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(HttpFailure::transport("reading the answer failed", e, CHECK_WEBHOOK)),
        };
        let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        let json: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) if transient => {
                return Err(HttpFailure::retryable(format!("HTTP {status} with a non-JSON answer"), retry_after));
            }
            Err(_) => {
                return Err(HttpFailure::refused(format!(
                    "expected a JSON answer but got {content_type} (HTTP {status}), starting: {:?}. Is the webhook \
                     URL pointing at the portal's /rest/ endpoint, and is the portal up?",
                    head(&body)
                )));
            }
        };
        if let Some(code) = json.get("error").and_then(Value::as_str).or_else(|| (!status.is_success()).then_some("")) {
            let description = json.get("error_description").and_then(Value::as_str).unwrap_or("");
            let what = format!("HTTP {status} {code} {description}").trim().to_string();
            return Err(match code {
                QUERY_LIMIT_EXCEEDED | OPERATION_TIME_LIMIT => HttpFailure::retryable(what, retry_after),
                _ if transient => HttpFailure::retryable(what, retry_after),
                INVALID_CREDENTIALS | "NO_AUTH_FOUND" | "expired_token" | "invalid_token" => {
                    HttpFailure::refused(format!(
                        "{what}: the portal refused the webhook; check the webhook URL (webhook_url or the variable named \
                     by webhook_url_env) and that the webhook still exists in the portal"
                    ))
                }
                _ if status == StatusCode::UNAUTHORIZED => HttpFailure::refused(format!(
                    "{what}: the portal refused the webhook; check the webhook URL (webhook_url or the variable named \
                     by webhook_url_env)"
                )),
                "insufficient_scope" | "ACCESS_DENIED" => HttpFailure::refused(format!(
                    "{what}: give the webhook the crm, user and department scopes in the portal"
                )),
                ERROR_METHOD_NOT_FOUND => HttpFailure::refused(format!(
                    "{what}: the portal does not know this method (missing scope or module?)"
                )),
                _ => HttpFailure::refused(what),
            });
        }
        let Some(result) = json.get("result").cloned() else {
            return Err(HttpFailure::refused(format!("the answer (HTTP {status}) has no `result`: {:?}", head(&body))));
        };
        let number = |key: &str| match json.get(key) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(Reply { result, next: number("next") })
    }

    /// Runs up to 50 commands (`name`, `method`, params) in one request.
    pub(crate) async fn batch(&self, commands: &[(String, &str, Params)]) -> Result<BatchReply> {
        if commands.len() > MAX_BATCH {
            return Err(self.error(BATCH, format!("{} commands, more than the {MAX_BATCH} allowed", commands.len())));
        }
        let params: Params = commands
            .iter()
            .map(|(name, method, params)| {
                let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
                (format!("cmd[{name}]"), format!("{method}?{query}"))
            })
            .chain(std::iter::once(("halt".to_string(), "0".to_string())))
            .collect();
        let reply = self.call(BATCH, &params).await?;
        let section = |key: &str| -> Vec<(String, Value)> {
            match reply.result.get(key) {
                // PHP writes an empty section as [] and a filled one as an object.
                Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                _ => vec![],
            }
        };
        let results = section("result").into_iter().collect();
        let errors = section("result_error")
            .into_iter()
            .map(|(k, v)| {
                let code = v.get("error").and_then(Value::as_str).unwrap_or("error");
                let description = v.get("error_description").and_then(Value::as_str).unwrap_or("");
                (k, format!("{code} {description}").trim().to_string())
            })
            .collect();
        let totals = section("result_total")
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::Number(n) => n.as_u64().map(|n| (k, n)),
                Value::String(s) => s.parse().ok().map(|n| (k, n)),
                _ => None,
            })
            .collect();
        Ok(BatchReply { results, errors, totals })
    }

    /// Every row of a small list method, following `next` (offset paging).
    pub(crate) async fn list_all(&self, method: &str, params: &[(String, String)]) -> Result<Vec<Value>> {
        let mut rows = vec![];
        let mut start = 0u64;
        loop {
            let mut p = params.to_vec();
            p.push(("start".into(), start.to_string()));
            let reply = self.call(method, &p).await?;
            let page = records(reply.result, false).map_err(|m| self.error(method, m))?;
            rows.extend(page);
            match reply.next {
                Some(next) if next > start => start = next,
                _ => break,
            }
        }
        Ok(rows)
    }
}

/// The rows of a list answer: `result` itself, or `result.items` (crm.stagehistory.list).
pub(crate) fn records(result: Value, items: bool) -> std::result::Result<Vec<Value>, String> {
    let list = if items {
        match result {
            Value::Object(mut m) => m.remove("items").unwrap_or(Value::Array(vec![])),
            // An empty PHP array.
            Value::Array(a) if a.is_empty() => Value::Array(a),
            other => return Err(format!("expected `result.items`, got {}", shape(&other))),
        }
    } else {
        result
    };
    match list {
        Value::Array(rows) => Ok(rows),
        // PHP writes a list with holes as an object keyed by position.
        Value::Object(m) => Ok(m.into_iter().map(|(_, v)| v).collect()),
        other => Err(format!("expected a list of records, got {}", shape(&other))),
    }
}

fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What to page through.
#[derive(Debug, Clone)]
pub(crate) struct ListSpec {
    pub method: &'static str,
    /// Extra parameters (`select`, `entityTypeId`).
    pub params: Params,
    /// Datetime field the read is ordered by (`DATE_MODIFY`), or None for ID order.
    pub cursor_field: Option<&'static str>,
    /// ID order is asked as `sort=ID&order=ASC` (user.get) rather than `order[ID]=ASC`.
    pub sort_param: bool,
    /// Rows come under `result.items`.
    pub items: bool,
}

/// One page of rows and where it came from (for quarantine locations).
pub(crate) struct Page {
    pub records: Vec<Value>,
    pub location: Arc<str>,
}

/// Keyset paging in fast mode (`start=-1`, no count), as the Bitrix24 docs advise for large
/// reads: by ID (`filter[>ID]=last`), or by a datetime field then ID.
///
/// Datetime order pages by `filter[>=F]=t`: rows already returned at exactly `t` are dropped,
/// and when a whole page shares one `t` the rows at `t` are drained by ID (`filter[=F]=t`,
/// `filter[>ID]=last`) before moving on with `filter[>F]=t`. Rows changed during the read get
/// a newer `F` and come up again later, so none is skipped, unlike offset paging.
pub(crate) struct Pager {
    spec: ListSpec,
    since: Option<DateTime<Utc>>,
    strict: bool,
    last_id: i64,
    ties: bool,
    done: bool,
    pages: u64,
}

impl Pager {
    /// Rows with ID greater than `after_id`, by ID.
    pub(crate) fn by_id(spec: ListSpec, after_id: i64) -> Self {
        Self { spec, since: None, strict: false, last_id: after_id, ties: false, done: false, pages: 0 }
    }

    /// Rows whose cursor field is at or after `since` (all when None), by that field then ID.
    pub(crate) fn by_time(spec: ListSpec, since: Option<DateTime<Utc>>) -> Self {
        Self { spec, since, strict: false, last_id: i64::MIN, ties: false, done: false, pages: 0 }
    }

    /// The next page, or None when the read is complete.
    pub(crate) async fn next(&mut self, client: &Bitrix24Api) -> Result<Option<Page>> {
        if self.done {
            return Ok(None);
        }
        let mut params = self.spec.params.clone();
        let mut shown: Vec<String> = vec![];
        let mut filter = |key: String, value: String| {
            shown.push(format!("filter[{key}]={value}"));
            params.push((format!("filter[{key}]"), value));
        };
        match (self.spec.cursor_field, self.ties) {
            (None, _) => filter(">ID".into(), self.last_id.to_string()),
            (Some(field), true) => {
                filter(format!("={field}"), stamp(self.since));
                filter(">ID".into(), self.last_id.to_string());
            }
            (Some(field), false) => {
                if self.since.is_some() {
                    filter(format!("{}{field}", if self.strict { ">" } else { ">=" }), stamp(self.since));
                }
            }
        }
        match (self.spec.cursor_field, self.ties) {
            (Some(field), false) => {
                params.push((format!("order[{field}]"), "ASC".into()));
                params.push(("order[ID]".into(), "ASC".into()));
            }
            _ if self.spec.sort_param => {
                params.push(("sort".into(), "ID".into()));
                params.push(("order".into(), "ASC".into()));
            }
            _ => params.push(("order[ID]".into(), "ASC".into())),
        }
        params.push(("start".into(), "-1".into()));
        self.pages += 1;
        let location: Arc<str> =
            format!("{} page {} (start=-1 {})", self.spec.method, self.pages, shown.join(" ")).trim_end().into();
        let reply = client.call(self.spec.method, &params).await?;
        let rows = records(reply.result, self.spec.items)
            .map_err(|m| client.error(self.spec.method, format!("{location}: {m}")))?;
        let full = rows.len() >= PAGE_SIZE;
        debug!(method = self.spec.method, page = self.pages, rows = rows.len(), "page read");
        let Some(field) = self.spec.cursor_field else {
            if let Some(max) = rows.iter().filter_map(id_of).max() {
                self.last_id = self.last_id.max(max);
            } else if full {
                return Err(client.error(self.spec.method, format!("{location}: a full page without record IDs")));
            }
            self.done = !full;
            return Ok(Some(Page { records: rows, location }));
        };
        if self.ties {
            if let Some(max) = rows.iter().filter_map(id_of).max() {
                self.last_id = self.last_id.max(max);
            }
            if !full {
                self.ties = false;
                self.strict = true;
            }
            return Ok(Some(Page { records: rows, location }));
        }
        // Where the next page starts, from the page as returned (ordered by `field`, then ID).
        let last = rows.iter().rev().find_map(|r| instant(r, field));
        let at_last = rows.iter().filter(|r| last.is_some() && instant(r, field) == last).filter_map(id_of).max();
        // Rows at exactly `since` with IDs already returned came back because of `>=`.
        let (since, strict, last_id) = (self.since, self.strict, self.last_id);
        let fresh: Vec<Value> = rows
            .into_iter()
            .filter(|r| {
                strict || since.is_none() || instant(r, field) != since || id_of(r).is_none_or(|id| id > last_id)
            })
            .collect();
        if !full {
            self.done = true;
            return Ok(Some(Page { records: fresh, location }));
        }
        let Some(last) = last else {
            return Err(client.error(
                self.spec.method,
                format!("{location}: no readable {field} on a full page; cannot page past it"),
            ));
        };
        if Some(last) == self.since {
            // The whole page shares one timestamp: drain it by ID.
            self.ties = true;
            self.last_id = self.last_id.max(at_last.unwrap_or(i64::MIN));
        } else {
            self.since = Some(last);
            self.strict = false;
            self.last_id = at_last.unwrap_or(i64::MIN);
        }
        Ok(Some(Page { records: fresh, location }))
    }
}

/// A filter value for a datetime, as ISO 8601 with an offset.
fn stamp(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A portal address where nothing listens fails at once, naming the address and the
    /// setting to check, instead of being retried for max_retry_seconds as "throttling".
    #[tokio::test]
    async fn a_refused_connection_fails_fast_naming_host_and_port() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("its address").port()
        };
        let url = format!("http://127.0.0.1:{port}/rest/1/secretcode/");
        let api = Bitrix24Api::new(reqwest::Client::new(), &url, "crm", Duration::from_secs(300)).unwrap();
        match api.call("profile", &[]).await {
            // Refused, not GaveUp: one attempt, no backoff (the retry policy never retries a
            // refusal), where a retryable failure would have been tried for 300 s.
            Err(Error::Http { failure: HttpFailure::Refused { message }, location, .. }) => {
                assert!(message.starts_with(&format!("connection refused at 127.0.0.1:{port}")), "{message}");
                assert!(message.contains("webhook_url in dealhouse.toml"), "{message}");
                assert!(!message.contains("secretcode") && !location.contains("secretcode"), "{location}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
