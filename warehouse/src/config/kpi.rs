//! `[kpi]`: the settings behind KPI definitions that depend on the business (how long a client
//! may go without a purchase before it counts as churned, the window within which a created
//! deal's conversion is judged). The model runner hands them to the models as the one-row
//! `params` table (`models::BuildOptions::kpi`).

use serde::Deserialize;

use super::issues::{ConfigIssue, KeyPath};

/// `[kpi]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiConfig {
    /// Months without a won deal after which a client counts as churned (and the months of
    /// won deals that make a client active). Churn and inflow rates are null, with a reason,
    /// for months whose look-back the data does not cover.
    #[serde(default = "default_lookback")]
    pub churn_lookback_months: u32,
    /// Days after creation within which a won deal counts for `conversion_within_window`; a
    /// creation cohort is mature once all its deals are this old. Unset: the median sales cycle
    /// of the won deals, rounded up to whole days (computed by the models).
    #[serde(default)]
    pub conversion_window_days: Option<u32>,
}

fn default_lookback() -> u32 {
    12
}

impl Default for KpiConfig {
    fn default() -> Self {
        Self { churn_lookback_months: default_lookback(), conversion_window_days: None }
    }
}

impl KpiConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigIssue> {
        if !(1..=120).contains(&self.churn_lookback_months) {
            return Err(KeyPath::of(["kpi", "churn_lookback_months"]).issue(format!(
                "{} months is not a look-back; use 1 to 120 (12 = a year without a purchase)",
                self.churn_lookback_months
            )));
        }
        if let Some(days) = self.conversion_window_days
            && !(1..=3650).contains(&days)
        {
            return Err(KeyPath::of(["kpi", "conversion_window_days"]).issue(format!(
                "{days} days is not a conversion window; use 1 to 3650, or leave it out for the median sales cycle"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn defaults_and_settings() {
        let c = parse("").unwrap();
        assert_eq!((c.kpi.churn_lookback_months, c.kpi.conversion_window_days), (12, None));
        let c = parse("[kpi]\nchurn_lookback_months = 6\nconversion_window_days = 45\n").unwrap();
        assert_eq!((c.kpi.churn_lookback_months, c.kpi.conversion_window_days), (6, Some(45)));
    }

    #[test]
    fn bad_values_name_line_key_and_fix() {
        let e = parse("[kpi]\nchurn_lookback_months = 0\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:2") && e.contains("churn_lookback_months") && e.contains("1 to 120"), "{e}");
        let e = parse("[kpi]\nconversion_window_days = 0\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:2") && e.contains("median sales cycle"), "{e}");
        let e = parse("[kpi]\nchurn_months = 3\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:2") && e.contains("churn_months"), "{e}");
    }
}
