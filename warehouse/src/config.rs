//! The project file `dealhouse.toml`: where the warehouse lives, the organisation, the pipeline
//! stages, the sources, the server and its tokens.
//!
//! Everything is validated when the file is loaded, before any work starts: unknown keys and bad
//! values are errors naming the file, the line and the key. Secrets are never written here: a
//! source names the environment variable or file that holds them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::{Error, Result};

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

/// `dealhouse.toml`.
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
    /// Upstream systems, by name. The name becomes `source_system` in every table.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// API tokens by name (SHA-256 hashed, with a role and a scope). None at all: the server
    /// runs in open local mode (loopback only).
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenConfig>,
    /// Scheduled jobs (sync, build, exports), by name.
    #[serde(default)]
    pub schedules: BTreeMap<String, toml::Table>,
    /// KPI exports, by name.
    #[serde(default)]
    pub exports: BTreeMap<String, toml::Table>,
}

/// `[warehouse]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// A path (relative to the project directory), a `file://` URL or `s3://bucket/prefix`.
    #[serde(default = "default_location")]
    pub location: Spanned<String>,
    /// object_store options (region, endpoint, ...). Credentials come from the environment.
    #[serde(default)]
    pub storage_options: BTreeMap<String, String>,
}

fn default_location() -> Spanned<String> {
    Spanned::new(0..0, "warehouse".to_string())
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        Self { location: default_location(), storage_options: BTreeMap::new() }
    }
}

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
fn toml_date<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<NaiveDate>, D::Error> {
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

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Days without a call, meeting or email after which an open deal in a stage is stalled.
    #[serde(default = "default_sla")]
    pub stall_days: BTreeMap<String, u32>,
}

fn default_sla() -> BTreeMap<String, u32> {
    [("new", 2), ("contact", 5), ("proposal", 5), ("negotiation", 7), ("contract", 10)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { stall_days: default_sla() }
    }
}

/// One upstream system. Adding a kind: a variant here, a connector module in `ingest`, and its
/// arm in `ingest::connector_for`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// A Bitrix24 portal through an inbound webhook.
    Bitrix24(Bitrix24Config),
    /// An amoCRM account through API v4 with a long-lived token.
    AmoCrm(AmoCrmConfig),
    /// A SQLite database file (the demo's legacy intake system).
    Sqlite(SqlConfig),
    /// A PostgreSQL database, read over the network.
    Postgres(SqlConfig),
    /// A MySQL or MariaDB database, read over the network.
    Mysql(SqlConfig),
    /// An XLSX workbook.
    Xlsx(FileConfig),
    /// A CSV file (1C and spreadsheet exports).
    Csv(FileConfig),
    /// A JSON Lines file: one object per line, its keys read like CSV headers.
    Jsonl(FileConfig),
    /// Records delivered to the server (`POST /api/v1/intake/<name>`): the self-service portal,
    /// CRM webhooks. `sync` has nothing to pull for it.
    Push(PushConfig),
}

impl SourceConfig {
    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Bitrix24(_) => "bitrix24",
            SourceConfig::AmoCrm(_) => "amocrm",
            SourceConfig::Sqlite(_) => "sqlite",
            SourceConfig::Postgres(_) => "postgres",
            SourceConfig::Mysql(_) => "mysql",
            SourceConfig::Xlsx(_) => "xlsx",
            SourceConfig::Csv(_) => "csv",
            SourceConfig::Jsonl(_) => "jsonl",
            SourceConfig::Push(_) => "push",
        }
    }
}

/// `kind = "bitrix24"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bitrix24Config {
    /// Inbound webhook URL, `https://<portal>/rest/<user>/<code>/`. Treat it as a secret: prefer
    /// `webhook_url_env`.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Environment variable holding the webhook URL.
    #[serde(default)]
    pub webhook_url_env: Option<String>,
    /// Serve this folder of recorded portal data as a local Bitrix24 portal and pull from it
    /// (demo projects and tests). Relative to the project directory.
    #[serde(default)]
    pub simulate_from: Option<PathBuf>,
    /// Source stage id -> canonical stage (new, contact, proposal, negotiation, contract, won,
    /// lost). Won and lost are decided by the stage semantics, not by this map.
    #[serde(default)]
    pub stages: BTreeMap<String, String>,
    /// Seconds re-read before the last cursor (upstream timestamps are second-accurate).
    #[serde(default = "default_lookback")]
    pub lookback_seconds: u64,
    /// Share of the agent's commission in the deal amount when the CRM has none.
    #[serde(default)]
    pub commission_rate: Option<rust_decimal::Decimal>,
    /// Give up on a request after retrying throttled or failed calls (HTTP 503
    /// QUERY_LIMIT_EXCEEDED, 429, 5xx, connection errors) for this many seconds in total.
    #[serde(default = "default_max_retry_seconds")]
    pub max_retry_seconds: u64,
    /// Rows per committed chunk: a crash resumes after the last committed chunk; bigger chunks
    /// mean fewer Delta commits on a large initial load.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
}

fn default_lookback() -> u64 {
    300
}

/// `kind = "amocrm"`: an amoCRM account read through API v4.
///
/// Stages are keyed by pipeline and status, because status ids are per pipeline; statuses 142
/// (won) and 143 (lost) exist in every pipeline and are never mapped here:
///
/// ```toml
/// [sources.amo.stages.3166396]   # pipeline id
/// 33929749 = "new"               # status id = canonical stage
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmoCrmConfig {
    /// The account's address, `https://<subdomain>.amocrm.ru` (no path). Required unless
    /// `simulate_from` is set.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Environment variable holding the long-lived access token (preferred).
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the long-lived access token (relative to the project directory); surrounding
    /// whitespace is ignored.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Serve this folder of recorded account data (`leads.jsonl`, `events.jsonl`, `users.jsonl`,
    /// `pipelines.jsonl`, `companies.jsonl`, `loss_reasons.jsonl`) through a local amoCRM API and
    /// pull from it (demo projects and tests). Relative to the project directory.
    #[serde(default)]
    pub simulate_from: Option<PathBuf>,
    /// Pipeline id -> (status id -> canonical stage: new, contact, proposal, negotiation or
    /// contract). Won (142) and lost (143) are fixed by amoCRM and need no entry.
    #[serde(default)]
    pub stages: BTreeMap<String, BTreeMap<String, String>>,
    /// Seconds re-read before the last cursor (amoCRM timestamps are whole seconds).
    #[serde(default = "default_lookback")]
    pub lookback_seconds: u64,
    /// Share of the agent's commission in the lead's price (`"0.1"` = 10%); unset leaves
    /// `commission` empty.
    #[serde(default)]
    pub commission_rate: Option<rust_decimal::Decimal>,
    /// Company custom field (`field_id`) holding the taxpayer number (INN), if the account has one.
    #[serde(default)]
    pub inn_field_id: Option<i64>,
    /// Requests a second the connector sends at most; amoCRM answers 429 above 7.
    #[serde(default = "default_amocrm_rps")]
    pub requests_per_second: u32,
    /// Give up on a request after retrying throttled or failed calls (HTTP 429, 5xx, connection
    /// errors) for this many seconds in total; what was committed before stays.
    #[serde(default = "default_max_retry_seconds")]
    pub max_retry_seconds: u64,
    /// Rows per committed chunk: a failed sync keeps the chunks committed before it.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
}

/// The documented amoCRM API limit.
pub const AMOCRM_MAX_RPS: u32 = 7;

fn default_amocrm_rps() -> u32 {
    AMOCRM_MAX_RPS
}

fn default_max_retry_seconds() -> u64 {
    300
}

fn default_chunk_rows() -> usize {
    5000
}

/// `kind = "sqlite" | "postgres" | "mysql"`: one query per canonical table whose result columns
/// are named as the canonical columns.
///
/// A sqlite source reads the file in `path`; a postgres or mysql source connects to the URL held
/// in the environment variable `url_env` (or, discouraged, written inline in `url`). The row's
/// canonical id (`deal_id`, `request_id`, ...) defaults to `{source}:{source_id}`; a
/// `branch_code` column is translated to `branch_id` through the branches' `codes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// `kind = "sqlite"` only: the database file, relative to the project directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `kind = "postgres" | "mysql"`: environment variable holding the connection URL
    /// (`postgres://user:password@host:5432/database`, `mysql://user:password@host:3306/database`).
    #[serde(default)]
    pub url_env: Option<String>,
    /// `kind = "postgres" | "mysql"`: the connection URL written inline. Discouraged: the file
    /// then holds the password; prefer `url_env`. Never logged.
    #[serde(default)]
    pub url: Option<Secret>,
    /// Zone of timestamps stored without an offset (legacy systems keep local time); default UTC.
    /// PostgreSQL `timestamptz` and MySQL `TIMESTAMP` values are instants already and ignore it.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Canonical table -> how to read it.
    pub tables: BTreeMap<String, SqlTableConfig>,
}

