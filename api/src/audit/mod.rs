//! The intake migration audit (`dealhouse audit intake`): did every request of the legacy intake
//! systems reach the CRM, once and unchanged?
//!
//! The business logic is SQL, one file per step under `api/audit/` (each file's header says
//! what its result holds); this module only reads the tables as of the asked version, binds the
//! `[audit]` settings into the files, runs the steps in order (each result registered under the
//! file's name for the next), and hands the results to [`render`]. Steps:
//! `audit_request` (both sides, one shape) -> `audit_ref_match` (rule 1, the kept reference) ->
//! `audit_candidate` (rule 2, similarity) -> `audit_match` -> `audit_duplicate` ->
//! `audit_volume` -> `audit_finding` -> `audit_lead_time` -> `audit_branch` (verdicts, from the
//! rules in `audit_rule`, a table of `[[audit.verdicts]]`).

pub mod render;
pub mod xlsx;

use std::sync::Arc;

use dealhouse_warehouse::as_of::{ReadAt, TableAt};
use dealhouse_warehouse::config::AuditConfig;
use dealhouse_warehouse::datafusion::arrow::array::{RecordBatch, StringArray, UInt32Array};
use dealhouse_warehouse::datafusion::arrow::compute::concat_batches;
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema};
use dealhouse_warehouse::datafusion::datasource::MemTable;
use dealhouse_warehouse::datafusion::prelude::SessionContext;
use dealhouse_warehouse::scope::Scope;
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse};

use crate::error::{Error, Result};

/// The steps in the order they run: the table each registers, and its SQL.
pub const STEPS: [(&str, &str); 9] = [
    ("audit_request", include_str!("../../audit/audit_request.sql")),
    ("audit_ref_match", include_str!("../../audit/audit_ref_match.sql")),
    ("audit_candidate", include_str!("../../audit/audit_candidate.sql")),
    ("audit_match", include_str!("../../audit/audit_match.sql")),
    ("audit_duplicate", include_str!("../../audit/audit_duplicate.sql")),
    ("audit_volume", include_str!("../../audit/audit_volume.sql")),
    ("audit_finding", include_str!("../../audit/audit_finding.sql")),
    ("audit_lead_time", include_str!("../../audit/audit_lead_time.sql")),
    ("audit_branch", include_str!("../../audit/audit_branch.sql")),
];

/// What the audit reports, by section name, and the step each comes from.
pub const SECTIONS: [(&str, &str); 6] = [
    ("branches", "audit_branch"),
    ("findings", "audit_finding"),
    ("matches", "audit_match"),
    ("volume", "audit_volume"),
    ("lead_times", "audit_lead_time"),
    ("rules", "audit_rule"),
];

/// The tables the audit reads.
pub const INPUTS: [&str; 2] = ["intake_requests", "branches"];

/// One section of the result.
#[derive(Debug, Clone)]
pub struct Section {
    /// `branches`, `findings`, ...
    pub name: &'static str,
    /// Its rows, in the order the step's SQL gives them (always a total order).
    pub batch: RecordBatch,
}

