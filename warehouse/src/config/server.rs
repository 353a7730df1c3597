//! `[server]`: the HTTP server's address, its tokens file, the limits of analyst queries, and the
//! PostgreSQL protocol listener (address, TLS certificate, connection limit).

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
    /// Address of the PostgreSQL protocol listener (psql, DBeaver, Metabase, psycopg); default
    /// `127.0.0.1:5433` (when that is taken, the server starts without it and says so); `""`
    /// turns it off. Same rule as `bind`: a non-loopback address needs at least one token.
    #[serde(default)]
    pub postgres_bind: Option<String>,
    /// PEM certificate (chain) for TLS on the PostgreSQL listener (relative to the project
    /// directory); with `postgres_tls_key`, clients may connect with `sslmode=require`.
    #[serde(default)]
    pub postgres_tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `postgres_tls_cert`.
    #[serde(default)]
    pub postgres_tls_key: Option<PathBuf>,
    /// PostgreSQL connections open at once; one more is refused with SQLSTATE 53300.
    #[serde(default = "default_postgres_connections")]
    pub postgres_max_connections: usize,
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

/// The PostgreSQL listener's address when `postgres_bind` is not set.
pub const DEFAULT_POSTGRES_BIND: &str = "127.0.0.1:5433";

fn default_postgres_connections() -> usize {
    64
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
            postgres_bind: None,
            postgres_tls_cert: None,
            postgres_tls_key: None,
            postgres_max_connections: default_postgres_connections(),
        }
    }
}

impl ServerConfig {
    /// The PostgreSQL listener's address (`""`: off).
    pub fn postgres_bind(&self) -> &str {
        self.postgres_bind.as_deref().unwrap_or(DEFAULT_POSTGRES_BIND)
    }

    /// Every limit is at least 1; the TLS certificate and key come together.
    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        match (&self.postgres_tls_cert, &self.postgres_tls_key) {
            (Some(_), None) => {
                return Err(KeyPath::of(["server", "postgres_tls_cert"])
                    .issue("needs postgres_tls_key too (the certificate's PEM private key)"));
            }
            (None, Some(_)) => {
                return Err(KeyPath::of(["server", "postgres_tls_key"])
                    .issue("needs postgres_tls_cert too (the PEM certificate the key belongs to)"));
            }
            _ => {}
        }
        for (key, value) in [
            ("postgres_max_connections", self.postgres_max_connections as u64),
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

    #[test]
    fn postgres_listener_defaults_and_tls_pair() {
        let config = parse("[server]\n").unwrap();
        assert_eq!(config.server.postgres_bind(), "127.0.0.1:5433");
        assert_eq!(config.server.postgres_max_connections, 64);
        let e = parse("[server]\npostgres_tls_cert = \"server.crt\"\n").unwrap_err().to_string();
        assert!(e.contains("server.postgres_tls_cert") && e.contains("postgres_tls_key"), "{e}");
        let off = parse("[server]\npostgres_bind = \"\"\n").unwrap();
        assert_eq!(off.server.postgres_bind(), "");
    }
}