/// A secret written in the file (a URL with a password): it prints as `<redacted>` in debug
/// output, so a logged config never shows it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `[sources.<name>.tables.<canonical table>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlTableConfig {
    /// A SELECT producing canonical column names (`source_id` required).
    pub query: String,
    /// Result column to read incrementally by (`updated_at`, an increasing id); rows with a value
    /// >= the last committed one (minus `lookback_seconds` for timestamps) are re-read.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Seconds re-read before a timestamp cursor.
    #[serde(default = "default_lookback")]
    pub lookback_seconds: u64,
}

/// `kind = "csv" | "xlsx" | "jsonl"`: rows of files mapped onto canonical tables.
///
/// `path` names one file or, with `*`, `?`, `[...]` or `**`, every file matching a glob
/// (`exports/deals_*.csv`, read in path order); relative to the project directory, or a URL
/// (`file:///srv/exports/*.csv`, `s3://bucket/exports/*.jsonl`). Each file is tracked on its own:
/// one loaded before with the same bytes and the same mapping is skipped.
///
/// One table: `table` with `columns` and `values`. Several tables from the same rows:
/// `[sources.<name>.tables.<canonical table>]` sections, each with its own `columns` and
/// `values`. `columns` maps each canonical column to a header in the file (a key of a JSON Lines
/// object), a template mixing text and headers (`"crm:{Сделка}"`), or a constant
/// (`"=contract_signed"`). `values` maps raw values of a canonical column to canonical ones
/// (`metric = { "Выручка" = "won_amount" }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// A file or a glob of files: a path relative to the project directory (or absolute), or a
    /// `file://` or `s3://` URL.
    pub path: String,
    /// Canonical table the rows go to (with `columns` and `values`); or use `tables`.
    #[serde(default)]
    pub table: Option<String>,
    /// XLSX sheet name (default: the first sheet).
    #[serde(default)]
    pub sheet: Option<String>,
    /// Text encoding (CSV): `utf-8` (BOM allowed) or `windows-1251`. Unset: UTF-8 when the
    /// file is valid UTF-8, else windows-1251 (1C and Russian Excel exports). JSON Lines files
    /// are always UTF-8.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Field delimiter (CSV), one ASCII character; default `,`.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Numbers use a decimal comma and space (or no-break space) thousands: `1 234,56`.
    #[serde(default)]
    pub decimal_comma: bool,
    /// chrono format of dates and timestamps in text cells (default: ISO 8601); e.g. `%d.%m.%Y`.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Zone of timestamps without an offset; default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// With `table`: canonical column -> header, `{Header}` template or `=constant`. Only
    /// mapped columns are read; `branch_code` is translated to `branch_id` through the branches'
    /// `codes`; the table's own id defaults to `{source}:{source_id}`. A mapped header missing
    /// from a file refuses that whole file.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// With `table`: canonical column -> (raw value -> canonical value). A value that is neither
    /// a key nor already one of the canonical values quarantines its row.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Instead of `table`: canonical table -> its `columns` and `values`, so each row feeds
    /// several tables (an agents file filling `managers` and `branches`). `branches` may be
    /// filled here: their id defaults to `{source}:{source_id}`, and a `branch_code` in this
    /// source's other tables that no [[organisation.branches]] claims names that branch.
    #[serde(default)]
    pub tables: BTreeMap<String, FileTableConfig>,
    /// object_store options for a URL `path` (`aws_region`, `aws_endpoint`, ...), as in
    /// `[warehouse]`; credentials come from the environment, never from this file.
    #[serde(default)]
    pub storage_options: BTreeMap<String, String>,
}

/// `[sources.<name>.tables.<canonical table>]` of a file source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTableConfig {
    /// Canonical column -> header, `{Header}` template or `=constant` (as `columns` of a
    /// single-table source).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Canonical column -> (raw value -> canonical value).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

/// One canonical table a file source fills and how, from either form of [`FileConfig`].
#[derive(Debug, Clone, Copy)]
pub struct FileTableMapping<'a> {
    /// Canonical table name as configured.
    pub table: &'a str,
    /// Canonical column -> header, template or constant.
    pub columns: &'a BTreeMap<String, String>,
    /// Canonical column -> (raw value -> canonical value).
    pub values: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// Set for a `[sources.<name>.tables.<table>]` section, unset for the `table` form.
    pub in_tables: bool,
}

impl FileTableMapping<'_> {
    /// The dotted key of this mapping's section: `sources.x` (`table` form) or
    /// `sources.x.tables.managers`.
    pub fn section(&self, source: &str) -> String {
        if self.in_tables { format!("sources.{source}.tables.{}", self.table) } else { format!("sources.{source}") }
    }
}

impl FileConfig {
    /// The tables the rows go to, with their mappings (`table` alone, or every `tables` entry).
    pub fn mappings(&self) -> Vec<FileTableMapping<'_>> {
        match &self.table {
            Some(table) => {
                vec![FileTableMapping { table, columns: &self.columns, values: &self.values, in_tables: false }]
            }
            None => self
                .tables
                .iter()
                .map(|(table, t)| FileTableMapping { table, columns: &t.columns, values: &t.values, in_tables: true })
                .collect(),
        }
    }
}

/// Characters that make a file source's `path` a glob.
pub const GLOB_CHARS: [char; 3] = ['*', '?', '['];

/// `kind = "push"`: JSON objects (one, an array, or JSON Lines) POSTed to
/// `/api/v1/intake/<name>`, keyed by the canonical column names of `table` (`source_id`
/// required), like the columns of a SQL source's query. Each request's accepted records are one
/// Delta commit before the server answers; a replayed `source_id` replaces, never duplicates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Canonical table the records go to (e.g. `intake_requests`).
    pub table: String,
    /// Zone of timestamps sent without an offset; default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Canonical column -> (raw value -> canonical value).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; loopback unless you mean to expose it. A non-loopback address
    /// needs at least one token (the server refuses to start open to the network).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// A TOML file (relative to the project directory) holding more `[tokens.<name>]` tables,
    /// so token hashes can live outside `dealhouse.toml` (e.g. mounted from a secret store).
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Seconds an analyst query (`POST /api/v1/sql`) may run before it is cancelled.
    #[serde(default = "default_query_timeout")]
    pub query_timeout_seconds: u64,
    /// Memory all running API queries may hold together, in MiB (sorts and aggregations spill
    /// to disk or fail past it).
    #[serde(default = "default_query_memory")]
    pub query_memory_mb: u64,
    /// Analyst queries run at once; more wait briefly, then get HTTP 503.
    #[serde(default = "default_concurrent_queries")]
    pub max_concurrent_queries: usize,
    /// Most rows one SQL answer carries (`truncated` says when there were more).
    #[serde(default = "default_result_rows")]
    pub max_result_rows: usize,
    /// Most data one SQL answer carries, in MiB (Arrow in memory; `truncated` past it).
    #[serde(default = "default_result_mb")]
    pub max_result_mb: u64,
}

fn default_bind() -> String {
    "127.0.0.1:8080".into()
}

fn default_query_timeout() -> u64 {
    30
}

fn default_query_memory() -> u64 {
    1024
}

fn default_concurrent_queries() -> usize {
    4
}

fn default_result_rows() -> usize {
    10_000
}

fn default_result_mb() -> u64 {
    32
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            tokens_file: None,
            query_timeout_seconds: default_query_timeout(),
            query_memory_mb: default_query_memory(),
            max_concurrent_queries: default_concurrent_queries(),
            max_result_rows: default_result_rows(),
            max_result_mb: default_result_mb(),
        }
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Everything, including operational endpoints (`/metrics`).
    Admin,
    /// All data of every branch, read-only.
    Analyst,
    /// The rows of the listed `branches` only.
    Branch,
    /// The rows of every branch of the listed `holdings`.
    Holding,
}

/// `[tokens.<name>]`: who may call the API. The name is a label for logs (never the token).
///
/// Only the SHA-256 of the token is stored: make one with
/// `TOKEN=$(openssl rand -hex 32); printf %s "$TOKEN" | sha256sum`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// SHA-256 of the token, 64 hex digits.
    pub sha256: String,
    /// admin, analyst, branch or holding.
    pub role: TokenRole,
    /// Branch ids the token may see (role `branch`).
    #[serde(default)]
    pub branches: Vec<String>,
    /// Holding ids whose branches the token may see (role `holding`).
    #[serde(default)]
    pub holdings: Vec<String>,
    /// When the token stops working: a date (`2026-01-01`, from its first instant in UTC) or a
    /// date-time (`2026-01-01T09:00:00+03:00`; without an offset it is UTC).
    #[serde(default)]
    pub expires: Option<toml::value::Datetime>,
}

