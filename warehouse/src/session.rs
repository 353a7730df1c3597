//! The query session: every table in the warehouse (canonical tables and model outputs) under
//! its plain name, and read-only SQL over them.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::{Error, Result, Warehouse};

/// Largest SQL text accepted, before parsing: crafted inputs can exhaust the planner's stack.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// A DataFusion session with the warehouse's tables registered.
#[derive(Clone)]
pub struct QuerySession {
    ctx: SessionContext,
    tables: Vec<String>,
}

impl QuerySession {
    /// A session over every table currently in the warehouse.
    pub async fn open(warehouse: &Warehouse) -> Result<Self> {
        let ctx = new_context();
        let mut tables = vec![];
        for name in warehouse.list_tables().await? {
            if let Some(provider) = warehouse.provider(&name).await? {
                ctx.register_table(name.as_str(), provider)?;
                tables.push(name);
            }
        }
        Ok(Self { ctx, tables })
    }

    /// The underlying DataFusion context (for the model runner).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Registered table names.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Registers (or replaces) a table.
    pub fn register(&mut self, name: &str, provider: Arc<dyn datafusion::catalog::TableProvider>) -> Result<()> {
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, provider)?;
        if !self.tables.iter().any(|t| t == name) {
            self.tables.push(name.to_string());
            self.tables.sort();
        }
        Ok(())
    }

    /// Runs one read-only statement (SELECT / WITH / VALUES / EXPLAIN / SHOW) and collects it.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.plan_read_only(sql).await?;
        Ok(df.collect().await?)
    }

    /// Plans one read-only statement; anything else is refused with the reason.
    pub async fn plan_read_only(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        check_read_only(sql)?;
        let options = datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        Ok(self.ctx.sql_with_options(sql, options).await?)
    }
}

/// A context with the settings every dealhouse session uses.
pub fn new_context() -> SessionContext {
    let config =
        SessionConfig::new().with_information_schema(true).with_default_catalog_and_schema("dealhouse", "public");
    let state = SessionStateBuilder::new().with_config(config).with_default_features().build();
    crate::udf::with_udfs(SessionContext::new_with_state(state))
}

/// Refuses anything that is not exactly one query, before DataFusion plans it.
pub fn check_read_only(sql: &str) -> Result<()> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::Sql(format!("query is {} bytes; the limit is {MAX_SQL_BYTES}", sql.len())));
    }
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
        .map_err(|e| Error::Sql(format!("SQL syntax error: {e}")))?;
    if statements.len() != 1 {
        return Err(Error::Sql(format!("expected exactly one statement, got {}", statements.len())));
    }
    match &statements[0] {
        DfStatement::Statement(s) if matches!(**s, Statement::Query(_)) => Ok(()),
        DfStatement::Explain(_) => Ok(()),
        DfStatement::Statement(s) if matches!(**s, Statement::ShowTables { .. } | Statement::ShowColumns { .. }) => {
            Ok(())
        }
        other => Err(Error::Sql(format!(
            "only read-only queries (SELECT, WITH, EXPLAIN, SHOW TABLES) are allowed; refused: {}",
            first_words(&other.to_string())
        ))),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
