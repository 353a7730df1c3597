//! Read-only SQL for analysts and the dashboards (`POST /api/v1/sql`), and the table list.
//!
//! A query is checked before planning ([`dealhouse_warehouse::sql_guard`]), planned in the
//! caller's scoped session, and run on a runtime of its own ([`SqlRuntime`]: dedicated worker
//! threads with large stacks, so a heavy query neither starves the server's other requests nor
//! overflows a small stack), under a concurrency limit, a time limit (the task is aborted), the
//! shared memory pool of the served sessions, and row and byte caps on the answer.
//!
//! Answers come as JSON (default; decimals as exact strings), CSV or an Arrow IPC stream, chosen
//! by the `format` field or the `Accept` header.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dealhouse_warehouse::datafusion::arrow::array::RecordBatch;
use dealhouse_warehouse::datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use dealhouse_warehouse::datafusion::arrow::datatypes::SchemaRef;
use dealhouse_warehouse::datafusion::arrow::ipc::writer::StreamWriter;
use dealhouse_warehouse::datafusion::dataframe::DataFrame;
use dealhouse_warehouse::datafusion::logical_expr::LogicalPlan;
use dealhouse_warehouse::datafusion::physical_plan::execute_stream;
use dealhouse_warehouse::deadline::with_deadline;
use dealhouse_warehouse::sql_guard::SqlLimits;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::auth::Principal;
use crate::prometheus::Metrics;
use crate::route::{JSON, Route, schema};
use crate::{ApiError, AppState, Error, ErrorCode};

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Header saying the answer was cut at the row or byte cap (CSV and Arrow answers).
pub const TRUNCATED_HEADER: &str = "x-dealhouse-truncated";

/// Longest a query waits for a free slot before the answer is 503.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Stack of each SQL worker thread: the planner and the syntax-tree walk recurse per nesting
/// level (bounded by the guard, but deeper than a default 2 MiB thread allows).
const SQL_THREAD_STACK: usize = 32 * 1024 * 1024;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: "/api/v1/tables",
            served_at: None,
            tag: "sql",
            content_type: JSON,
            request_body: None,
            summary: "Every warehouse table with its version and row count",
            description: "Canonical tables and model outputs (Delta tables).",
            params: Vec::new,
            response: || {
                schema::obj(&[(
                    "tables",
                    schema::array(schema::obj(&[
                        ("name", schema::text("Table name (query it by this name).")),
                        ("version", schema::int("Delta table version.")),
                        ("rows", schema::int("Row count.")),
                    ])),
                )])
            },
            handler: || get(tables),
        },
        Route {
            method: "post",
            path: "/api/v1/sql",
            served_at: None,
            tag: "sql",
            content_type: JSON,
            request_body: Some(|| {
                schema::obj(&[("sql", schema::text("One read-only statement (SELECT, WITH, EXPLAIN, SHOW TABLES)."))])
            }),
            summary: "Read-only SQL over every table",
            description: "Runs one read-only statement; at most 10000 rows (`truncated` says when there were more). \
                Decimals come as exact strings. DDL, DML, COPY and SET are refused with 400 `bad_sql`.",
            params: Vec::new,
            response: || {
                schema::obj(&[
                    ("columns", schema::array(schema::text("Column name."))),
                    ("rows", schema::array(json!({ "type": "object", "description": "Column name -> value." }))),
                    ("truncated", schema::boolean("True when rows were cut at 10000.")),
                ])
            },
            handler: || post(query),
        },
    ]
}

/// Limits on analyst queries (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Time from the start of planning to the last row.
    pub timeout: Duration,
    /// Most rows in one answer.
    pub max_rows: usize,
    /// Most bytes of Arrow data in one answer.
    pub max_bytes: usize,
    /// Queries running at once.
    pub max_concurrent: usize,
    /// Size and shape limits on the SQL text.
    pub guard: SqlLimits,
}

