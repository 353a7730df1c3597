//! `[organisation]`: the group, its holdings and its branches (with their time zones and the
//! codes each source system uses for them), which the branch-level figures hang on.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use super::issues::{ConfigIssue, KeyPath};

/// `[organisation]`: the org chart the branch-level figures hang on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationConfig {
    /// Name of the group (the top level).
    #[serde(default)]
    pub group: String,
    /// Holdings.
    #[serde(default)]
    pub holdings: Vec<HoldingConfig>,
    /// Branches.
    #[serde(default)]
    pub branches: Vec<Spanned<BranchConfig>>,
}

/// `[[organisation.holdings]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldingConfig {
    /// Short id used in filters and URLs.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// `[[organisation.branches]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchConfig {
    /// Short id used in filters, tokens and URLs (e.g. `msk`).
    pub id: String,
    /// Holding id.
    pub holding: String,
    /// Display name.
    pub name: String,
    /// City.
    pub city: String,
    /// IANA time zone (`Europe/Moscow`, `Asia/Kamchatka`): "per day" figures use its local days.
    pub time_zone: String,
    /// When the branch moved its intake to the unified CRM.
    #[serde(default, deserialize_with = "toml_date")]
    pub crm_switch_date: Option<NaiveDate>,
    /// How each source system names this branch: `{ crm = "12", intake = "MSK" }`.
    #[serde(default)]
    pub codes: BTreeMap<String, String>,
}

/// Accepts a TOML date (`2025-04-01`) or a string holding one.
fn toml_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    use serde::de::Error as _;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Toml(toml::value::Datetime),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Toml(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        Raw::Toml(dt) => return Err(D::Error::custom(format!("expected a date like 2025-04-01, got `{dt}`"))),
        Raw::Text(t) => t,
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map(Some)
        .map_err(|e| D::Error::custom(format!("`{text}` is not a date like 2025-04-01 ({e})")))
}

impl OrganisationConfig {
    /// Every branch has an IANA time zone, a declared holding and an id of its own.
    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        let holdings: Vec<&str> = self.holdings.iter().map(|h| h.id.as_str()).collect();
        let mut seen = BTreeSet::new();
        for (i, b) in self.branches.iter().enumerate() {
            let b = b.get_ref();
            let at = KeyPath::of(["organisation", "branches"]).index(i);
            if b.time_zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(at.key("time_zone").issue(format!(
                    "`{}` is not an IANA time zone (e.g. Europe/Moscow, Asia/Vladivostok)",
                    b.time_zone
                )));
            }
            if !holdings.contains(&b.holding.as_str()) {
                return Err(at.key("holding").issue(format!(
                    "holding `{}` is not declared in [[organisation.holdings]] (known: {})",
                    b.holding,
                    holdings.join(", ")
                )));
            }
            if !seen.insert(b.id.as_str()) {
                return Err(at.key("id").issue(format!("branch id `{}` is used twice", b.id)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    const BASE: &str = "[[organisation.holdings]]\nid = \"h\"\nname = \"H\"\n\n[[organisation.branches]]\nid = \"b\"\n\
                        holding = \"h\"\nname = \"B\"\ncity = \"C\"\ntime_zone = \"Europe/Moscow\"\n";

    #[test]
    fn bad_time_zone_is_rejected() {
        let e = parse(&BASE.replace("Europe/Moscow", "Mars/Olympus")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:10") && e.contains("organisation.branches[0].time_zone"), "{e}");
        assert!(e.contains("Mars/Olympus"), "{e}");
    }

    #[test]
    fn holdings_and_branch_ids_are_checked() {
        let e = parse(&BASE.replace("holding = \"h\"", "holding = \"x\"")).unwrap_err().to_string();
        assert!(e.contains(":7") && e.contains("organisation.branches[0].holding") && e.contains("known: h"), "{e}");
        let e = parse(&format!("{BASE}\n{}", &BASE[BASE.find("[[organisation.branches]]").unwrap()..]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":13") && e.contains("organisation.branches[1].id") && e.contains("used twice"), "{e}");
    }

    #[test]
    fn switch_date_accepts_toml_dates_and_strings() {
        for v in ["2025-04-01", "\"2025-04-01\""] {
            let c = parse(&format!("{BASE}crm_switch_date = {v}\n")).unwrap();
            assert_eq!(c.organisation.branches[0].get_ref().crm_switch_date, NaiveDate::from_ymd_opt(2025, 4, 1));
        }
        let e = parse(&format!("{BASE}crm_switch_date = \"April\"\n")).unwrap_err().to_string();
        assert!(e.contains(":11") && e.contains("organisation.branches[0].crm_switch_date"), "{e}");
    }
}
