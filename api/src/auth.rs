//! Who is calling: bearer tokens checked against the configured SHA-256 hashes, and the
//! [`Principal`] every data endpoint takes as an extractor (role and branch scope).
//!
//! With no token configured at all the server is in open local mode: every request is the
//! `local` admin (the demo works without setup); [`crate::serve`] refuses that on a
//! non-loopback address.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use dealhouse_warehouse::Project;
use dealhouse_warehouse::config::TokenRole;
use dealhouse_warehouse::scope::Scope;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState, Error, ErrorCode, Result};

/// What a principal may do.
pub type Role = TokenRole;

/// The caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Token name from the config (`local` in open mode); for logs, never the token.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Branches it is limited to; `None` for admin and analyst (every branch).
    pub scope: Option<Arc<Scope>>,
}

impl Principal {
    /// The principal of open local mode.
    pub fn local_admin() -> Self {
        Self { name: "local".into(), role: Role::Admin, scope: None }
    }

    /// `Ok` when the role is one of `roles`, else a 403 naming what is needed.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let names: Vec<String> = roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("this endpoint needs a token with role {}", names.join(" or ")),
        ))
    }
}

/// One configured token.
struct Token {
    name: String,
    hash: [u8; 32],
    role: Role,
    scope: Option<Arc<Scope>>,
    expires: Option<DateTime<Utc>>,
}

/// The configured tokens.
pub struct Tokens {
    tokens: Vec<Token>,
}

impl Tokens {
    /// Every token of the project (`[tokens.*]` and the tokens file), with scopes resolved.
    pub fn load(project: &Project) -> Result<Self> {
        let mut tokens = vec![];
        for (name, t) in project.tokens()? {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(t.sha256.to_ascii_lowercase(), &mut hash)
                .map_err(|e| Error::Config(format!("tokens.{name}.sha256: not 64 hex digits ({e})")))?;
            let scope = match t.role {
                Role::Admin | Role::Analyst => None,
                Role::Branch => Some(Arc::new(Scope::for_branches(&project.config, &t.branches)?)),
                Role::Holding => Some(Arc::new(Scope::for_holdings(&project.config, &t.holdings)?)),
            };
            tokens.push(Token { name, hash, role: t.role, scope, expires: t.expires_at() });
        }
        Ok(Self { tokens })
    }

    /// No tokens: open local mode.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The principal presenting `headers`' bearer token at `now`.
    pub fn authenticate(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<Principal, ApiError> {
        if self.is_open() {
            return Ok(Principal::local_admin());
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(ErrorCode::Unauthorized, "send `Authorization: Bearer <token>`"));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthorized(ErrorCode::Unauthorized, "the Authorization header must be `Bearer <token>`")
            })?;
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every stored hash is compared in full, whatever matches, so the time taken does not
        // depend on which token (or how much of a hash) matched.
        let mut found: Option<&Token> = None;
        for t in &self.tokens {
            if constant_time_eq(&t.hash, &hash) {
                found = Some(t);
            }
        }
        let Some(token) = found else {
            tracing::info!("API request with an unknown token refused");
            return Err(unauthorized(ErrorCode::InvalidToken, "the token is not valid"));
        };
        if token.expires.is_some_and(|e| now >= e) {
            tracing::info!(token = %token.name, "API request with an expired token refused");
            return Err(unauthorized(ErrorCode::TokenExpired, "the token has expired; ask for a new one"));
        }
        Ok(Principal { name: token.name.clone(), role: token.role, scope: token.scope.clone() })
    }
}

/// Why a login (PostgreSQL protocol: user = token name, password = the token) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefusal {
    /// No token of that name, or the password is not that token (not told apart, so a caller
    /// cannot probe which token names exist).
    BadPassword,
    /// The token is right but past its expiry.
    Expired,
}

impl Tokens {
    /// The principal of token `name` presenting `password` at `now`. The password is hashed and
    /// compared with every stored hash in constant time, as a bearer token is; it must belong to
    /// the token named `name`.
    pub fn login(&self, name: &str, password: &str, now: DateTime<Utc>) -> Result<Principal, LoginRefusal> {
        if self.is_open() {
            return Ok(Principal::local_admin());
        }
        let hash: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let mut found: Option<&Token> = None;
        for t in &self.tokens {
            if constant_time_eq(&t.hash, &hash) && t.name == name {
                found = Some(t);
            }
        }
        let Some(token) = found else { return Err(LoginRefusal::BadPassword) };
        if token.expires.is_some_and(|e| now >= e) {
            return Err(LoginRefusal::Expired);
        }
        Ok(Principal { name: token.name.clone(), role: token.role, scope: token.scope.clone() })
    }
}

fn unauthorized(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message).with_header(header::WWW_AUTHENTICATE, "Bearer")
}

/// Compares two hashes in time independent of their contents.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(a[..].ct_eq(&b[..]))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state.tokens().authenticate(&parts.headers, Utc::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_hashes() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!constant_time_eq(&a, &b));
    }
}
