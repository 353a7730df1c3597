//! E-mail: one message per recipient (so one refused address never holds back the others), a
//! plain-text body with the headline figures as a short table, each file attached with its
//! content type, sent through lettre's async SMTP transport with STARTTLS or implicit TLS
//! (rustls with the ring provider, the web's roots plus `ca_file`).

use std::time::Duration;

use dealhouse_warehouse::Project;
use dealhouse_warehouse::config::destinations::BRANCH_PLACEHOLDER;
use dealhouse_warehouse::config::{Destination, SmtpSecurity};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::retry::{self, Failure, Policy};
use super::{Delivery, DeliveryFile, DeliveryOutcome};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// The addresses of `to` this delivery goes to: `{branch}` expanded for a branch's files; an
/// address with `{branch}` gets nothing that is not a branch's.
pub(crate) fn recipients(destination: &Destination, branch: Option<&str>) -> Vec<String> {
    destination
        .to
        .iter()
        .filter_map(|to| match (to.contains(BRANCH_PLACEHOLDER), branch) {
            (true, Some(b)) => Some(to.replace(BRANCH_PLACEHOLDER, b)),
            (true, None) => None,
            (false, _) => Some(to.clone()),
        })
        .collect()
}

/// Sends `delivery` to one recipient, retrying per the destination's policy.
pub(crate) async fn send(
    project: &Project,
    name: &str,
    destination: &Destination,
    recipient: &str,
    delivery: &Delivery,
) -> DeliveryOutcome {
    let outcome = |result: Result<(), String>, attempts: u32| DeliveryOutcome {
        destination: name.to_string(),
        recipient: recipient.to_string(),
        delivered: result.is_ok(),
        attempts,
        error: result.err(),
    };
    let prepared =
        message(destination, recipient, delivery).and_then(|m| Ok((m, transport(project, name, destination)?)));
    let (message, transport) = match prepared {
        Ok(p) => p,
        Err(e) => return outcome(Err(e), 0),
    };
    let policy =
        Policy { max_attempts: destination.max_attempts, max_wait: Duration::from_secs(destination.max_retry_seconds) };
    let (result, attempts) = retry::run(policy, || {
        let (transport, message) = (&transport, message.clone());
        async move { transport.send(message).await.map(|_| ()).map_err(classify) }
    })
    .await;
    outcome(result, attempts)
}

/// Whether another attempt may pass: not after a permanent (5xx) answer, a TLS failure (an
/// untrusted certificate stays untrusted) or a mistake on our side.
fn classify(e: lettre::transport::smtp::Error) -> Failure {
    let text = error_chain(&e);
    if e.is_permanent() || e.is_tls() || e.is_client() || handshake_refused(&e) {
        Failure::Final(text)
    } else {
        Failure::Retry { error: text, after: None }
    }
}

/// A TLS handshake that failed on its merits (an untrusted or mismatched certificate, a
/// protocol the server refuses): lettre reports it as a connection error, with rustls's error
/// inside the I/O error.
fn handshake_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    use tokio_rustls::rustls::Error as Tls;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let tls = err.downcast_ref::<Tls>().or_else(|| {
            err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<Tls>())
        });
        if let Some(tls) = tls {
            return matches!(
                tls,
                Tls::InvalidCertificate(_)
                    | Tls::NoCertificatesPresented
                    | Tls::AlertReceived(_)
                    | Tls::PeerIncompatible(_)
                    | Tls::PeerMisbehaved(_)
                    | Tls::UnsupportedNameType
            );
        }
        next = err.source();
    }
    false
}

/// An error and its sources, `: `-joined (lettre's top message alone hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The transport for a destination: server, security, trust and credentials.
fn transport(project: &Project, name: &str, d: &Destination) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let server = d.smtp_server()?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.as_str())
        .port(server.port)
        .timeout(Some(SMTP_TIMEOUT));
    if d.security != SmtpSecurity::None {
        let mut tls = TlsParameters::builder(server.host.clone());
        if let Some(file) = &d.ca_file {
            let path = project.path(file);
            let pem = std::fs::read(&path).map_err(|e| {
                format!(
                    "cannot read ca_file {} of [destinations.{name}] ({e}); fix the path (relative to the project)",
                    path.display()
                )
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                format!("ca_file {} of [destinations.{name}] is not PEM certificates ({e})", path.display())
            })?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| format!("TLS setup for [destinations.{name}] failed: {}", error_chain(&e)))?;
        builder = builder.tls(match d.security {
            SmtpSecurity::Tls => Tls::Wrapper(tls),
            _ => Tls::Required(tls),
        });
    }
    if let (Some(user_env), Some(password_env)) = (&d.username_env, &d.password_env) {
        let user = super::env_var(name, "username_env", user_env)?;
        let password = super::env_var(name, "password_env", password_env)?;
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.build())
}

