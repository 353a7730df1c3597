//! `[tokens.<name>]`: who may call the API, with which role and scope, until when. Tokens come
//! from `dealhouse.toml` and from the file named by `[server] tokens_file`; only hashes are
//! stored.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Deserialize;

use super::Project;
use super::issues::{ConfigIssue, KeyPart, KeyPath};
use super::locate::ConfigText;
use super::organisation::OrganisationConfig;
use crate::Result;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Everything, including operational endpoints (`/metrics`).
    Admin,
    /// All data of every branch, read-only.
    Analyst,
    /// The rows of the listed `branches` only.
    Branch,
    /// The rows of every branch of the listed `holdings`.
    Holding,
}

/// `[tokens.<name>]`: who may call the API. The name is a label for logs (never the token).
///
/// Only the SHA-256 of the token is stored: make one with
/// `TOKEN=$(openssl rand -hex 32); printf %s "$TOKEN" | sha256sum`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// SHA-256 of the token, 64 hex digits.
    pub sha256: String,
    /// admin, analyst, branch or holding.
    pub role: TokenRole,
    /// Branch ids the token may see (role `branch`).
    #[serde(default)]
    pub branches: Vec<String>,
    /// Holding ids whose branches the token may see (role `holding`).
    #[serde(default)]
    pub holdings: Vec<String>,
    /// When the token stops working: a date (`2026-01-01`, from its first instant in UTC) or a
    /// date-time (`2026-01-01T09:00:00+03:00`; without an offset it is UTC).
    #[serde(default)]
    pub expires: Option<toml::value::Datetime>,
}

impl TokenConfig {
    /// The instant the token stops working, if it expires.
    pub fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.expires.as_ref().and_then(|e| parse_expiry(e).ok())
    }
}

/// `expires` as an instant: dates start at midnight UTC, offset-less times are UTC.
fn parse_expiry(dt: &toml::value::Datetime) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    let text = dt.to_string();
    let bad = || format!("`{text}` is not a date (2026-01-01) or a date-time (2026-01-01T09:00:00+03:00)");
    match (&dt.date, &dt.time, &dt.offset) {
        (Some(_), None, None) => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(bad),
        (Some(_), Some(_), Some(_)) => {
            DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(|_| bad())
        }
        (Some(_), Some(_), None) => NaiveDateTime::parse_from_str(&text.replace(' ', "T"), "%Y-%m-%dT%H:%M:%S%.f")
            .map(|t| t.and_utc())
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A tokens file (`[server] tokens_file`): `[tokens.<name>]` tables only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    /// The tokens, by name.
    #[serde(default)]
    tokens: BTreeMap<String, TokenConfig>,
}

impl Project {
    /// Every API token: `[tokens.*]` of `dealhouse.toml` and of `[server] tokens_file`, validated
    /// against the organisation (names and hashes are unique across both).
    pub fn tokens(&self) -> Result<BTreeMap<String, TokenConfig>> {
        let mut tokens = self.config.tokens.clone();
        let Some(rel) = &self.config.server.tokens_file else { return Ok(tokens) };
        let path = self.path(rel);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigText::new(&path, "").error(KeyPath::root().issue(format!(
                "cannot read the tokens file named by [server] tokens_file ({e}); create it or remove the key"
            )))
        })?;
        let file = ConfigText::new(path, text);
        let parsed: TokensFile = file.deserialize()?;
        let in_file: BTreeSet<String> = parsed.tokens.keys().cloned().collect();
        for (name, token) in parsed.tokens {
            if tokens.contains_key(&name) {
                let issue = KeyPath::of(["tokens", name.as_str()])
                    .issue("a token of this name is also in dealhouse.toml; rename one");
                return Err(file.error(issue));
            }
            tokens.insert(name, token);
        }
        validate_tokens(&self.config.organisation, &tokens).map_err(|issue| {
            // The issue is about the token it names: in the tokens file or in dealhouse.toml.
            let named = match issue.key.parts().get(1) {
                Some(KeyPart::Key(name)) => in_file.contains(name),
                _ => true,
            };
            if named { file.error(issue) } else { self.config.file().error(issue) }
        })?;
        Ok(tokens)
    }
}

