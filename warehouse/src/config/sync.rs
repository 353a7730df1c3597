//! `[sync]`: how much of what a source reads in one sync may go to quarantine before `sync`
//! fails, for every source (`max_quarantined_share`) and per source (`[sync.sources.NAME]`).
//!
//! The warehouse only keeps and checks the numbers; the sync runner in `ingest` applies them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::issues::{ConfigIssue, KeyPath};

/// The share of a run's records that may be quarantined when the file says nothing: one bad
/// record in a hundred is a typo upstream, more is a mapping that does not fit.
pub const DEFAULT_MAX_QUARANTINED_SHARE: f64 = 0.01;

/// `[sync]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Largest share (0 to 1) of the records a source reads in one sync that may be quarantined;
    /// above it the sync still commits what loaded, then exits 1. Default 0.01 (1%).
    #[serde(default)]
    pub max_quarantined_share: Option<f64>,
    /// Per source, by the name of its `[sources.NAME]`: `[sync.sources.NAME]`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSyncConfig>,
}

/// `[sync.sources.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSyncConfig {
    /// This source's `max_quarantined_share`, in place of `[sync]`'s.
    #[serde(default)]
    pub max_quarantined_share: Option<f64>,
}

/// The share of its records a source may quarantine, and where that share comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineShare {
    /// 0 to 1.
    pub share: f64,
    /// Where it is set, for messages: `[sync.sources.crm] max_quarantined_share in
    /// dealhouse.toml`, or the default.
    pub set_by: String,
}

impl SyncConfig {
    /// The share `source` may quarantine: its own, else `[sync]`'s, else the default.
    pub fn quarantine_share(&self, source: &str) -> QuarantineShare {
        if let Some(share) = self.sources.get(source).and_then(|s| s.max_quarantined_share) {
            return QuarantineShare {
                share,
                set_by: format!("[sync.sources.{source}] max_quarantined_share in dealhouse.toml"),
            };
        }
        match self.max_quarantined_share {
            Some(share) => QuarantineShare { share, set_by: "[sync] max_quarantined_share in dealhouse.toml".into() },
            None => QuarantineShare {
                share: DEFAULT_MAX_QUARANTINED_SHARE,
                set_by: "the default (set [sync] max_quarantined_share in dealhouse.toml)".into(),
            },
        }
    }

    /// Shares lie in 0..=1; `[sync.sources.NAME]` names a configured source.
    pub(crate) fn validate<'a>(&self, sources: impl Iterator<Item = &'a String> + Clone) -> Result<(), ConfigIssue> {
        check_share(&KeyPath::of(["sync", "max_quarantined_share"]), self.max_quarantined_share)?;
        for (name, source) in &self.sources {
            let at = KeyPath::of(["sync", "sources", name.as_str()]);
            if !sources.clone().any(|s| s == name) {
                let known: Vec<&str> = sources.clone().map(String::as_str).collect();
                return Err(at.issue(format!(
                    "no source `{name}` in [sources]; sources: {}",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
            check_share(&at.key("max_quarantined_share"), source.max_quarantined_share)?;
        }
        Ok(())
    }
}

fn check_share(key: &KeyPath, share: Option<f64>) -> Result<(), ConfigIssue> {
    match share {
        Some(s) if !(0.0..=1.0).contains(&s) => {
            Err(key.issue(format!("must be a share between 0 and 1 (0.01 allows 1% of the records read); got {s}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    const SOURCES: &str = "[sources.crm]\nkind = \"x\"\n[sources.onec]\nkind = \"y\"\n";

    #[test]
    fn shares_come_from_the_source_then_the_section_then_the_default() {
        let c = parse(SOURCES).unwrap();
        assert_eq!(c.sync.quarantine_share("crm").share, 0.01);
        assert!(c.sync.quarantine_share("crm").set_by.starts_with("the default"));
        let c = parse(&format!(
            "{SOURCES}[sync]\nmax_quarantined_share = 0.2\n[sync.sources.crm]\nmax_quarantined_share = 0.05\n"
        ))
        .unwrap();
        let crm = c.sync.quarantine_share("crm");
        assert_eq!(
            (crm.share, crm.set_by.as_str()),
            (0.05, "[sync.sources.crm] max_quarantined_share in dealhouse.toml")
        );
        let onec = c.sync.quarantine_share("onec");
        assert_eq!((onec.share, onec.set_by.as_str()), (0.2, "[sync] max_quarantined_share in dealhouse.toml"));
    }

    #[test]
    fn shares_outside_zero_to_one_and_unknown_sources_name_their_line() {
        let e = parse(&format!("{SOURCES}[sync]\nmax_quarantined_share = 5\n")).unwrap_err().to_string();
        assert!(
            e.contains("dealhouse.toml:6: key `sync.max_quarantined_share`: must be a share between 0 and 1"),
            "{e}"
        );
        let e = parse(&format!("{SOURCES}[sync.sources.crm]\nmax_quarantined_share = -0.1\n")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:6: key `sync.sources.crm.max_quarantined_share`"), "{e}");
        let e = parse(&format!("{SOURCES}[sync.sources.cmr]\nmax_quarantined_share = 0.1\n")).unwrap_err().to_string();
        assert!(
            e.contains("dealhouse.toml:5: key `sync.sources.cmr`: no source `cmr`") && e.contains("crm, onec"),
            "{e}"
        );
        let e = parse(&format!("{SOURCES}[sync]\nmax_quarantine_share = 0.1\n")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:6") && e.contains("unknown field"), "{e}");
    }
}