/// The message to one recipient.
fn message(d: &Destination, recipient: &str, delivery: &Delivery) -> Result<Message, String> {
    let from: Mailbox =
        d.from.as_deref().unwrap_or_default().parse().map_err(|e| format!("`from` is not an address ({e})"))?;
    let to: Mailbox = recipient.parse().map_err(|e| format!("`{recipient}` is not an address ({e})"))?;
    let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body(delivery)));
    for file in &delivery.files {
        let content_type =
            ContentType::parse(content_type(&file.name)).map_err(|e| format!("content type of {}: {e}", file.name))?;
        parts = parts.singlepart(Attachment::new(attachment_name(file)).body(file.bytes.clone(), content_type));
    }
    Message::builder()
        .from(from)
        .to(to)
        .subject(delivery.subject.clone())
        .multipart(parts)
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// The plain-text body: the subject, the headline figures as an aligned two-column table, the
/// files attached.
pub(crate) fn body(delivery: &Delivery) -> String {
    let mut out = format!("{}\n\n", delivery.subject);
    if !delivery.headline.is_empty() {
        let width = delivery.headline.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
        let value_width = delivery.headline.iter().map(|(_, v)| v.chars().count()).max().unwrap_or(0);
        for (label, value) in &delivery.headline {
            let pad = width - label.chars().count();
            let value_pad = value_width - value.chars().count();
            out.push_str(&format!("  {label}{}  {}{value}\n", " ".repeat(pad), " ".repeat(value_pad)));
        }
        out.push('\n');
    }
    if !delivery.files.is_empty() {
        out.push_str("Attached:\n");
        for f in &delivery.files {
            out.push_str(&format!("  {} ({} bytes)\n", attachment_name(f), f.bytes.len()));
        }
    }
    out
}

/// A file name without folders (`weekly-branch/spb/2026-W47.xlsx` -> `weekly-branch-spb-2026-W47.xlsx`):
/// mail clients drop anything before a slash.
fn attachment_name(file: &DeliveryFile) -> String {
    file.name.trim_matches('/').replace(['/', '\\'], "-")
}

/// The MIME type of a report file, by its extension.
pub(crate) fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("csv") => "text/csv; charset=utf-8",
        Some("parquet") => "application/vnd.apache.parquet",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(to: &[&str]) -> Destination {
        let text = format!(
            "[destinations.d]\nkind = \"email\"\nsmtp = \"smtp://mail.example.ru\"\nfrom = \"r@agency.ru\"\nto = {:?}\n",
            to
        );
        let c = dealhouse_warehouse::ProjectConfig::parse(&text, std::path::Path::new("/p/dealhouse.toml")).unwrap();
        c.destinations["d"].get_ref().clone()
    }

    #[test]
    fn branch_addresses_get_only_their_branch_files() {
        let d = destination(&["head-{branch}@agency.ru", "director@agency.ru"]);
        assert_eq!(recipients(&d, Some("spb")), vec!["head-spb@agency.ru", "director@agency.ru"]);
        assert_eq!(recipients(&d, None), vec!["director@agency.ru"]);
    }

    #[test]
    fn the_body_holds_the_headline_as_a_table_and_names_the_files() {
        let delivery = Delivery {
            subject: "Weekly branch report 2026-W47 — spb".into(),
            headline: vec![("Deals won".into(), "12".into()), ("Won amount, RUB".into(), "1 250 000,00".into())],
            files: vec![DeliveryFile {
                name: "weekly-branch/spb/2026-W47.xlsx".into(),
                location: "/x".into(),
                bytes: vec![0; 7],
            }],
            branch: Some("spb".into()),
            meta: serde_json::Value::Null,
        };
        let text = body(&delivery);
        assert!(text.contains("  Deals won                  12\n"), "{text}");
        assert!(text.contains("  Won amount, RUB  1 250 000,00\n"), "{text}");
        assert!(text.contains("weekly-branch-spb-2026-W47.xlsx (7 bytes)"), "{text}");
        assert_eq!(content_type("a/b.XLSX"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    }
}