impl TokenConfig {
    /// The instant the token stops working, if it expires.
    pub fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.expires.as_ref().and_then(|e| parse_expiry(e).ok())
    }
}

/// `expires` as an instant: dates start at midnight UTC, offset-less times are UTC.
fn parse_expiry(dt: &toml::value::Datetime) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    let text = dt.to_string();
    let bad = || format!("`{text}` is not a date (2026-01-01) or a date-time (2026-01-01T09:00:00+03:00)");
    match (&dt.date, &dt.time, &dt.offset) {
        (Some(_), None, None) => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(bad),
        (Some(_), Some(_), Some(_)) => {
            DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(|_| bad())
        }
        (Some(_), Some(_), None) => NaiveDateTime::parse_from_str(&text.replace(' ', "T"), "%Y-%m-%dT%H:%M:%S%.f")
            .map(|t| t.and_utc())
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A tokens file (`[server] tokens_file`): `[tokens.<name>]` tables only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    /// The tokens, by name.
    #[serde(default)]
    tokens: BTreeMap<String, TokenConfig>,
}

impl Project {
    /// Loads and validates `DIR/dealhouse.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let file = dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| Error::Config {
            file: file.clone(),
            line: 0,
            key: String::new(),
            message: format!(
                "cannot read it ({e}); run `dealhouse init {}` to create a project, or pass -C DIR",
                dir.display()
            ),
        })?;
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let config = ProjectConfig::parse(&text, &file)?;
        Ok(Project { dir, config })
    }

    /// The warehouse root as a URL (relative paths resolve against the project directory).
    pub fn warehouse_url(&self) -> Result<Url> {
        resolve_location(&self.dir, self.config.warehouse.location.get_ref())
            .map_err(|message| self.config_error(self.config.warehouse.location.span(), "warehouse.location", message))
    }

    /// A path in the project directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) }
    }

    /// Every API token: `[tokens.*]` of `dealhouse.toml` and of `[server] tokens_file`, validated
    /// against the organisation (names and hashes are unique across both).
    pub fn tokens(&self) -> Result<BTreeMap<String, TokenConfig>> {
        let mut tokens = self.config.tokens.clone();
        let Some(rel) = &self.config.server.tokens_file else { return Ok(tokens) };
        let file = self.path(rel);
        let fail = |line: usize, key: String, message: String| Error::Config { file: file.clone(), line, key, message };
        let text = std::fs::read_to_string(&file).map_err(|e| {
            fail(
                0,
                String::new(),
                format!("cannot read the tokens file named by [server] tokens_file ({e}); create it or remove the key"),
            )
        })?;
        let parsed: TokensFile = toml::from_str(&text).map_err(|e| {
            fail(e.span().map(|s| line_of(&text, s.start)).unwrap_or(0), key_at(&text, e.span()), e.message().into())
        })?;
        for (name, token) in parsed.tokens {
            if tokens.contains_key(&name) {
                let at = key_offset(&text, &format!("tokens.{name}"));
                return Err(fail(
                    line_of(&text, at),
                    format!("tokens.{name}"),
                    "a token of this name is also in dealhouse.toml; rename one".into(),
                ));
            }
            tokens.insert(name, token);
        }
        validate_tokens(&self.config.organisation, &tokens).map_err(|(key, message)| {
            let at = key_offset(&text, &key);
            fail(line_of(&text, at), key, message)
        })?;
        Ok(tokens)
    }

    fn config_error(&self, span: std::ops::Range<usize>, key: &str, message: String) -> Error {
        let file = self.dir.join(PROJECT_FILE);
        let line = std::fs::read_to_string(&file).map(|t| line_of(&t, span.start)).unwrap_or(0);
        Error::Config { file, line, key: key.into(), message }
    }
}

fn resolve_location(dir: &Path, location: &str) -> std::result::Result<Url, String> {
    if location.contains("://") {
        let url = Url::parse(location).map_err(|e| format!("`{location}` is not a valid URL: {e}"))?;
        match url.scheme() {
            "file" | "s3" | "memory" => Ok(url),
            other => {
                Err(format!("unsupported scheme `{other}` in `{location}`: use a path, file:// or s3://bucket/prefix"))
            }
        }
    } else {
        let path = if Path::new(location).is_absolute() { PathBuf::from(location) } else { dir.join(location) };
        Url::from_directory_path(&path).map_err(|_| format!("`{}` is not a usable directory", path.display()))
    }
}

const CREDENTIALS_IN_FILE: &str = "credentials do not belong in dealhouse.toml; set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / an instance role) in the environment";

/// Storage options that carry a secret (or name the key that goes with one): they are read from
/// the environment instead, so the project file can be committed and logged.
fn is_credential_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let key = key.strip_prefix("aws_").unwrap_or(&key);
    matches!(key, "access_key_id" | "secret_access_key" | "session_token" | "token")
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl ProjectConfig {
    /// Parses and validates the text of `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let config: ProjectConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            Error::Config {
                file: file.to_path_buf(),
                line,
                key: key_at(text, e.span()),
                message: e.message().to_string(),
            }
        })?;
        let err = |span: std::ops::Range<usize>, key: String, message: String| Error::Config {
            file: file.to_path_buf(),
            line: line_of(text, span.start),
            key,
            message,
        };
        resolve_location(Path::new("/"), config.warehouse.location.get_ref())
            .map_err(|m| err(config.warehouse.location.span(), "warehouse.location".into(), m))?;
        if let Some(key) = config.warehouse.storage_options.keys().find(|k| is_credential_option(k)) {
            let key = format!("warehouse.storage_options.{key}");
            let at = key_offset(text, &key);
            return Err(Error::Config {
                file: file.to_path_buf(),
                line: line_of(text, at),
                key,
                message: CREDENTIALS_IN_FILE.into(),
            });
        }
        let holdings: Vec<&str> = config.organisation.holdings.iter().map(|h| h.id.as_str()).collect();
        let mut seen = std::collections::BTreeSet::new();
        for (i, b) in config.organisation.branches.iter().enumerate() {
            let span = b.span();
            let b = b.get_ref();
            let key = format!("organisation.branches[{i}]");
            if b.time_zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(err(
                    span,
                    format!("{key}.time_zone"),
                    format!("`{}` is not an IANA time zone (e.g. Europe/Moscow, Asia/Vladivostok)", b.time_zone),
                ));
            }
            if !holdings.contains(&b.holding.as_str()) {
                return Err(err(
                    span,
                    format!("{key}.holding"),
                    format!(
                        "holding `{}` is not declared in [[organisation.holdings]] (known: {})",
                        b.holding,
                        holdings.join(", ")
                    ),
                ));
            }
            if !seen.insert(b.id.clone()) {
                return Err(err(span, format!("{key}.id"), format!("branch id `{}` is used twice", b.id)));
            }
        }
        for (name, source) in &config.sources {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(err(0..0, format!("sources.{name}"), "source names may use a-z, 0-9, _ and - only".into()));
            }
            if let SourceConfig::Bitrix24(b) = source {
                if let Some(url) = &b.webhook_url {
                    // Spans cannot be read inside the internally tagged enum: find the key's line.
                    let at = key_offset(text, &format!("sources.{name}.webhook_url"));
                    let parsed = Url::parse(url).map_err(|e| {
                        err(
                            at..at,
                            format!("sources.{name}.webhook_url"),
                            format!("not a valid URL ({e}); expected https://<portal>/rest/<user>/<code>/"),
                        )
                    })?;
                    if !matches!(parsed.scheme(), "http" | "https") || !parsed.path().contains("/rest/") {
                        return Err(err(
                            at..at,
                            format!("sources.{name}.webhook_url"),
                            "expected an inbound webhook URL like https://<portal>/rest/<user>/<code>/".into(),
                        ));
                    }
                }
                if b.webhook_url.is_none() && b.webhook_url_env.is_none() && b.simulate_from.is_none() {
                    return Err(err(
                        0..0,
                        format!("sources.{name}"),
                        "set webhook_url_env (or webhook_url, or simulate_from for recorded data)".into(),
                    ));
                }
                for (stage_id, stage) in &b.stages {
                    if !crate::schema::STAGES.contains(&stage.as_str()) {
                        return Err(err(
                            0..0,
                            format!("sources.{name}.stages.{stage_id}"),
                            format!("`{stage}` is not a canonical stage ({})", crate::schema::STAGES.join(", ")),
                        ));
                    }
                }
            }
            let checked = match source {
                SourceConfig::Sqlite(s) => validate_sql(name, s, source.kind()),
                SourceConfig::Postgres(s) | SourceConfig::Mysql(s) => validate_sql(name, s, source.kind()),
                SourceConfig::Csv(f) => validate_file(name, f, "csv", &config.organisation),
                SourceConfig::Xlsx(f) => validate_file(name, f, "xlsx", &config.organisation),
                SourceConfig::Jsonl(f) => validate_file(name, f, "jsonl", &config.organisation),
                SourceConfig::Bitrix24(_) => Ok(()),
                SourceConfig::AmoCrm(a) => validate_amocrm(name, a),
                SourceConfig::Push(p) => check_source_table(&p.table)
                    .map(|_| ())
                    .map_err(|m| (format!("sources.{name}.table"), m))
                    .and_then(|()| {
                        check_time_zone(p.time_zone.as_ref()).map_err(|m| (format!("sources.{name}.time_zone"), m))
                    }),
            };
            if let Err((key, message)) = checked {
                let at = key_offset(text, &key);
                return Err(err(at..at, key, message));
            }
        }
        if let Err((key, message)) =
            validate_server(&config.server).and_then(|()| validate_tokens(&config.organisation, &config.tokens))
        {
            let at = key_offset(text, &key);
            return Err(err(at..at, key, message));
        }
        Ok(config)
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

