//! The query session: every table in the warehouse (canonical tables and model outputs) under
//! its plain name, and read-only SQL over them.
//!
//! Sessions that serve the API share one bounded [`RuntimeEnv`] ([`served_runtime`]: a memory
//! pool all their queries draw from), and a principal limited to some branches gets a
//! [`QuerySession::scoped`] copy in which each table is replaced by its scoped provider
//! (see [`crate::scope`]) and tables it may not read do not exist.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::as_of::{ReadAt, TableAt};
use crate::scope::Scope;
use crate::sql_guard::SqlLimits;
use crate::{Error, Result, Warehouse};

/// Largest SQL text accepted, before parsing: crafted inputs can exhaust the planner's stack.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// A DataFusion session with the warehouse's tables registered.
#[derive(Clone)]
pub struct QuerySession {
    ctx: SessionContext,
    tables: Vec<String>,
    /// The Delta version each table was opened at (a registered table reads that snapshot).
    versions: BTreeMap<String, i64>,
}

impl QuerySession {
    /// A session over every table currently in the warehouse.
    pub async fn open(warehouse: &Warehouse) -> Result<Self> {
        Self::open_in(warehouse, new_context()).await
    }

    /// A session over every table, whose queries run in `runtime` (see [`served_runtime`]).
    pub async fn open_served(warehouse: &Warehouse, runtime: Arc<RuntimeEnv>) -> Result<Self> {
        Self::open_in(warehouse, context_with(Some(runtime))).await
    }

    async fn open_in(warehouse: &Warehouse, ctx: SessionContext) -> Result<Self> {
        let mut tables = vec![];
        let mut versions = BTreeMap::new();
        for name in warehouse.list_tables().await? {
            if let Some((provider, version)) = warehouse.pinned_provider(&name).await? {
                ctx.register_table(name.as_str(), provider)?;
                versions.insert(name.clone(), version);
                tables.push(name);
            }
        }
        Ok(Self { ctx, tables, versions })
    }

    /// A session over `tables`, each read at its own point (see [`crate::as_of`]), and the
    /// versions they resolved to, in the order given; a table never written is left out. Plans
    /// run in one partition, so aggregates over floats add in one order and the same versions
    /// give bit-identical answers.
    pub async fn open_at(warehouse: &Warehouse, tables: &[(&str, TableAt)]) -> Result<(Self, Vec<ReadAt>)> {
        let ctx = context_with(None);
        ctx.state_ref().write().config_mut().options_mut().execution.target_partitions = 1;
        let mut names = vec![];
        let mut reads = vec![];
        let mut versions = BTreeMap::new();
        for (name, at) in tables {
            if let Some((provider, read)) = warehouse.provider_at(name, *at).await? {
                ctx.register_table(*name, provider)?;
                names.push(name.to_string());
                versions.insert(name.to_string(), read.version);
                reads.push(read);
            }
        }
        names.sort();
        Ok((Self { ctx, tables: names, versions }, reads))
    }

    /// The underlying DataFusion context (for the model runner).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Registered table names.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The Delta version the session reads of `table` (`None` for a table registered by hand
    /// or absent): what a build records as read.
    pub fn version_of(&self, table: &str) -> Option<i64> {
        self.versions.get(table).copied()
    }

    /// Registers (or replaces) a table.
    pub fn register(&mut self, name: &str, provider: Arc<dyn datafusion::catalog::TableProvider>) -> Result<()> {
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, provider)?;
        self.versions.remove(name);
        if !self.tables.iter().any(|t| t == name) {
            self.tables.push(name.to_string());
            self.tables.sort();
        }
        Ok(())
    }

    /// The same tables as `scope` may see them: hidden tables are absent (from
    /// `information_schema` too), the others filter their rows at the scan. Queries share this
    /// session's runtime (memory pool).
    pub async fn scoped(&self, scope: &Scope) -> Result<QuerySession> {
        let mut raw: BTreeMap<String, Arc<dyn TableProvider>> = BTreeMap::new();
        for name in &self.tables {
            if let Ok(p) = self.ctx.table_provider(name.as_str()).await {
                raw.insert(name.clone(), p);
            }
        }
        let ctx = context_with(Some(self.ctx.runtime_env()));
        let mut tables = vec![];
        for (name, provider) in crate::scope::scoped_tables(scope, &raw)? {
            ctx.register_table(name.as_str(), provider)?;
            tables.push(name);
        }
        let versions = self.versions.iter().filter(|(t, _)| tables.contains(t)).map(|(t, v)| (t.clone(), *v)).collect();
        Ok(Self { ctx, tables, versions })
    }

    /// Plans one statement from an untrusted caller: checked by [`crate::sql_guard`] first
    /// (size, shape, functions), then planned with DDL, DML and statements disabled.
    pub async fn plan_untrusted(&self, sql: &str, limits: &SqlLimits) -> Result<datafusion::dataframe::DataFrame> {
        let plan = plan_untrusted_in(&self.ctx, sql, limits).await?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// Runs one read-only statement (SELECT / WITH / VALUES / EXPLAIN / SHOW) and collects it.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.plan_read_only(sql).await?;
        Ok(df.collect().await?)
    }

    /// Plans one read-only statement; anything else is refused with the reason.
    pub async fn plan_read_only(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        check_read_only(sql)?;
        Ok(self.ctx.sql_with_options(sql, read_only_options()).await?)
    }
}

/// [`QuerySession::plan_untrusted`] in a context derived from a session: the PostgreSQL
/// protocol's per-connection context, which adds the `pg_catalog` emulation to a session's
/// tables. The same guard and read-only check; the plan may hold `$n` placeholders.
pub async fn plan_untrusted_in(ctx: &SessionContext, sql: &str, limits: &SqlLimits) -> Result<LogicalPlan> {
    let statement = crate::sql_guard::check_untrusted(sql, limits)?;
    let plan = ctx.state().statement_to_plan(statement).await?;
    read_only_options().verify_plan(&plan)?;
    Ok(plan)
}

