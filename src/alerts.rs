//! `dealhouse alerts`: evaluates the `[alerts.*]` rules now ([`dealhouse_api::alerts::evaluate`])
//! and prints what opened, what resolved and what is still open; `dealhouse build` calls the same
//! after a successful build.

use std::process::ExitCode;

use anyhow::Result;
use dealhouse_api::alerts::{self, AlertsRun};
use dealhouse_warehouse::{Project, Warehouse};

pub const EXAMPLES: &str = "Examples:
  dealhouse -C /tmp/d alerts                    evaluate every [alerts.*] now
  dealhouse -C /tmp/d alerts stalled sync_late  only these two

An occurrence (a row an alert's rule returns, identified by its `key` columns) is delivered once,
to the alert's `deliver` destinations, when it opens; it is resolved when the rule no longer
returns it. Occurrences are kept in the `alert_events` table and listed by GET /api/v1/alerts.
`dealhouse build` evaluates every alert after a successful build (--no-alerts skips it).
Exit status 1 when an alert cannot be evaluated or a delivery fails.";

/// Evaluates `only` (all when empty) and prints the summary and every failed delivery.
pub async fn run(project: &Project, warehouse: &Warehouse, only: &[String]) -> Result<ExitCode> {
    let run = alerts::evaluate(project, warehouse, only).await?;
    Ok(print(&run))
}

/// Prints a run: counts, then each delivery that failed.
pub fn print(run: &AlertsRun) -> ExitCode {
    eprintln!(
        "alerts: {} evaluated, {} opened, {} resolved, {} still open",
        run.evaluated, run.opened, run.resolved, run.still_open
    );
    let delivered = run.deliveries.iter().filter(|d| d.delivered).count();
    if !run.deliveries.is_empty() {
        eprintln!("deliveries: {delivered} delivered, {} failed", run.deliveries.len() - delivered);
    }
    for d in run.deliveries.iter().filter(|d| !d.delivered) {
        eprintln!(
            "delivery {} {} FAILED after {} attempts: {}",
            d.destination,
            d.recipient,
            d.attempts,
            d.error.as_deref().unwrap_or("-")
        );
    }
    if delivered == run.deliveries.len() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
