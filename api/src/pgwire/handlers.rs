//! Simple and extended queries (prepared statements with `$n` parameters, portals, text and
//! binary results).
//!
//! Each statement is parsed by `datafusion-pg-catalog`'s PostgreSQL compatibility parser (which
//! rewrites the catalog idioms clients send: `::regclass`, `OPERATOR(pg_catalog.~)`, ...), then:
//! - `SET`/`SHOW`/`BEGIN`/`COMMIT`/`ROLLBACK` go to `datafusion-postgres`'s hooks, which answer
//!   them per connection. Only `SET`s of client settings reach them (`DateStyle`, time zone,
//!   `application_name`, ...); `SET datafusion.*` would change the engine's limits and is
//!   refused, and any other `SET` is acknowledged and ignored (clients send many on connect);
//! - anything else that could change data is refused (25006, read-only);
//! - a query goes through [`dealhouse_warehouse::session::plan_untrusted_in`] (the SQL guard,
//!   read-only planning) in the connection's context and runs with [`crate::sql::run_limited`]:
//!   the same query slots, time limit, memory pool and caps as `/api/v1/sql`. Planning runs on
//!   the SQL runtime too (deep plans need its large stacks), at Parse for the extended protocol.

use std::sync::Arc;
use std::time::Instant;

use arrow_pg::datatypes::df::deserialize_parameters_with_server_types;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch, into_pg_type};
use async_trait::async_trait;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use dealhouse_warehouse::datafusion::arrow::datatypes::DataType;
use dealhouse_warehouse::datafusion::common::ParamValues;
use dealhouse_warehouse::datafusion::logical_expr::LogicalPlan;
use dealhouse_warehouse::datafusion::prelude::SessionContext;
use dealhouse_warehouse::datafusion::sql::sqlparser::ast::{Set, Statement};
use dealhouse_warehouse::session::plan_untrusted_in;
use dealhouse_warehouse::sql_guard::check_size;
use futures::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::TransactionStatus;
use pgwire::types::format::FormatOptions;

use super::Connection;
use super::context::ContextCache;
use super::sqlstate::{self, error};
use crate::sql::{on_sql_runtime, outcome, run_limited};
use crate::{ApiError, AppState, Error};

/// The query handlers every connection shares (their per-connection state is in the client's
/// session extensions: principal, context).
pub(super) struct Queries {
    pub(super) state: AppState,
    pub(super) parser: Arc<StatementParser>,
}

/// Parses and plans statements (Parse of the extended protocol).
pub(super) struct StatementParser {
    pub(super) state: AppState,
    pub(super) sql: PostgresCompatibilityParser,
}