/// The audit's result: what it read and what it found.
#[derive(Debug, Clone)]
pub struct IntakeAudit {
    /// What was asked for (`--version`, `--as-of`, or the latest).
    pub asked: TableAt,
    /// The version of each input read.
    pub read: Vec<ReadAt>,
    /// The settings the SQL was bound with, by name, as written in `[audit]` (source lists
    /// comma-separated).
    pub settings: Vec<(&'static str, String)>,
    /// The sections, in [`SECTIONS`] order.
    pub sections: Vec<Section>,
}

impl IntakeAudit {
    /// A section by name.
    pub fn section(&self, name: &str) -> Option<&RecordBatch> {
        self.sections.iter().find(|s| s.name == name).map(|s| &s.batch)
    }
}

/// Runs the audit on the intake tables as of `asked`, as `scope` sees them (None: everything).
///
/// `intake_requests` is read at `asked`; `branches` at the same moment (the commit time of the
/// intake version asked for), so one `--version` always reads the same rows of both.
pub async fn intake(
    project: &Project,
    warehouse: &Warehouse,
    asked: TableAt,
    scope: Option<&Scope>,
) -> Result<IntakeAudit> {
    let (first, reads) = QuerySession::open_at(warehouse, &[("intake_requests", asked)]).await?;
    let Some(intake) = reads.first().cloned() else {
        return Err(fail("the warehouse has no intake_requests table yet: run `dealhouse sync` first"));
    };
    let branches_at = match (asked, intake.committed_at) {
        (TableAt::Time(t), _) => TableAt::Time(t),
        (TableAt::Version(_), Some(t)) => TableAt::Time(t),
        _ => TableAt::Latest,
    };
    let (mut session, more) = QuerySession::open_at(warehouse, &[("branches", branches_at)]).await?;
    let provider = first.context().table_provider("intake_requests").await?;
    for column in ["legacy_ref", "amount"] {
        if provider.schema().field_with_name(column).is_err() {
            return Err(fail(&format!(
                "intake_requests (version {}) has no column `{column}`: it was written by an older dealhouse; \
                 run `dealhouse sync` once so the table gains it, then audit the new version",
                intake.version
            )));
        }
    }
    session.register("intake_requests", provider)?;
    let mut read = vec![intake];
    read.extend(more);
    if let Some(scope) = scope {
        session = session.scoped(scope).await?;
    }
    // One partition: float aggregates (the lead times' logs) add in one order, run after run.
    session.context().state_ref().write().config_mut().options_mut().execution.target_partitions = 1;
    let bound = settings(&project.config.audit, project.config.sources.keys());
    run_steps(session.context(), &project.config.audit, &bound).await?;
    let settings = bound.into_iter().map(|(name, value)| (name, value.replace('\'', ""))).collect();
    let mut sections = Vec::with_capacity(SECTIONS.len());
    for (name, table) in SECTIONS {
        sections.push(Section { name, batch: collect(&session, table).await? });
    }
    Ok(IntakeAudit { asked, read, settings, sections })
}

/// Runs every step in `ctx`, registering each result under its name (`audit_rule` first).
pub async fn run_steps(ctx: &SessionContext, config: &AuditConfig, settings: &[(&'static str, String)]) -> Result<()> {
    replace(ctx, "audit_rule", Arc::new(rules_table(config)?))?;
    for (name, sql) in STEPS {
        let sql = bind(name, sql, settings)?;
        let df = ctx
            .sql(&sql)
            .await
            .map_err(|e| Error::QueryFile { origin: format!("api/audit/{name}.sql"), message: e.to_string() })?;
        let planned = df.schema().inner().clone();
        let batches = df.collect().await?;
        // The batches' own schema (the plan's may differ in nullability); the plan's when empty.
        let schema = batches.first().map_or(planned, |b| b.schema());
        replace(ctx, name, Arc::new(MemTable::try_new(schema, vec![batches])?))?;
    }
    Ok(())
}

fn replace(ctx: &SessionContext, name: &str, table: Arc<MemTable>) -> Result<()> {
    ctx.deregister_table(name)?;
    ctx.register_table(name, table)?;
    Ok(())
}

/// The values bound into the SQL: `{name}` in a step file becomes the literal.
pub fn settings<'a>(config: &AuditConfig, sources: impl Iterator<Item = &'a String>) -> Vec<(&'static str, String)> {
    let list = |names: &[String]| {
        if names.is_empty() {
            "null".to_string()
        } else {
            names.iter().map(|n| format!("'{}'", n.replace('\'', "''"))).collect::<Vec<_>>().join(", ")
        }
    };
    vec![
        ("legacy_sources", list(&config.legacy_sources())),
        ("crm_sources", list(&config.crm_sources(sources))),
        ("window_days", config.window_days.to_string()),
        ("min_similarity", format!("{:?}", config.min_similarity)),
        ("volume_weeks", config.volume_weeks.to_string()),
        ("volume_drop_ratio", format!("{:?}", config.volume_drop_ratio)),
        ("volume_min_requests", config.volume_min_requests.to_string()),
    ]
}

/// `sql` with every `{name}` replaced; a placeholder without a setting is a mistake in the file.
pub fn bind(step: &str, sql: &str, settings: &[(&'static str, String)]) -> Result<String> {
    let mut out = sql.to_string();
    for (name, value) in settings {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    if let Some(at) = out.find('{') {
        let rest: String = out[at..].chars().take(30).collect();
        return Err(Error::QueryFile {
            origin: format!("api/audit/{step}.sql"),
            message: format!("unknown placeholder at `{rest}`"),
        });
    }
    Ok(out)
}

/// `audit_rule`: the verdict rules in order (`rule_no` from 1).
fn rules_table(config: &AuditConfig) -> Result<MemTable> {
    let rules = config.verdict_rules();
    let schema = Arc::new(Schema::new(vec![
        Field::new("rule_no", DataType::UInt32, false),
        Field::new("verdict", DataType::Utf8, false),
        Field::new("finding", DataType::Utf8, false),
        Field::new("at_least", DataType::UInt32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt32Array::from_iter_values(1..=rules.len() as u32)),
            Arc::new(StringArray::from_iter_values(rules.iter().map(|r| r.verdict.as_str()))),
            Arc::new(StringArray::from_iter_values(rules.iter().map(|r| r.finding.as_str()))),
            Arc::new(UInt32Array::from_iter_values(rules.iter().map(|r| r.at_least))),
        ],
    )
    .map_err(arrow)?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

async fn collect(session: &QuerySession, table: &str) -> Result<RecordBatch> {
    let df = session.context().table(table).await?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await?;
    concat_batches(&schema, &batches).map_err(arrow)
}

fn arrow(e: dealhouse_warehouse::datafusion::arrow::error::ArrowError) -> Error {
    dealhouse_warehouse::datafusion::error::DataFusionError::from(e).into()
}

fn fail(message: &str) -> Error {
    Error::Report { report: "audit intake".into(), section: None, message: message.into() }
}

#[cfg(test)]
mod tests {
    use dealhouse_warehouse::schema::{Branch, CanonicalRow, IntakeRequest};

    use super::*;

    /// Every step runs over empty tables, and each section's columns are exactly the ones its
    /// file documents (`-- column NAME: ...`), which the OpenAPI document shows.
    #[tokio::test]
    async fn every_step_plans_and_documents_its_columns() {
        let ctx = dealhouse_warehouse::session::new_context();
        for def in [IntakeRequest::table_def(), Branch::table_def()] {
            let schema = def.schema();
            ctx.register_table(def.name, Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap())).unwrap();
        }
        let config = AuditConfig::default();
        let sources = ["intake".to_string(), "desk".to_string()];
        run_steps(&ctx, &config, &settings(&config, sources.iter())).await.unwrap();
        for (name, sql) in STEPS {
            let documented: Vec<&str> = sql
                .lines()
                .filter_map(|l| l.strip_prefix("-- column "))
                .filter_map(|l| l.split_once(':').map(|(c, _)| c))
                .collect();
            let df = ctx.table(name).await.unwrap();
            let actual: Vec<&str> = df.schema().fields().iter().map(|f| f.name().as_str()).collect();
            if name == "audit_request" {
                // Documents only the columns it adds to the canonical ones.
                assert!(documented.iter().all(|c| actual.contains(c)), "{name}: {documented:?} vs {actual:?}");
            } else {
                assert_eq!(documented, actual, "{name}");
            }
        }
        assert!(bind("x", "select {nope}", &[]).is_err());
    }
}
