//! Retrying one delivery to one recipient: exponential backoff with jitter (backon), at most the
//! destination's `max_attempts`, no wait longer than its `max_retry_seconds` (a server's
//! `Retry-After` is honoured up to that cap). Only failures another attempt may cure are retried.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// First wait before jitter; it doubles per attempt up to the cap. Jitter adds up to as much
/// again, so many recipients failing at once do not retry in step.
const FIRST_DELAY: Duration = Duration::from_millis(500);

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection, a timeout, a throttled or failing server (429, 5xx, SMTP 4xx): try again,
    /// after `after` when the server said so.
    Retry {
        /// What happened.
        error: String,
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
    /// Another attempt will not help (refused address, 4xx, a certificate not trusted).
    Final(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Retry { error, .. } | Failure::Final(error) => error,
        }
    }
}

/// How many attempts, and the longest wait between two.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// Longest wait, `Retry-After` included.
    pub max_wait: Duration,
}

/// Runs `attempt` until it succeeds, fails for good, or the attempts run out: the last error
/// (if any) and the number of attempts made.
pub(crate) async fn run<F, Fut>(policy: Policy, mut attempt: F) -> (Result<(), String>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let count = AtomicU32::new(0);
    let cap = policy.max_wait.max(Duration::from_millis(1));
    let backoff = ExponentialBuilder::default()
        .with_min_delay(FIRST_DELAY.min(cap))
        .with_max_delay(cap)
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
        .with_jitter();
    let result = (|| {
        count.fetch_add(1, Ordering::Relaxed);
        attempt()
    })
    .retry(backoff)
    .sleep(tokio::time::sleep)
    .when(|f: &Failure| matches!(f, Failure::Retry { .. }))
    .adjust(|f: &Failure, wait: Option<Duration>| match (f, wait) {
        // `None` means the attempts are used up: keep it so.
        (Failure::Retry { after: Some(after), .. }, Some(_)) => Some((*after).min(cap)),
        _ => wait,
    })
    .notify(|f: &Failure, wait: Duration| {
        tracing::info!(error = %f.message(), wait_ms = wait.as_millis() as u64, "delivery attempt failed; retrying");
    })
    .await;
    (result.map_err(|f| f.message().to_string()), count.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_what_may_pass_and_stops_at_what_will_not() {
        let policy = Policy { max_attempts: 3, max_wait: Duration::from_millis(5) };
        let mut calls = 0;
        let (result, attempts) = run(policy, || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(Failure::Retry { error: format!("503 #{n}"), after: None }) } else { Ok(()) } }
        })
        .await;
        assert_eq!((result, attempts), (Ok(()), 3));

        let (result, attempts) =
            run(policy, || async { Err::<(), _>(Failure::Retry { error: "down".into(), after: None }) }).await;
        assert_eq!((result, attempts), (Err("down".to_string()), 3));

        let (result, attempts) = run(policy, || async { Err::<(), _>(Failure::Final("404".into())) }).await;
        assert_eq!((result, attempts), (Err("404".to_string()), 1));
    }

    #[tokio::test]
    async fn retry_after_is_capped_by_the_longest_wait() {
        let policy = Policy { max_attempts: 2, max_wait: Duration::from_millis(50) };
        let started = std::time::Instant::now();
        let (_, attempts) = run(policy, || async {
            Err::<(), _>(Failure::Retry { error: "429".into(), after: Some(Duration::from_secs(3600)) })
        })
        .await;
        assert_eq!(attempts, 2);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
