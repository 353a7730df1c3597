//! `[audit]`: how `dealhouse audit intake` matches the legacy intake systems' requests to the
//! CRM's, what it calls a volume drop, and the per-branch verdict rules.
//!
//! The warehouse only keeps and checks the settings; the audit's SQL (`api/audit/*.sql`) applies
//! them. Matching rules run in a fixed order (the kept reference first, then the fuzzy rule with
//! these thresholds); verdict rules are judged in the order written, the most severe verdict
//! that fires wins and names its rule.

use serde::Deserialize;

use super::issues::{ConfigIssue, KeyPath};

/// Every kind of finding the audit reports, as verdict rules name them.
pub const FINDING_KINDS: [&str; 11] = [
    "unmatched_legacy",
    "unmatched_crm",
    "ambiguous",
    "migrated_twice",
    "duplicate_in_system",
    "mismatch_client",
    "mismatch_amount",
    "mismatch_created",
    "mismatch_status",
    "legacy_after_switch",
    "volume_drop",
];

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The sources (`[sources.NAME]`) that are legacy intake systems. Default (empty):
    /// `["intake"]`, see [`AuditConfig::legacy_sources`].
    #[serde(default)]
    pub legacy_sources: Vec<String>,
    /// The sources that hold the requests now living in the CRM (intake desks, the portal's
    /// push intake). Default: every other source.
    #[serde(default)]
    pub crm_sources: Vec<String>,
    /// The fuzzy rule pairs requests created at most this many days apart. Default 14.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// The fuzzy rule pairs requests whose subjects are at least this similar (0 to 1: one
    /// minus the edit distance over the longer subject's length). Default 0.8.
    #[serde(default = "default_min_similarity")]
    pub min_similarity: f64,
    /// Weeks before and after a branch's switch the volume comparison covers. Default 8.
    #[serde(default = "default_volume_weeks")]
    pub volume_weeks: u32,
    /// A branch whose requests after the switch fall below this share of those before has a
    /// `volume_drop` finding. Default 0.4.
    #[serde(default = "default_volume_drop_ratio")]
    pub volume_drop_ratio: f64,
    /// Branches with fewer requests than this in the weeks before the switch are not judged
    /// for a volume drop (too few to tell). Default 8.
    #[serde(default = "default_volume_min_requests")]
    pub volume_min_requests: u32,
    /// Verdict rules, in order (`[[audit.verdicts]]`). None written: the defaults, see
    /// [`AuditConfig::verdict_rules`].
    #[serde(default)]
    pub verdicts: Vec<VerdictRule>,
}

/// `[[audit.verdicts]]`: a branch with at least `at_least` findings of `finding` gets `verdict`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictRule {
    /// `blocking` or `findings`.
    pub verdict: String,
    /// One of [`FINDING_KINDS`].
    pub finding: String,
    /// How many findings of that kind make the rule fire. Default 1.
    #[serde(default = "default_at_least")]
    pub at_least: u32,
}

fn default_window_days() -> u32 {
    14
}
fn default_min_similarity() -> f64 {
    0.8
}
fn default_volume_weeks() -> u32 {
    8
}
fn default_volume_drop_ratio() -> f64 {
    0.4
}
fn default_volume_min_requests() -> u32 {
    8
}
fn default_at_least() -> u32 {
    1
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            legacy_sources: Vec::new(),
            crm_sources: Vec::new(),
            window_days: default_window_days(),
            min_similarity: default_min_similarity(),
            volume_weeks: default_volume_weeks(),
            volume_drop_ratio: default_volume_drop_ratio(),
            volume_min_requests: default_volume_min_requests(),
            verdicts: Vec::new(),
        }
    }
}

impl AuditConfig {
    /// The rules verdicts follow: the file's, else the defaults (lost or doubled requests and
    /// changed clients or amounts block a branch's sign-off; everything else is a finding).
    pub fn verdict_rules(&self) -> Vec<VerdictRule> {
        if !self.verdicts.is_empty() {
            return self.verdicts.clone();
        }
        let rule = |verdict: &str, finding: &str| VerdictRule {
            verdict: verdict.into(),
            finding: finding.into(),
            at_least: 1,
        };
        let mut rules: Vec<VerdictRule> =
            ["unmatched_legacy", "migrated_twice", "mismatch_client", "mismatch_amount", "volume_drop"]
                .into_iter()
                .map(|f| rule("blocking", f))
                .collect();
        rules.extend(
            FINDING_KINDS
                .into_iter()
                .filter(|f| !rules.iter().any(|r| r.finding == *f))
                .map(|f| rule("findings", f))
                .collect::<Vec<_>>(),
        );
        rules
    }

    /// The legacy intake systems: the configured ones, else the source named `intake`.
    pub fn legacy_sources(&self) -> Vec<String> {
        if self.legacy_sources.is_empty() { vec!["intake".into()] } else { self.legacy_sources.clone() }
    }

