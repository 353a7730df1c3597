//! The PostgreSQL listener: accepts connections, negotiates TLS, and hands each to pgwire with
//! the handlers of this module, in a task of its own (one client's failure ends only its task).
//! Past `postgres_max_connections` a client is told so (53300) and disconnected.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::Sink;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers, RandomPidSecretKeyGenerator};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::{TlsAcceptor, process_socket};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::handlers::{Queries, StatementParser};
use super::login::Login;
use super::sqlstate::fatal;
use crate::{AppState, Error, Result};

/// A bound PostgreSQL listener; [`PostgresServer::run`] serves it.
pub struct PostgresServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handlers: Arc<Handlers>,
    slots: Arc<Semaphore>,
    max_connections: usize,
}

impl PostgresServer {
    /// Binds `[server] postgres_bind` (or `bind`, when given: tests pass port 0) with the
    /// project's TLS files and connection limit. `None` when the listener is turned off
    /// (`postgres_bind = ""`). Without tokens only a loopback address is allowed, as for HTTP.
    pub async fn bind(state: AppState, bind: Option<&str>) -> Result<Option<Self>> {
        let server = state.project().config.server.clone();
        let chosen = bind.is_some() || server.postgres_bind.is_some();
        let bind = bind.unwrap_or(server.postgres_bind());
        if bind.is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = bind.parse().map_err(|e| {
            Error::Config(format!("[server] postgres_bind `{bind}` is not HOST:PORT ({e}); \"\" turns it off"))
        })?;
        if state.is_open() && !addr.ip().is_loopback() {
            return Err(Error::Config(format!(
                "refusing to serve PostgreSQL on {addr} without API tokens: anyone who can reach it could read \
                 every branch. Add [tokens.<name>] (see README, \"API tokens\"), or set postgres_bind to 127.0.0.1"
            )));
        }
        let tls = match (&server.postgres_tls_cert, &server.postgres_tls_key) {
            (Some(cert), Some(key)) => {
                let project = state.project();
                Some(super::tls::acceptor(&project.path(cert), &project.path(key))?)
            }
            _ => None,
        };
        if tls.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "PostgreSQL listener without TLS on a non-loopback address: passwords (tokens) cross the network \
                 in clear; set [server] postgres_tls_cert and postgres_tls_key"
            );
        }
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            // The default address is taken (another project served on this machine): serve HTTP
            // anyway; an address someone chose must work.
            Err(e) if !chosen => {
                tracing::warn!(%addr, error = %e, "PostgreSQL listener not started: set [server] postgres_bind");
                return Ok(None);
            }
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot listen for PostgreSQL on {addr}: {e}; is another server running there? \
                     change [server] postgres_bind (\"\" turns it off)"
                )));
            }
        };
        let connections = Arc::new(ConnectionManager::new());
        let handlers = Arc::new(Handlers {
            login: Arc::new(Login {
                state: state.clone(),
                connections: connections.clone(),
                keys: RandomPidSecretKeyGenerator::default(),
                tls: tls.is_some(),
            }),
            queries: Arc::new(Queries {
                state: state.clone(),
                parser: Arc::new(StatementParser { state, sql: PostgresCompatibilityParser::new() }),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        });
        Ok(Some(Self {
            listener,
            tls,
            handlers,
            slots: Arc::new(Semaphore::new(server.postgres_max_connections)),
            max_connections: server.postgres_max_connections,
        }))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Config(e.to_string()))
    }

    /// Whether clients can (and from other machines must) use TLS.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves connections until the task is dropped.
    pub async fn run(self) {
        let refuse = Arc::new(TooMany { max: self.max_connections });
        loop {
            let (socket, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: the next accept may succeed.
                    tracing::warn!(error = %e, "PostgreSQL accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let tls = self.tls.clone();
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let handlers = self.handlers.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        if let Err(e) = process_socket(socket, tls, handlers).await {
                            tracing::debug!(%peer, error = %e, "PostgreSQL connection ended with an error");
                        }
                    });
                }
                Err(_) => {
                    tracing::warn!(%peer, max = self.max_connections, "PostgreSQL connection refused: too many");
                    let refuse = refuse.clone();
                    tokio::spawn(async move {
                        let _ = process_socket(socket, tls, refuse).await;
                    });
                }
            }
        }
    }
}

/// The handlers of an accepted connection.
struct Handlers {
    login: Arc<Login>,
    queries: Arc<Queries>,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.login.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }
}

/// Logs what a client is answered with (not its SQL: it may hold values the log should not).
struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, client: &C, error: &mut PgWireError) {
        tracing::info!(peer = %client.socket_addr(), error = %error, "PostgreSQL statement not answered");
    }
}

/// The handlers of a connection past the limit: its startup is answered with 53300.
struct TooMany {
    max: usize,
}

#[async_trait]
impl StartupHandler for TooMany {
    async fn on_startup<C>(&self, _client: &mut C, _message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Err(fatal(
            "53300",
            &format!("sorry, too many clients already ({} connections are open)", self.max),
            "close idle connections or retry later; [server] postgres_max_connections is the limit",
        ))
    }
}

impl PgWireServerHandlers for TooMany {
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(TooMany { max: self.max })
    }
}