/// A statement as the extended protocol keeps it between Parse and Execute.
#[derive(Clone)]
pub(super) enum Prepared {
    /// Answered by a hook (SET, SHOW, BEGIN, ...), with the plan that describes its answer.
    Hook(Box<Statement>, LogicalPlan),
    /// Acknowledged with this command tag and nothing done.
    Ignored(&'static str),
    /// A guarded read-only query in the connection's context; `$n` still unbound.
    Query { plan: LogicalPlan, ctx: SessionContext },
}

/// How a statement is answered.
enum Kind {
    Hook,
    Ignored(&'static str),
    Query,
    Refused(PgWireError),
}

/// Client settings the `SET` hook keeps per connection (the rest of its `SET`s would reach the
/// engine).
const CLIENT_SETTINGS: [&str; 7] = [
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
];

fn classify(statement: &Statement) -> Kind {
    match statement {
        Statement::Set(Set::SingleAssignment { variable, .. })
            if variable.to_string().to_ascii_lowercase().starts_with("datafusion") =>
        {
            Kind::Refused(error(
                "42501",
                format!("`{variable}` cannot be changed over this connection"),
                Some("engine settings are the server's; [server] sets the query limits"),
            ))
        }
        Statement::Set(Set::SingleAssignment { scope: None, hivevar: false, variable, .. })
            if CLIENT_SETTINGS.contains(&variable.to_string().to_ascii_lowercase().as_str()) =>
        {
            Kind::Hook
        }
        Statement::Set(Set::SetTimeZone { local: false, .. }) => Kind::Hook,
        // Clients set many things on connect (client_encoding, TRANSACTION ISOLATION, ...):
        // nothing here depends on them.
        Statement::Set(_) => Kind::Ignored("SET"),
        Statement::Discard { .. } => Kind::Ignored("DISCARD ALL"),
        Statement::Deallocate { .. } => Kind::Ignored("DEALLOCATE"),
        // Drivers wrap work in savepoints (psycopg's transaction(), SQLAlchemy): nothing to undo.
        Statement::Savepoint { .. } => Kind::Ignored("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Kind::Ignored("RELEASE"),
        Statement::Rollback { savepoint: Some(_), .. } => Kind::Ignored("ROLLBACK"),
        Statement::ShowVariable { .. } | Statement::ShowStatus { .. } | Statement::ShowCatalogs { .. } => Kind::Hook,
        Statement::StartTransaction { .. } | Statement::Commit { .. } | Statement::Rollback { .. } => Kind::Hook,
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ExplainTable { .. } => Kind::Query,
        other => Kind::Refused(sqlstate::read_only(&other.to_string())),
    }
}

fn hooks() -> [Arc<dyn QueryHook>; 2] {
    [Arc::new(SetShowHook), Arc::new(TransactionStatementHook)]
}

/// The connection's context (its principal's session with `pg_catalog`).
async fn context<C: ClientInfo + ?Sized>(state: &AppState, client: &C) -> PgWireResult<SessionContext> {
    let Some(connection) = client.session_extensions().get::<Connection>() else {
        return Err(error("28000", "not logged in", None));
    };
    let cache = client.session_extensions().get_or_insert_with(ContextCache::default);
    cache.get(state, &connection.principal).await.map_err(sqlstate::of_run)
}

/// Guards and plans `sql` in `ctx`, on the SQL runtime.
async fn plan(state: &AppState, ctx: SessionContext, sql: String) -> PgWireResult<LogicalPlan> {
    let guard = state.query_limits().guard;
    let work = async move { Ok::<_, ApiError>(plan_untrusted_in(&ctx, &sql, &guard).await) };
    on_sql_runtime(state, Box::pin(work)).await.map_err(sqlstate::of_run)?.map_err(sqlstate::of_planning)
}

fn syntax(e: impl std::fmt::Display) -> PgWireError {
    error("42601", format!("SQL syntax error: {e}"), None)
}

fn aborted() -> PgWireError {
    error(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
        Some("send ROLLBACK"),
    )
}

impl StatementParser {
    /// Parses in the PostgreSQL dialect, after the guard's size check: the parser and the
    /// rewrites recurse over the syntax tree, which the check keeps small.
    fn parse(&self, sql: &str) -> PgWireResult<Vec<Statement>> {
        check_size(sql, &self.state.query_limits().guard).map_err(|r| sqlstate::of_planning(r.into()))?;
        self.sql.parse(sql).map_err(syntax)
    }
}

impl Queries {
    /// Runs a planned query within the server's limits and encodes its rows in `format`.
    async fn execute<C: ClientInfo>(
        &self,
        client: &C,
        ctx: SessionContext,
        plan: LogicalPlan,
        format: &Format,
    ) -> PgWireResult<Response> {
        let started = Instant::now();
        let work = async move { ctx.execute_logical_plan(plan).await.map_err(|e| ApiError::from(Error::from(e))) };
        let result = run_limited(&self.state, Box::pin(work)).await;
        self.state.metrics().query(result.as_ref().map_or_else(outcome, |_| "ok"), started.elapsed());
        let answer = result.map_err(sqlstate::of_run)?;
        if answer.truncated {
            let limits = self.state.query_limits();
            return Err(sqlstate::too_large(limits.max_rows, limits.max_bytes >> 20));
        }
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let fields = Arc::new(arrow_schema_to_pg_fields(&answer.schema, format, Some(options))?);
        // Encoded here, not as the client reads: the answer is already within the caps.
        let mut rows = vec![];
        for batch in answer.batches {
            rows.extend(encode_recordbatch(fields.clone(), batch));
        }
        Ok(Response::Query(QueryResponse::new(fields, futures::stream::iter(rows))))
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = self.parser.parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = vec![];
        for statement in statements {
            let response = match classify(&statement) {
                Kind::Refused(e) => return Err(e),
                Kind::Ignored(tag) => Response::Execution(Tag::new(tag)),
                Kind::Hook => {
                    let ctx = context(&self.state, &*client).await?;
                    let mut answer = None;
                    for hook in hooks() {
                        if let Some(r) = hook.handle_simple_query(&statement, &ctx, client).await {
                            answer = Some(r?);
                            break;
                        }
                    }
                    answer.ok_or_else(|| error("XX000", format!("no answer for {statement}"), None))?
                }
                Kind::Query => {
                    if client.transaction_status() == TransactionStatus::Error {
                        return Err(aborted());
                    }
                    let ctx = context(&self.state, &*client).await?;
                    let planned = plan(&self.state, ctx.clone(), statement.to_string()).await?;
                    self.execute(&*client, ctx, planned, &Format::UnifiedText).await?
                }
            };
            responses.push(response);
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Prepared>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match &portal.statement.statement {
            Prepared::Ignored(tag) => Ok(Response::Execution(Tag::new(tag))),
            Prepared::Hook(statement, described) => {
                let ctx = context(&self.state, &*client).await?;
                let none = ParamValues::List(vec![]);
                for hook in hooks() {
                    if let Some(r) = hook.handle_extended_query(statement, described, &none, &ctx, client).await {
                        return r;
                    }
                }
                Err(error("XX000", format!("no answer for {statement}"), None))
            }
            Prepared::Query { plan, ctx } => {
                if client.transaction_status() == TransactionStatus::Error {
                    return Err(aborted());
                }
                let values = parameters(portal, plan)?;
                let bound =
                    plan.clone().replace_params_with_values(&values).map_err(|e| sqlstate::of_planning(e.into()))?;
                self.execute(&*client, ctx.clone(), bound, &portal.result_column_format).await
            }
        }
    }
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = self.parse(sql)?;
        if statements.is_empty() {
            return Ok(None);
        }
        if statements.len() > 1 {
            return Err(error(
                "42601",
                format!("a prepared statement holds one statement; this one has {}", statements.len()),
                Some("send the statements one by one"),
            ));
        }
        let statement = statements.remove(0);
        match classify(&statement) {
            Kind::Refused(e) => Err(e),
            Kind::Ignored(tag) => Ok(Some(Prepared::Ignored(tag))),
            Kind::Hook => {
                let ctx = context(&self.state, &*client).await?;
                for hook in hooks() {
                    if let Some(described) = hook.handle_extended_parse_query(&statement, &ctx, client).await {
                        return Ok(Some(Prepared::Hook(Box::new(statement), described?)));
                    }
                }
                Err(error("XX000", format!("no answer for {statement}"), None))
            }
            Kind::Query => {
                let ctx = context(&self.state, &*client).await?;
                let planned = plan(&self.state, ctx.clone(), statement.to_string()).await?;
                Ok(Some(Prepared::Query { plan: planned, ctx }))
            }
        }
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        match stmt {
            Prepared::Query { plan, .. } => {
                parameter_types(plan)?.iter().map(|t| t.as_ref().map_or(Ok(Type::UNKNOWN), into_pg_type)).collect()
            }
            _ => Ok(vec![]),
        }
    }

    fn get_result_schema(&self, stmt: &Prepared, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let plan = match stmt {
            Prepared::Query { plan, .. } | Prepared::Hook(_, plan) => plan,
            Prepared::Ignored(_) => return Ok(vec![]),
        };
        arrow_schema_to_pg_fields(plan.schema().as_arrow(), format.unwrap_or(&Format::UnifiedText), None)
    }
}

/// The types DataFusion infers for `$1`, `$2`, ... in order (`None` where it cannot tell).
fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let types = plan.get_parameter_types().map_err(|e| sqlstate::of_planning(e.into()))?;
    let mut types: Vec<_> = types.into_iter().collect();
    types.sort_by_key(|(id, _)| id.trim_start_matches('$').parse::<u32>().unwrap_or(u32::MAX));
    Ok(types.into_iter().map(|(_, t)| t).collect())
}

/// The portal's bound values, decoded (text or binary) as the types the server described.
fn parameters(portal: &Portal<Prepared>, plan: &LogicalPlan) -> PgWireResult<ParamValues> {
    let types = parameter_types(plan)?;
    let wire: Vec<Type> =
        types.iter().map(|t| t.as_ref().map_or(Ok(Type::UNKNOWN), into_pg_type)).collect::<PgWireResult<_>>()?;
    let inferred: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
    let wire: Vec<Option<&Type>> = wire.iter().map(Some).collect();
    deserialize_parameters_with_server_types(portal, &inferred, &wire)
}
