//! The server's shared state: the project, its warehouse and tokens, the query sessions (the
//! unscoped one and the scoped ones derived from it), the SQL runtime and the metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dealhouse_warehouse::scope::Scope;
use dealhouse_warehouse::session::{QuerySession, served_runtime};
use dealhouse_warehouse::sql_guard::SqlLimits;
use dealhouse_warehouse::{Project, Warehouse};
use tokio::sync::{Mutex, RwLock};

use crate::auth::{self, Principal};
use crate::sql::{self, QueryLimits};
use crate::{Result, prometheus};

/// How long a query session (the set of table snapshots) is reused before re-reading the tables.
const SESSION_TTL: Duration = Duration::from_secs(30);

/// Shared server state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    project: Arc<Project>,
    warehouse: Warehouse,
    tokens: auth::Tokens,
    /// The unscoped session and when it was opened (the scoped ones are derived from it).
    session: RwLock<(Instant, QuerySession)>,
    /// Scoped sessions by scope, with the opening time of the session they were derived from.
    scoped: Mutex<HashMap<Scope, (Instant, QuerySession)>>,
    runtime: Arc<dealhouse_warehouse::datafusion::execution::runtime_env::RuntimeEnv>,
    sql_runtime: sql::SqlRuntime,
    limits: QueryLimits,
    metrics: Arc<prometheus::Metrics>,
    table_metrics: Mutex<Option<(Instant, String)>>,
}

impl AppState {
    /// State over a project's warehouse: its tokens and `[server]` query limits.
    pub async fn new(project: Arc<Project>, warehouse: Warehouse) -> Result<Self> {
        let tokens = auth::Tokens::load(&project)?;
        let server = &project.config.server;
        let limits = QueryLimits {
            timeout: Duration::from_secs(server.query_timeout_seconds),
            max_rows: server.max_result_rows,
            max_bytes: usize::try_from(server.max_result_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            max_concurrent: server.max_concurrent_queries,
            guard: SqlLimits::default(),
        };
        let memory = usize::try_from(server.query_memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let runtime = served_runtime(memory)?;
        let session = QuerySession::open_served(&warehouse, runtime.clone()).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                project,
                warehouse,
                tokens,
                session: RwLock::new((Instant::now(), session)),
                scoped: Mutex::new(HashMap::new()),
                runtime,
                sql_runtime: sql::SqlRuntime::new(limits.max_concurrent)?,
                limits,
                metrics: Arc::new(prometheus::Metrics::default()),
                table_metrics: Mutex::new(None),
            }),
        })
    }

    /// The session `principal` may query: every table for admin and analyst; for a branch or
    /// holding token only the tables it may read, each filtered to its branches inside the plan.
    /// Every data endpoint must read through this.
    pub async fn session_for(&self, principal: &Principal) -> Result<QuerySession> {
        let (opened, base) = self.base_session().await?;
        let Some(scope) = principal.scope.as_deref() else { return Ok(base) };
        {
            let cache = self.inner.scoped.lock().await;
            if let Some((from, s)) = cache.get(scope)
                && *from == opened
            {
                return Ok(s.clone());
            }
        }
        let scoped = base.scoped(scope).await?;
        let mut cache = self.inner.scoped.lock().await;
        cache.retain(|_, (from, _)| *from == opened);
        cache.insert(scope.clone(), (opened, scoped.clone()));
        Ok(scoped)
    }

    /// The unscoped session (every table, every branch).
    #[deprecated(note = "unscoped: take a `Principal` and use `session_for(&principal)`")]
    pub async fn session(&self) -> Result<QuerySession> {
        Ok(self.base_session().await?.1)
    }

    /// The unscoped session no older than [`SESSION_TTL`], and when it was opened.
    async fn base_session(&self) -> Result<(Instant, QuerySession)> {
        {
            let guard = self.inner.session.read().await;
            if guard.0.elapsed() < SESSION_TTL {
                return Ok((guard.0, guard.1.clone()));
            }
        }
        let mut guard = self.inner.session.write().await;
        // Another request may have refreshed it while this one waited for the lock.
        if guard.0.elapsed() >= SESSION_TTL {
            let fresh = QuerySession::open_served(&self.inner.warehouse, self.inner.runtime.clone()).await?;
            *guard = (Instant::now(), fresh);
        }
        Ok((guard.0, guard.1.clone()))
    }

    /// The project being served.
    pub(crate) fn project(&self) -> &Arc<Project> {
        &self.inner.project
    }

    /// The warehouse.
    pub fn warehouse(&self) -> &Warehouse {
        &self.inner.warehouse
    }

    /// The configured tokens.
    pub(crate) fn tokens(&self) -> &auth::Tokens {
        &self.inner.tokens
    }

    /// Limits on analyst queries.
    pub fn query_limits(&self) -> QueryLimits {
        self.inner.limits
    }

    pub(crate) fn sql_runtime(&self) -> &sql::SqlRuntime {
        &self.inner.sql_runtime
    }

    pub(crate) fn metrics(&self) -> &prometheus::Metrics {
        &self.inner.metrics
    }

    pub(crate) fn metrics_arc(&self) -> Arc<prometheus::Metrics> {
        self.inner.metrics.clone()
    }

    pub(crate) fn table_metrics_cache(&self) -> &Mutex<Option<(Instant, String)>> {
        &self.inner.table_metrics
    }

    /// Whether the server runs without tokens (everyone is the local admin).
    pub fn is_open(&self) -> bool {
        self.inner.tokens.is_open()
    }
}
