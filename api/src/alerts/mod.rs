//! Alerts: evaluating `[alerts.*]` rules (`rules.rs`), keeping their occurrences in the
//! `alert_events` table (`events.rs`), delivering each new occurrence once, and
//! `GET /api/v1/alerts` (`route.rs`).
//!
//! An occurrence is a row the rule returns, identified by the alert and its key columns. One that
//! was not open opens (and is delivered); one still returned stays open (`last_seen_at` moves, it
//! is not delivered again); an open one no longer returned is resolved; one returned again after
//! that is a new occurrence. An occurrence none of whose recipients could be reached stays
//! undelivered and is tried again at the next evaluation. Delivery happens before the state is
//! committed, so a crash in between delivers it again rather than never (at least once). When
//! every alert is evaluated, the open occurrences of an alert no longer configured are resolved.
//! The table is rewritten whole per evaluation, so evaluations are meant to run one at a time
//! (two at once: the later commit fails on Delta's conflict check or replaces the earlier state;
//! the next evaluation sets it right, at worst delivering an occurrence twice).
//!
//! Measures are evaluated for the month of the data's reference day (the latest deal update,
//! as the marts measure "now"), so the same data gives the same alerts; freshness compares the
//! last sync with the clock.

mod events;
mod route;
mod rules;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse};
use serde_json::{Value, json};

pub use events::{ALERT_EVENTS_TABLE, COLUMNS as ALERT_EVENT_COLUMNS};
pub(crate) use route::routes;

use crate::delivery::{self, Delivery, DeliveryOutcome};
use crate::{Error, Result};

use events::Event;

/// What one evaluation did.
#[derive(Debug, Clone, Default)]
pub struct AlertsRun {
    /// Alerts evaluated.
    pub evaluated: usize,
    /// Occurrences opened by this evaluation.
    pub opened: usize,
    /// Occurrences resolved by this evaluation.
    pub resolved: usize,
    /// Occurrences open before this evaluation and still open after it.
    pub still_open: usize,
    /// Every delivery made (new occurrences, and earlier ones not delivered yet).
    pub deliveries: Vec<DeliveryOutcome>,
}

/// Evaluates the named alerts (all when `only` is empty) on the warehouse's current tables,
/// records new and resolved occurrences, delivers each new occurrence once.
pub async fn evaluate(project: &Project, warehouse: &Warehouse, only: &[String]) -> Result<AlertsRun> {
    evaluate_at(project, warehouse, only, Utc::now()).await
}

/// [`evaluate`] with the clock given (freshness and the instants recorded).
pub async fn evaluate_at(
    project: &Project,
    warehouse: &Warehouse,
    only: &[String],
    now: DateTime<Utc>,
) -> Result<AlertsRun> {
    let alerts = &project.config.alerts;
    if let Some(unknown) = only.iter().find(|n| !alerts.contains_key(*n)) {
        return Err(Error::Alert {
            alert: unknown.clone(),
            message: format!(
                "no such alert in dealhouse.toml; alerts: {}",
                if alerts.is_empty() {
                    "none".to_string()
                } else {
                    alerts.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        });
    }
    let chosen: Vec<&String> = alerts.keys().filter(|n| only.is_empty() || only.contains(n)).collect();
    if chosen.is_empty() {
        return Ok(AlertsRun::default());
    }
    let session = QuerySession::open(warehouse).await?;
    let reference_day = crate::reports::reference_date(&session).await?;
    let at = now.timestamp_micros();
    let mut events = events::read(warehouse).await?;
    let mut run = AlertsRun { evaluated: chosen.len(), ..Default::default() };
    let mut failures = vec![];
    for name in &chosen {
        let alert = alerts[*name].get_ref();
        let found = match rules::find(name, alert, project, warehouse, &session, reference_day, now).await {
            Ok(f) => f,
            Err(message) => {
                // The others are still evaluated and recorded; the failure is returned at the end.
                tracing::error!(alert = %name, error = %message, "alert not evaluated");
                failures.push(Error::Alert { alert: (*name).clone(), message });
                continue;
            }
        };
        let mut open: HashMap<String, usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| &e.alert == *name && e.resolved_at.is_none())
            .map(|(i, e)| (e.key.clone(), i))
            .collect();
        let mut seen: BTreeMap<String, ()> = BTreeMap::new();
        for f in found {
            if seen.insert(f.key.clone(), ()).is_some() {
                continue; // Two rows with one key are one occurrence.
            }
            let message = match rules::message(name, alert, &f) {
                Ok(m) => m,
                Err(message) => {
                    failures.push(Error::Alert { alert: (*name).clone(), message });
                    break;
                }
            };
            let values = Value::Object(f.values.clone()).to_string();
            match open.remove(&f.key) {
                Some(i) => {
                    let e = &mut events[i];
                    e.last_seen_at = at;
                    e.message = message;
                    e.values = values;
                    e.branch_id = f.branch_id;
                    run.still_open += 1;
                }
                None => {
                    events.push(Event {
                        alert: (*name).clone(),
                        key: f.key,
                        branch_id: f.branch_id,
                        message,
                        values,
                        opened_at: at,
                        last_seen_at: at,
                        resolved_at: None,
                        delivered_at: None,
                    });
                    run.opened += 1;
                }
            }
        }
        if failures.last().is_some_and(|e| matches!(e, Error::Alert { alert, .. } if alert == *name)) {
            // Half-evaluated: resolve nothing on its account.
            continue;
        }
        for i in open.into_values() {
            events[i].resolved_at = Some(at);
            run.resolved += 1;
        }
    }
    if only.is_empty() {
        // An alert removed from dealhouse.toml watches nothing any more: its open occurrences end.
        for e in events.iter_mut().filter(|e| e.resolved_at.is_none() && !alerts.contains_key(&e.alert)) {
            e.resolved_at = Some(at);
        }
    }
    for e in events.iter_mut().filter(|e| e.resolved_at.is_none() && e.delivered_at.is_none()) {
        if !chosen.contains(&&e.alert) {
            continue;
        }
        let Some(alert) = alerts.get(&e.alert).map(|a| a.get_ref()) else { continue };
        if alert.deliver.is_empty() {
            continue;
        }
        let outcomes = delivery::deliver(project, &alert.deliver, &occurrence_delivery(e)).await;
        if outcomes.iter().any(|o| o.delivered) {
            e.delivered_at = Some(at);
        }
        run.deliveries.extend(outcomes);
    }
    events::write(warehouse, &mut events).await?;
    match failures.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(run),
    }
}

/// What a new occurrence is delivered as: its message as the subject, its row as the headline.
fn occurrence_delivery(e: &Event) -> Delivery {
    let values: serde_json::Map<String, Value> = serde_json::from_str(&e.values).unwrap_or_default();
    let headline = values.iter().map(|(k, v)| (k.clone(), rules::text(v))).collect();
    let opened = DateTime::<Utc>::from_timestamp_micros(e.opened_at).map(|t| t.to_rfc3339()).unwrap_or_default();
    Delivery {
        subject: format!("Alert {}: {}", e.alert, e.message),
        headline,
        files: vec![],
        branch: e.branch_id.clone(),
        meta: json!({ "alert": e.alert, "key": e.key, "opened_at": opened, "values": Value::Object(values) }),
    }
}
