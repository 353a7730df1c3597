//! Row-level scoping for principals that may see only some branches (branch and holding API
//! tokens): which tables such a principal sees at all, and the table providers that filter rows
//! inside the query plan.
//!
//! A scoped session registers, under each visible table's name, a [`ScopedTable`] whose scan is
//! the underlying table's scan filtered to the principal's branches (or semi-joined to a scoped
//! parent table), planned on its own and sealed in a [`ScopeBarrierExec`] leaf. The user's SQL
//! can only ever reference these providers, and nothing the user writes is evaluated inside the
//! barrier: DataFusion pushes neither filters, projections nor limits into a leaf, so an
//! expression that fails (a cast, a division) only ever sees rows the principal may read and its
//! error cannot carry another branch's values. The providers report no statistics, so
//! `count(*)`, `min` and `max` cannot be answered from whole-table metadata either.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, DataFusionError};
use datafusion::datasource::provider_as_source;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder, TableType, col, lit};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties, SendableRecordBatchStream,
};

use crate::config::ProjectConfig;
use crate::{Error, Result};

/// The branches a principal may see, and the holdings that follow from them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    branches: BTreeSet<String>,
    /// Holdings with at least one visible branch (their names may be shown).
    any_holdings: BTreeSet<String>,
}

impl Scope {
    /// The scope of a `branch` token: exactly these branches.
    pub fn for_branches(config: &ProjectConfig, branches: &[String]) -> Result<Self> {
        Self::build(config, branches.iter().cloned().collect(), &BTreeSet::new())
    }

    /// The scope of a `holding` token: every branch of these holdings.
    pub fn for_holdings(config: &ProjectConfig, holdings: &[String]) -> Result<Self> {
        let holdings: BTreeSet<String> = holdings.iter().cloned().collect();
        for h in &holdings {
            if !config.organisation.holdings.iter().any(|k| &k.id == h) {
                return Err(Error::UnknownScope { kind: "holding", id: h.to_string() });
            }
        }
        let branches = config
            .organisation
            .branches
            .iter()
            .map(|b| b.get_ref())
            .filter(|b| holdings.contains(&b.holding))
            .map(|b| b.id.clone())
            .collect();
        Self::build(config, branches, &holdings)
    }

    fn build(config: &ProjectConfig, branches: BTreeSet<String>, holdings: &BTreeSet<String>) -> Result<Self> {
        let holding_of: BTreeMap<&str, &str> = config
            .organisation
            .branches
            .iter()
            .map(|b| (b.get_ref().id.as_str(), b.get_ref().holding.as_str()))
            .collect();
        let mut any_holdings: BTreeSet<String> = holdings.clone();
        for b in &branches {
            let Some(h) = holding_of.get(b.as_str()) else {
                return Err(Error::UnknownScope { kind: "branch", id: b.to_string() });
            };
            any_holdings.insert((*h).to_string());
        }
        Ok(Self { branches, any_holdings })
    }

    /// The visible branch ids.
    pub fn branches(&self) -> &BTreeSet<String> {
        &self.branches
    }
}