/// `[tokens.*]`: names, hashes, expiry, and each role's scope against the organisation.
pub(crate) fn validate_tokens(
    org: &OrganisationConfig,
    tokens: &BTreeMap<String, TokenConfig>,
) -> std::result::Result<(), ConfigIssue> {
    let mut hashes = BTreeMap::new();
    for (name, t) in tokens {
        let at = KeyPath::of(["tokens", name.as_str()]);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(at.issue("token names may use a-z, 0-9, _ and - only"));
        }
        if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(at.key("sha256").issue(
                "expected the 64 hex digits of the token's SHA-256 (`printf %s \"$TOKEN\" | sha256sum`), never the token itself",
            ));
        }
        if let Some(other) = hashes.insert(t.sha256.to_ascii_lowercase(), name) {
            return Err(at
                .key("sha256")
                .issue(format!("the same token hash as `tokens.{other}`; each token must be distinct")));
        }
        if let Some(e) = &t.expires {
            parse_expiry(e).map_err(|m| at.key("expires").issue(m))?;
        }
        let (wants, other) = match t.role {
            TokenRole::Admin | TokenRole::Analyst => {
                for (k, set) in [("branches", !t.branches.is_empty()), ("holdings", !t.holdings.is_empty())] {
                    if set {
                        return Err(at.key(k).issue(
                            format!("role `{:?}` sees every branch; remove `{k}` or use role branch/holding", t.role)
                                .to_lowercase(),
                        ));
                    }
                }
                continue;
            }
            TokenRole::Branch => ("branches", ("holdings", &t.holdings)),
            TokenRole::Holding => ("holdings", ("branches", &t.branches)),
        };
        if !other.1.is_empty() {
            return Err(at.key(other.0).issue(format!("a `{wants}` token lists `{wants}` only; remove `{}`", other.0)));
        }
        let (ids, known): (&Vec<String>, Vec<&str>) = if wants == "branches" {
            (&t.branches, org.branches.iter().map(|b| b.get_ref().id.as_str()).collect())
        } else {
            (&t.holdings, org.holdings.iter().map(|h| h.id.as_str()).collect())
        };
        if ids.is_empty() {
            return Err(at.key(wants).issue(format!(
                "list the {wants} the token may see, e.g. {wants} = [\"{}\"]",
                known.first().unwrap_or(&"msk")
            )));
        }
        if let Some(unknown) = ids.iter().find(|id| !known.contains(&id.as_str())) {
            return Err(at
                .key(wants)
                .issue(format!("`{unknown}` is not declared in [organisation] (known: {})", known.join(", "))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    const ORG: &str = "[[organisation.holdings]]\nid = \"h\"\nname = \"H\"\n\n[[organisation.branches]]\nid = \"b\"\n\
                       holding = \"h\"\nname = \"B\"\ncity = \"C\"\ntime_zone = \"Europe/Moscow\"\n";

    #[test]
    fn tokens_are_validated_against_the_organisation() {
        let hash = "ab".repeat(32);
        let token = |body: &str| format!("{ORG}\n[tokens.t]\nsha256 = \"{hash}\"\n{body}\n");
        let c = parse(&token("role = \"branch\"\nbranches = [\"b\"]\nexpires = 2026-03-01")).unwrap();
        let t = &c.tokens["t"];
        assert_eq!(t.role, TokenRole::Branch);
        assert_eq!(t.expires_at().map(|e| e.to_rfc3339()), Some("2026-03-01T00:00:00+00:00".into()));
        let c = parse(&token("role = \"admin\"\nexpires = 2026-03-01T09:00:00+03:00")).unwrap();
        assert_eq!(c.tokens["t"].expires_at().map(|e| e.to_rfc3339()), Some("2026-03-01T06:00:00+00:00".into()));
        for (body, key, words, line) in [
            ("role = \"branch\"\nbranches = [\"x\"]", "tokens.t.branches", "not declared", 15),
            ("role = \"branch\"", "tokens.t.branches", "list the branches", 12),
            ("role = \"holding\"\nholdings = [\"h\"]\nbranches = [\"b\"]", "tokens.t.branches", "remove", 16),
            ("role = \"analyst\"\nbranches = [\"b\"]", "tokens.t.branches", "every branch", 15),
            ("role = \"admin\"\nexpires = 09:00:00", "tokens.t.expires", "not a date", 15),
            ("role = \"owner\"", "tokens.t.role", "unknown variant", 14),
        ] {
            let e = parse(&token(body)).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(words), "{body}: {e}");
            assert!(e.contains(&format!("dealhouse.toml:{line}:")), "{body}: {e}");
        }
        let e = parse(&format!("{ORG}\n[tokens.t]\nsha256 = \"secret\"\nrole = \"admin\"\n")).unwrap_err().to_string();
        assert!(e.contains("tokens.t.sha256") && e.contains("sha256sum"), "{e}");
        let twice = format!(
            "{ORG}\n[tokens.a]\nsha256 = \"{hash}\"\nrole = \"admin\"\n[tokens.b]\nsha256 = \"{hash}\"\nrole = \"analyst\"\n"
        );
        assert!(parse(&twice).unwrap_err().to_string().contains("same token hash"));
    }
}
