//! Login: user name = the token's name in `[tokens.*]`, password = the token itself.
//!
//! **Why a cleartext password and not SCRAM-SHA-256.** SCRAM lets the server check a password
//! it never sees, but only because the server stores a verifier derived from the password:
//! `StoredKey = H(HMAC(PBKDF2(password, salt, i), "Client Key"))`. Tokens are stored as plain
//! SHA-256 hashes (`sha256 = ...`, as HTTP checks them), from which no SCRAM verifier can be
//! computed, and a SCRAM exchange cannot be checked against them either. So the server asks for
//! the password in cleartext (PostgreSQL's `password` method; every client supports it), hashes
//! it and compares it in constant time with the stored hashes, exactly as a bearer token. On the
//! wire it is then protected by TLS: with `postgres_tls_cert`/`postgres_tls_key` set, a client on
//! another machine must connect with `sslmode=require` (refused otherwise, before it sends the
//! password); without them the listener logs a warning when it is not on loopback.
//!
//! Without any token (open local mode, loopback only) every login is the local admin, with no
//! password asked, like HTTP.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionHandle, ConnectionManager, METADATA_USER, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::Connection;
use super::sqlstate::fatal;
use crate::AppState;
use crate::auth::{LoginRefusal, Principal};

/// The startup handler of every accepted connection.
pub(super) struct Login {
    pub(super) state: AppState,
    /// Cancel requests find a connection's running query here.
    pub(super) connections: Arc<ConnectionManager>,
    pub(super) keys: RandomPidSecretKeyGenerator,
    /// Whether the listener has TLS (then other machines must use it).
    pub(super) tls: bool,
}

#[async_trait]
impl StartupHandler for Login {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.state.is_open() {
                    return self.accept(client, Principal::local_admin()).await;
                }
                if self.tls && !client.is_secure() && !client.socket_addr().ip().is_loopback() {
                    return Err(fatal(
                        "28000",
                        "this server takes passwords from other machines only over TLS",
                        "connect with sslmode=require",
                    ));
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client.send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword)).await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let password = message.into_password()?;
                let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
                match self.state.tokens().login(&user, &password.password, Utc::now()) {
                    Ok(principal) => {
                        tracing::info!(token = %principal.name, peer = %client.socket_addr(), "PostgreSQL login");
                        self.accept(client, principal).await
                    }
                    Err(LoginRefusal::BadPassword) => {
                        tracing::info!(user = %user, peer = %client.socket_addr(), "PostgreSQL login refused");
                        Err(fatal(
                            "28P01",
                            &format!("password authentication failed for user \"{user}\""),
                            "the user name is a token's name in [tokens.*] and the password is that token",
                        ))
                    }
                    Err(LoginRefusal::Expired) => {
                        tracing::info!(token = %user, "PostgreSQL login with an expired token refused");
                        Err(fatal("28000", &format!("token \"{user}\" has expired"), "ask for a new token"))
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

impl Login {
    /// Ends the startup: the principal is the connection's, the client may send queries.
    async fn accept<C>(&self, client: &mut C, principal: Principal) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret) = self.keys.generate(&*client);
        client.set_pid_and_secret_key(pid, secret.clone());
        let (handle, guard) = self.connections.register(pid, secret);
        client.session_extensions().insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert(guard);
        client.session_extensions().insert(Connection { principal });
        finish_authentication(client, &parameters()).await
    }
}

/// What the server reports at startup: a PostgreSQL 16 that is read-only and not a superuser.
fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    // Clients parse the leading number (psql, JDBC, SQLAlchemy); the rest says what this is.
    p.server_version = format!("16.6 (dealhouse {})", env!("CARGO_PKG_VERSION"));
    p.is_superuser = false;
    p.default_transaction_read_only = true;
    p
}