    /// The CRM-side sources: the configured ones, else every source that is not legacy.
    pub fn crm_sources<'a>(&self, sources: impl Iterator<Item = &'a String>) -> Vec<String> {
        if !self.crm_sources.is_empty() {
            return self.crm_sources.clone();
        }
        let legacy = self.legacy_sources();
        sources.filter(|s| !legacy.contains(s)).cloned().collect()
    }

    /// Sources named exist (when the file has any), thresholds are in range, verdict rules name
    /// a known verdict and finding.
    pub(crate) fn validate<'a>(&self, sources: impl Iterator<Item = &'a String> + Clone) -> Result<(), ConfigIssue> {
        let at = KeyPath::of(["audit"]);
        let known: Vec<&str> = sources.clone().map(String::as_str).collect();
        for (key, list) in [("legacy_sources", &self.legacy_sources), ("crm_sources", &self.crm_sources)] {
            for name in list {
                if !known.is_empty() && !known.contains(&name.as_str()) {
                    return Err(at
                        .key(key)
                        .issue(format!("no source `{name}` in [sources]; sources: {}", known.join(", "))));
                }
            }
        }
        if let Some(both) = self.crm_sources.iter().find(|s| self.legacy_sources().contains(s)) {
            return Err(at.key("crm_sources").issue(format!(
                "`{both}` is also in legacy_sources; a source is either a legacy system or the CRM's"
            )));
        }
        if self.window_days == 0 || self.window_days > 366 {
            return Err(at.key("window_days").issue(format!(
                "must be 1 to 366 days (14 pairs requests created within two weeks); got {}",
                self.window_days
            )));
        }
        if !(0.0..=1.0).contains(&self.min_similarity) {
            return Err(at.key("min_similarity").issue(format!(
                "must be between 0 and 1 (0.8: at most one edit in five characters); got {}",
                self.min_similarity
            )));
        }
        if self.volume_weeks == 0 || self.volume_weeks > 104 {
            return Err(at.key("volume_weeks").issue(format!("must be 1 to 104 weeks; got {}", self.volume_weeks)));
        }
        if !(0.0..=1.0).contains(&self.volume_drop_ratio) {
            return Err(at.key("volume_drop_ratio").issue(format!(
                "must be a share between 0 and 1 (0.4: fewer than 40% of the requests before); got {}",
                self.volume_drop_ratio
            )));
        }
        for (i, rule) in self.verdicts.iter().enumerate() {
            let at = at.key("verdicts").index(i);
            if !["blocking", "findings"].contains(&rule.verdict.as_str()) {
                return Err(at
                    .key("verdict")
                    .issue(format!("`{}` is not a verdict; write `blocking` or `findings`", rule.verdict)));
            }
            if !FINDING_KINDS.contains(&rule.finding.as_str()) {
                return Err(at.key("finding").issue(format!(
                    "`{}` is not a finding the audit reports; findings: {}",
                    rule.finding,
                    FINDING_KINDS.join(", ")
                )));
            }
            if rule.at_least == 0 {
                return Err(at
                    .key("at_least")
                    .issue("must be at least 1 (a rule that fires with no finding would mark every branch)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    const SOURCES: &str = "[sources.intake]\nkind = \"x\"\n[sources.desk]\nkind = \"y\"\n";

    #[test]
    fn defaults_pair_every_other_source_with_the_crm_side() {
        let c = parse(SOURCES).unwrap();
        assert_eq!(c.audit.crm_sources(c.sources.keys()), vec!["desk".to_string()]);
        let rules = c.audit.verdict_rules();
        assert_eq!(rules.len(), super::FINDING_KINDS.len());
        assert_eq!((rules[0].verdict.as_str(), rules[0].finding.as_str()), ("blocking", "unmatched_legacy"));
    }

    #[test]
    fn bad_settings_name_their_line_and_key() {
        for (tail, line, key, says) in [
            ("[audit]\nlegacy_sources = [\"old\"]\n", 7, "audit.legacy_sources", "no source `old`"),
            ("[audit]\ncrm_sources = [\"intake\"]\n", 7, "audit.crm_sources", "also in legacy_sources"),
            ("[audit]\nwindow_days = 0\n", 7, "audit.window_days", "1 to 366"),
            ("[audit]\nmin_similarity = 1.5\n", 7, "audit.min_similarity", "between 0 and 1"),
            (
                "[[audit.verdicts]]\nverdict = \"red\"\nfinding = \"ambiguous\"\n",
                7,
                "audit.verdicts[0].verdict",
                "blocking",
            ),
            (
                "[[audit.verdicts]]\nverdict = \"blocking\"\nfinding = \"lost\"\n",
                8,
                "audit.verdicts[0].finding",
                "unmatched_legacy",
            ),
        ] {
            let e = parse(&format!("{SOURCES}\n{tail}")).unwrap_err().to_string();
            assert!(
                e.contains(&format!("dealhouse.toml:{line}")) && e.contains(key) && e.contains(says),
                "{tail}: {e}"
            );
        }
    }
}
