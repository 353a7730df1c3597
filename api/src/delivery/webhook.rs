//! Webhooks: one JSON POST per destination, `{subject, headline, files, branch, meta}` (files by
//! name, location, size and SHA-256, not their bytes), signed with HMAC-SHA256 of the exact body
//! (`X-Dealhouse-Signature: sha256=<hex>`, beside `X-Dealhouse-Timestamp`), retried on connection
//! failures, timeouts, 429 and 5xx (honouring `Retry-After`), never on another 4xx.

use std::time::Duration;

use dealhouse_warehouse::config::Destination;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::retry::{self, Failure, Policy};
use super::{Delivery, DeliveryOutcome};

/// Header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Dealhouse-Signature";
/// Header carrying the send time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Dealhouse-Timestamp";
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most of an error answer's body quoted in the outcome.
const QUOTED_BODY: usize = 200;

/// The JSON a webhook receives.
pub fn body(delivery: &Delivery) -> Value {
    let headline: Vec<Value> =
        delivery.headline.iter().map(|(label, value)| json!({ "label": label, "value": value })).collect();
    let files: Vec<Value> = delivery
        .files
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "location": f.location,
                "bytes": f.bytes.len(),
                "sha256": hex::encode(Sha256::digest(&f.bytes)),
            })
        })
        .collect();
    json!({
        "subject": delivery.subject,
        "headline": headline,
        "files": files,
        "branch": delivery.branch,
        "meta": delivery.meta,
    })
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The URL as recorded: without its query and fragment, which may carry a token.
pub(crate) fn recipient(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// POSTs `delivery` to the destination, retrying per its policy.
pub(crate) async fn post(name: &str, d: &Destination, delivery: &Delivery) -> DeliveryOutcome {
    let url = d.url.clone().unwrap_or_default();
    let outcome = |result: Result<(), String>, attempts: u32| DeliveryOutcome {
        destination: name.to_string(),
        recipient: recipient(&url),
        delivered: result.is_ok(),
        attempts,
        error: result.err(),
    };
    let secret = match d.secret_env.as_deref().map(|env| super::env_var(name, "secret_env", env)) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return outcome(Err(e), 0),
        None => return outcome(Err(format!("[destinations.{name}] has no secret_env")), 0),
    };
    let bytes = match serde_json::to_vec(&body(delivery)) {
        Ok(b) => b,
        Err(e) => return outcome(Err(format!("cannot write the JSON body: {e}")), 0),
    };
    let sig = signature(secret.as_bytes(), &bytes);
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return outcome(Err(format!("cannot start the HTTP client: {e}")), 0),
    };
    let policy = Policy { max_attempts: d.max_attempts, max_wait: Duration::from_secs(d.max_retry_seconds) };
    let (result, attempts) = retry::run(policy, || {
        let mut request = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &sig)
            .header(TIMESTAMP_HEADER, chrono::Utc::now().timestamp().to_string())
            .body(bytes.clone());
        for (k, v) in &d.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        async move { attempt(request).await }
    })
    .await;
    outcome(result, attempts)
}

async fn attempt(request: reqwest::RequestBuilder) -> Result<(), Failure> {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let again = e.is_connect() || e.is_timeout() || e.is_request();
            // The causes down to the OS error ("Connection refused"), not only reqwest's summary.
            let mut detail = String::new();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                detail.push_str(&format!(": {c}"));
                cause = c.source();
            }
            // The URL may hold a token: the error is quoted without it.
            let text = e.without_url().to_string();
            let error = format!("request failed: {text}{detail}");
            return if again { Err(Failure::Retry { error, after: None }) } else { Err(Failure::Final(error)) };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let quoted: String = text.chars().take(QUOTED_BODY).collect();
    let error = format!("HTTP {status}{}", if quoted.is_empty() { String::new() } else { format!(": {quoted}") });
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(Failure::Retry { error, after })
    } else {
        Err(Failure::Final(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_exact_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(recipient("https://h.example.ru/x?token=secret#f"), "https://h.example.ru/x");
    }
}
