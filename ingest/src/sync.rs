//! The sync runner: for each source and each table it fills, read chunks from the stored
//! cursor and write each chunk's rows with its cursor in one commit, its quarantine changes in
//! another just before; then replay the quarantined records whose mapping changed (or all of
//! them, with `--replay-quarantine`). The order of the commits is explained in
//! [`crate::quarantine::settle`]. A source whose reads quarantine more than its limit
//! ([`crate::quarantine::limit`]) fails once everything it read is committed.

use std::sync::Arc;

use dealhouse_warehouse::schema::canonical_table;
use dealhouse_warehouse::{Project, Warehouse};
use futures::StreamExt;
use tracing::info;

use crate::quarantine::Ledger;
use crate::quarantine::limit::{QuarantineLimit, limit_for};
use crate::quarantine::settle::{mark_stale, write_read, write_replayed};
use crate::source::{Source, SourceContext};
use crate::source_config::{SourceConfig, parse_sources};
use crate::{Error, Result};

/// What to sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Source names to run; empty means all.
    pub sources: Vec<String>,
    /// How many of a source's records one sync may quarantine before the source fails (after
    /// committing what loaded). None: the project's `[sync] max_quarantined_share` (default 1%).
    pub max_quarantined: Option<QuarantineLimit>,
    /// After reading, list every record upstream and mark stored ones missing there as deleted
    /// (tables with a `deleted` column, sources that can list ids).
    pub reconcile: bool,
    /// Read every quarantined record of the chosen sources again, by id, even when their
    /// mapping did not change (records fixed upstream without a change the cursor sees).
    pub replay_quarantine: bool,
}

/// Counts for one table of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableReport {
    /// Canonical table.
    pub table: String,
    /// Rows read from the source.
    pub read: u64,
    /// Rows new to the warehouse.
    pub inserted: u64,
    /// Rows whose content changed.
    pub updated: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Rows left out by a row filter (a file table's `where`): read, neither loaded nor
    /// quarantined.
    pub skipped: u64,
    /// Rows newly marked deleted by reconciliation.
    pub deleted: u64,
    /// Quarantined records read again by a replay.
    pub replayed: u64,
    /// Quarantine rows cleared: their records loaded, or are no longer upstream.
    pub cleared: u64,
}

/// The outcome of one source.
#[derive(Debug, Clone, Default)]
pub struct SourceReport {
    /// Source name.
    pub name: String,
    /// Per table.
    pub tables: Vec<TableReport>,
    /// Set when the source failed; what was committed before the failure stays.
    pub error: Option<String>,
}

/// The outcome of a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Per source, the organisation (`config`) first.
    pub sources: Vec<SourceReport>,
}

impl SyncReport {
    /// True when every source succeeded.
    pub fn ok(&self) -> bool {
        self.sources.iter().all(|s| s.error.is_none())
    }
}

/// Progress callbacks, so the CLI can draw bars and servers can log.
pub trait SyncProgress: Send + Sync {
    /// A stream starts.
    fn start(&self, _source: &str, _table: &str, _estimated_rows: Option<u64>) {}
    /// Rows were committed.
    fn advance(&self, _source: &str, _table: &str, _rows: u64) {}
    /// A stream ended.
    fn finish(&self, _source: &str, _report: &TableReport) {}
}

/// Progress that only logs.
pub struct LogProgress;
impl SyncProgress for LogProgress {
    fn finish(&self, source: &str, r: &TableReport) {
        info!(source, table = %r.table, read = r.read, inserted = r.inserted, updated = r.updated, quarantined = r.quarantined, skipped = r.skipped, "synced");
    }
}

/// Builds the connector for a configured source. Adding a source kind adds an arm here.
pub async fn connector_for(ctx: SourceContext, config: &SourceConfig) -> Result<Box<dyn Source>> {
    Ok(match config {
        SourceConfig::Bitrix24(c) => Box::new(crate::bitrix24::Bitrix24Source::connect(ctx, c.clone()).await?),
        SourceConfig::AmoCrm(c) => Box::new(crate::amocrm::AmoCrmSource::connect(ctx, c.clone()).await?),
        SourceConfig::Sqlite(c) => Box::new(crate::sql::SqliteSource::new(ctx, c.clone())?),
        SourceConfig::Postgres(c) => {
            Box::new(crate::sql::ServerSource::new(ctx, c.clone(), crate::sql::Engine::Postgres)?)
        }
        SourceConfig::Mysql(c) => Box::new(crate::sql::ServerSource::new(ctx, c.clone(), crate::sql::Engine::Mysql)?),
        SourceConfig::Xlsx(c) => Box::new(crate::files::FileSource::new(ctx, c.clone(), crate::files::FileKind::Xlsx)?),
        SourceConfig::Csv(c) => Box::new(crate::files::FileSource::new(ctx, c.clone(), crate::files::FileKind::Csv)?),
        SourceConfig::Jsonl(c) => {
            Box::new(crate::files::FileSource::new(ctx, c.clone(), crate::files::FileKind::Jsonl)?)
        }
        SourceConfig::Push(c) => Box::new(crate::push::PushSource::new(ctx, c.clone())),
    })
}

