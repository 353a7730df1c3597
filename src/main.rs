//! `dealhouse`: the command line. Thin wiring over the crates: `ingest` (sync, demo),
//! `warehouse` (build, test, query, status, docs) and `api` (serve).

mod alerts;
mod audit;
mod export;
mod output;
mod progress;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use dealhouse_ingest::quarantine::limit::QuarantineLimit;
use dealhouse_ingest::sync::{SyncOptions, SyncReport};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse, models};

/// Sales-analytics warehouse for a multi-branch B2B sales organisation.
///
/// A project is a directory with a `dealhouse.toml`. `sync` pulls the configured sources (CRM,
/// legacy SQL databases, CSV/XLSX exports) into Delta tables, `build` runs the SQL models into
/// marts, `query` and `serve` read them.
///
/// Start with `dealhouse demo` (a generated company, then sync, build and serve), or
/// `dealhouse init DIR` for your own project.
#[derive(Parser)]
#[command(name = "dealhouse", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    /// Project directory (holding dealhouse.toml).
    #[arg(short = 'C', long = "project", global = true, default_value = ".", value_name = "DIR")]
    project: PathBuf,
    /// More log output (-v info, -vv debug). Set RUST_LOG for fine control.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  dealhouse demo                      generate a company in ./dealhouse-demo, sync, build, serve
  dealhouse demo /tmp/d --no-serve    the same without the server
  dealhouse -C /tmp/d query \"select stage, count(*) from deals group by stage\"
  dealhouse -C /tmp/d sync crm        sync one source
  dealhouse -C /tmp/d build --select fct_deal+
  dealhouse -C /tmp/d quarantine      what did not load, and what to change
  dealhouse -C /tmp/d status";

