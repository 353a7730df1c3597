//! The project file `dealhouse.toml`: where the warehouse lives, the organisation, the pipeline
//! stages, the server and its tokens; and, as written, the sources.
//!
//! Everything is validated when the file is loaded, before any work starts: unknown keys and bad
//! values are errors naming the file, the line and the key. Secrets are never written here: a
//! source names the environment variable or file that holds them.
//!
//! One module per concern:
//! - [`warehouse`] `[warehouse]` (location, storage options, no credentials in the file),
//! - [`reporting`] `[reporting]` (the currency marts report money in; what a currency code is),
//! - [`organisation`] `[organisation]` (holdings, branches), [`pipeline`] `[pipeline]`,
//! - [`server`] `[server]`, [`tokens`] `[tokens.*]` and the tokens file,
//! - [`sync`] `[sync]` (how much of a run may go to quarantine),
//! - [`vocabularies`] `[vocabularies]` (client kinds, activity types added to the standard ones),
//! - [`audit`] `[audit]` (the intake migration audit's matching thresholds and verdict rules),
//! - [`kpi`] `[kpi]` (churn look-back, conversion window: what the models read as `params`),
//! - [`destinations`] `[destinations.*]` (e-mail and webhook targets of reports and alerts),
//!   [`alerts`] `[alerts.*]` (rules over the warehouse, delivered once per occurrence),
//! - [`issues`] the typed [`ConfigIssue`] validators return (a key path and a message),
//! - [`locate`] [`ConfigText`], which places an issue on its line from toml's spans.
//!
//! Sources: the warehouse knows no source kind. `[sources.<name>]` tables are kept as written
//! ([`ProjectConfig::sources`]) with the file's text ([`ProjectConfig::file`]); the ingest crate
//! parses and validates them (each kind's settings beside its connector, in `ingest/src/<kind>/`)
//! with the same file:line:key errors. Commands load a project through
//! `dealhouse_ingest::project::load`, which runs both; [`Project::load`] alone checks everything
//! but the sources.

pub mod alerts;
mod audit;
pub mod destinations;
mod issues;
mod kpi;
pub mod locate;
mod organisation;
mod pipeline;
mod reporting;
mod server;
mod sync;
mod tokens;
mod vocabularies;
mod warehouse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

pub use alerts::{Alert, AlertKind, Comparison};
pub use audit::{AuditConfig, FINDING_KINDS, VerdictRule};
pub use destinations::{Destination, DestinationKind, SmtpSecurity, SmtpServer};
pub use issues::{ConfigIssue, KeyPart, KeyPath};
pub use kpi::KpiConfig;
pub use locate::ConfigText;
pub use organisation::{BranchConfig, HoldingConfig, OrganisationConfig};
pub use pipeline::PipelineConfig;
pub use reporting::{DEFAULT_REPORTING_CURRENCY, ReportingConfig, check_currency_code};
pub use server::ServerConfig;
pub use sync::{DEFAULT_MAX_QUARANTINED_SHARE, QuarantineShare, SourceSyncConfig, SyncConfig};
pub use tokens::{TokenConfig, TokenRole};
pub use vocabularies::{VOCABULARIES, VocabulariesConfig};
pub use warehouse::{CREDENTIALS_IN_FILE, WarehouseConfig, check_storage_options, is_credential_option};

use crate::Result;

/// The file every project directory holds.
pub const PROJECT_FILE: &str = "dealhouse.toml";

/// A loaded, validated project: its directory and its configuration.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory (absolute).
    pub dir: PathBuf,
    /// The parsed `dealhouse.toml`.
    pub config: ProjectConfig,
}