fn read_only_options() -> datafusion::execution::context::SQLOptions {
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A context with the settings every dealhouse session uses.
pub fn new_context() -> SessionContext {
    context_with(None)
}

/// The runtime API sessions share: `memory_bytes` for all their queries together, shared fairly
/// between the operators that can spill; a refusal names the largest consumers.
pub fn served_runtime(memory_bytes: usize) -> Result<Arc<RuntimeEnv>> {
    let pool = FairSpillPool::new(memory_bytes);
    let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    Ok(RuntimeEnvBuilder::new().with_memory_pool(Arc::new(TrackConsumersPool::new(pool, top))).build_arc()?)
}

fn context_with(runtime: Option<Arc<RuntimeEnv>>) -> SessionContext {
    let config =
        SessionConfig::new().with_information_schema(true).with_default_catalog_and_schema("dealhouse", "public");
    let mut builder = SessionStateBuilder::new().with_config(config).with_default_features();
    if let Some(runtime) = runtime {
        builder = builder.with_runtime_env(runtime);
    }
    crate::udf::with_udfs(SessionContext::new_with_state(builder.build()))
}

/// Refuses anything that is not exactly one query, before DataFusion plans it.
pub fn check_read_only(sql: &str) -> Result<()> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::SqlTooLarge { bytes: sql.len(), limit: MAX_SQL_BYTES });
    }
    let statements =
        DFParser::parse_sql_with_dialect(sql, &GenericDialect {}).map_err(|source| Error::SqlSyntax { source })?;
    if statements.len() != 1 {
        return Err(Error::NotOneStatement { count: statements.len() });
    }
    match &statements[0] {
        DfStatement::Statement(s) if crate::sql_guard::is_read_only(s) => Ok(()),
        DfStatement::Explain(_) => Ok(()),
        other => Err(Error::NotReadOnly { statement: first_words(&other.to_string()) }),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;

    /// deals: (msk, 1), (spb, 20), (null, 300); quarantine: one raw row.
    async fn two_branch_session() -> QuerySession {
        let ctx = new_context();
        let schema = Arc::new(Schema::new(vec![
            Field::new("branch_id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("msk"), Some("spb"), None])),
                Arc::new(Int64Array::from(vec![1, 20, 300])),
            ],
        )
        .unwrap();
        for name in ["deals", "quarantine"] {
            let table = MemTable::try_new(schema.clone(), vec![vec![batch.clone()]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        QuerySession { ctx, tables: vec!["deals".into(), "quarantine".into()], versions: BTreeMap::new() }
    }

    fn org() -> crate::ProjectConfig {
        let text = "[[organisation.holdings]]\nid = \"h\"\nname = \"H\"\n\
                    [[organisation.branches]]\nid = \"msk\"\nholding = \"h\"\nname = \"M\"\ncity = \"M\"\ntime_zone = \"UTC\"\n\
                    [[organisation.branches]]\nid = \"spb\"\nholding = \"h\"\nname = \"S\"\ncity = \"S\"\ntime_zone = \"UTC\"\n";
        crate::ProjectConfig::parse(text, std::path::Path::new("/p/dealhouse.toml")).unwrap()
    }

    async fn text(session: &QuerySession, sql: &str) -> Result<String> {
        let batches = session.plan_untrusted(sql, &SqlLimits::default()).await?.collect().await?;
        Ok(pretty_format_batches(&batches)?.to_string())
    }

    #[tokio::test]
    async fn scoped_session_filters_below_the_callers_expressions() {
        let all = two_branch_session().await;
        let scope = Scope::for_branches(&org(), &["msk".into()]).unwrap();
        let msk = all.scoped(&scope).await.unwrap();
        assert_eq!(msk.tables(), ["deals"]);
        // 1 is msk's only row; 321 would include spb and the row without a branch.
        assert!(text(&msk, "select sum(n) as s from deals").await.unwrap().contains("| 1 |"));
        assert!(text(&all, "select sum(n) as s from deals").await.unwrap().contains("| 321 |"));
        // Divides by zero on spb's row only: the scope runs first, so msk never meets it.
        let divide = "select count(*) as c from deals where 10 / (case when branch_id = 'spb' then 0 else 1 end) > 0";
        assert!(text(&msk, divide).await.unwrap().contains("| 1 |"));
        assert!(text(&all, divide).await.is_err(), "unscoped, the same query meets spb's row");
        let e = text(&msk, "select cast(branch_id as int) from deals").await.unwrap_err().to_string();
        assert!(e.contains("msk") && !e.contains("spb"), "{e}");
        let e = text(&msk, "select * from quarantine").await.unwrap_err().to_string();
        assert!(e.contains("quarantine") && e.contains("not found"), "{e}");
        let listed =
            text(&msk, "select table_name from information_schema.tables where table_schema = 'public'").await.unwrap();
        assert!(listed.contains("deals") && !listed.contains("quarantine"), "{listed}");
    }

    #[test]
    fn refuses_everything_but_one_query() {
        assert!(check_read_only("select 1").is_ok());
        assert!(check_read_only("with a as (select 1) select * from a").is_ok());
        for bad in [
            "drop table deals",
            "insert into deals values (1)",
            "create external table x stored as csv location '/etc/passwd'",
            "copy deals to '/tmp/x.csv'",
            "set datafusion.execution.batch_size = 1",
            "select 1; select 2",
        ] {
            assert!(check_read_only(bad).is_err(), "{bad} should be refused");
        }
    }
}
