//! amoCRM API v4: the bearer token, pacing under the account's 7 requests a second
//! ([`crate::http::Pacer`]), retries inside a bounded time (429, 5xx, connection errors;
//! `Retry-After` honoured, through [`crate::http::RetryPolicy`]), answers checked for the HAL and
//! problem+json shapes, and paging by `_links.next`.
//!
//! The token travels in the `Authorization` header only: it is never part of a URL, a log line
//! or an error message.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use tracing::{debug, warn};
use url::Url;

use crate::http::{HttpFailure, Pacer, RetryPolicy, head};
use crate::{Error, Result};

/// Slack added to the pacing interval: network jitter can bring requests closer together on
/// arrival than they were sent, and the account counts arrivals.
const PACING_SLACK: f64 = 1.05;

/// How to reach one account.
pub(crate) struct AccountConfig<'a> {
    /// `https://<subdomain>.amocrm.ru`.
    pub base_url: &'a str,
    /// The long-lived token.
    pub token: String,
    /// Where the token came from, for messages (`the variable AMO_TOKEN (token_env)`).
    pub token_origin: String,
    /// Source name, for errors and logs.
    pub source: &'a str,
    /// Retry budget per request.
    pub max_retry: Duration,
    /// Requests a second at most.
    pub requests_per_second: u32,
}

/// What to check when the account cannot be reached.
const CHECK_BASE_URL: &str =
    "base_url in dealhouse.toml (https://<subdomain>.amocrm.ru) and that the account is reachable";

/// The API v4 of one account.
pub(crate) struct AmoCrmApi {
    http: reqwest::Client,
    base: Url,
    shown: String,
    token: String,
    token_origin: String,
    source: String,
    retry: RetryPolicy,
    pacer: Pacer,
}

/// A successful answer: its JSON (Null for 204) and the server's clock.
pub(crate) struct Answer {
    pub body: Value,
    pub date: Option<DateTime<Utc>>,
}

impl AmoCrmApi {
    pub(crate) fn new(http: reqwest::Client, c: AccountConfig<'_>) -> Result<Self> {
        let config_error = |message: String| Error::Config { source_name: c.source.to_string(), message };
        let base = Url::parse(c.base_url.trim()).map_err(|e| {
            config_error(format!("base_url is not a valid URL ({e}); expected https://<subdomain>.amocrm.ru"))
        })?;
        let Some(host) = base.host_str() else {
            return Err(config_error("base_url has no host; expected https://<subdomain>.amocrm.ru".into()));
        };
        let shown = match base.port() {
            Some(p) => format!("{}://{host}:{p}", base.scheme()),
            None => format!("{}://{host}", base.scheme()),
        };
        if c.token.trim().is_empty() {
            return Err(config_error(format!("the token in {} is empty", c.token_origin)));
        }
        Ok(Self {
            http,
            base,
            shown,
            token: c.token.trim().to_string(),
            token_origin: c.token_origin,
            source: c.source.to_string(),
            retry: RetryPolicy {
                max_retry: c.max_retry,
                advice: "amoCRM allows 7 requests a second per account, shared with its other integrations; retry \
                         later, or raise max_retry_seconds",
            },
            pacer: Pacer::per_second(c.requests_per_second, PACING_SLACK),
        })
    }

    /// The account address (safe to log).
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    pub(crate) fn error(&self, location: &str, message: String) -> Error {
        Error::Read { source_name: self.source.clone(), location: format!("{}{location}", self.shown), message }
    }

    /// GETs `path_and_query` (`/api/v4/leads?...`), paced under `requests_per_second`, retrying
    /// throttled and failed attempts for at most `max_retry_seconds`.
    pub(crate) async fn get(&self, path_and_query: &str) -> Result<Answer> {
        let url = self
            .base
            .join(path_and_query)
            .map_err(|e| self.error(path_and_query, format!("cannot build the request URL: {e}")))?;
        let attempt = || async {
            self.pacer.wait().await;
            self.attempt(url.clone()).await
        };
        let on_retry = |attempt: u32, delay: Duration, why: &HttpFailure| {
            warn!(source = %self.source, account = %self.shown, path = path_and_query, attempt, delay_ms = delay.as_millis() as u64, %why, "retrying amoCRM call");
        };
        self.retry.run(attempt, on_retry).await.map_err(|failure| Error::Http {
            source_name: self.source.clone(),
            location: format!("{}{path_and_query}", self.shown),
            failure,
        })
    }