/// `dealhouse.toml`. Keys it does not name (such as `[schedules]` or `[exports]`, which no
/// version reads yet) are refused with their line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Where the tables live.
    #[serde(default)]
    pub warehouse: WarehouseConfig,
    /// Group, holdings, branches (with their time zones).
    #[serde(default)]
    pub organisation: OrganisationConfig,
    /// Canonical pipeline stages and their stalled-deal thresholds.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Client kinds and activity types beyond the standard ones.
    #[serde(default)]
    pub vocabularies: VocabulariesConfig,
    /// KPI settings the models read (churn look-back, conversion window).
    #[serde(default)]
    pub kpi: KpiConfig,
    /// The currency marts report money in.
    #[serde(default)]
    pub reporting: ReportingConfig,
    /// Upstream systems by name, as written (the name becomes `source_system` in every table).
    /// The ingest crate reads them (`dealhouse_ingest::source_config`).
    #[serde(default)]
    pub sources: BTreeMap<String, toml::Spanned<toml::Table>>,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// How sync judges a run: the share of records it may quarantine.
    #[serde(default)]
    pub sync: SyncConfig,
    /// How `dealhouse audit intake` matches legacy requests to the CRM's and judges branches.
    #[serde(default)]
    pub audit: AuditConfig,
    /// API tokens by name (SHA-256 hashed, with a role and a scope). None at all: the server
    /// runs in open local mode (loopback only).
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenConfig>,
    /// Where reports and alerts are delivered (e-mail, webhooks), by name.
    #[serde(default)]
    pub destinations: BTreeMap<String, toml::Spanned<Destination>>,
    /// Alert rules by name.
    #[serde(default)]
    pub alerts: BTreeMap<String, toml::Spanned<Alert>>,
    /// The file's path and text, so issues found after parsing (sources, tokens, the warehouse
    /// location) still name their line.
    #[serde(skip)]
    file: ConfigText,
}

impl Project {
    /// Loads and validates `DIR/dealhouse.toml`, all but its `[sources.*]` (see the module docs).
    pub fn load(dir: &Path) -> Result<Self> {
        let file = dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            ConfigText::new(&file, "").error(KeyPath::root().issue(format!(
                "cannot read it ({e}); run `dealhouse init {}` to create a project, or pass -C DIR",
                dir.display()
            )))
        })?;
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let config = ProjectConfig::parse(&text, &file)?;
        Ok(Project { dir, config })
    }

    /// The warehouse root as a URL (relative paths resolve against the project directory).
    pub fn warehouse_url(&self) -> Result<Url> {
        warehouse::resolve_location(&self.dir, &self.config.warehouse.location)
            .map_err(|m| self.config.file.error(KeyPath::of(["warehouse", "location"]).issue(m)))
    }

    /// A path in the project directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) }
    }
}

impl ProjectConfig {
    /// Parses and validates the text of `file` (all but `[sources.*]`).
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let source = ConfigText::new(file, text);
        let mut config: ProjectConfig = source.deserialize()?;
        config.file = source;
        config.validate().map_err(|issue| config.file.error(issue))?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), ConfigIssue> {
        self.warehouse.validate()?;
        self.organisation.validate()?;
        self.reporting.validate()?;
        self.server.validate()?;
        self.sync.validate(self.sources.keys())?;
        self.vocabularies.validate()?;
        self.kpi.validate()?;
        destinations::validate_destinations(&self.destinations)?;
        alerts::validate_alerts(&self.alerts, &self.destinations, self.sources.keys())?;
        self.audit.validate(self.sources.keys())?;
        tokens::validate_tokens(&self.organisation, &self.tokens)
    }

    /// The file this was parsed from, to place issues found later on their line.
    pub fn file(&self) -> &ConfigText {
        &self.file
    }

    /// Branch config by id.
    pub fn branch(&self, id: &str) -> Option<&BranchConfig> {
        self.organisation.branches.iter().map(|b| b.get_ref()).find(|b| b.id == id)
    }

    /// Branch id that `source` calls `code`.
    pub fn branch_by_code(&self, source: &str, code: &str) -> Option<&BranchConfig> {
        self.organisation.branches.iter().map(|b| b.get_ref()).find(|b| b.codes.get(source).is_some_and(|c| c == code))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn parse(text: &str) -> Result<ProjectConfig> {
        ProjectConfig::parse(text, Path::new("/p/dealhouse.toml"))
    }

    #[test]
    fn keys_no_version_reads_are_refused_with_their_line() {
        for section in ["schedules", "exports"] {
            let e = parse(&format!("[server]\nbind = \"127.0.0.1:1\"\n\n[{section}.daily]\nat = \"06:00\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("/p/dealhouse.toml:4: key `{section}`: unknown field `{section}`")), "{e}");
        }
    }

    #[test]
    fn sources_are_kept_as_written_for_ingest() {
        let c = parse("[sources.crm]\nkind = \"anything\"\nsetting = 1\n").unwrap();
        assert_eq!(c.sources["crm"].get_ref()["kind"].as_str(), Some("anything"));
        assert_eq!(c.file().line_of(c.sources["crm"].span().start), 1);
    }

    #[test]
    fn an_unreadable_project_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = Project::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:0: cannot read it") && e.contains("dealhouse init"), "{e}");
    }
}