/// How a table is served to a scoped principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TablePolicy {
    /// Reference data without any branch's figures: served whole.
    Global,
    /// Rows whose column holds one of the visible branches (rows with a null branch are hidden).
    Branch(&'static str),
    /// Rows whose column holds a holding with at least one visible branch (names only).
    AnyHolding(&'static str),
    /// Rows whose `column` value is in `parent.parent_column` of the scoped `parent` table (for
    /// tables that carry no branch but belong to a row that does).
    Via {
        /// Column of this table.
        column: &'static str,
        /// Scoped table whose rows decide.
        parent: &'static str,
        /// Its key column.
        parent_column: &'static str,
    },
    /// Not served to scoped principals.
    Hidden,
}

/// How `table` is served to a scoped principal.
///
/// Every canonical table and built-in model is listed; anything else (a project's own model, a
/// table added later) is hidden until it is listed here, so a new model cannot leak another
/// branch's rows. The unit test `every_builtin_table_has_a_policy` fails when a built-in model is
/// added without a decision.
pub fn policy(table: &str) -> TablePolicy {
    use TablePolicy::*;
    match table {
        // Organisation: a branch token sees its branch and the name of its holding.
        "holdings" => AnyHolding("holding_id"),
        "branches" | "managers" | "clients" | "deals" | "plans" | "intake_requests" => Branch("branch_id"),
        // Stage moves belong to their deal; activities carry no branch: the branch staging
        // resolves for them (the manager's, else the deal's) decides, as in every mart.
        "deal_stage_changes" => Via { column: "deal_id", parent: "deals", parent_column: "deal_id" },
        "activities" => Via { column: "activity_id", parent: "stg_activity", parent_column: "activity_id" },
        // Raw records of any source and branch, unparsed: cannot be attributed safely.
        "quarantine" => Hidden,
        // Calendar, stage and currency reference data; the reference time is the warehouse's clock.
        "dim_month" | "dim_stage" | "stg_reference_time" => Global,
        "fx_rates" | "reporting_currency" | "stg_fx_rate" => Global,
        "stg_deal" | "stg_activity" | "fct_deal" => Branch("branch_id"),
        "fct_stage_transition" => Via { column: "deal_id", parent: "fct_deal", parent_column: "deal_id" },
        "mart_funnel_monthly"
        | "mart_loss_by_stage"
        | "mart_manager_daily"
        | "mart_pipeline_now"
        | "mart_plan_fact"
        | "mart_sales_cycle_monthly"
        | "mart_stalled_deals"
        | "mart_time_in_stage"
        | "mart_win_rate_monthly"
        // The dashboards' board, stage-time and intake-migration rows, each on its deal's or
        // request's branch.
        | "mart_deal_board"
        | "mart_stage_stay"
        | "mart_intake_request"
        // Client figures: each client counts in one branch (fct_client_month).
        | "fct_client_month"
        | "mart_client_lifecycle"
        | "mart_client_monthly"
        | "mart_cohort_retention" => Branch("branch_id"),
        // The network's win rate per stage: group-wide counts with no branch's rows, the one
        // benchmark a scoped user sees by design (it weights their own pipeline's forecast).
        "mart_stage_win_rate" => Global,
        // Alert occurrences, each on its branch; an alert with no branch (a source late, a data
        // test failing) has a null branch_id and is seen by unscoped principals only.
        "alert_events" => Branch("branch_id"),
        // The delivery log: every branch's recipients and errors, for operators only.
        "deliveries" => Hidden,
        _ => Hidden,
    }
}

/// Builds, for every table of `raw` the scope may see, the provider to register under its name.
pub fn scoped_tables(
    scope: &Scope,
    raw: &BTreeMap<String, Arc<dyn TableProvider>>,
) -> Result<BTreeMap<String, Arc<dyn TableProvider>>> {
    let mut out = BTreeMap::new();
    for name in raw.keys() {
        if let Some(plan) = scoped_plan(scope, name, raw, 0)? {
            out.insert(name.clone(), Arc::new(ScopedTable::new(name, plan)) as Arc<dyn TableProvider>);
        }
    }
    Ok(out)
}

/// The rows of `name` the scope may see, as a plan over the raw provider; `None` when hidden.
fn scoped_plan(
    scope: &Scope,
    name: &str,
    raw: &BTreeMap<String, Arc<dyn TableProvider>>,
    depth: usize,
) -> Result<Option<LogicalPlan>> {
    let Some(provider) = raw.get(name) else { return Ok(None) };
    let schema = provider.schema();
    let has = |c: &str| schema.column_with_name(c).is_some();
    let scan = || LogicalPlanBuilder::scan(name, provider_as_source(provider.clone()), None);
    let member = |column: &str, values: &BTreeSet<String>| -> Expr {
        col(Column::new(Some(name), column)).in_list(values.iter().map(|v| lit(v.as_str())).collect(), false)
    };
    let plan = match policy(name) {
        TablePolicy::Global => scan()?.build()?,
        TablePolicy::Hidden => return Ok(None),
        TablePolicy::Branch(c) if has(c) => scan()?.filter(member(c, &scope.branches))?.build()?,
        TablePolicy::AnyHolding(c) if has(c) => scan()?.filter(member(c, &scope.any_holdings))?.build()?,
        // A parent that is itself derived is never needed; the depth bound keeps a mistake in
        // the policy list from recursing forever.
        TablePolicy::Via { column, parent, parent_column } if has(column) && depth < 2 => {
            let Some(parent_plan) = scoped_plan(scope, parent, raw, depth + 1)? else { return Ok(None) };
            let keys = LogicalPlanBuilder::from(parent_plan)
                .project([col(Column::new(Some(parent), parent_column))])?
                .distinct()?
                .alias("scope_parent")?
                .build()?;
            scan()?
                .join(
                    keys,
                    JoinType::LeftSemi,
                    (vec![Column::new(Some(name), column)], vec![Column::new(Some("scope_parent"), parent_column)]),
                    None,
                )?
                .build()?
        }
        // The scoping column is missing (a project model overriding a built-in one with other
        // columns): nothing can be attributed, so nothing is shown.
        _ => return Ok(None),
    };
    Ok(Some(plan))
}

/// A table as a scoped principal sees it: the scan of `plan` (the raw table filtered to the
/// principal's rows), behind a [`ScopeBarrierExec`].
#[derive(Debug)]
pub struct ScopedTable {
    name: String,
    schema: SchemaRef,
    plan: LogicalPlan,
}

impl ScopedTable {
    fn new(name: &str, plan: LogicalPlan) -> Self {
        Self { name: name.to_string(), schema: plan.schema().inner().clone(), plan }
    }
}

#[async_trait]
impl TableProvider for ScopedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    // `supports_filters_pushdown` keeps its default (Unsupported): the user's predicates stay
    // above the scan, so they run only on rows that passed the scope filter.

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut plan = LogicalPlanBuilder::from(self.plan.clone());
        if let Some(indices) = projection {
            let columns: Vec<Expr> =
                indices.iter().map(|i| Expr::Column(Column::from(self.plan.schema().qualified_field(*i)))).collect();
            plan = plan.project(columns)?;
        }
        if let Some(n) = limit {
            plan = plan.limit(0, Some(n))?;
        }
        let physical = state.create_physical_plan(&plan.build()?).await?;
        Ok(Arc::new(ScopeBarrierExec::new(&self.name, physical)))
    }
}