/// Canonical tables a source may fill: the organisation comes from this file, and the
/// quarantine is written by the sync runner.
fn check_source_table(table: &str) -> std::result::Result<crate::schema::TableDef, String> {
    match crate::schema::canonical_table(table) {
        Some(t) if !matches!(t.name, "holdings" | "branches" | "quarantine") => Ok(t),
        Some(t) => Err(format!("`{}` is not filled by sources ([organisation] and the sync runner own it)", t.name)),
        None => Err(format!(
            "`{table}` is not a canonical table; sources fill one of: {}",
            crate::schema::canonical_tables()
                .iter()
                .map(|t| t.name)
                .filter(|n| !matches!(*n, "holdings" | "branches" | "quarantine"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `[server]`: errors as (dotted key, message).
fn validate_server(s: &ServerConfig) -> std::result::Result<(), (String, String)> {
    for (key, value) in [
        ("query_timeout_seconds", s.query_timeout_seconds),
        ("query_memory_mb", s.query_memory_mb),
        ("max_concurrent_queries", s.max_concurrent_queries as u64),
        ("max_result_rows", s.max_result_rows as u64),
        ("max_result_mb", s.max_result_mb),
    ] {
        if value == 0 {
            return Err((format!("server.{key}"), "must be at least 1".into()));
        }
    }
    Ok(())
}

/// `[tokens.*]`: errors as (dotted key, message).
fn validate_tokens(
    org: &OrganisationConfig,
    tokens: &BTreeMap<String, TokenConfig>,
) -> std::result::Result<(), (String, String)> {
    let mut hashes = BTreeMap::new();
    for (name, t) in tokens {
        let key = |k: &str| if k.is_empty() { format!("tokens.{name}") } else { format!("tokens.{name}.{k}") };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err((key(""), "token names may use a-z, 0-9, _ and - only".into()));
        }
        if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err((
                key("sha256"),
                "expected the 64 hex digits of the token's SHA-256 (`printf %s \"$TOKEN\" | sha256sum`), never the token itself"
                    .into(),
            ));
        }
        if let Some(other) = hashes.insert(t.sha256.to_ascii_lowercase(), name) {
            return Err((
                key("sha256"),
                format!("the same token hash as `tokens.{other}`; each token must be distinct"),
            ));
        }
        if let Some(e) = &t.expires {
            parse_expiry(e).map_err(|m| (key("expires"), m))?;
        }
        let (wants, other) = match t.role {
            TokenRole::Admin | TokenRole::Analyst => {
                for (k, set) in [("branches", !t.branches.is_empty()), ("holdings", !t.holdings.is_empty())] {
                    if set {
                        return Err((
                            key(k),
                            format!("role `{:?}` sees every branch; remove `{k}` or use role branch/holding", t.role)
                                .to_lowercase(),
                        ));
                    }
                }
                continue;
            }
            TokenRole::Branch => ("branches", ("holdings", &t.holdings)),
            TokenRole::Holding => ("holdings", ("branches", &t.branches)),
        };
        if !other.1.is_empty() {
            return Err((key(other.0), format!("a `{wants}` token lists `{wants}` only; remove `{}`", other.0)));
        }
        let (ids, known): (&Vec<String>, Vec<&str>) = if wants == "branches" {
            (&t.branches, org.branches.iter().map(|b| b.get_ref().id.as_str()).collect())
        } else {
            (&t.holdings, org.holdings.iter().map(|h| h.id.as_str()).collect())
        };
        if ids.is_empty() {
            return Err((
                key(wants),
                format!("list the {wants} the token may see, e.g. {wants} = [\"{}\"]", known.first().unwrap_or(&"msk")),
            ));
        }
        if let Some(unknown) = ids.iter().find(|id| !known.contains(&id.as_str())) {
            return Err((
                key(wants),
                format!("`{unknown}` is not declared in [organisation] (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn check_time_zone(tz: Option<&String>) -> std::result::Result<(), String> {
    match tz {
        Some(tz) if tz.trim().parse::<chrono_tz::Tz>().is_err() => {
            Err(format!("`{tz}` is not an IANA time zone (e.g. Europe/Moscow, Asia/Vladivostok)"))
        }
        _ => Ok(()),
    }
}

/// URL schemes each SQL server kind accepts.
pub fn sql_url_schemes(kind: &str) -> &'static [&'static str] {
    match kind {
        "postgres" => &["postgres", "postgresql"],
        "mysql" => &["mysql", "mariadb"],
        _ => &[],
    }
}

/// `kind = "sqlite" | "postgres" | "mysql"`: errors as (dotted key, message).
fn validate_sql(name: &str, s: &SqlConfig, kind: &str) -> std::result::Result<(), (String, String)> {
    let key = |k: &str| format!("sources.{name}.{k}");
    check_time_zone(s.time_zone.as_ref()).map_err(|m| (key("time_zone"), m))?;
    if kind == "sqlite" {
        for (k, set) in [("url_env", s.url_env.is_some()), ("url", s.url.is_some())] {
            if set {
                return Err((
                    key(k),
                    format!(
                        "source `{name}` is kind = \"sqlite\", which reads the file in `path`; `{k}` is for \
                         kind = \"postgres\" or \"mysql\": remove it or change the kind"
                    ),
                ));
            }
        }
        if s.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
            return Err((
                key("path"),
                format!("source `{name}`: set `path` to the database file (relative to the project directory)"),
            ));
        }
    } else {
        check_server_connection(name, s, kind).map_err(|(k, m)| (key(k), m))?;
    }
    if s.tables.is_empty() {
        return Err((
            key("tables"),
            format!(
                "no tables: add [sources.{name}.tables.<canonical table>] with a `query` selecting canonical column names"
            ),
        ));
    }
    for (table, t) in &s.tables {
        let tkey = format!("tables.{table}");
        check_source_table(table).map_err(|m| (key(&tkey), m))?;
        if t.query.trim().is_empty() {
            return Err((
                key(&format!("{tkey}.query")),
                "the query is empty; select canonical column names, `source_id` included".into(),
            ));
        }
        if t.cursor.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err((
                key(&format!("{tkey}.cursor")),
                "the cursor column name is empty; remove the key to read everything each time".into(),
            ));
        }
    }
    Ok(())
}

/// `kind = "amocrm"`: errors as (dotted key, message).
fn validate_amocrm(name: &str, a: &AmoCrmConfig) -> std::result::Result<(), (String, String)> {
    let key = |k: &str| format!("sources.{name}.{k}");
    match (&a.base_url, &a.simulate_from) {
        (Some(url), _) => check_amocrm_url(url).map_err(|m| (key("base_url"), m))?,
        (None, Some(_)) => {}
        (None, None) => {
            return Err((
                format!("sources.{name}"),
                "set base_url = \"https://<subdomain>.amocrm.ru\" and token_env (or simulate_from for recorded data)"
                    .into(),
            ));
        }
    }
    match (&a.token_env, &a.token_file) {
        (Some(_), Some(_)) => {
            return Err((key("token_file"), "set token_env or token_file, not both".into()));
        }
        (Some(var), None) if var.trim().is_empty() => {
            return Err((key("token_env"), "the variable name is empty".into()));
        }
        (None, None) if a.base_url.is_some() => {
            return Err((
                key("token_env"),
                "set token_env = \"AMO_TOKEN\" (the variable holding the long-lived token) or token_file".into(),
            ));
        }
        _ => {}
    }
    for (pipeline, statuses) in &a.stages {
        if pipeline.trim().parse::<i64>().is_err() {
            return Err((key(&format!("stages.{pipeline}")), format!("`{pipeline}` is not a pipeline id (a number)")));
        }
        for (status, stage) in statuses {
            let skey = key(&format!("stages.{pipeline}.{status}"));
            match status.trim().parse::<i64>() {
                Err(_) => return Err((skey, format!("`{status}` is not a status id (a number)"))),
                Ok(142 | 143) => {
                    return Err((
                        skey,
                        "statuses 142 (won) and 143 (lost) are fixed by amoCRM; remove this entry".into(),
                    ));
                }
                Ok(_) => {}
            }
            if !crate::schema::STAGES.contains(&stage.as_str()) || matches!(stage.as_str(), "won" | "lost") {
                return Err((
                    skey,
                    format!(
                        "`{stage}` is not an open canonical stage (new, contact, proposal, negotiation, contract); \
                         won and lost come from statuses 142 and 143"
                    ),
                ));
            }
        }
    }
    if a.requests_per_second == 0 || a.requests_per_second > AMOCRM_MAX_RPS {
        return Err((
            key("requests_per_second"),
            format!("must be between 1 and {AMOCRM_MAX_RPS} (amoCRM answers 429 above {AMOCRM_MAX_RPS} a second)"),
        ));
    }
    if a.chunk_rows == 0 {
        return Err((key("chunk_rows"), "must be at least 1".into()));
    }
    if let Some(rate) = a.commission_rate
        && (rate.is_sign_negative() || rate > rust_decimal::Decimal::ONE)
    {
        return Err((key("commission_rate"), format!("`{rate}` is not a share between 0 and 1 (e.g. \"0.1\")")));
    }
    Ok(())
}

/// An account address: http(s), a host, no path, query or credentials.
fn check_amocrm_url(url: &str) -> std::result::Result<(), String> {
    let parsed = Url::parse(url.trim())
        .map_err(|e| format!("`{url}` is not a valid URL ({e}); expected https://<subdomain>.amocrm.ru"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("`{url}`: expected https://<subdomain>.amocrm.ru"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL must not carry credentials; put the token in the variable named by token_env".into());
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        return Err(format!(
            "`{url}` has a path or query; give the account address only, e.g. https://<subdomain>.amocrm.ru"
        ));
    }
    Ok(())
}

/// A postgres/mysql source names its server by `url_env` or `url`, never by `path`. Messages
/// never repeat the URL: it may hold a password.
fn check_server_connection(name: &str, s: &SqlConfig, kind: &str) -> std::result::Result<(), (&'static str, String)> {
    let schemes = sql_url_schemes(kind);
    let example = format!("{}://user:password@host:{}/database", schemes[0], if kind == "mysql" { 3306 } else { 5432 });
    if s.path.is_some() {
        return Err((
            "path",
            format!(
                "source `{name}` is kind = \"{kind}\": `path` is for kind = \"sqlite\" only; connect with \
                 url_env = \"ENV_VAR\" naming a variable that holds {example}"
            ),
        ));
    }
    match (&s.url_env, &s.url) {
        (Some(_), Some(_)) => Err((
            "url",
            format!(
                "source `{name}` sets both `url_env` and `url`; keep one (url_env keeps the password out of the file)"
            ),
        )),
        (None, None) => Err((
            "url_env",
            format!(
                "source `{name}` (kind = \"{kind}\") needs a connection: set url_env = \"ENV_VAR\" naming a \
                 variable that holds {example} (or `url`, which puts the password in this file)"
            ),
        )),
        (Some(var), None) => {
            let valid = !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid && !var.starts_with(|c: char| c.is_ascii_digit()) {
                Ok(())
            } else {
                Err((
                    "url_env",
                    format!(
                        "`{var}` is not an environment variable name; use letters, digits and _ (e.g. LEGACY_DB_URL)"
                    ),
                ))
            }
        }
        (None, Some(url)) => match Url::parse(url.expose()) {
            Err(e) => Err(("url", format!("not a valid URL ({e}); expected {example}"))),
            Ok(u) if !schemes.contains(&u.scheme()) => Err((
                "url",
                format!(
                    "the URL scheme is `{}`, but source `{name}` is kind = \"{kind}\": expected {example}",
                    u.scheme()
                ),
            )),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                Err(("url", format!("the URL names no host; expected {example}")))
            }
            Ok(_) => Ok(()),
        },
    }
}

/// `kind = "csv" | "xlsx" | "jsonl"`: errors as (dotted key, message).
fn validate_file(
    name: &str,
    f: &FileConfig,
    kind: &str,
    org: &OrganisationConfig,
) -> std::result::Result<(), (String, String)> {
    let key = |k: &str| format!("sources.{name}.{k}");
    check_file_path(&f.path).map_err(|m| (key("path"), m))?;
    if let Some(option) = f.storage_options.keys().find(|k| is_credential_option(k)) {
        return Err((key(&format!("storage_options.{option}")), CREDENTIALS_IN_FILE.into()));
    }
    match (&f.table, f.tables.is_empty()) {
        (Some(_), false) => {
            return Err((
                key("table"),
                format!(
                    "`table` and [sources.{name}.tables.*] are both set; use `table` with [sources.{name}.columns] \
                     for one table, or only [sources.{name}.tables.<canonical table>] sections for several"
                ),
            ));
        }
        (None, true) => {
            return Err((
                key("table"),
                format!(
                    "set `table` (the canonical table the rows go to, mapped in [sources.{name}.columns]) or add \
                     [sources.{name}.tables.<canonical table>] sections to fill several tables"
                ),
            ));
        }
        (None, false) => {
            for (k, set) in [("columns", !f.columns.is_empty()), ("values", !f.values.is_empty())] {
                if set {
                    return Err((
                        key(k),
                        format!(
                            "with [sources.{name}.tables.*] each table has its own `{k}`: move these under \
                             [sources.{name}.tables.<canonical table>.{k}]"
                        ),
                    ));
                }
            }
        }
        (Some(_), true) => {}
    }
    check_time_zone(f.time_zone.as_ref()).map_err(|m| (key("time_zone"), m))?;
    let only = |k: &str, set: bool, kinds: &str| {
        if set { Err((key(k), format!("`{k}` applies to {kinds} only; remove it"))) } else { Ok(()) }
    };
    match kind {
        "xlsx" => {
            only("encoding", f.encoding.is_some(), "csv files")?;
            only("delimiter", f.delimiter.is_some(), "csv files")?;
        }
        "jsonl" => {
            only("delimiter", f.delimiter.is_some(), "csv files")?;
            only("sheet", f.sheet.is_some(), "xlsx files")?;
            if let Some(e) = &f.encoding
                && !matches!(e.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8")
            {
                return Err((key("encoding"), format!("JSON Lines files are UTF-8, not `{e}`; remove the key")));
            }
        }
        _ => only("sheet", f.sheet.is_some(), "xlsx files")?,
    }
    if let Some(e) = &f.encoding
        && !matches!(e.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8" | "windows-1251" | "cp1251")
    {
        return Err((key("encoding"), format!("`{e}` is not supported; use \"utf-8\" or \"windows-1251\"")));
    }
    if let Some(d) = f.delimiter
        && (!d.is_ascii() || matches!(d, '"' | '\n' | '\r'))
    {
        return Err((
            key("delimiter"),
            format!("`{d}` cannot be a delimiter; use a single ASCII character like `;` or `,`"),
        ));
    }
    if let Some(fmt) = &f.date_format {
        use chrono::format::{Item, StrftimeItems};
        if fmt.trim().is_empty() || StrftimeItems::new(fmt).any(|i| matches!(i, Item::Error)) {
            return Err((
                key("date_format"),
                format!("`{fmt}` is not a chrono format; e.g. \"%d.%m.%Y\" or \"%d.%m.%Y %H:%M\""),
            ));
        }
    }
    for mapping in f.mappings() {
        validate_file_table(name, &mapping, org)?;
    }
    Ok(())
}

/// One table of a file source: the table, its `columns` and `values`.
fn validate_file_table(
    name: &str,
    m: &FileTableMapping<'_>,
    org: &OrganisationConfig,
) -> std::result::Result<(), (String, String)> {
    let section = m.section(name);
    let key = |k: &str| format!("{section}.{k}");
    let table_key = if m.in_tables { section.clone() } else { key("table") };
    let table = check_file_table(m.table).map_err(|msg| (table_key, msg))?;
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    for (column, spec) in m.columns {
        let ckey = key(&format!("columns.{column}"));
        if column == "source_system" {
            return Err((ckey, "`source_system` is always the source's name; remove it".into()));
        }
        if column == "branch_code" && table.name == "branches" {
            return Err((
                ckey,
                "a branch's own id is `branch_id` (default `{source}:{source_id}`); `branch_code` is for rows that \
                 refer to a branch"
                    .into(),
            ));
        }
        if !columns.contains(&column.as_str()) && column != "branch_code" {
            return Err((
                ckey,
                format!(
                    "`{column}` is not a column of `{}` (columns: {}, or branch_code)",
                    table.name,
                    columns.join(", ")
                ),
            ));
        }
        check_column_spec(spec).map_err(|msg| (ckey.clone(), msg))?;
        if table.name == "branches"
            && let Some(constant) = spec.strip_prefix('=')
        {
            match column.as_str() {
                "holding_id" if !org.holdings.iter().any(|h| h.id == constant) => {
                    return Err((ckey, format!("holding `{constant}` is not declared in [[organisation.holdings]]")));
                }
                "time_zone" if constant.parse::<chrono_tz::Tz>().is_err() => {
                    return Err((ckey, format!("`{constant}` is not an IANA time zone (e.g. Europe/Moscow)")));
                }
                _ => {}
            }
        }
    }
    // The table's own id (first column) defaults to `{source}:{source_id}`, `deleted` to false.
    for (i, c) in table.columns.iter().enumerate() {
        let defaulted = c.name == "source_system" || c.name == "deleted" || (i == 0 && c.name.ends_with("_id"));
        if !c.nullable && !defaulted && !m.columns.contains_key(c.name) {
            return Err((
                key("columns"),
                format!(
                    "`{}` requires `{}`: map it to a header, a `{{Header}}` template or a `=constant`",
                    table.name, c.name
                ),
            ));
        }
    }
    for column in m.values.keys() {
        if !m.columns.contains_key(column) {
            return Err((
                key(&format!("values.{column}")),
                format!("`{column}` is not in [{section}.columns]; map it first"),
            ));
        }
    }
    Ok(())
}

/// Canonical tables a file source may fill: those of any source, and `branches` too (a file
/// may describe offices the project file does not list).
fn check_file_table(table: &str) -> std::result::Result<crate::schema::TableDef, String> {
    match crate::schema::canonical_table(table) {
        Some(t) if t.name == "branches" => Ok(t),
        _ => check_source_table(table)
            .map_err(|m| m.replace("; sources fill one of: ", "; file sources fill branches or one of: ")),
    }
}

/// A file source's `path`: a path or a `file://` / `s3://` URL, with an optional glob in its
/// folders or file name (not in the bucket).
fn check_file_path(path: &str) -> std::result::Result<(), String> {
    if path.trim().is_empty() {
        return Err("empty; name a file (`exports/deals.csv`), a glob (`exports/deals_*.csv`) or a URL".into());
    }
    if path.ends_with('/') {
        return Err(format!("`{path}` names a folder; name its files, e.g. `{path}*.csv`"));
    }
    if let Some((scheme, rest)) = path.split_once("://") {
        match scheme {
            "file" if !rest.starts_with('/') => {
                return Err(format!("`{path}` is not an absolute file URL; write file:///absolute/path"));
            }
            "file" => {}
            "s3" | "s3a" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() || bucket.contains(GLOB_CHARS) || key.is_empty() {
                    return Err(format!("`{path}` names no file in a bucket; write s3://bucket/prefix/file.csv"));
                }
            }
            other => {
                return Err(format!(
                    "unsupported scheme `{other}` in `{path}`: use a path, file:///absolute/path or s3://bucket/key"
                ));
            }
        }
    }
    glob::Pattern::new(path).map(|_| ()).map_err(|e| {
        format!("`{path}` is not a valid glob ({e}); `*`, `?`, `[abc]` and `**` are special, `[[]` is a literal `[`")
    })
}

/// A `columns` value: `=constant`, a header, or text with balanced `{Header}` references.
fn check_column_spec(spec: &str) -> std::result::Result<(), String> {
    if spec.starts_with('=') {
        return Ok(());
    }
    if spec.trim().is_empty() {
        return Err("empty; give a header name, a `{Header}` template or a `=constant`".into());
    }
    let mut open = false;
    for c in spec.chars() {
        match (c, open) {
            ('{', false) => open = true,
            ('}', true) => open = false,
            ('{', true) | ('}', false) => {
                return Err(format!("`{spec}` has unbalanced braces; write `text {{Header}} text`"));
            }
            _ => {}
        }
    }
    if open {
        return Err(format!("`{spec}` has a `{{` without its `}}`"));
    }
    Ok(())
}

/// Byte offset of a dotted key, best effort: the deepest `[table]` header the key is under, then
/// the line in that table that sets the key's next part; else the first header under the key
/// (`[a.b.c]` for `a.b`), else the deepest header itself.
fn key_offset(text: &str, key: &str) -> usize {
    let parts: Vec<&str> = key.split('.').collect();
    let mut best: Option<(usize, usize)> = None; // (depth, offset of the header line)
    let mut below: Option<usize> = None; // offset of the first header deeper than the key
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            let name = t.trim_start_matches('[').split(']').next().unwrap_or("");
            let header: Vec<&str> = name.split('.').map(|p| p.trim().trim_matches('"')).collect();
            if header.len() <= parts.len()
                && header == parts[..header.len()]
                && best.is_none_or(|(depth, _)| header.len() > depth)
            {
                best = Some((header.len(), offset));
            }
            if below.is_none() && header.len() > parts.len() && header[..parts.len()] == parts[..] {
                below = Some(offset);
            }
        }
        offset += line.len();
    }
    let Some((depth, start)) = best else { return below.unwrap_or(0) };
    let Some(next) = parts.get(depth) else { return start };
    let start_or_below = below.unwrap_or(start);
    let mut at = start;
    for (i, line) in text[start..].split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            break;
        }
        let quoted = format!("\"{next}\"");
        let rest = t.strip_prefix(next).or_else(|| t.strip_prefix(quoted.as_str()));
        if rest.is_some_and(|r| r.trim_start().starts_with(['=', '.'])) {
            return at;
        }
        at += line.len();
    }
    start_or_below
}

/// The dotted key at a parse error, best effort, from the table header and the key on the line.
fn key_at(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else { return String::new() };
    let before = &text[..span.start.min(text.len())];
    let header = before
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            l.starts_with('[').then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })
        .unwrap_or_default();
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    match (header.is_empty(), key.is_empty() || key.starts_with('[')) {
        (true, _) => key.to_string(),
        (false, true) => header,
        (false, false) => format!("{header}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProjectConfig> {
        ProjectConfig::parse(text, Path::new("/p/dealhouse.toml"))
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse("[warehouse]\nlocation = \"wh\"\n\n[server]\nbnd = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("/p/dealhouse.toml:5"), "{e}");
        assert!(e.contains("server.bnd"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn bad_url_names_line_and_key() {
        let e = parse("\n[warehouse]\nlocation = \"ftp://x/y\"\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:3"), "{e}");
        assert!(e.contains("warehouse.location"), "{e}");
        let e = parse("[sources.crm]\nkind = \"bitrix24\"\nwebhook_url = \"not a url\"\n").unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.crm.webhook_url"), "{e}");
    }

    #[test]
    fn s3_credentials_in_the_file_are_refused() {
        let text = "[warehouse]\nlocation = \"s3://bucket/wh\"\n\n[warehouse.storage_options]\n\
                    aws_endpoint = \"http://127.0.0.1:9000\"\nAWS_SECRET_ACCESS_KEY = \"hunter2\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:6") && e.contains("warehouse.storage_options.AWS_SECRET_ACCESS_KEY"), "{e}");
        assert!(e.contains("environment") && !e.contains("hunter2"), "{e}");
        let ok = parse(&text.replace("AWS_SECRET_ACCESS_KEY = \"hunter2\"", "aws_region = \"us-east-1\"")).unwrap();
        assert_eq!(ok.warehouse.storage_options["aws_region"], "us-east-1");
    }

    #[test]
    fn bad_time_zone_is_rejected() {
        let text = "[[organisation.holdings]]\nid = \"h\"\nname = \"H\"\n\n[[organisation.branches]]\nid = \"b\"\nholding = \"h\"\nname = \"B\"\ncity = \"C\"\ntime_zone = \"Mars/Olympus\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("time_zone") && e.contains("Mars/Olympus"), "{e}");
    }

    #[test]
    fn file_sources_are_validated_with_line_and_key() {
        let head = "[sources.onec]\nkind = \"csv\"\npath = \"a.csv\"\ntable = \"deals\"\n\n[sources.onec.columns]\nsource_id = \"id\"\n";
        let e = parse(&format!("{head}amout = \"Сумма\"\n")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:8") && e.contains("sources.onec.columns.amout"), "{e}");
        assert!(e.contains("not a column of `deals`"), "{e}");
        let e = parse(head).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:6") && e.contains("requires `pipeline`"), "{e}");
        let e = parse(&format!("{head}title = \"crm:{{Сделка\"\n")).unwrap_err().to_string();
        assert!(e.contains(":8") && e.contains("sources.onec.columns.title") && e.contains("without its"), "{e}");
        let e = parse(&head.replace("table = \"deals\"", "table = \"deals\"\ndate_format = \"%d.%Q\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":5") && e.contains("sources.onec.date_format"), "{e}");
        let e = parse(&head.replace("\"deals\"", "\"sales\"")).unwrap_err().to_string();
        assert!(e.contains(":4") && e.contains("sources.onec.table") && e.contains("intake_requests"), "{e}");
        let e = parse(&head.replace("\"csv\"", "\"xlsx\"").replace("path", "encoding = \"cp1251\"\npath"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3") && e.contains("csv files only"), "{e}");
        let ok = "[sources.plans]\nkind = \"xlsx\"\npath = \"p.xlsx\"\ntable = \"plans\"\n[sources.plans.columns]\n\
                  source_id = \"{Месяц}/{Филиал}\"\nmonth = \"Месяц\"\nmetric = \"=calls\"\ntarget = \"План\"\n\
                  branch_code = \"Филиал\"\n[sources.plans.values]\nmetric = { \"Звонки\" = \"calls\" }\n";
        parse(ok).unwrap();
        let e = parse(&ok.replace("metric = {", "kind = {")).unwrap_err().to_string();
        assert!(e.contains(":12") && e.contains("sources.plans.values.kind") && e.contains("map it first"), "{e}");
    }

    #[test]
    fn file_sources_tables_paths_and_kinds_are_validated() {
        let org = "[[organisation.holdings]]\nid = \"mv\"\nname = \"MavenTech\"\n";
        let tables = "[sources.agents.tables.managers.columns]\nsource_id = \"sales_agent\"\nname = \"sales_agent\"\n\
                      branch_code = \"regional_office\"\nactive = \"=true\"\n\n\
                      [sources.agents.tables.branches.columns]\nsource_id = \"regional_office\"\n\
                      name = \"regional_office\"\nholding_id = \"=mv\"\ncity = \"regional_office\"\n\
                      time_zone = \"=America/Chicago\"\n";
        let ok = format!("{org}\n[sources.agents]\nkind = \"csv\"\npath = \"maven/*.csv\"\n\n{tables}");
        let c = parse(&ok).unwrap();
        let SourceConfig::Csv(f) = &c.sources["agents"] else { panic!("{c:?}") };
        let mapped: Vec<(&str, usize, bool)> =
            f.mappings().iter().map(|m| (m.table, m.columns.len(), m.in_tables)).collect();
        assert_eq!(mapped, [("branches", 5, true), ("managers", 4, true)]);

        // `table` on line 8 beside [sources.agents.tables.*].
        let both = ok.replace("path = \"maven/*.csv\"\n", "path = \"maven/*.csv\"\ntable = \"managers\"\n");
        let e = parse(&both).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:8") && e.contains("key `sources.agents.table`"), "{e}");
        assert!(e.contains("both set") && e.contains("[sources.agents.tables.<canonical table>]"), "{e}");
        let neither = format!("{org}\n[sources.agents]\nkind = \"csv\"\npath = \"a.csv\"\n");
        let e = parse(&neither).unwrap_err().to_string();
        assert!(e.contains(":5") && e.contains("sources.agents.table") && e.contains("set `table`"), "{e}");
        let stray = ok.replace(
            "\n\n[sources.agents.tables.managers",
            "\n[sources.agents.columns]\nx = \"y\"\n\n[sources.agents.tables.managers",
        );
        let e = parse(&stray).unwrap_err().to_string();
        assert!(e.contains(":8") && e.contains("sources.agents.columns") && e.contains("move these"), "{e}");

        // Each table's mapping is checked like a single table's, with its own section as the key.
        let e = parse(&ok.replace("name = \"sales_agent\"\n", "")).unwrap_err().to_string();
        assert!(
            e.contains(":9") && e.contains("sources.agents.tables.managers.columns") && e.contains("`name`"),
            "{e}"
        );
        let e = parse(&ok.replace("holding_id = \"=mv\"", "holding_id = \"=south\"")).unwrap_err().to_string();
        assert!(e.contains(":18") && e.contains("tables.branches.columns.holding_id") && e.contains("`south`"), "{e}");
        let e = parse(&ok.replace("\"=America/Chicago\"", "\"=Chicago\"")).unwrap_err().to_string();
        assert!(e.contains(":20") && e.contains("tables.branches.columns.time_zone"), "{e}");
        let e = parse(&ok.replace("source_id = \"regional_office\"", "branch_code = \"regional_office\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":16") && e.contains("tables.branches.columns.branch_code") && e.contains("own id"), "{e}");
        let e = parse(&ok.replace("tables.branches", "tables.offices")).unwrap_err().to_string();
        assert!(e.contains(":15") && e.contains("key `sources.agents.tables.offices`"), "{e}");
        assert!(e.contains("not a canonical table") && e.contains("branches"), "{e}");

        // Paths: globs, URLs, kinds.
        for (path, words) in [
            ("maven/[ab.csv", "not a valid glob"),
            ("ftp://host/a.csv", "unsupported scheme `ftp`"),
            ("file://relative/a.csv", "absolute"),
            ("s3://bucket-*/a.csv", "s3://bucket/prefix/file.csv"),
            ("maven/", "names a folder"),
        ] {
            let e = parse(&ok.replace("maven/*.csv", path)).unwrap_err().to_string();
            assert!(e.contains(":7") && e.contains("key `sources.agents.path`") && e.contains(words), "{path}: {e}");
        }
        for path in ["file:///srv/exports/deals_*.csv", "s3://bucket/exports/**/*.csv", "/srv/a.csv", "a[[]1].csv"] {
            parse(&ok.replace("maven/*.csv", path)).unwrap();
        }
        let secret = ok.replace(
            "path = \"maven/*.csv\"\n",
            "path = \"s3://b/x.csv\"\nstorage_options = { aws_region = \"eu\", aws_secret_access_key = \"hunter2\" }\n",
        );
        let e = parse(&secret).unwrap_err().to_string();
        assert!(e.contains("sources.agents.storage_options.aws_secret_access_key") && !e.contains("hunter2"), "{e}");
        let jsonl = ok.replace("kind = \"csv\"", "kind = \"jsonl\"");
        assert_eq!(parse(&jsonl).unwrap().sources["agents"].kind(), "jsonl");
        let e = parse(&jsonl.replace("path =", "delimiter = \";\"\npath =")).unwrap_err().to_string();
        assert!(e.contains(":7") && e.contains("sources.agents.delimiter") && e.contains("csv files only"), "{e}");
        let e = parse(&jsonl.replace("path =", "encoding = \"cp1251\"\npath =")).unwrap_err().to_string();
        assert!(e.contains("sources.agents.encoding") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn sql_sources_are_validated_with_line_and_key() {
        let text = "[sources.legacy]\nkind = \"sqlite\"\npath = \"l.db\"\n\n[sources.legacy.tables.requests]\nquery = \"select 1\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains(":5") && e.contains("sources.legacy.tables.requests") && e.contains("not a canonical table"),
            "{e}"
        );
        let e = parse(&text.replace("requests]", "branches]")).unwrap_err().to_string();
        assert!(e.contains("[organisation]"), "{e}");
        let e = parse(&text.replace("requests]", "intake_requests]").replace("select 1", " ")).unwrap_err().to_string();
        assert!(e.contains(":6") && e.contains("sources.legacy.tables.intake_requests.query"), "{e}");
        let e = parse(&text.replace("path", "time_zone = \"Moscow\"\npath")).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.legacy.time_zone"), "{e}");
        parse(&text.replace("requests]", "intake_requests]")).unwrap();
    }

    #[test]
    fn amocrm_sources_are_validated_with_line_and_key() {
        let ok = "[sources.amo]\nkind = \"amocrm\"\nbase_url = \"https://acme.amocrm.ru\"\ntoken_env = \"AMO_TOKEN\"\n\
                  commission_rate = \"0.1\"\n\n[sources.amo.stages.3166396]\n33929749 = \"new\"\n33929752 = \"proposal\"\n";
        let c = parse(ok).unwrap();
        let Some(SourceConfig::AmoCrm(a)) = c.sources.get("amo") else { panic!("not parsed as amocrm") };
        assert_eq!(c.sources["amo"].kind(), "amocrm");
        assert_eq!(a.stages["3166396"]["33929752"], "proposal");
        assert_eq!((a.lookback_seconds, a.requests_per_second, a.max_retry_seconds), (300, 7, 300));
        let e = parse(&ok.replace("33929752 = \"proposal\"", "142 = \"contract\"")).unwrap_err().to_string();
        assert!(
            e.contains(":9") && e.contains("sources.amo.stages.3166396.142") && e.contains("fixed by amoCRM"),
            "{e}"
        );
        let e = parse(&ok.replace("\"proposal\"", "\"won\"")).unwrap_err().to_string();
        assert!(e.contains("not an open canonical stage"), "{e}");
        let e = parse(&ok.replace("acme.amocrm.ru", "acme.amocrm.ru/api/v4")).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.amo.base_url") && e.contains("account address only"), "{e}");
        let e = parse(&ok.replace("token_env = \"AMO_TOKEN\"", "token = \"secret\"")).unwrap_err().to_string();
        assert!(e.contains("unknown field `token`") && !e.contains("secret"), "{e}");
        let e = parse(&ok.replace("token_env = \"AMO_TOKEN\"", "")).unwrap_err().to_string();
        assert!(e.contains("sources.amo.token_env"), "{e}");
        let e = parse(&ok.replace("commission_rate = \"0.1\"", "requests_per_second = 10")).unwrap_err().to_string();
        assert!(e.contains(":5") && e.contains("between 1 and 7"), "{e}");
    }

    #[test]
    fn sql_server_sources_need_a_url_and_refuse_a_path() {
        let head = "[sources.crm_db]\nkind = \"postgres\"\n";
        let tables = "\n[sources.crm_db.tables.deals]\nquery = \"select 1\"\n";
        let ok = parse(&format!("{head}url_env = \"CRM_DB_URL\"{tables}")).unwrap();
        let SourceConfig::Postgres(c) = &ok.sources["crm_db"] else { panic!("{ok:?}") };
        assert_eq!((c.url_env.as_deref(), c.path.as_ref()), (Some("CRM_DB_URL"), None));
        assert_eq!(ok.sources["crm_db"].kind(), "postgres");

        let e = parse(&format!("{head}path = \"crm.db\"\nurl_env = \"CRM_DB_URL\"{tables}")).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.crm_db.path"), "{e}");
        assert!(e.contains("source `crm_db`") && e.contains("sqlite") && e.contains("url_env"), "{e}");

        let e = parse(&format!("{head}{tables}")).unwrap_err().to_string();
        assert!(e.contains("sources.crm_db.url_env") && e.contains("postgres://"), "{e}");

        let both = format!("{head}url_env = \"X\"\nurl = \"postgres://u:pw@h/db\"{tables}");
        let e = parse(&both).unwrap_err().to_string();
        assert!(e.contains(":4") && e.contains("sources.crm_db.url") && e.contains("both"), "{e}");
        assert!(!e.contains("pw@"), "a URL in the file is never echoed: {e}");

        let wrong_scheme = format!("{head}url = \"mysql://u:hunter2@h/db\"{tables}");
        let e = parse(&wrong_scheme).unwrap_err().to_string();
        assert!(e.contains("`mysql`") && e.contains("postgres://") && !e.contains("hunter2"), "{e}");
        let e = parse(&format!("{head}url_env = \"1 BAD\"{tables}")).unwrap_err().to_string();
        assert!(e.contains("sources.crm_db.url_env") && e.contains("not an environment variable"), "{e}");

        let mysql = format!(
            "[sources.m]\nkind = \"mysql\"\nurl = \"mariadb://root@127.0.0.1/test\"{}",
            tables.replace("crm_db", "m")
        );
        let parsed = parse(&mysql).unwrap();
        let SourceConfig::Mysql(c) = &parsed.sources["m"] else { panic!() };
        assert_eq!(format!("{:?}", c.url), "Some(<redacted>)");

        let sqlite = "[sources.l]\nkind = \"sqlite\"\npath = \"l.db\"\nurl_env = \"X\"\n[sources.l.tables.deals]\nquery = \"select 1\"\n";
        let e = parse(sqlite).unwrap_err().to_string();
        assert!(e.contains(":4") && e.contains("sources.l.url_env") && e.contains("source `l`"), "{e}");
        let e = parse(&sqlite.replace("path = \"l.db\"\nurl_env = \"X\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("sources.l.path"), "{e}");
    }

    #[test]
    fn switch_date_accepts_toml_dates_and_strings() {
        let base = "[[organisation.holdings]]\nid = \"h\"\nname = \"H\"\n\n[[organisation.branches]]\nid = \"b\"\nholding = \"h\"\nname = \"B\"\ncity = \"C\"\ntime_zone = \"Europe/Moscow\"\n";
        for v in ["2025-04-01", "\"2025-04-01\""] {
            let c = parse(&format!("{base}crm_switch_date = {v}\n")).unwrap();
            assert_eq!(c.organisation.branches[0].get_ref().crm_switch_date, NaiveDate::from_ymd_opt(2025, 4, 1));
        }
        assert!(parse(&format!("{base}crm_switch_date = \"April\"\n")).is_err());
    }

    #[test]
    fn tokens_are_validated_against_the_organisation() {
        let org = "[[organisation.holdings]]\nid = \"h\"\nname = \"H\"\n\n[[organisation.branches]]\nid = \"b\"\nholding = \"h\"\nname = \"B\"\ncity = \"C\"\ntime_zone = \"Europe/Moscow\"\n";
        let hash = "ab".repeat(32);
        let token = |body: &str| format!("{org}\n[tokens.t]\nsha256 = \"{hash}\"\n{body}\n");
        let c = parse(&token("role = \"branch\"\nbranches = [\"b\"]\nexpires = 2026-03-01")).unwrap();
        let t = &c.tokens["t"];
        assert_eq!(t.role, TokenRole::Branch);
        assert_eq!(t.expires_at().map(|e| e.to_rfc3339()), Some("2026-03-01T00:00:00+00:00".into()));
        let c = parse(&token("role = \"admin\"\nexpires = 2026-03-01T09:00:00+03:00")).unwrap();
        assert_eq!(c.tokens["t"].expires_at().map(|e| e.to_rfc3339()), Some("2026-03-01T06:00:00+00:00".into()));
        for (body, key, words) in [
            ("role = \"branch\"\nbranches = [\"x\"]", "tokens.t.branches", "not declared"),
            ("role = \"branch\"", "tokens.t.branches", "list the branches"),
            ("role = \"holding\"\nholdings = [\"h\"]\nbranches = [\"b\"]", "tokens.t.branches", "remove"),
            ("role = \"analyst\"\nbranches = [\"b\"]", "tokens.t.branches", "every branch"),
            ("role = \"admin\"\nexpires = 09:00:00", "tokens.t.expires", "not a date"),
            ("role = \"owner\"", "tokens.t.role", "unknown variant"),
        ] {
            let e = parse(&token(body)).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(words), "{body}: {e}");
            assert!(!e.contains("dealhouse.toml:0"), "{e}");
        }
        let e = parse(&format!("{org}\n[tokens.t]\nsha256 = \"secret\"\nrole = \"admin\"\n")).unwrap_err().to_string();
        assert!(e.contains("tokens.t.sha256") && e.contains("sha256sum"), "{e}");
        let twice = format!(
            "{org}\n[tokens.a]\nsha256 = \"{hash}\"\nrole = \"admin\"\n[tokens.b]\nsha256 = \"{hash}\"\nrole = \"analyst\"\n"
        );
        assert!(parse(&twice).unwrap_err().to_string().contains("same token hash"));
        let e = parse("[server]\nquery_timeout_seconds = 0\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:2") && e.contains("server.query_timeout_seconds"), "{e}");
    }

    #[test]
    fn relative_location_resolves_against_project_dir() {
        let url = resolve_location(Path::new("/p"), "wh").unwrap();
        assert_eq!(url.as_str(), "file:///p/wh/");
        assert_eq!(resolve_location(Path::new("/p"), "s3://b/pre").unwrap().as_str(), "s3://b/pre");
    }
}
