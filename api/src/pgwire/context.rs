//! Each connection's DataFusion context: its principal's session ([`AppState::session_for`]:
//! the unscoped one, or a scoped one that holds only the tables the scope may read, each
//! filtered) plus `datafusion-pg-catalog`'s `pg_catalog` schema and functions.
//!
//! `pg_catalog` lists the tables of the catalog it is installed in, so a branch login's `\dt`
//! (and DBeaver's or Metabase's browsing) shows only its own tables. The context is a new one
//! over the same table providers and runtime (memory pool): the session itself is shared with
//! HTTP and other connections and never gains `pg_catalog`, and what a client `SET`s stays in its
//! connection. It is rebuilt when the principal's session is (every 30 s at most, so new
//! builds show).

use std::sync::Arc;

use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use dealhouse_warehouse::datafusion::arrow::datatypes::DataType;
use dealhouse_warehouse::datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList};
use dealhouse_warehouse::datafusion::common::ScalarValue;
use dealhouse_warehouse::datafusion::execution::SessionStateBuilder;
use dealhouse_warehouse::datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use dealhouse_warehouse::datafusion::prelude::SessionContext;
use tokio::sync::Mutex;

use crate::auth::Principal;
use crate::{ApiError, AppState, Error};

/// The catalog (PostgreSQL database) every table is in; clients connect to `dealhouse`.
pub(super) const DATABASE: &str = "dealhouse";

/// A connection's context and the session it was built from.
#[derive(Default)]
pub(super) struct ContextCache(Mutex<Option<(String, SessionContext)>>);

impl ContextCache {
    /// The context of `principal`'s current session, built again when the session was renewed.
    pub(super) async fn get(&self, state: &AppState, principal: &Principal) -> Result<SessionContext, ApiError> {
        let session = state.session_for(principal).await?;
        let id = session.context().session_id();
        let mut cached = self.0.lock().await;
        if let Some((from, ctx)) = cached.as_ref()
            && *from == id
        {
            return Ok(ctx.clone());
        }
        let ctx = with_pg_catalog(session.context())?;
        *cached = Some((id, ctx.clone()));
        Ok(ctx)
    }
}

/// A new context over `base`'s tables, functions and runtime, with `pg_catalog` installed.
fn with_pg_catalog(base: &SessionContext) -> Result<SessionContext, ApiError> {
    let setup = |e: String| -> ApiError { Error::Config(format!("pg_catalog setup: {e}")).into() };
    // A catalog list of its own: installing pg_catalog must not touch the shared session's.
    let state = SessionStateBuilder::new_from_existing(base.state())
        .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
        .build();
    let ctx = SessionContext::new_with_state(state);
    let catalog = MemoryCatalogProvider::new();
    if let Some(public) = base.catalog(DATABASE).and_then(|c| c.schema("public")) {
        catalog.register_schema("public", public).map_err(|e| setup(e.to_string()))?;
    }
    ctx.register_catalog(DATABASE, Arc::new(catalog));
    datafusion_pg_catalog::setup_pg_catalog(&ctx, DATABASE, EmptyContextProvider).map_err(|e| setup(e.to_string()))?;
    ctx.register_udf(version_udf());
    ctx.register_udf(to_regtype_udf());
    Ok(ctx)
}

/// `version()` as PostgreSQL words it: SQLAlchemy and Metabase read the version from it.
fn version_udf() -> dealhouse_warehouse::datafusion::logical_expr::ScalarUDF {
    let text =
        format!("PostgreSQL 16.6 (dealhouse {}, Apache DataFusion, read-only), 64-bit", env!("CARGO_PKG_VERSION"));
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// `to_regtype(name)`: NULL, "no such type". Drivers call it on connect to look for extension
/// types (psycopg and SQLAlchemy ask for `hstore`); the warehouse defines no type of its own, and
/// the built-in ones have fixed OIDs the drivers already know.
fn to_regtype_udf() -> dealhouse_warehouse::datafusion::logical_expr::ScalarUDF {
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Int32(None)))),
    )
}
