//! The organisation from `dealhouse.toml` (holdings, branches with their time zones) and the
//! reporting currency, written like any other source under `source_system = "config"`.

use dealhouse_warehouse::schema::{Branch, CanonicalRow, Holding, ReportingCurrency};
use dealhouse_warehouse::{CommitMeta, ProjectConfig, Warehouse, WriteStats};

use crate::Result;

/// `source_system` of records that come from the project file.
pub const CONFIG_SOURCE: &str = "config";

/// Holdings as canonical rows.
pub fn holdings(config: &ProjectConfig) -> Vec<Holding> {
    config
        .organisation
        .holdings
        .iter()
        .map(|h| Holding {
            holding_id: h.id.clone(),
            name: h.name.clone(),
            source_system: CONFIG_SOURCE.into(),
            source_id: h.id.clone(),
        })
        .collect()
}

/// Branches as canonical rows.
pub fn branches(config: &ProjectConfig) -> Vec<Branch> {
    config
        .organisation
        .branches
        .iter()
        .map(|b| b.get_ref())
        .map(|b| Branch {
            branch_id: b.id.clone(),
            holding_id: b.holding.clone(),
            name: b.name.clone(),
            city: b.city.clone(),
            time_zone: b.time_zone.clone(),
            crm_switch_date: b.crm_switch_date,
            source_system: CONFIG_SOURCE.into(),
            source_id: b.id.clone(),
        })
        .collect()
}

/// The `[reporting] currency` as the one row of `reporting_currency` (a changed currency
/// replaces it: one key).
pub fn reporting_currency(config: &ProjectConfig) -> ReportingCurrency {
    ReportingCurrency {
        currency: config.reporting.currency.clone(),
        source_system: CONFIG_SOURCE.into(),
        source_id: "reporting".into(),
    }
}

/// Writes holdings, branches and the reporting currency; unchanged rows are left alone.
pub async fn sync_org(config: &ProjectConfig, warehouse: &Warehouse) -> Result<(WriteStats, WriteStats)> {
    let meta = CommitMeta { operation: "sync".into(), source: CONFIG_SOURCE.into(), cursor: None };
    let h = warehouse.upsert(&Holding::table_def(), vec![Holding::to_batch(&holdings(config))?], &meta).await?;
    let b = warehouse.upsert(&Branch::table_def(), vec![Branch::to_batch(&branches(config))?], &meta).await?;
    let currency = vec![ReportingCurrency::to_batch(&[reporting_currency(config)])?];
    warehouse.upsert(&ReportingCurrency::table_def(), currency, &meta).await?;
    Ok((h, b))
}