/// Runs the scope's own plan as a sealed leaf: to the caller's plan it is a source of rows with
/// no children, so no optimizer rule moves anything into it (no filter, projection, limit or
/// sort pushdown, no join reordering across it) and it reports no statistics. Its inner plan was
/// optimized on its own when the table was scanned.
#[derive(Debug)]
pub struct ScopeBarrierExec {
    table: String,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ScopeBarrierExec {
    fn new(table: &str, input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            input.equivalence_properties().clone(),
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Self { table: table.to_string(), input, properties: Arc::new(properties) }
    }
}

impl DisplayAs for ScopeBarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ScopeBarrierExec: table={}", self.table)
    }
}

impl ExecutionPlan for ScopeBarrierExec {
    fn name(&self) -> &str {
        "ScopeBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() { Ok(self) } else { Err(DataFusionError::Internal("ScopeBarrierExec is a leaf".into())) }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_table_has_a_policy() {
        let models = crate::models::load_models(None).expect("built-in models parse");
        let canonical = crate::schema::canonical_tables();
        let names = canonical.iter().map(|t| t.name.to_string()).chain(models.keys().cloned());
        // `Hidden` by decision is listed here; anything else hidden means "forgot to decide".
        let hidden_on_purpose = ["quarantine"];
        for name in names {
            let p = policy(&name);
            assert!(
                p != TablePolicy::Hidden || hidden_on_purpose.contains(&name.as_str()),
                "table `{name}` has no scoping decision in scope::policy"
            );
            let column = match p {
                TablePolicy::Branch(c) | TablePolicy::AnyHolding(c) => Some(c),
                TablePolicy::Via { column, parent, .. } => {
                    assert!(matches!(policy(parent), TablePolicy::Branch(_)), "`{name}` scopes via `{parent}`");
                    Some(column)
                }
                _ => None,
            };
            // The column the policy filters on must exist in the model's documented columns or
            // the canonical schema.
            if let Some(c) = column {
                let documented = models.get(&name).map(|m| m.columns.iter().any(|(n, _)| n == c));
                let canonical =
                    canonical.iter().find(|t| t.name == name).map(|t| t.columns.iter().any(|k| k.name == c));
                assert!(documented.or(canonical) == Some(true), "`{name}` has no column `{c}`");
            }
        }
        assert_eq!(policy("some_new_model"), TablePolicy::Hidden);
    }

    #[test]
    fn alert_occurrences_are_scoped_by_branch_and_the_delivery_log_is_hidden() {
        assert_eq!(policy("alert_events"), TablePolicy::Branch("branch_id"));
        assert_eq!(policy("deliveries"), TablePolicy::Hidden);
    }

    #[test]
    fn scopes_derive_holdings() {
        let config = ProjectConfig::parse(
            "[[organisation.holdings]]\nid = \"h1\"\nname = \"H1\"\n[[organisation.holdings]]\nid = \"h2\"\nname = \"H2\"\n\
             [[organisation.branches]]\nid = \"a\"\nholding = \"h1\"\nname = \"A\"\ncity = \"A\"\ntime_zone = \"UTC\"\n\
             [[organisation.branches]]\nid = \"b\"\nholding = \"h1\"\nname = \"B\"\ncity = \"B\"\ntime_zone = \"UTC\"\n\
             [[organisation.branches]]\nid = \"c\"\nholding = \"h2\"\nname = \"C\"\ncity = \"C\"\ntime_zone = \"UTC\"\n",
            std::path::Path::new("/p/dealhouse.toml"),
        )
        .expect("valid config");
        let one = Scope::for_branches(&config, &["a".into()]).expect("scope");
        assert_eq!(one.any_holdings, BTreeSet::from(["h1".to_string()]));
        let h = Scope::for_holdings(&config, &["h2".into()]).expect("scope");
        assert_eq!(h.branches, BTreeSet::from(["c".to_string()]));
        assert_eq!(h.any_holdings, BTreeSet::from(["h2".to_string()]));
        assert!(Scope::for_branches(&config, &["zzz".into()]).is_err());
    }
}
