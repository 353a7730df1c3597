//! The PostgreSQL wire protocol: psql, DBeaver, Metabase, psycopg and SQLAlchemy read the
//! warehouse as a read-only PostgreSQL database (`[server] postgres_bind`, default
//! 127.0.0.1:5433).
//!
//! The protocol itself is the `pgwire` crate's; the `pg_catalog` emulation, the PostgreSQL
//! dialect rewrites and `SET`/`SHOW`/`BEGIN` answers are `datafusion-postgres`'s and
//! `datafusion-pg-catalog`'s; Arrow <-> PostgreSQL values are `arrow-pg`'s. This module wires
//! them to what the HTTP side already has, one concern per file:
//! - `listener.rs`: the socket, TLS and the connection limit (one more is refused with 53300);
//! - `tls.rs`: the rustls configuration from the PEM files of `[server]`;
//! - `login.rs`: user = token name, password = the token -> the connection's [`Principal`];
//! - `context.rs`: each connection's DataFusion context: its principal's session (so scoping
//!   applies to every query, catalog queries included) plus `pg_catalog`;
//! - `handlers.rs`: simple and extended queries, planned through the SQL guard and run with
//!   `/api/v1/sql`'s limits ([`crate::sql::run_limited`]);
//! - `sqlstate.rs`: every refusal as a PostgreSQL error with its SQLSTATE.

mod context;
mod handlers;
mod listener;
mod login;
mod sqlstate;
mod tls;

pub use listener::PostgresServer;

use crate::auth::Principal;

/// What a connection's login established, kept in the connection's session extensions.
struct Connection {
    /// Who is connected; every query runs on this principal's session.
    principal: Principal,
}
