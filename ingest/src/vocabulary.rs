//! The canonical vocabulary columns a mapped row is checked against: a value outside them would
//! silently fall out of every KPI, so its row is quarantined instead.
//!
//! Most vocabularies are fixed (stages, statuses: the models branch on each value). Client kinds
//! and activity types are the company's own words, so `[vocabularies]` in `dealhouse.toml`
//! adds to their standard values, and a reason about one names the key to add a value to.

use dealhouse_warehouse::ProjectConfig;
use dealhouse_warehouse::schema::STAGES;

/// Fixed vocabularies: (table, column, values).
const FIXED: &[(&str, &str, &[&str])] = &[
    ("deals", "stage", &STAGES),
    ("deals", "status", &["open", "won", "lost"]),
    ("deal_stage_changes", "from_stage", &STAGES),
    ("deal_stage_changes", "to_stage", &STAGES),
    ("activities", "direction", &["incoming", "outgoing"]),
    ("plans", "metric", &["won_amount", "commission", "deals_won", "calls", "meetings", "new_clients"]),
    ("intake_requests", "status", &["new", "in_progress", "done", "rejected"]),
    ("intake_requests", "department", &["marketing", "content", "docflow", "accounting", "self_service"]),
];

/// Configurable vocabularies: (table, column, key in `[vocabularies]`).
const CONFIGURABLE: &[(&str, &str, &str)] =
    &[("clients", "kind", "client_kind"), ("activities", "activity_type", "activity_type")];

/// The values a canonical column accepts, when it is a vocabulary column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vocabulary {
    /// Accepted values, the standard ones first.
    pub values: Vec<String>,
    /// The `[vocabularies]` key that adds to them; None for a fixed vocabulary.
    pub config_key: Option<&'static str>,
}

impl Vocabulary {
    /// The vocabulary of `table.column` under the project's `[vocabularies]`.
    pub(crate) fn of(config: &ProjectConfig, table: &str, column: &str) -> Option<Self> {
        if let Some((_, _, key)) = CONFIGURABLE.iter().find(|(t, c, _)| *t == table && *c == column) {
            let values = config.vocabularies.values(key)?.into_iter().map(String::from).collect();
            return Some(Self { values, config_key: Some(key) });
        }
        FIXED
            .iter()
            .find(|(t, c, _)| *t == table && *c == column)
            .map(|(_, _, values)| Self { values: values.iter().map(|v| v.to_string()).collect(), config_key: None })
    }

    /// True when `value` is one of the accepted values.
    pub(crate) fn accepts(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// Why a row with `value` in `column` is quarantined and what to change: the value map of
    /// `values_section`, or (for a configurable vocabulary) the `[vocabularies]` key.
    /// `fix` ends the advice for a fixed vocabulary as the source kind allows (" or in the query").
    pub(crate) fn reason(&self, column: &str, value: &str, values_section: &str, fix: &str) -> String {
        let listed = self.values.join(", ");
        match self.config_key {
            None => format!(
                "column `{column}`: `{value}` is not one of {listed}; map it with [{values_section}.values.{column}]{fix}"
            ),
            Some(key) => format!(
                "column `{column}`: unknown {what} `{value}` (known: {listed}); add it to `{key}` in [vocabularies] of \
                 dealhouse.toml (`{key} = [\"{value}\"]`), or map it to a known one with [{values_section}.values.{column}]",
                what = key.replace('_', " ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_client_kinds_follow_the_config() {
        let standard = ProjectConfig::parse("", std::path::Path::new("/p/dealhouse.toml")).unwrap();
        let configured = ProjectConfig::parse(
            "[vocabularies]\nclient_kind = [\"promoter-agency\"]\n",
            std::path::Path::new("/p/dealhouse.toml"),
        )
        .unwrap();
        let kinds = Vocabulary::of(&standard, "clients", "kind").unwrap();
        assert!(!kinds.accepts("promoter-agency") && kinds.accepts("agency"));
        let reason = kinds.reason("kind", "promoter-agency", "sources.crm", "");
        assert!(reason.contains("unknown client kind `promoter-agency`") && reason.contains("sports_club"), "{reason}");
        assert!(reason.contains("`client_kind` in [vocabularies]") && reason.contains("[sources.crm.values.kind]"));
        assert!(Vocabulary::of(&configured, "clients", "kind").unwrap().accepts("promoter-agency"));
        let stages = Vocabulary::of(&configured, "deals", "stage").unwrap();
        assert_eq!((stages.values.len(), stages.config_key), (7, None));
        assert_eq!(Vocabulary::of(&configured, "deals", "title"), None);
    }
}