/// A tokio runtime of its own for analyst queries, and the slots they take. It is shut down without blocking when the
/// server state is dropped (dropping a runtime inside another one would panic).
pub struct SqlRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    permits: Arc<Semaphore>,
}

impl SqlRuntime {
    /// A runtime with one worker per core and `max_concurrent` query slots.
    pub fn new(max_concurrent: usize) -> crate::Result<Self> {
        // More threads than cores: a query hogging its thread (until its deadline) must not
        // keep the others from running; the OS shares the cores between them.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (max_concurrent * 2).max(cores).min(64);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("dealhouse-sql")
            .thread_stack_size(SQL_THREAD_STACK)
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the SQL runtime: {e}")))?;
        Ok(Self { runtime: Some(runtime), permits: Arc::new(Semaphore::new(max_concurrent)) })
    }
}

impl Drop for SqlRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// `POST /api/v1/sql` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One read-only statement.
    pub sql: String,
    /// `json` (default), `csv` or `arrow`; overrides the `Accept` header.
    #[serde(default)]
    pub format: Option<String>,
}

/// Answer encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{columns, rows, truncated}`, decimals as strings.
    Json,
    /// CSV with a header row.
    Csv,
    /// Arrow IPC stream.
    Arrow,
}

impl Format {
    fn choose(field: Option<&str>, headers: &HeaderMap) -> Result<Self, ApiError> {
        if let Some(f) = field {
            return match f.to_ascii_lowercase().as_str() {
                "json" => Ok(Format::Json),
                "csv" => Ok(Format::Csv),
                "arrow" => Ok(Format::Arrow),
                other => Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadFormat,
                    format!("format `{other}` is not one of json, csv, arrow"),
                )),
            };
        }
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        Ok(if accept.contains(ARROW_STREAM) {
            Format::Arrow
        } else if accept.contains("text/csv") {
            Format::Csv
        } else {
            Format::Json
        })
    }
}

/// Runs one read-only statement for the caller, within its scope and the server's limits.
async fn query(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let metrics = state.metrics_arc();
    let result = run(&state, &principal, &headers, body).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => outcome(e),
    };
    metrics.query(outcome, started.elapsed());
    if let Err(e) = &result {
        tracing::info!(token = %principal.name, code = %e.code, status = e.status().as_u16(), "SQL query not answered");
    }
    result
}

async fn run(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    body: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|r| {
        let code =
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE { ErrorCode::BodyTooLarge } else { ErrorCode::BadRequest };
        ApiError::new(r.status(), code, r.body_text())
    })?;
    let format = Format::choose(req.format.as_deref(), headers)?;
    let session = state.session_for(principal).await?;
    let guard = state.query_limits().guard;
    let plan = async move { session.plan_untrusted(&req.sql, &guard).await.map_err(ApiError::from) };
    let answer = run_limited(state, Box::pin(plan)).await?;
    encode(format, &answer.schema, &answer.batches, answer.truncated)
}

/// A query's rows, cut at the row or byte cap (`truncated` says so).
pub(crate) struct Answer {
    /// The columns.
    pub schema: SchemaRef,
    /// The rows kept.
    pub batches: Vec<RecordBatch>,
    /// Whether rows were cut.
    pub truncated: bool,
}