/// Runs the organisation and the selected sources into the warehouse.
pub async fn sync_project(
    project: Arc<Project>,
    warehouse: &Warehouse,
    options: &SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<SyncReport> {
    let sources = parse_sources(&project.config)?;
    for name in &options.sources {
        if !sources.contains_key(name) {
            return Err(Error::Config {
                source_name: name.clone(),
                message: format!(
                    "no such source in dealhouse.toml; sources: {}",
                    sources.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    warehouse.ensure_canonical().await?;
    let mut report = SyncReport::default();
    let (h, b) = crate::org::sync_org(&project.config, warehouse).await?;
    report.sources.push(SourceReport {
        name: crate::org::CONFIG_SOURCE.into(),
        tables: vec![
            TableReport { table: "holdings".into(), inserted: h.inserted, updated: h.updated, ..Default::default() },
            TableReport { table: "branches".into(), inserted: b.inserted, updated: b.updated, ..Default::default() },
        ],
        error: None,
    });
    let http = reqwest::Client::builder()
        .user_agent(concat!("dealhouse/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(Error::HttpClient)?;
    for (name, config) in &sources {
        if !options.sources.is_empty() && !options.sources.contains(name) {
            continue;
        }
        let ctx = SourceContext { project: project.clone(), source_name: name.clone(), http: http.clone() };
        let mut source_report = SourceReport { name: name.clone(), ..Default::default() };
        if let Err(e) = sync_source(ctx, config, warehouse, options, progress, &mut source_report).await {
            source_report.error = Some(e.to_string());
        }
        report.sources.push(source_report);
    }
    Ok(report)
}

async fn sync_source(
    ctx: SourceContext,
    config: &SourceConfig,
    warehouse: &Warehouse,
    options: &SyncOptions,
    progress: &dyn SyncProgress,
    report: &mut SourceReport,
) -> Result<()> {
    let name = ctx.source_name.clone();
    let project = ctx.project.clone();
    let source = connector_for(ctx, config).await?;
    source.check().await?;
    let mapping = source.mapping_fingerprint();
    let mut ledgers = Ledger::load(warehouse, &name).await?;
    // What the cursor reads took in, for the quarantine limit: replays re-read records already
    // counted when they were first quarantined.
    let (mut loaded_total, mut quarantined_total) = (0u64, 0u64);
    for stream in source.discover().await? {
        let def = canonical_table(stream.table).ok_or_else(|| Error::Config {
            source_name: name.clone(),
            message: format!("connector produced unknown table `{}`", stream.table),
        })?;
        let mut table_report = TableReport { table: stream.table.to_string(), ..Default::default() };
        let mut ledger = ledgers.remove(stream.table).unwrap_or_default();
        progress.start(&name, stream.table, stream.estimated_rows);
        let cursor = warehouse.last_cursor(stream.table, &name).await?;
        let mut chunks = source.read(stream.table, cursor);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            let rows = chunk.batch.num_rows() as u64;
            loaded_total += rows;
            table_report.skipped += chunk.skipped;
            quarantined_total += chunk.quarantined.len() as u64;
            table_report.quarantined += chunk.quarantined.len() as u64;
            let written = write_read(warehouse, "sync", &name, &def, chunk, &mut ledger, mapping.as_deref()).await?;
            table_report.read += rows;
            table_report.inserted += written.rows.inserted;
            table_report.updated += written.rows.updated;
            table_report.cleared += written.cleared;
            progress.advance(&name, stream.table, rows);
        }
        drop(chunks);
        let stale = ledger.stale(mapping.as_deref(), options.replay_quarantine);
        if !stale.is_empty() {
            if options.replay_quarantine {
                mark_stale(warehouse, &name, &stale).await?;
            }
            info!(source = %name, table = stream.table, records = stale.len(), "replaying quarantined records");
            table_report.replayed += stale.len() as u64;
            let mut chunks = source.replay(stream.table, stale);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                let written =
                    write_replayed(warehouse, &name, &def, chunk, &mut ledger, mapping.as_deref(), || Ok(())).await?;
                table_report.inserted += written.rows.inserted;
                table_report.updated += written.rows.updated;
                table_report.cleared += written.cleared;
            }
        }
        if options.reconcile
            && def.schema().field_with_name("deleted").is_ok()
            && let Some(ids) = source.list_ids(stream.table).await?
        {
            table_report.deleted = crate::reconcile::mark_deleted(warehouse, &def, &name, ids).await?;
        }
        progress.finish(&name, &table_report);
        report.tables.push(table_report);
    }
    let (limit, set_by) = limit_for(&project.config, &name, options.max_quarantined);
    let read = loaded_total + quarantined_total;
    if limit.exceeded(read, quarantined_total) {
        return Err(Error::TooManyBad { source_name: name, quarantined: quarantined_total, read, limit, set_by });
    }
    Ok(())
}
