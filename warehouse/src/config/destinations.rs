//! `[destinations.NAME]`: where reports and alerts are delivered. Two kinds: `email` (SMTP with
//! STARTTLS or implicit TLS, credentials from the environment) and `webhook` (a JSON POST signed
//! with an HMAC of the body). Schedules and alerts name them in `deliver = [...]`.
//!
//! The warehouse only reads and checks the settings; `dealhouse_api::delivery` sends. Secrets are
//! never in the file: `username_env`, `password_env` and `secret_env` name environment variables,
//! read when a delivery is made (a missing one is then an error naming it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use super::issues::{ConfigIssue, KeyPath};

/// The `{branch}` placeholder of an e-mail address: the branch a per-branch file is for.
pub const BRANCH_PLACEHOLDER: &str = "{branch}";

/// What a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// E-mail over SMTP, files attached.
    Email,
    /// A JSON POST with the files' names, locations and hashes, signed with HMAC-SHA256.
    Webhook,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS before anything is sent (port 587). The default.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only to a relay on this machine (loopback).
    None,
}

impl SmtpSecurity {
    /// The port used when `smtp` names none.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// `[destinations.NAME]`: one place to deliver to. The fields of the other kind are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// `email` or `webhook`.
    pub kind: DestinationKind,
    /// E-mail: the SMTP server, `smtp://mail.example.ru:587` (host and port only).
    #[serde(default)]
    pub smtp: Option<String>,
    /// E-mail: `starttls` (default), `tls` (implicit TLS, port 465) or `none` (loopback only).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// E-mail: the sender, `reports@agency.ru` or `Reports <reports@agency.ru>`.
    #[serde(default)]
    pub from: Option<String>,
    /// E-mail: recipients; `{branch}` in an address expands to the branch id of a per-branch
    /// file, and such an address receives only per-branch files.
    #[serde(default)]
    pub to: Vec<String>,
    /// E-mail: the environment variable holding the SMTP user name.
    #[serde(default)]
    pub username_env: Option<String>,
    /// E-mail: the environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// E-mail: a PEM file of certificates to trust besides the web's public ones (a corporate
    /// CA); relative to the project directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Webhook: the URL POSTed to (`https://hooks.example.ru/dealhouse`).
    #[serde(default)]
    pub url: Option<String>,
    /// Webhook: the environment variable holding the HMAC-SHA256 key of the
    /// `X-Dealhouse-Signature` header.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Webhook: extra request headers (no secrets: the body is signed instead).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Attempts per recipient before giving up (default 5).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Longest wait between two attempts, in seconds, a server's `Retry-After` included
    /// (default 60).
    #[serde(default = "default_max_retry_seconds")]
    pub max_retry_seconds: u64,
}

fn default_max_attempts() -> u32 {
    5
}

fn default_max_retry_seconds() -> u64 {
    60
}

/// The SMTP server of an e-mail destination, from its `smtp` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or address.
    pub host: String,
    /// Port (the security's default when the URL names none).
    pub port: u16,
}

impl Destination {
    /// The SMTP server of an e-mail destination (checked when the file was loaded).
    pub fn smtp_server(&self) -> Result<SmtpServer, String> {
        let text = self.smtp.as_deref().ok_or("an e-mail destination needs `smtp = \"smtp://HOST:PORT\"`")?;
        parse_smtp(text, self.security)
    }

    /// Checks one destination; `at` is `destinations.NAME`.
    pub(crate) fn validate(&self, at: &KeyPath) -> Result<(), ConfigIssue> {
        let (own, other): (Vec<(&str, bool)>, &str) = match self.kind {
            DestinationKind::Email => (
                vec![
                    ("url", self.url.is_some()),
                    ("secret_env", self.secret_env.is_some()),
                    ("headers", !self.headers.is_empty()),
                ],
                "webhook",
            ),
            DestinationKind::Webhook => (
                vec![
                    ("smtp", self.smtp.is_some()),
                    ("from", self.from.is_some()),
                    ("to", !self.to.is_empty()),
                    ("username_env", self.username_env.is_some()),
                    ("password_env", self.password_env.is_some()),
                    ("ca_file", self.ca_file.is_some()),
                    ("security", self.security != SmtpSecurity::Starttls),
                ],
                "email",
            ),
        };
        if let Some((key, _)) = own.iter().find(|(_, set)| *set) {
            return Err(at.key(*key).issue(format!("`{key}` is a setting of kind = \"{other}\"; remove it")));
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(at
                .key("max_attempts")
                .issue(format!("must be 1 to 20 (1 = no retry; default 5); got {}", self.max_attempts)));
        }
        if !(1..=3600).contains(&self.max_retry_seconds) {
            return Err(at
                .key("max_retry_seconds")
                .issue(format!("must be 1 to 3600 seconds (default 60); got {}", self.max_retry_seconds)));
        }
        match self.kind {
            DestinationKind::Email => self.validate_email(at),
            DestinationKind::Webhook => self.validate_webhook(at),
        }
    }