    async fn attempt(&self, url: Url) -> std::result::Result<Answer, HttpFailure> {
        let request =
            self.http.get(url).bearer_auth(&self.token).header(reqwest::header::ACCEPT, "application/hal+json");
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(HttpFailure::transport("request failed", e, CHECK_BASE_URL)),
        };
        let status = response.status();
        let header = |name: reqwest::header::HeaderName| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let retry_after = crate::http::retry_after(response.headers());
        let date = header(reqwest::header::DATE)
            .and_then(|d| DateTime::parse_from_rfc2822(&d).ok())
            .map(|d| d.with_timezone(&Utc));
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_else(|| "no content type".into());
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(HttpFailure::transport("reading the answer failed", e, CHECK_BASE_URL)),
        };
        if status == StatusCode::NO_CONTENT {
            return Ok(Answer { body: Value::Null, date });
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let detail = json
            .as_ref()
            .and_then(|j| j.get("detail").or_else(|| j.get("title")))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| head(&body));
        let what = format!("HTTP {status}: {detail}");
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(HttpFailure::retryable(what, retry_after));
        }
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                return Err(HttpFailure::refused(format!(
                    "token rejected by {} ({what}): regenerate the long-lived token (amoCRM: Settings > Integrations > \
                     your private integration > Keys and scopes) and put it in {}",
                    self.shown, self.token_origin
                )));
            }
            StatusCode::PAYMENT_REQUIRED => {
                return Err(HttpFailure::refused(format!(
                    "{what}: the account's subscription has expired; renew it in amoCRM"
                )));
            }
            StatusCode::FORBIDDEN => {
                return Err(HttpFailure::refused(format!(
                    "{what}: the token's user may not read this, or the account blocked API access; give the \
                     integration's user the rights to view leads, companies and users"
                )));
            }
            StatusCode::NOT_FOUND => {
                return Err(HttpFailure::refused(format!(
                    "{what}: check base_url ({}) is the account address https://<subdomain>.amocrm.ru",
                    self.shown
                )));
            }
            StatusCode::BAD_REQUEST => {
                let errors =
                    json.as_ref().and_then(|j| j.get("validation-errors")).map(Value::to_string).unwrap_or_default();
                return Err(HttpFailure::refused(format!("{what} {errors}").trim()));
            }
            _ => return Err(HttpFailure::refused(what)),
        }
        match json {
            Some(body) if content_type.contains("json") => Ok(Answer { body, date }),
            _ => Err(HttpFailure::refused(format!(
                "expected application/hal+json but got {content_type} (HTTP {status}), starting: {:?}. Is base_url the \
                 account address, and is the account up?",
                head(&body)
            ))),
        }
    }
}

/// A request path with its query, parameters encoded.
pub(crate) fn path_with(path: &str, params: &[(&str, String)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    if query.is_empty() { path.to_string() } else { format!("{path}?{query}") }
}

/// One page of records and where it came from.
pub(crate) struct Page {
    pub records: Vec<Value>,
    /// `path page N`, for quarantine locations.
    pub location: Arc<str>,
    /// The server's clock when it answered.
    pub date: Option<DateTime<Utc>>,
}

/// Pages through a list by `_links.next` until it is absent (or the account answers 204).
///
/// Nothing is inferred from a page's length: amoCRM pages by 50 when asked for more than its
/// maximum, so a short page does not mean the last one.
pub(crate) struct Lister {
    /// `_embedded` key of the records (`leads`, `events`).
    key: &'static str,
    next: Option<String>,
    pages: u64,
    /// The server's clock at the first answer, 204 included.
    first_date: Option<DateTime<Utc>>,
}

impl Lister {
    /// A read starting at `first` (path and query).
    pub(crate) fn new(key: &'static str, first: String) -> Self {
        Self { key, next: Some(first), pages: 0, first_date: None }
    }

    /// The server's clock when the list first answered (also when that answer was a 204).
    pub(crate) fn first_date(&self) -> Option<DateTime<Utc>> {
        self.first_date
    }

    /// The next page, or None when the list is done.
    pub(crate) async fn next(&mut self, client: &AmoCrmApi) -> Result<Option<Page>> {
        let Some(request) = self.next.take() else { return Ok(None) };
        self.pages += 1;
        let path = request.split('?').next().unwrap_or(&request).to_string();
        let location: Arc<str> = format!("{path} page {}", self.pages).into();
        let answer = client.get(&request).await?;
        self.first_date = self.first_date.or(answer.date);
        if answer.body.is_null() {
            debug!(path, page = self.pages, "204: no rows");
            return Ok(None);
        }
        let records = match answer.body.get("_embedded").and_then(|e| e.get(self.key)) {
            Some(Value::Array(rows)) => rows.clone(),
            _ => {
                return Err(
                    client.error(&request, format!("{location}: the answer has no `_embedded.{}` list", self.key))
                );
            }
        };
        if let Some(href) = answer.body.pointer("/_links/next/href").and_then(Value::as_str) {
            // Only the path and query are taken: the token goes to `base_url` and nowhere else.
            let next = match Url::parse(href) {
                Ok(u) => match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_string(),
                },
                Err(_) => href.to_string(),
            };
            if next == request {
                return Err(client.error(&request, format!("{location}: `_links.next` points at the same page")));
            }
            self.next = Some(next);
        }
        debug!(path, page = self.pages, rows = records.len(), more = self.next.is_some(), "page read");
        Ok(Some(Page { records, location, date: answer.date }))
    }
}
