//! The demo company: a deterministic generator of a realistic ticket agency's source systems.
//!
//! [`generate`] simulates a group of four holdings and 77 city branches (Kaliningrad to
//! Kamchatka) with ~300 managers, a few thousand B2B clients and 500-600 new deals a week, then
//! renders what each upstream system would hold, in that system's own format:
//!
//! - `sources/crm/*.jsonl`: the Bitrix24 portal, one file per REST method ([`bitrix`]);
//! - `sources/legacy_intake.sqlite`: the request-intake system branches used before their switch
//!   to the CRM;
//! - `sources/crm_desk.sqlite`: the CRM's intake desk, the legacy requests migrated into it at
//!   each switch and those it received since ([`migration`]), and `sources/audit-manifest.json`,
//!   the problems planted in that migration for `dealhouse audit intake` to find;
//! - `sources/plans.xlsx`: monthly targets per manager;
//! - `sources/accounting_1c.csv`: 1C's register of signed contracts (windows-1251);
//! - `dealhouse.toml`: the project wiring all of them.
//!
//! Same options, same bytes: every random draw comes from ChaCha8 seeded by `seed`, every date
//! from `as_of` (never the wall clock), every collection is ordered.

mod bitrix;
mod calendar;
mod cities;
mod company;
mod config;
mod intake;
mod migration;
mod names;
mod plans;
mod staff;
mod story;
mod writers;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::{Error, Result};

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of full weeks of history (1-520).
    pub weeks: u32,
    /// The demo's "today": the data covers the `weeks` full weeks ending the Sunday before it.
    pub as_of: NaiveDate,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// Holdings in the group.
    pub holdings: usize,
    /// City branches.
    pub branches: usize,
    /// Sales managers who worked in the period (including those who left).
    pub managers: usize,
    /// CRM companies.
    pub clients: usize,
    /// CRM deals.
    pub deals: usize,
    /// CRM activities.
    pub activities: usize,
    /// CRM stage history records.
    pub stage_changes: usize,
    /// Requests in the legacy intake database.
    pub intake_requests: usize,
    /// Requests in the CRM intake desk (migrated and received).
    pub desk_requests: usize,
    /// Every file written.
    pub files: Vec<PathBuf>,
}

/// Writes DIR/dealhouse.toml and DIR/sources/**; the same options give byte-identical files.
pub fn generate(dir: &Path, opts: &DemoOptions) -> Result<DemoSummary> {
    let company = company::Company::build(opts.seed, opts.weeks, opts.as_of)
        .map_err(|message| Error::Config { source_name: "demo".into(), message })?;
    let sources = dir.join("sources");
    std::fs::create_dir_all(&sources)
        .map_err(|e| Error::File { path: sources.clone(), message: format!("cannot create the directory: {e}") })?;

    let mut files = Vec::new();
    let project = dir.join(dealhouse_warehouse::config::PROJECT_FILE);
    std::fs::write(&project, config::project_file(&company, opts))
        .map_err(|e| Error::File { path: project.clone(), message: format!("cannot write it: {e}") })?;
    files.push(project);
    files.extend(bitrix::write_portal(&company, &sources.join("crm"))?);
    files.push(writers::write_intake(&company, &sources.join("legacy_intake.sqlite"))?);
    files.push(writers::write_desk(&company, &sources.join("crm_desk.sqlite"))?);
    files.push(writers::write_audit_manifest(&company, &sources.join("audit-manifest.json"))?);
    files.push(writers::write_plans(&company, &sources.join("plans.xlsx"), opts.as_of)?);
    files.push(writers::write_accounting(&company, &sources.join("accounting_1c.csv"))?);

    Ok(DemoSummary {
        holdings: cities::HOLDINGS.len(),
        branches: company.branches.len(),
        managers: company.managers.len(),
        clients: company.clients.len(),
        deals: company.deals.len(),
        activities: company.activities.len(),
        stage_changes: company.stage_changes.len(),
        intake_requests: company.intake.len(),
        desk_requests: company.desk.len(),
        files,
    })
}
