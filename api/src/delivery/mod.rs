//! Delivering report files and alert messages to `[destinations.*]`: e-mail (`email.rs`) and
//! webhooks (`webhook.rs`), each recipient retried on its own (`retry.rs`) and every outcome
//! recorded in the `deliveries` table (`log.rs`).
//!
//! [`deliver`] is the one entry point (the scheduler calls it after an export, the alerts after
//! an evaluation). Every recipient is independent: all are sent concurrently and one failing
//! (after its retries) never stops or delays the others' outcome; `deliver` never returns early.

mod email;
mod log;
mod retry;
mod webhook;

use dealhouse_warehouse::Project;
use dealhouse_warehouse::config::DestinationKind;
use futures::FutureExt;
use futures::future::BoxFuture;

pub use log::{DELIVERIES_TABLE, deliveries_schema};
pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};

/// What to deliver: a subject, headline figures, files, and for webhooks extra metadata.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Subject / title line, e.g. "Weekly branch report 2026-W47 — spb".
    pub subject: String,
    /// Headline figures for an e-mail body / webhook JSON, in order: (label, value as text).
    pub headline: Vec<(String, String)>,
    /// Files to attach (e-mail) or link (webhook).
    pub files: Vec<DeliveryFile>,
    /// The branch these files are for (per-branch exports: `{branch}` in e-mail `to`).
    pub branch: Option<String>,
    /// Extra JSON for webhooks (schedule, run id, report, period...).
    pub meta: serde_json::Value,
}

/// One file of a delivery.
#[derive(Debug, Clone)]
pub struct DeliveryFile {
    /// Its name under the export folder: `weekly-branch/spb/2026-W47.xlsx`.
    pub name: String,
    /// The path or URL the export wrote it to.
    pub location: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// The `[destinations.NAME]`.
    pub destination: String,
    /// The address, or the webhook URL without its query.
    pub recipient: String,
    /// Whether it was accepted.
    pub delivered: bool,
    /// Attempts made (0: nothing could be sent, e.g. a missing environment variable).
    pub attempts: u32,
    /// The last failure, when not delivered.
    pub error: Option<String>,
}

/// Delivers to each named destination independently (one failing never blocks the others),
/// retrying each with backoff; never returns early on a failure.
pub async fn deliver(project: &Project, destinations: &[String], delivery: &Delivery) -> Vec<DeliveryOutcome> {
    let mut sends: Vec<BoxFuture<'_, DeliveryOutcome>> = vec![];
    let mut outcomes = vec![];
    for name in destinations {
        let Some(d) = project.config.destinations.get(name) else {
            let known: Vec<&str> = project.config.destinations.keys().map(String::as_str).collect();
            outcomes.push(DeliveryOutcome {
                destination: name.clone(),
                recipient: String::new(),
                delivered: false,
                attempts: 0,
                error: Some(format!("no destination `{name}` in [destinations]; destinations: {}", known.join(", "))),
            });
            continue;
        };
        let d = d.get_ref();
        match d.kind {
            DestinationKind::Email => {
                for recipient in email::recipients(d, delivery.branch.as_deref()) {
                    sends.push(async move { email::send(project, name, d, &recipient, delivery).await }.boxed());
                }
            }
            DestinationKind::Webhook => sends.push(webhook::post(name, d, delivery).boxed()),
        }
    }
    outcomes.extend(futures::future::join_all(sends).await);
    // Info, not warn: every caller reports the outcomes it gets back (the CLI prints them, the
    // scheduler records them in its job run).
    for o in &outcomes {
        match &o.error {
            None => {
                tracing::info!(destination = %o.destination, recipient = %o.recipient, attempts = o.attempts, "delivered")
            }
            Some(e) => {
                tracing::info!(destination = %o.destination, recipient = %o.recipient, attempts = o.attempts, error = %e, "not delivered")
            }
        }
    }
    if let Err(e) = log::record(project, delivery, &outcomes).await {
        // The outcomes still reach the caller (and its job record); the log is a convenience.
        tracing::error!(error = %e, "cannot record the deliveries in the `deliveries` table");
    }
    outcomes
}

/// The value of the environment variable a destination names for `key`.
fn env_var(destination: &str, key: &str, variable: &str) -> Result<String, String> {
    std::env::var(variable).map_err(|_| {
        format!(
            "environment variable {variable} ({key} of [destinations.{destination}]) is not set; set it in the \
             environment dealhouse runs in"
        )
    })
}
