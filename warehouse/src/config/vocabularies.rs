//! `[vocabularies]`: the values of the canonical vocabulary columns a company may add to the
//! standard ones (its own client kinds, activity types), so rows naming them load instead of
//! being quarantined.
//!
//! Configured values are added to the defaults, never replace them: the built-in models and
//! dashboards count the standard values by name (`call` and `meeting` in the manager-day marts).

use serde::Deserialize;

use super::issues::{ConfigIssue, KeyPath};
use crate::schema::{ACTIVITY_TYPES, CLIENT_KINDS};

/// `[vocabularies]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabulariesConfig {
    /// Client kinds (`clients.kind`) beyond the standard promoter, venue, theatre, sports_club,
    /// agency, other.
    #[serde(default)]
    pub client_kind: Vec<String>,
    /// Activity types (`activities.activity_type`) beyond the standard call, meeting, email,
    /// proposal_sent, contract_signed, task.
    #[serde(default)]
    pub activity_type: Vec<String>,
}

/// The vocabularies by their key in `[vocabularies]`, with their standard values.
pub const VOCABULARIES: [(&str, &[&str]); 2] = [("client_kind", &CLIENT_KINDS), ("activity_type", &ACTIVITY_TYPES)];

impl VocabulariesConfig {
    /// The accepted values of the vocabulary `name` (`client_kind`, `activity_type`): the
    /// standard ones, then the configured ones; None for an unknown name.
    pub fn values(&self, name: &str) -> Option<Vec<&str>> {
        let (_, standard) = VOCABULARIES.iter().find(|(n, _)| *n == name)?;
        let mut values: Vec<&str> = standard.to_vec();
        for v in self.configured(name) {
            if !values.contains(&v.as_str()) {
                values.push(v);
            }
        }
        Some(values)
    }

    /// Accepted client kinds.
    pub fn client_kinds(&self) -> Vec<&str> {
        self.values("client_kind").unwrap_or_default()
    }

    /// Accepted activity types.
    pub fn activity_types(&self) -> Vec<&str> {
        self.values("activity_type").unwrap_or_default()
    }

    fn configured(&self, name: &str) -> &[String] {
        match name {
            "client_kind" => &self.client_kind,
            "activity_type" => &self.activity_type,
            _ => &[],
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigIssue> {
        for (name, _) in VOCABULARIES {
            for (i, v) in self.configured(name).iter().enumerate() {
                if v.is_empty() || v.trim() != v || v.contains(['\'', '"', ',']) {
                    return Err(KeyPath::of(["vocabularies", name]).index(i).issue(format!(
                        "`{v}` is not a vocabulary value: write it as it is stored, without surrounding spaces, \
                         quotes or commas (e.g. \"promoter_agency\")"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn vocabularies_add_to_the_standard_values() {
        let c = parse("[vocabularies]\nclient_kind = [\"promoter-agency\", \"venue\"]\n").unwrap();
        assert_eq!(
            c.vocabularies.client_kinds(),
            ["promoter", "venue", "theatre", "sports_club", "agency", "other", "promoter-agency"]
        );
        assert_eq!(
            c.vocabularies.activity_types(),
            ["call", "meeting", "email", "proposal_sent", "contract_signed", "task"]
        );
        assert_eq!(c.vocabularies.values("stage"), None);
        let e = parse("[vocabularies]\nactivity_type = [\"visit\", \" demo\"]\n").unwrap_err().to_string();
        assert!(
            e.contains("dealhouse.toml:2") && e.contains("vocabularies.activity_type[1]") && e.contains("` demo`"),
            "{e}"
        );
        let e = parse("[vocabularies]\nstage = [\"x\"]\n").unwrap_err().to_string();
        assert!(e.contains(":2") && e.contains("unknown field `stage`"), "{e}");
    }
}
