//! In-process metrics in the Prometheus text format (version 0.0.4): request counts and
//! latency histograms by route and status, analyst SQL durations by outcome. Hand-written: a
//! few counters do not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or under each bound of [`BUCKETS`] (cumulative when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, method, status) -> latency.
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// outcome -> duration of analyst SQL.
    queries: Mutex<BTreeMap<&'static str, Histogram>>,
    in_flight: AtomicI64,
}

impl Metrics {
    /// Records one answered request. `route` is the matched route pattern, never the raw path
    /// (which would make one series per URL).
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((route.to_string(), method.to_string(), status)).or_default().observe(took.as_secs_f64());
    }

    /// Records one analyst query: `ok`, `refused`, `failed`, `timeout`, `busy`.
    pub fn query(&self, outcome: &'static str, took: Duration) {
        let mut m = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(outcome).or_default().observe(took.as_secs_f64());
    }

    /// Adds `delta` to the number of queries running.
    pub fn queries_running(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// The text exposition of the in-process metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP dealhouse_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE dealhouse_http_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for ((route, method, status), h) in &requests {
            let _ = writeln!(
                out,
                "dealhouse_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                escape(method),
                h.count
            );
        }
        out.push_str("# HELP dealhouse_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE dealhouse_http_request_duration_seconds histogram\n");
        for ((route, method, status), h) in &requests {
            let labels = format!("route=\"{}\",method=\"{}\",status=\"{status}\"", escape(route), escape(method));
            h.render(&mut out, "dealhouse_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP dealhouse_sql_query_duration_seconds Analyst SQL from arrival to answer, by outcome.\n");
        out.push_str("# TYPE dealhouse_sql_query_duration_seconds histogram\n");
        let queries = self.queries.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (outcome, h) in &queries {
            h.render(&mut out, "dealhouse_sql_query_duration_seconds", &format!("outcome=\"{outcome}\""));
        }
        out.push_str("# HELP dealhouse_sql_queries_running Analyst queries running now.\n");
        out.push_str("# TYPE dealhouse_sql_queries_running gauge\n");
        let _ = writeln!(out, "dealhouse_sql_queries_running {}", self.in_flight.load(Ordering::Relaxed));
        out
    }
}

/// A label value as the text format needs it.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.request("/a", "GET", 200, Duration::from_millis(3));
        m.request("/a", "GET", 200, Duration::from_millis(70));
        m.request("/a", "GET", 200, Duration::from_secs(60));
        let text = m.render();
        assert!(text.contains("dealhouse_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 3\n"));
        let bucket = |le: &str| {
            format!(
                "dealhouse_http_request_duration_seconds_bucket{{route=\"/a\",method=\"GET\",status=\"200\",le=\"{le}\"}} "
            )
        };
        // 3 ms is in every bucket from 0.005; 70 ms from 0.1; 60 s only in +Inf.
        assert!(text.contains(&format!("{}1\n", bucket("0.005"))), "{text}");
        assert!(text.contains(&format!("{}1\n", bucket("0.05"))), "{text}");
        assert!(text.contains(&format!("{}2\n", bucket("0.1"))), "{text}");
        assert!(text.contains(&format!("{}2\n", bucket("30"))), "{text}");
        assert!(text.contains(&format!("{}3\n", bucket("+Inf"))), "{text}");
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