    fn validate_email(&self, at: &KeyPath) -> Result<(), ConfigIssue> {
        let smtp = self.smtp_server().map_err(|m| at.key("smtp").issue(m))?;
        if self.security == SmtpSecurity::None && !is_loopback(&smtp.host) {
            return Err(at.key("security").issue(format!(
                "`none` sends mail and passwords in clear text: only allowed to a relay on this machine \
                 (localhost); use `starttls` or `tls` for {}",
                smtp.host
            )));
        }
        let from = self
            .from
            .as_deref()
            .ok_or_else(|| at.issue("missing field `from`: the sender, e.g. from = \"Reports <reports@agency.ru>\""))?;
        check_address(from, false).map_err(|m| at.key("from").issue(m))?;
        if self.to.is_empty() {
            return Err(at.issue(
                "missing field `to`: the recipients, e.g. to = [\"head-{branch}@agency.ru\", \"director@agency.ru\"]",
            ));
        }
        for (i, to) in self.to.iter().enumerate() {
            check_address(to, true).map_err(|m| at.key("to").index(i).issue(m))?;
        }
        match (&self.username_env, &self.password_env) {
            (Some(_), None) => return Err(at.issue("`username_env` without `password_env`: set both or neither")),
            (None, Some(_)) => return Err(at.issue("`password_env` without `username_env`: set both or neither")),
            _ => {}
        }
        for (key, value) in [("username_env", &self.username_env), ("password_env", &self.password_env)] {
            if let Some(name) = value {
                check_env_name(name).map_err(|m| at.key(key).issue(m))?;
            }
        }
        Ok(())
    }

    fn validate_webhook(&self, at: &KeyPath) -> Result<(), ConfigIssue> {
        let text = self
            .url
            .as_deref()
            .ok_or_else(|| at.issue("missing field `url`: where to POST, e.g. url = \"https://hooks.example.ru/x\""))?;
        let url = Url::parse(text).map_err(|e| at.key("url").issue(format!("`{text}` is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(at.key("url").issue(format!("`{text}` is not an http(s) URL with a host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(at.key("url").issue(
                "credentials do not belong in the file: remove them from the URL (the body is signed with secret_env)",
            ));
        }
        let secret = self.secret_env.as_deref().ok_or_else(|| {
            at.issue(
                "missing field `secret_env`: the environment variable holding the key the body is signed with \
                 (X-Dealhouse-Signature), e.g. secret_env = \"DEALHOUSE_WEBHOOK_SECRET\"",
            )
        })?;
        check_env_name(secret).map_err(|m| at.key("secret_env").issue(m))?;
        for name in self.headers.keys() {
            let at = at.keys(["headers", name.as_str()]);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(at.issue("a header name uses letters, digits, - and _ only"));
            }
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("x-dealhouse-") || matches!(lower.as_str(), "content-type" | "content-length" | "host")
            {
                return Err(at.issue("dealhouse sets this header itself; remove it"));
            }
            if matches!(lower.as_str(), "authorization" | "cookie" | "proxy-authorization") {
                return Err(at.issue(
                    "a credential does not belong in the file; the receiver checks X-Dealhouse-Signature (HMAC of the \
                     body with secret_env's key) instead",
                ));
            }
        }
        Ok(())
    }
}

/// `smtp://HOST[:PORT]`, nothing else.
fn parse_smtp(text: &str, security: SmtpSecurity) -> Result<SmtpServer, String> {
    let example = "write it as smtp://HOST:PORT, e.g. smtp = \"smtp://mail.example.ru:587\"";
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e}); {example}"))?;
    if url.scheme() != "smtp" {
        return Err(format!(
            "`{text}`: the scheme is `smtp` (TLS is chosen by `security`: starttls, tls or none); {example}"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the file: remove them from the URL and set username_env and \
                    password_env"
            .to_string());
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(format!("`{text}` names no host; {example}"));
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(format!("`{text}`: only a host and port are read; {example}"));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok(SmtpServer { host, port: url.port().unwrap_or_else(|| security.default_port()) })
}

/// `localhost` or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An address `local@domain`, optionally with a display name (`Name <local@domain>`); with
/// `branch`, `{branch}` may stand in it. Full checking is the mail library's when sending; this
/// catches typos at load.
fn check_address(text: &str, branch: bool) -> Result<(), String> {
    let expanded = if branch { text.replace(BRANCH_PLACEHOLDER, "x") } else { text.to_string() };
    if expanded.contains('{') || expanded.contains('}') {
        return Err(format!("`{text}`: the only placeholder an address may hold is {BRANCH_PLACEHOLDER}"));
    }
    let address = match (expanded.rfind('<'), expanded.ends_with('>')) {
        (Some(open), true) => &expanded[open + 1..expanded.len() - 1],
        _ => expanded.as_str(),
    };
    let valid = match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
                && !domain.contains('@')
        }
        None => false,
    };
    if valid { Ok(()) } else { Err(format!("`{text}` is not an e-mail address like head@agency.ru")) }
}

