//! HTTP plumbing the CRM connectors share, so each connector holds only what is particular to
//! its vendor (URLs, answer shapes, error codes):
//!
//! - [`RetryPolicy`]: one call retried with exponential backoff and jitter (`backon`) while its
//!   failures are retryable, for at most `max_retry_seconds`, waiting what `Retry-After` asks;
//! - [`Pacer`]: requests spaced under a vendor's rate limit (`governor`);
//! - [`HttpFailure`]: why a call failed, retryable or not, keeping the transport error;
//! - [`Upstream::chunk`]: a page of JSON records mapped to canonical rows, the records that do
//!   not map quarantined once per upstream record, as one [`crate::Chunk`].

mod chunk;
mod retry;

pub(crate) use self::chunk::Upstream;
pub use self::retry::HttpFailure;
pub(crate) use self::retry::{Pacer, RetryPolicy};

/// The first bytes of an answer's body on one line, for error messages.
pub(crate) fn head(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(160)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `Retry-After` header in seconds, when the server sent one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs)
}