/// Runs an untrusted query within the server's limits, for `/api/v1/sql` and the PostgreSQL
/// protocol alike: it waits at most [`QUEUE_WAIT`] for a query slot, then `plan` (already guarded,
/// or guarding itself) is planned and run on the SQL runtime under the time limit (checked inside
/// the plan and by aborting the task), the shared memory pool and the row and byte caps.
pub(crate) async fn run_limited(
    state: &AppState,
    plan: BoxFuture<'static, Result<DataFrame, ApiError>>,
) -> Result<Answer, ApiError> {
    let limits = state.query_limits();
    let sql_runtime = state.sql_runtime();
    let permit = match tokio::time::timeout(QUEUE_WAIT, sql_runtime.permits.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Busy,
                format!("{} queries are running; retry shortly", limits.max_concurrent),
            )
            .with_header(header::RETRY_AFTER, "2"));
        }
    };
    let metrics = state.metrics_arc();
    // Checked inside the plan: aborting the task alone does not stop an operator that never
    // yields (see `dealhouse_warehouse::deadline`).
    let deadline = Instant::now() + limits.timeout;
    let Some(runtime) = sql_runtime.runtime.as_ref() else {
        return Err(Error::Config("the SQL runtime is shut down".into()).into());
    };
    let task = runtime.spawn(async move {
        // Held until the query really ends: an aborted task frees its slot when it is dropped.
        let _permit = permit;
        let _running = Running::start(metrics);
        let df = plan.await?;
        execute(df, limits, deadline).await
    });
    let abort = task.abort_handle();
    // A caller that goes away (a PostgreSQL cancel request, a closed connection) stops its query.
    let _abort_on_drop = AbortOnDrop(abort.clone());
    // A little later than the in-plan deadline, which answers with the same error itself.
    match tokio::time::timeout(limits.timeout + Duration::from_millis(500), task).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "SQL task failed");
            Err(ApiError::internal())
        }
        Err(_) => {
            abort.abort();
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::QueryTimeout,
                format!(
                    "the query ran longer than {} s and was cancelled; filter or aggregate more",
                    limits.timeout.as_secs()
                ),
            ))
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` on the SQL runtime (large stacks: planning recurses per nesting level) within the
/// query time limit, without taking a query slot: for planning a statement that is executed
/// later (the PostgreSQL protocol's Parse), which [`run_limited`] then runs in a slot.
pub(crate) async fn on_sql_runtime<T: Send + 'static>(
    state: &AppState,
    work: BoxFuture<'static, Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limits = state.query_limits();
    let Some(runtime) = state.sql_runtime().runtime.as_ref() else {
        return Err(Error::Config("the SQL runtime is shut down".into()).into());
    };
    let task = runtime.spawn(work);
    let _abort_on_drop = AbortOnDrop(task.abort_handle());
    match tokio::time::timeout(limits.timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "SQL planning task failed");
            Err(ApiError::internal())
        }
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::QueryTimeout,
            format!("planning took longer than {} s and was cancelled; simplify the query", limits.timeout.as_secs()),
        )),
    }
}

/// The `/metrics` outcome of a query's error.
pub(crate) fn outcome(e: &ApiError) -> &'static str {
    match e.code {
        ErrorCode::QueryTimeout => "timeout",
        ErrorCode::Busy => "busy",
        ErrorCode::SqlTooLarge
        | ErrorCode::SqlTooComplex
        | ErrorCode::FunctionNotAllowed
        | ErrorCode::BadSql
        | ErrorCode::BadRequest
        | ErrorCode::BadFormat
        | ErrorCode::BodyTooLarge => "refused",
        _ => "failed",
    }
}

/// Counts a running query for `/metrics` until dropped (also when the task is aborted).
struct Running(Arc<Metrics>);

impl Running {
    fn start(metrics: Arc<Metrics>) -> Self {
        metrics.queries_running(1);
        Self(metrics)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.queries_running(-1);
    }
}

/// Runs one planned query and keeps its rows up to the caps (on the SQL runtime).
async fn execute(df: DataFrame, limits: QueryLimits, deadline: Instant) -> Result<Answer, ApiError> {
    let timed_out = || {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::QueryTimeout,
            format!(
                "the query ran longer than {} s and was stopped; filter or aggregate more",
                limits.timeout.as_secs()
            ),
        )
    };
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    // EXPLAIN must stay the root of its plan; its answer is a few rows anyway.
    let df = if matches!(df.logical_plan(), LogicalPlan::Explain(_)) {
        df
    } else {
        df.limit(0, Some(limits.max_rows + 1)).map_err(Error::from)?
    };
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await.map_err(Error::from)?;
    let plan = with_deadline(plan, deadline)?;
    let mut stream = execute_stream(plan, task).map_err(Error::from)?;
    let (mut batches, mut rows, mut bytes, mut truncated) = (vec![], 0usize, 0usize, false);
    loop {
        let batch = match stream.try_next().await {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(_) if Instant::now() >= deadline => return Err(timed_out()),
            Err(e) => return Err(Error::from(e).into()),
        };
        let size = batch.get_array_memory_size();
        let mut keep = batch.num_rows().min(limits.max_rows - rows);
        if bytes + size > limits.max_bytes {
            // Rows in proportion to the room left: array sizes are per batch, not per row.
            let room = limits.max_bytes.saturating_sub(bytes);
            keep = keep.min(batch.num_rows() * room / size.max(1));
            truncated = true;
        }
        if keep < batch.num_rows() {
            truncated = true;
        }
        if keep > 0 {
            batches.push(batch.slice(0, keep));
        }
        rows += keep;
        bytes += size.min(limits.max_bytes);
        if truncated {
            break;
        }
    }
    drop(stream);
    Ok(Answer { schema, batches, truncated })
}

fn encode(format: Format, schema: &SchemaRef, batches: &[RecordBatch], truncated: bool) -> Result<Response, ApiError> {
    let wh = |e: dealhouse_warehouse::datafusion::arrow::error::ArrowError| -> ApiError {
        Error::from(dealhouse_warehouse::Error::from(e)).into()
    };
    let (content_type, body) = match format {
        Format::Json => {
            let columns: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
            let mut rows = Vec::new();
            crate::query::write_json_rows(&mut rows, batches)?;
            // Assembled around the writer's bytes: parsing them back into values would double
            // the memory of a large answer.
            let mut body = format!("{{\"columns\":{},\"rows\":", json!(columns)).into_bytes();
            body.extend_from_slice(&rows);
            body.extend_from_slice(format!(",\"truncated\":{truncated}}}").as_bytes());
            ("application/json", body)
        }
        Format::Csv => {
            let mut body = Vec::new();
            {
                let mut w = CsvWriterBuilder::new().with_header(true).build(&mut body);
                if batches.is_empty() {
                    // The header alone, so an empty answer still names its columns.
                    w.write(&RecordBatch::new_empty(schema.clone())).map_err(wh)?;
                }
                for b in batches {
                    w.write(b).map_err(wh)?;
                }
            }
            ("text/csv; charset=utf-8", body)
        }
        Format::Arrow => {
            let mut body = Vec::new();
            {
                let mut w = StreamWriter::try_new(&mut body, schema).map_err(wh)?;
                for b in batches {
                    w.write(b).map_err(wh)?;
                }
                w.finish().map_err(wh)?;
            }
            (ARROW_STREAM, body)
        }
    };
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(TRUNCATED_HEADER, HeaderValue::from_static(if truncated { "true" } else { "false" }));
    Ok(response)
}

/// `GET /api/v1/tables`: the tables the caller may read, with version and row count (the row
/// count of a scoped table is the caller's rows, not the table's).
async fn tables(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    let session = state.session_for(&principal).await?;
    let mut out = vec![];
    let wh = state.warehouse();
    for name in session.tables() {
        let Some(info) = wh.info(name).await? else { continue };
        let rows = if principal.scope.is_some() {
            let batches =
                session.context().sql(&format!("select count(*) from \"{name}\"")).await.map_err(Error::from)?;
            let batches = batches.collect().await.map_err(Error::from)?;
            batches
                .first()
                .and_then(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<dealhouse_warehouse::datafusion::arrow::array::Int64Array>()
                        .map(|a| a.value(0))
                })
                .unwrap_or(0) as u64
        } else {
            info.rows
        };
        out.push(json!({ "name": info.name, "version": info.version, "rows": rows }));
    }
    Ok(Json(json!({ "tables": out })))
}
