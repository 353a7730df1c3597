//! Retrying one HTTP call inside a time budget, and pacing calls under a rate limit.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// First retry delay before jitter; it doubles per attempt up to [`MAX_DELAY`]. Jitter adds up
/// to as much again, so the delays fall in 0.25-0.5 s, 0.5-1 s, 1-2 s, ... 15-30 s, and
/// parallel clients do not retry in step.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Largest retry delay before jitter.
const MAX_DELAY: Duration = Duration::from_secs(15);

/// Why an HTTP call failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpFailure {
    /// Retrying will not help (credentials refused, a missing scope, an answer that is not the
    /// API's); the message says what to fix.
    #[error("{message}")]
    Refused {
        /// What failed and how to fix it.
        message: String,
    },
    /// Throttled, a server error, or no answer at all: another attempt may pass.
    #[error("{why}")]
    Retryable {
        /// What happened (`HTTP 503 QUERY_LIMIT_EXCEEDED ...`, `request failed: ...`).
        why: String,
        /// How long the server asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// The transport error, when there was no answer (its URL removed: it may hold a secret).
        #[source]
        transport: Option<reqwest::Error>,
    },
    /// Every attempt inside the retry budget failed.
    #[error(
        "gave up after {attempts} attempts in {:.1} s (max_retry_seconds = {}): {last}. {advice}",
        elapsed.as_secs_f64(),
        max_retry.as_secs()
    )]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The budget (`max_retry_seconds`).
        max_retry: Duration,
        /// What to do about it (the vendor's limits, the setting to raise).
        advice: &'static str,
        /// The last attempt's failure.
        #[source]
        last: Box<HttpFailure>,
    },
}

impl HttpFailure {
    /// A failure retrying will not cure.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused { message: message.into() }
    }

    /// A throttled or temporarily failing answer.
    pub fn retryable(why: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::Retryable { why: why.into(), retry_after, transport: None }
    }

    /// No (complete) answer: `what` failed (`request failed`, `reading the answer failed`).
    /// A refused connection is not retried: nothing listens at that address, which another
    /// attempt will not change in the minutes of a retry budget; `check` says what to look at
    /// (the setting holding the URL).
    pub fn transport(what: &str, error: reqwest::Error, check: &str) -> Self {
        if let Some(address) = refused_address(&error) {
            return Self::refused(format!(
                "connection refused at {address}: nothing accepts connections there; check {check}"
            ));
        }
        // reqwest errors print the URL, which may hold a secret (a webhook code).
        let error = error.without_url();
        Self::Retryable { why: format!("{what}: {error}"), retry_after: None, transport: Some(error) }
    }

    /// True when another attempt may pass.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    /// How long the server asked to wait before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `HOST:PORT` of a connection the other side refused (no secret: the URL's path stays out).
fn refused_address(error: &reqwest::Error) -> Option<String> {
    if !error.is_connect() {
        return None;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            let url = error.url()?;
            return Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?));
        }
        cause = e.source();
    }
    None
}

/// How one call is retried: backoff with jitter while its failures are retryable, as long as the
/// next attempt would start inside `max_retry`.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Time one call may take, retries and waits included (`max_retry_seconds`).
    pub max_retry: Duration,
    /// What the give-up message advises.
    pub advice: &'static str,
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails for good, or the budget is spent
    /// ([`HttpFailure::GaveUp`]); `on_retry(attempts, delay, failure)` is told of each retry.
    pub(crate) async fn run<T, Fut>(
        &self,
        mut attempt: impl FnMut() -> Fut,
        on_retry: impl Fn(u32, Duration, &HttpFailure),
    ) -> Result<T, HttpFailure>
    where
        Fut: Future<Output = Result<T, HttpFailure>>,
    {
        let started = Instant::now();
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::new()
            .with_min_delay(FIRST_DELAY)
            .with_max_delay(MAX_DELAY)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        let outcome = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            attempt()
        })
        .retry(backoff)
        .when(HttpFailure::is_retryable)
        .adjust(|failure, backoff| {
            // The server's own wait wins over the backoff; past the budget, stop.
            let delay = failure.retry_after().or(backoff)?;
            (started.elapsed() + delay <= self.max_retry).then_some(delay)
        })
        .notify(|failure, delay| on_retry(attempts.load(Ordering::Relaxed), delay, failure))
        .await;
        match outcome {
            Err(last) if last.is_retryable() => Err(HttpFailure::GaveUp {
                attempts: attempts.load(Ordering::Relaxed),
                elapsed: started.elapsed(),
                max_retry: self.max_retry,
                advice: self.advice,
                last: Box::new(last),
            }),
            other => other,
        }
    }
}

/// Spaces requests evenly under a rate, one at a time (no bursts: vendors count requests in a
/// sliding window, so a burst at the start of a second would be refused).
pub(crate) struct Pacer {
    limiter: DefaultDirectRateLimiter,
}

impl Pacer {
    /// At most `requests` a second, each interval stretched by `slack` (> 1): network jitter can
    /// bring requests closer together on arrival than they were sent, and the vendor counts
    /// arrivals.
    pub(crate) fn per_second(requests: u32, slack: f64) -> Self {
        let interval = Duration::from_secs_f64(slack / f64::from(requests.max(1)));
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        Self { limiter: RateLimiter::direct(quota) }
    }

    /// Waits for the next request's turn.
    pub(crate) async fn wait(&self) {
        self.limiter.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retry_policy_retries_then_gives_up_inside_the_budget() {
        let policy = RetryPolicy { max_retry: Duration::from_millis(900), advice: "retry later" };
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let outcome: Result<(), HttpFailure> = policy
            .run(
                || async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Err(HttpFailure::retryable("HTTP 429", None))
                },
                |_, _, _| {},
            )
            .await;
        // Delays 0.25-0.5 s, 0.5-1 s, then 1-2 s: the second retry fits the 0.9 s budget only when
        // both delays come out short, the third never does, so two or three attempts.
        let n = calls.load(Ordering::Relaxed);
        assert!((2..=3).contains(&n), "{n} attempts");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        match outcome {
            Err(HttpFailure::GaveUp { attempts, last, .. }) => {
                assert_eq!(attempts, n);
                assert!(matches!(*last, HttpFailure::Retryable { .. }));
            }
            other => panic!("{other:?}"),
        }

        // A refusal is not retried; a success after a retryable failure is returned.
        calls.store(0, Ordering::Relaxed);
        let refused: Result<(), HttpFailure> = policy
            .run(
                || async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Err(HttpFailure::refused("bad token"))
                },
                |_, _, _| {},
            )
            .await;
        assert!(matches!(refused, Err(HttpFailure::Refused { .. })) && calls.load(Ordering::Relaxed) == 1);
        calls.store(0, Ordering::Relaxed);
        let retried = policy
            .run(
                || async {
                    match calls.fetch_add(1, Ordering::Relaxed) {
                        0 => Err(HttpFailure::retryable("HTTP 503", Some(Duration::from_millis(0)))),
                        n => Ok(n),
                    }
                },
                |_, _, _| {},
            )
            .await;
        assert_eq!(retried.ok(), Some(1));
    }

    #[tokio::test]
    async fn pacer_spaces_requests_without_a_burst() {
        let pacer = Pacer::per_second(20, 1.0);
        let started = Instant::now();
        for _ in 0..4 {
            pacer.wait().await;
        }
        // The first passes at once, the next three 50 ms apart each.
        assert!(started.elapsed() >= Duration::from_millis(140), "{:?}", started.elapsed());
    }
}