#[derive(Subcommand)]
enum Command {
    /// Create a project directory with a commented dealhouse.toml to edit.
    Init {
        /// Directory to create (default: the -C directory).
        dir: Option<PathBuf>,
    },
    /// Generate a realistic demo company's source systems, then sync, build and serve them.
    ///
    /// The company: 4 holdings, 77 branches in 11 time zones, ~300 managers, ~550 deals a week.
    /// Sources: a Bitrix24-format CRM (served locally), a legacy SQLite intake system, an XLSX
    /// plan workbook and a 1C CSV export. Same seed and --as-of give byte-identical sources.
    Demo {
        /// Directory to create.
        #[arg(default_value = "dealhouse-demo")]
        dir: PathBuf,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Weeks of history to generate.
        #[arg(long, default_value_t = 104)]
        weeks: u32,
        /// The demo's "today" (YYYY-MM-DD); data covers the weeks before it. Default: today.
        #[arg(long, value_name = "DATE")]
        as_of: Option<NaiveDate>,
        /// Stop after sync and build, without starting the server.
        #[arg(long)]
        no_serve: bool,
        /// Port to serve on (127.0.0.1).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Regenerate DIR if it already holds a project (otherwise it is reused: sync, build, serve).
        #[arg(long)]
        force: bool,
    },
    /// Pull the configured sources into the warehouse (all, or the named ones).
    ///
    /// Incremental and idempotent: each source resumes from the cursor stored with its last
    /// committed rows; unchanged records are not rewritten. Bad rows go to the `quarantine` table.
    Sync {
        /// Source names from dealhouse.toml (default: all).
        sources: Vec<String>,
        /// Fail a source (exit 1) that quarantines more than this: a number of records (`50`) or a
        /// share of the records it read (`5%`). Default: [sync] max_quarantined_share in
        /// dealhouse.toml, else 1%. What loaded is committed either way.
        #[arg(long, value_name = "N|N%", value_parser = QuarantineLimit::from_str)]
        max_quarantined: Option<QuarantineLimit>,
        /// Also list every record upstream and mark stored ones missing there as deleted (cursor
        /// reads never see deletions; run this nightly). Refuses to delete more than half.
        #[arg(long)]
        reconcile: bool,
        /// Read every quarantined record of the sources again, by id (a changed mapping does
        /// this by itself; use it after fixing records upstream in a way the cursor misses).
        #[arg(long)]
        replay_quarantine: bool,
    },
    /// List the quarantined records: counts by source, table and reason, with what to change.
    ///
    /// Fixing the mapping is enough to load them: the next `sync` reads them again by id.
    Quarantine {
        /// Only this source (repeat for several).
        #[arg(long = "source", value_name = "SOURCE")]
        sources: Vec<String>,
        /// Only records whose reason contains this text (case-insensitive).
        #[arg(long, value_name = "TEXT")]
        reason_contains: Option<String>,
        /// Records listed at most (the counts cover all of them).
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Run the SQL models (built-in and the project's models/) into tables, then their data tests.
    Build {
        /// Only this model (`NAME`) or it and everything downstream (`NAME+`).
        #[arg(long, value_name = "NAME[+]")]
        select: Option<String>,
        /// Recompute every model from scratch.
        #[arg(long)]
        full_refresh: bool,
        /// Skip the data tests after the build.
        #[arg(long)]
        no_test: bool,
        /// Skip evaluating the [alerts.*] after the build (they run when any are configured).
        #[arg(long)]
        no_alerts: bool,
    },
    /// Run the models' data tests against the current tables.
    Test {
        /// Only the tests of this model (`NAME`) or it and everything downstream (`NAME+`).
        #[arg(long, value_name = "NAME[+]")]
        select: Option<String>,
    },
    /// Run one read-only SQL query over every table by its plain name.
    Query {
        /// The SQL (SELECT / WITH / EXPLAIN / SHOW TABLES / SHOW COLUMNS FROM t / DESCRIBE t).
        sql: String,
        /// Output format (json writes decimals as exact strings, as the API does).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Serve the API and dashboards.
    Serve {
        /// Address to listen on (default: [server] bind, or 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Export a report (KPI tables) to XLSX, CSV, Parquet or JSON; without REPORT, list them.
    ///
    /// One file per run, named `<report>/<period>.<ext>` under --out, or one per branch with
    /// --per-branch (each computed in that branch's scope, as a branch token sees it).
    #[command(after_help = export::EXAMPLES)]
    Export(export::ExportArgs),
    /// Evaluate the [alerts.*] rules now: deliver new occurrences, record resolved ones.
    #[command(after_help = alerts::EXAMPLES)]
    Alerts {
        /// Alert names from dealhouse.toml (default: all).
        names: Vec<String>,
    },
    /// Audit the migration off the legacy intake systems: `dealhouse audit intake`.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Show each source's last sync and each table's version and row count.
    Status,
    /// List the models with their docs, columns, tests and lineage; or print the canonical schema.
    Docs {
        /// Print the canonical schema as Markdown (docs/schema.md).
        #[arg(long)]
        schema: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,deltalake_core=error",
        1 => "info,deltalake_core=warn",
        _ => "debug,datafusion=info,deltalake=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let dir = cli.project;
    match cli.command {
        Command::Init { dir: target } => init(&target.unwrap_or(dir)),
        Command::Demo { dir: target, seed, weeks, as_of, no_serve, port, force } => {
            demo(&target, seed, weeks, as_of, no_serve, port, force).await
        }
        Command::Sync { sources, max_quarantined, reconcile, replay_quarantine } => {
            let project = load(&dir)?;
            let report = sync(project, SyncOptions { sources, max_quarantined, reconcile, replay_quarantine }).await?;
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Quarantine { sources, reason_contains, limit, format } => {
            let project = load(&dir)?;
            let known = dealhouse_ingest::source_config::parse_sources(&project.config)?;
            if let Some(unknown) = sources.iter().find(|s| !known.contains_key(*s)) {
                bail!(
                    "no source `{unknown}` in dealhouse.toml; sources: {}",
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            let filter = dealhouse_ingest::quarantine::report::Filter { sources, reason_contains, limit };
            let listing =
                dealhouse_ingest::quarantine::report::listing(&project.config, &warehouse(&project)?, &filter).await?;
            match format {
                ListFormat::Table => print!("{}", output::quarantine(&listing)),
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { select, full_refresh, no_test, no_alerts } => {
            let project = load(&dir)?;
            let options = models::BuildOptions { full_refresh, ..models::BuildOptions::for_project(&project) };
            build(&project, select.as_deref(), options, !no_test, !no_alerts).await
        }
        Command::Alerts { names } => {
            let project = load(&dir)?;
            alerts::run(&project, &warehouse(&project)?, &names).await
        }
        Command::Test { select } => data_tests(&*load(&dir)?, select.as_deref()).await,
        Command::Query { sql, format } => {
            let project = load(&dir)?;
            let session = QuerySession::open(&warehouse(&project)?).await?;
            let batches = session.query(&sql).await?;
            output::print(&batches, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { bind } => {
            let project = load(&dir)?;
            let bind = bind.unwrap_or_else(|| project.config.server.bind.clone());
            serve(project, &bind).await
        }
        Command::Export(args) => export::export(&dir, args).await,
        Command::Audit(command) => audit::audit(&dir, command).await,
        Command::Status => status(&*load(&dir)?).await,
        Command::Docs { schema } => {
            if schema {
                print!("{}", dealhouse_warehouse::schema::schema_markdown());
            } else {
                let project = load(&dir)?;
                print!("{}", output::model_docs(&models::load_models(Some(&project.dir.join("models")))?));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Every command loads the project through ingest, so its sources are validated too.
fn load(dir: &Path) -> Result<Arc<Project>> {
    Ok(Arc::new(dealhouse_ingest::project::load(dir)?))
}

fn warehouse(project: &Project) -> Result<Warehouse> {
    let options = project.config.warehouse.storage_options.clone().into_iter().collect();
    Ok(Warehouse::new(project.warehouse_url()?, options))
}

fn init(dir: &Path) -> Result<ExitCode> {
    let file = dir.join(dealhouse_warehouse::config::PROJECT_FILE);
    if file.exists() {
        bail!("{} already exists; edit it, or pick another directory", file.display());
    }
    std::fs::create_dir_all(dir.join("models")).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&file, INIT_TEMPLATE).with_context(|| format!("writing {}", file.display()))?;
    dealhouse_ingest::project::load(dir).context("the generated dealhouse.toml does not load (a bug)")?;
    println!(
        "Created {}.\nNext: add your branches and sources to it, then `dealhouse -C {} sync`.",
        file.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

const INIT_TEMPLATE: &str = include_str!("init_template.toml");

async fn demo(
    dir: &Path,
    seed: u64,
    weeks: u32,
    as_of: Option<NaiveDate>,
    no_serve: bool,
    port: u16,
    force: bool,
) -> Result<ExitCode> {
    if weeks == 0 {
        bail!("--weeks must be at least 1");
    }
    let started = std::time::Instant::now();
    let exists = dir.join(dealhouse_warehouse::config::PROJECT_FILE).exists();
    if exists && !force {
        eprintln!("Using the existing demo project in {} (pass --force to regenerate it)", dir.display());
    } else {
        if exists {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let as_of = as_of.unwrap_or_else(|| chrono::Local::now().date_naive());
        let options = dealhouse_ingest::demo::DemoOptions { seed, weeks, as_of };
        let target = dir.to_path_buf();
        let summary =
            tokio::task::spawn_blocking(move || dealhouse_ingest::demo::generate(&target, &options)).await??;
        eprintln!(
            "Generated {} branches, {} managers, {} clients, {} deals, {} activities, {} intake requests in {:.1}s",
            summary.branches,
            summary.managers,
            summary.clients,
            summary.deals,
            summary.activities,
            summary.intake_requests,
            started.elapsed().as_secs_f64()
        );
    }
    let project = load(dir)?;
    let report = sync(project.clone(), SyncOptions::default()).await?;
    if !report.ok() {
        bail!("the demo's sync failed (see above)");
    }
    let code = build(&project, None, models::BuildOptions::for_project(&project), true, false).await?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    eprintln!("Demo ready in {:.1}s: {}", started.elapsed().as_secs_f64(), project.dir.display());
    if no_serve {
        eprintln!("Query it: dealhouse -C {} query \"select count(*) from deals\"", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    serve(project, &format!("127.0.0.1:{port}")).await
}

async fn sync(project: Arc<Project>, options: SyncOptions) -> Result<SyncReport> {
    let wh = warehouse(&project)?;
    let progress = progress::SyncBars::new();
    let report = dealhouse_ingest::sync::sync_project(project, &wh, &options, &progress).await?;
    progress.clear();
    for s in &report.sources {
        let (read, inserted, updated, quarantined, deleted) = s.tables.iter().fold((0, 0, 0, 0, 0), |a, t| {
            (a.0 + t.read, a.1 + t.inserted, a.2 + t.updated, a.3 + t.quarantined, a.4 + t.deleted)
        });
        let deleted = if deleted > 0 { format!("  deleted upstream {deleted}") } else { String::new() };
        let skipped: u64 = s.tables.iter().map(|t| t.skipped).sum();
        // Only shown when a `where` left rows out, so other summaries read as before.
        let deleted = if skipped > 0 { format!("{deleted}  skipped by where {skipped}") } else { deleted };
        let (replayed, cleared) = s.tables.iter().fold((0, 0), |a, t| (a.0 + t.replayed, a.1 + t.cleared));
        let deleted = if replayed + cleared > 0 {
            format!("{deleted}  replayed {replayed}  cleared from quarantine {cleared}")
        } else {
            deleted
        };
        let counts =
            format!("read {read:>8}  new {inserted:>8}  changed {updated:>7}  quarantined {quarantined}{deleted}");
        match &s.error {
            None => eprintln!("sync {:<12} ok      {counts}", s.name),
            // What a failed source committed before it failed stays: say how much.
            Some(e) if !s.tables.is_empty() => eprintln!("sync {:<12} FAILED  {counts}\n      {e}", s.name),
            Some(e) => eprintln!("sync {:<12} FAILED  {e}", s.name),
        }
    }
    Ok(report)
}

fn selection(
    all: &std::collections::BTreeMap<String, models::Model>,
    select: Option<&str>,
) -> Result<Option<BTreeSet<String>>> {
    Ok(match select {
        Some(s) => Some(models::select(all, s)?),
        None => None,
    })
}

async fn build(
    project: &Project,
    select: Option<&str>,
    options: models::BuildOptions,
    then_test: bool,
    then_alerts: bool,
) -> Result<ExitCode> {
    let wh = warehouse(project)?;
    let all = models::load_models(Some(&project.dir.join("models")))?;
    let chosen = selection(&all, select)?;
    let bar = progress::counter(chosen.as_ref().map_or(all.len(), |c| c.len()) as u64, "build");
    let runs = models::run_with(&wh, &all, chosen.as_ref(), options, |r| {
        bar.inc(1);
        match &r.result {
            Ok(rows) => progress::line(&bar, format!("model {:<28} ok      {rows:>9} rows  ({})", r.name, r.how)),
            Err(e) => progress::line(&bar, format!("model {:<28} FAILED  {e}", r.name)),
        }
    })
    .await?;
    bar.finish_and_clear();
    let failed = runs.iter().filter(|r| r.result.is_err()).count();
    eprintln!("build: {} models ok, {failed} failed", runs.len() - failed);
    if failed > 0 {
        return Ok(ExitCode::FAILURE);
    }
    let tested = if then_test { data_tests(project, select).await? } else { ExitCode::SUCCESS };
    // After every model built, failing data tests included: a `data_tests` alert is about them.
    if !then_alerts || project.config.alerts.is_empty() {
        return Ok(tested);
    }
    let alerted = alerts::run(project, &wh, &[]).await?;
    Ok(if tested == ExitCode::SUCCESS { alerted } else { tested })
}

async fn data_tests(project: &Project, select: Option<&str>) -> Result<ExitCode> {
    let wh = warehouse(project)?;
    let all = models::load_models(Some(&project.dir.join("models")))?;
    let chosen = selection(&all, select)?;
    let runs = models::run_tests(&wh, &all, chosen.as_ref(), &project.config.vocabularies).await?;
    let mut failed = 0;
    for t in &runs {
        match &t.result {
            Ok(0) => {}
            Ok(n) => {
                failed += 1;
                let first = t.first_row.as_ref().map(|r| format!("\n  first: {r}")).unwrap_or_default();
                eprintln!("test {}: {} FAILED: {n} offending rows{first}", t.model, t.test);
            }
            Err(e) => {
                failed += 1;
                eprintln!("test {}: {} ERROR: {e}", t.model, t.test);
            }
        }
    }
    eprintln!("data tests: {} passed, {failed} failed", runs.len() - failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn status(project: &Project) -> Result<ExitCode> {
    let wh = warehouse(project)?;
    println!("project   {}\nwarehouse {}\n", project.dir.display(), wh.root());
    let session = QuerySession::open(&wh).await?;
    println!("{:<14} {:<10} {:<20} {:>9}  {:<20} cursor", "source", "kind", "table", "rows", "last sync (UTC)");
    for (name, config) in &dealhouse_ingest::source_config::parse_sources(&project.config)? {
        let mut any = false;
        for table in dealhouse_warehouse::schema::canonical_tables() {
            let Some(mark) = wh.last_commit(table.name, name, false).await? else { continue };
            let cursor = wh.last_cursor(table.name, name).await?.unwrap_or_else(|| "-".into());
            let sql =
                format!("select count(*) from {} where source_system = '{}'", table.name, name.replace('\'', "''"));
            let rows = output::first_i64(&session.query(&sql).await?).unwrap_or(0);
            let at = mark.at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
            println!("{name:<14} {:<10} {:<20} {rows:>9}  {at:<20} {cursor}", config.kind(), table.name);
            any = true;
        }
        if !any {
            println!("{name:<14} {:<10} {:<20} {:>9}  never synced", config.kind(), "-", "-");
        }
    }
    println!("\n{:<28} {:>8} {:>10}", "table", "version", "rows");
    for name in wh.list_tables().await? {
        if let Some(info) = wh.info(&name).await? {
            println!("{:<28} {:>8} {:>10}", info.name, info.version, info.rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(project: Arc<Project>, bind: &str) -> Result<ExitCode> {
    let wh = warehouse(&project)?;
    dealhouse_api::serve(project, wh, bind).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use dealhouse_ingest::source_config::{SourceConfig, parse_sources};

    use super::INIT_TEMPLATE;

    /// The stage ids of a Bitrix24 portal's default pipeline (crm.status.list, ENTITY_ID
    /// DEAL_STAGE, on a new portal), and the canonical stage each should land in.
    const STANDARD_STAGES: [(&str, &str); 8] = [
        ("NEW", "new"),
        ("PREPARATION", "contact"),
        ("PREPAYMENT_INVOICE", "proposal"),
        ("EXECUTING", "negotiation"),
        ("FINAL_INVOICE", "contract"),
        ("WON", "won"),
        ("LOSE", "lost"),
        ("APOLOGY", "lost"),
    ];

    /// The template with its Bitrix24 example switched on, as a user does after `init`: the
    /// commented TOML lines from `# [sources.crm]` to the next uncommented line (prose comments
    /// in between stay comments).
    fn template_with_bitrix24() -> String {
        let mut inside = false;
        let mut out = String::new();
        for line in INIT_TEMPLATE.lines() {
            inside = line == "# [sources.crm]" || (inside && line.starts_with('#'));
            let toml = line.strip_prefix("# ").filter(|l| l.starts_with('[') || l.contains(" = "));
            out.push_str(if inside { toml.unwrap_or(line) } else { line });
            out.push('\n');
        }
        out
    }

    #[test]
    fn init_template_maps_every_standard_bitrix24_stage_in_every_pipeline() {
        let text = template_with_bitrix24();
        let config = dealhouse_ingest::project::parse(&text, std::path::Path::new("/p/dealhouse.toml"))
            .unwrap_or_else(|e| panic!("the template with its Bitrix24 source on does not load: {e}\n{text}"));
        let sources = parse_sources(&config).unwrap();
        let Some(SourceConfig::Bitrix24(crm)) = sources.get("crm") else { panic!("no bitrix24 source in {text}") };
        for (id, stage) in STANDARD_STAGES {
            assert_eq!(crm.stages.get(id).map(String::as_str), Some(stage), "{id}");
            // The second pipeline's copy, prefixed with C1:.
            assert_eq!(crm.stages.get(&format!("C1:{id}")).map(String::as_str), Some(stage), "C1:{id}");
        }
    }
}
