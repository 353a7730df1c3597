//! `[server]`: the HTTP server's address, its tokens file and the limits of analyst queries.

use std::path::PathBuf;

use serde::Deserialize;

use super::issues::{ConfigIssue, KeyPath};

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; loopback unless you mean to expose it. A non-loopback address
    /// needs at least one token (the server refuses to start open to the network).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// A TOML file (relative to the project directory) holding more `[tokens.<name>]` tables,
    /// so token hashes can live outside `dealhouse.toml` (e.g. mounted from a secret store).
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Seconds an analyst query (`POST /api/v1/sql`) may run before it is cancelled.
    #[serde(default = "default_query_timeout")]
    pub query_timeout_seconds: u64,
    /// Memory all running API queries may hold together, in MiB (sorts and aggregations spill
    /// to disk or fail past it).
    #[serde(default = "default_query_memory")]
    pub query_memory_mb: u64,
    /// Analyst queries run at once; more wait briefly, then get HTTP 503.
    #[serde(default = "default_concurrent_queries")]
    pub max_concurrent_queries: usize,
    /// Most rows one SQL answer carries (`truncated` says when there were more).
    #[serde(default = "default_result_rows")]
    pub max_result_rows: usize,
    /// Most data one SQL answer carries, in MiB (Arrow in memory; `truncated` past it).
    #[serde(default = "default_result_mb")]
    pub max_result_mb: u64,
}

fn default_bind() -> String {
    "127.0.0.1:8080".into()
}

fn default_query_timeout() -> u64 {
    30
}

fn default_query_memory() -> u64 {
    1024
}

fn default_concurrent_queries() -> usize {
    4
}

fn default_result_rows() -> usize {
    10_000
}

fn default_result_mb() -> u64 {
    32
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            tokens_file: None,
            query_timeout_seconds: default_query_timeout(),
            query_memory_mb: default_query_memory(),
            max_concurrent_queries: default_concurrent_queries(),
            max_result_rows: default_result_rows(),
            max_result_mb: default_result_mb(),
        }
    }
}

impl ServerConfig {
    /// Every limit is at least 1.
    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        for (key, value) in [
            ("query_timeout_seconds", self.query_timeout_seconds),
            ("query_memory_mb", self.query_memory_mb),
            ("max_concurrent_queries", self.max_concurrent_queries as u64),
            ("max_result_rows", self.max_result_rows as u64),
            ("max_result_mb", self.max_result_mb),
        ] {
            if value == 0 {
                return Err(KeyPath::of(["server", key]).issue("must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse("[warehouse]\nlocation = \"wh\"\n\n[server]\nbnd = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("/p/dealhouse.toml:5"), "{e}");
        assert!(e.contains("server.bnd"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn limits_are_at_least_one() {
        let e = parse("[server]\nquery_timeout_seconds = 0\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:2") && e.contains("server.query_timeout_seconds"), "{e}");
    }
}
