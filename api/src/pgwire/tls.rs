//! TLS for the PostgreSQL listener: a certificate chain and its private key from PEM files.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

use crate::Error;

/// The acceptor for `cert` and `key` (PEM). Errors name the file and what is wrong with it.
pub(super) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let open = |path: &Path, what: &str| {
        File::open(path).map(BufReader::new).map_err(|e| {
            Error::Config(format!("[server] postgres_tls_{what} {}: cannot read it ({e})", path.display()))
        })
    };
    let certs = rustls_pemfile::certs(&mut open(cert, "cert")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("[server] postgres_tls_cert {}: not PEM ({e})", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "[server] postgres_tls_cert {}: no CERTIFICATE block; give the PEM certificate (chain)",
            cert.display()
        )));
    }
    let key_der = rustls_pemfile::private_key(&mut open(key, "key")?)
        .map_err(|e| Error::Config(format!("[server] postgres_tls_key {}: not PEM ({e})", key.display())))?
        .ok_or_else(|| {
            Error::Config(format!(
                "[server] postgres_tls_key {}: no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)",
                key.display()
            ))
        })?;
    // Both rustls providers (ring, aws-lc-rs) are in the build, so there is no process default
    // to rely on: name the one pgwire is built with.
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            Error::Config(format!(
                "[server] postgres_tls_cert/postgres_tls_key: {e}; is the key the certificate's own?"
            ))
        })?;
    // PostgreSQL 17 clients with sslnegotiation=direct ask for this ALPN protocol.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