/// An environment variable name: upper-case letters, digits and `_`.
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an environment variable name (A-Z, 0-9, _): name the variable that holds the secret, \
             never the secret itself"
        ))
    }
}

/// Checks every destination and its name.
pub(crate) fn validate_destinations(
    destinations: &BTreeMap<String, toml::Spanned<Destination>>,
) -> Result<(), ConfigIssue> {
    for (name, d) in destinations {
        let at = KeyPath::of(["destinations", name.as_str()]);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(at.issue("destination names may use a-z, 0-9, _ and - only"));
        }
        d.get_ref().validate(&at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    const EMAIL: &str = "[destinations.heads]\nkind = \"email\"\nsmtp = \"smtp://mail.example.ru:587\"\n\
                         from = \"Reports <reports@agency.ru>\"\nto = [\"head-{branch}@agency.ru\", \"director@agency.ru\"]\n\
                         username_env = \"SMTP_USER\"\npassword_env = \"SMTP_PASSWORD\"\n";
    const HOOK: &str = "[destinations.hook]\nkind = \"webhook\"\nurl = \"https://hooks.example.ru/x\"\n\
                        secret_env = \"HOOK_SECRET\"\nheaders = { X-Team = \"sales\" }\n";

    #[test]
    fn both_kinds_parse_with_their_defaults() {
        let c = parse(&format!("{EMAIL}\n{HOOK}")).unwrap();
        let heads = c.destinations["heads"].get_ref();
        let server = heads.smtp_server().unwrap();
        assert_eq!((server.host.as_str(), server.port), ("mail.example.ru", 587));
        assert_eq!((heads.max_attempts, heads.max_retry_seconds), (5, 60));
        assert_eq!(heads.security, super::SmtpSecurity::Starttls);
        let hook = c.destinations["hook"].get_ref();
        assert_eq!(hook.headers["X-Team"], "sales");
        let tls = parse(&EMAIL.replace(":587", "").replace("kind = \"email\"", "kind = \"email\"\nsecurity = \"tls\""))
            .unwrap();
        assert_eq!(tls.destinations["heads"].get_ref().smtp_server().unwrap().port, 465);
    }

    #[test]
    fn mistakes_name_their_line_and_the_fix() {
        for (text, line, key, words) in [
            (
                EMAIL.replace("smtp://mail.example.ru:587", "https://mail.example.ru"),
                3,
                "destinations.heads.smtp",
                "scheme",
            ),
            (EMAIL.replace("smtp://mail", "smtp://user:pw@mail"), 3, "destinations.heads.smtp", "credentials"),
            (
                EMAIL.replace("kind = \"email\"", "kind = \"email\"\nsecurity = \"none\""),
                3,
                "destinations.heads.security",
                "relay on this machine",
            ),
            (EMAIL.replace("director@agency.ru", "director"), 5, "destinations.heads.to[1]", "not an e-mail address"),
            (EMAIL.replace("head-{branch}", "head-{city}"), 5, "destinations.heads.to[0]", "placeholder"),
            (EMAIL.replace("\npassword_env = \"SMTP_PASSWORD\"", ""), 1, "destinations.heads", "set both"),
            (EMAIL.replace("SMTP_PASSWORD", "hunter2"), 7, "destinations.heads.password_env", "environment variable"),
            (
                EMAIL.replace("kind = \"email\"", "kind = \"email\"\nurl = \"https://x.ru\""),
                3,
                "destinations.heads.url",
                "kind = \"webhook\"",
            ),
            (EMAIL.replace("kind = \"email\"", "kind = \"fax\""), 2, "destinations.heads.kind", "unknown variant"),
            (HOOK.replace("\nsecret_env = \"HOOK_SECRET\"", ""), 1, "destinations.hook", "secret_env"),
            (HOOK.replace("X-Team", "Authorization"), 5, "destinations.hook.headers.Authorization", "credential"),
            (HOOK.replace("https://hooks", "ftp://hooks"), 3, "destinations.hook.url", "http(s)"),
            (format!("{HOOK}max_attempts = 0\n"), 6, "destinations.hook.max_attempts", "1 to 20"),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(&format!("dealhouse.toml:{line}: key `{key}`")) && e.contains(words), "{text}\n{e}");
        }
    }

    #[test]
    fn loopback_relays_may_go_without_tls() {
        let local = EMAIL
            .replace("smtp://mail.example.ru:587", "smtp://127.0.0.1:2525")
            .replace("kind = \"email\"", "kind = \"email\"\nsecurity = \"none\"");
        assert!(parse(&local).is_ok());
        assert!(super::is_loopback("localhost") && super::is_loopback("::1") && !super::is_loopback("10.0.0.1"));
    }
}
