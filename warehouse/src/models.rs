//! SQL models: one `.sql` file per model (built-ins under `warehouse/models/`, a project's own
//! under `<project>/models/`, overriding built-ins by name), their dependency DAG read from the
//! SQL itself, the runner that materialises each as a Delta table, and their data tests.
//!
//! A model file starts with a header of `--` comments:
//!
//! ```sql
//! -- One row per deal, with its holding and the close time from the final stage change.
//! -- column deal_id: canonical deal id
//! -- test: unique(deal_id)
//! -- test: not_null(deal_id, status)
//! -- test: accepted_values(status: open, won, lost)
//! -- test: accepted_values(activity_type: vocabularies.activity_type)
//! -- test: relationships(branch_id -> branches.branch_id)
//! -- test: sql: select * from fct_deal where amount < 0
//! -- incremental: deal_id from deals.deal_id, deal_stage_changes.deal_id
//! select ...
//! ```
//!
//! An `incremental:` model is rebuilt only for the keys whose input rows changed since its last
//! build: `KEY from table.column, ...` names the model's key column and, for each canonical table
//! whose rows feed a key's rows, the column holding that key. The keys are found from the Delta
//! files added or removed since the versions the last build read ([`crate::FileDiff`]); the
//! model's SQL runs filtered to them and its rows for them are replaced in one commit. Any other
//! change (another canonical input, the model's SQL, `--full-refresh`, a version no longer
//! readable) rebuilds it whole, so both ways give the same table.
//!
//! Besides the canonical tables, models read [`PARAMS_TABLE`]: one row of the project's `[kpi]`
//! settings ([`BuildOptions::kpi`]), registered in the build's session only (it is
//! configuration, not data: no Delta table, so a query reads the values from the marts that
//! carry them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use futures::future::join_all;

use crate::config::KpiConfig;
use crate::config::{VOCABULARIES, VocabulariesConfig};
use crate::session::QuerySession;
use crate::{CommitMeta, Error, Project, Result, Warehouse};

/// The one-row table of build parameters models read (`select churn_lookback_months from params`).
pub const PARAMS_TABLE: &str = "params";

include!(concat!(env!("OUT_DIR"), "/builtin_models.rs"));

/// A model: a name, where it came from, its SQL, docs, tests and dependencies.
#[derive(Debug, Clone)]
pub struct Model {
    /// Table name the model materialises (the file stem).
    pub name: String,
    /// `models/marts/x.sql` for built-ins, the file path for project models.
    pub origin: String,
    /// The whole file.
    pub sql: String,
    /// First header line.
    pub description: String,
    /// `-- column name: doc` lines.
    pub columns: Vec<(String, String)>,
    /// `-- test:` lines.
    pub tests: Vec<DataTest>,
    /// Tables the SQL reads (CTE names excluded).
    pub depends_on: BTreeSet<String>,
    /// Set for incremental models (`-- incremental:`).
    pub incremental: Option<Incremental>,
}

/// How an incremental model finds the keys to rebuild.
#[derive(Debug, Clone, PartialEq)]
pub struct Incremental {
    /// The model's column whose values partition its rows (all rows of a key are rebuilt together).
    pub key: String,
    /// Canonical table -> its column holding the key.
    pub changes: BTreeMap<String, String>,
}

fn parse_incremental(origin: &str, line: usize, spec: &str) -> Result<Incremental> {
    let bad = |why: &str| Error::ModelFile {
        origin: format!("{origin}:{line}"),
        message: format!("`-- incremental: {spec}`: {why}; write `-- incremental: KEY from table.column, ...`"),
    };
    let (key, sources) = spec.split_once(" from ").ok_or_else(|| bad("missing ` from `"))?;
    let mut changes = BTreeMap::new();
    for source in sources.split(',') {
        let (table, column) = source.trim().split_once('.').ok_or_else(|| bad("expected table.column"))?;
        changes.insert(table.trim().to_string(), column.trim().to_string());
    }
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(bad("the key is one column name"));
    }
    Ok(Incremental { key: key.to_string(), changes })
}

/// A data test declared in a model header.
#[derive(Debug, Clone, PartialEq)]
pub enum DataTest {
    /// No two rows share these columns.
    Unique(Vec<String>),
    /// These columns have no nulls.
    NotNull(Vec<String>),
    /// The column only holds these values; `vocabularies.NAME` stands for a vocabulary's values
    /// as the project configures them (`[vocabularies]`, the standard ones included).
    AcceptedValues(String, Vec<String>),
    /// Every non-null value of the column exists in `table.column`.
    Relationships(String, String, String),
    /// This query returns no rows.
    Sql(String),
}

impl DataTest {
    /// A query returning the offending rows (empty = pass); vocabulary references read the
    /// project's `[vocabularies]`.
    pub fn query(&self, model: &str, vocabularies: &VocabulariesConfig) -> String {
        match self {
            DataTest::Unique(cols) => {
                let c = cols.join(", ");
                format!("select {c}, count(*) as n from {model} group by {c} having count(*) > 1")
            }
            DataTest::NotNull(cols) => format!(
                "select * from {model} where {}",
                cols.iter().map(|c| format!("{c} is null")).collect::<Vec<_>>().join(" or ")
            ),
            DataTest::AcceptedValues(col, values) => {
                let mut accepted: Vec<&str> = vec![];
                for v in values {
                    match v.strip_prefix(VOCABULARY_PREFIX).and_then(|name| vocabularies.values(name)) {
                        Some(list) => accepted.extend(list),
                        None => accepted.push(v),
                    }
                }
                format!(
                    "select {col}, count(*) as n from {model} where {col} not in ({}) group by {col}",
                    accepted.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect::<Vec<_>>().join(", ")
                )
            }
            DataTest::Relationships(col, table, other) => format!(
                "select m.{col} from {model} m left join (select distinct {other} as k from {table}) r \
                 on m.{col} = r.k where m.{col} is not null and r.k is null"
            ),
            DataTest::Sql(sql) => sql.clone(),
        }
    }

    /// Short label, e.g. `unique(deal_id)`.
    pub fn label(&self) -> String {
        match self {
            DataTest::Unique(c) => format!("unique({})", c.join(", ")),
            DataTest::NotNull(c) => format!("not_null({})", c.join(", ")),
            DataTest::AcceptedValues(c, v) => format!("accepted_values({c}: {})", v.join(", ")),
            DataTest::Relationships(c, t, o) => format!("relationships({c} -> {t}.{o})"),
            DataTest::Sql(s) => format!("sql: {s}"),
        }
    }
}

/// How an `accepted_values` test names a configured vocabulary: `vocabularies.client_kind`.
const VOCABULARY_PREFIX: &str = "vocabularies.";

fn parse_test(origin: &str, line_no: usize, spec: &str) -> Result<DataTest> {
    let bad = |why: &str| Error::ModelFile {
        origin: format!("{origin}:{line_no}"),
        message: format!("bad test `{spec}`: {why}"),
    };
    if let Some(sql) = spec.strip_prefix("sql:") {
        return Ok(DataTest::Sql(sql.trim().to_string()));
    }
    let (kind, rest) = spec.split_once('(').ok_or_else(|| bad("expected kind(args)"))?;
    let args = rest.trim_end().strip_suffix(')').ok_or_else(|| bad("missing `)`"))?;
    let list = |s: &str| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect::<Vec<_>>();
    match kind.trim() {
        "unique" => Ok(DataTest::Unique(list(args))),
        "not_null" => Ok(DataTest::NotNull(list(args))),
        "accepted_values" => {
            let (col, values) = args.split_once(':').ok_or_else(|| bad("expected (column: v1, v2)"))?;
            let values = list(values);
            for v in &values {
                if let Some(name) = v.strip_prefix(VOCABULARY_PREFIX)
                    && !VOCABULARIES.iter().any(|(n, _)| *n == name)
                {
                    let known: Vec<String> =
                        VOCABULARIES.iter().map(|(n, _)| format!("{VOCABULARY_PREFIX}{n}")).collect();
                    return Err(bad(&format!("`{v}` is not a vocabulary; use one of {}", known.join(", "))));
                }
            }
            Ok(DataTest::AcceptedValues(col.trim().to_string(), values))
        }
        "relationships" => {
            let (col, target) = args.split_once("->").ok_or_else(|| bad("expected (column -> table.column)"))?;
            let (table, other) = target.trim().split_once('.').ok_or_else(|| bad("expected table.column"))?;
            Ok(DataTest::Relationships(col.trim().into(), table.into(), other.into()))
        }
        other => Err(bad(&format!("unknown test `{other}` (unique, not_null, accepted_values, relationships, sql:)"))),
    }
}

impl Model {
    /// Parses a model file: header docs and tests, and dependencies from the SQL.
    pub fn parse(name: &str, origin: &str, sql: &str) -> Result<Self> {
        let mut description = String::new();
        let mut columns = vec![];
        let mut tests = vec![];
        let mut incremental = None;
        for (i, line) in sql.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix("--") else {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            };
            let comment = comment.trim();
            if let Some(spec) = comment.strip_prefix("test:") {
                tests.push(parse_test(origin, i + 1, spec.trim())?);
            } else if let Some(spec) = comment.strip_prefix("incremental:") {
                incremental = Some(parse_incremental(origin, i + 1, spec.trim())?);
            } else if let Some(col) = comment.strip_prefix("column ") {
                let (c, doc) = col.split_once(':').unwrap_or((col, ""));
                columns.push((c.trim().to_string(), doc.trim().to_string()));
            } else if description.is_empty() {
                description = comment.to_string();
            }
        }
        let depends_on = dependencies(origin, sql)?;
        if let Some(inc) = &incremental
            && !columns.is_empty()
            && !columns.iter().any(|(c, _)| *c == inc.key)
        {
            return Err(Error::ModelFile {
                origin: origin.to_string(),
                message: format!("incremental key `{}` is not a documented column", inc.key),
            });
        }
        Ok(Model {
            name: name.into(),
            origin: origin.into(),
            sql: sql.into(),
            description,
            columns,
            tests,
            depends_on,
            incremental,
        })
    }
}

/// Tables a statement reads, CTEs excluded, from DataFusion's own resolution.
fn dependencies(origin: &str, sql: &str) -> Result<BTreeSet<String>> {
    let ctx = crate::session::new_context();
    let state = ctx.state();
    let statement = state.sql_to_statement(sql, &datafusion::config::Dialect::Generic).map_err(|e| {
        let mut msg = e.to_string();
        // sqlparser gives no position for an unexpected end of input: it is the last line.
        if !msg.contains("Line:") && msg.contains("EOF") {
            let last = sql.trim_end().lines().count().max(1);
            msg.push_str(&format!(" at Line: {last}, end of input"));
        }
        Error::ModelSql { origin: origin.to_string(), message: format!("SQL syntax error: {msg}"), source: e }
    })?;
    let refs = state.resolve_table_references(&statement).map_err(|e| Error::ModelSql {
        origin: origin.to_string(),
        message: e.to_string(),
        source: e,
    })?;
    Ok(refs.into_iter().map(|r| r.table().to_string()).collect())
}

/// All models: built-ins, then the project's `models/` folder overriding by name.
pub fn load_models(project_models: Option<&Path>) -> Result<BTreeMap<String, Model>> {
    let mut models = BTreeMap::new();
    for (path, sql) in BUILTIN_MODELS {
        let name = Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        models.insert(name.to_string(), Model::parse(name, path, sql)?);
    }
    if let Some(dir) = project_models.filter(|d| d.is_dir()) {
        for path in sql_files(dir)? {
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let sql = std::fs::read_to_string(&path)?;
            let origin = path.display().to_string();
            models.insert(name.clone(), Model::parse(&name, &origin, &sql)?);
        }
    }
    Ok(models)
}

fn sql_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(sql_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Orders models so each comes after what it reads, as levels of independent models.
/// Unknown tables and cycles are errors naming the files. [`PARAMS_TABLE`] is always there.
pub fn plan(models: &BTreeMap<String, Model>, base_tables: &BTreeSet<String>) -> Result<Vec<Vec<String>>> {
    for m in models.values() {
        for dep in &m.depends_on {
            if !models.contains_key(dep) && !base_tables.contains(dep) && dep != PARAMS_TABLE {
                return Err(Error::ModelFile {
                    origin: m.origin.clone(),
                    message: format!(
                        "reads unknown table `{dep}` (not a canonical table, `{PARAMS_TABLE}` nor a model)"
                    ),
                });
            }
        }
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut levels = vec![];
    while done.len() < models.len() {
        let level: Vec<String> = models
            .values()
            .filter(|m| !done.contains(&m.name))
            .filter(|m| m.depends_on.iter().all(|d| done.contains(d) || !models.contains_key(d)))
            .map(|m| m.name.clone())
            .collect();
        if level.is_empty() {
            let stuck: Vec<String> =
                models.values().filter(|m| !done.contains(&m.name)).map(|m| m.origin.clone()).collect();
            return Err(Error::ModelCycle { models: stuck });
        }
        done.extend(level.iter().cloned());
        levels.push(level);
    }
    Ok(levels)
}

/// The outcome of one model in a build.
#[derive(Debug, Clone)]
pub struct ModelRun {
    /// Model name.
    pub name: String,
    /// Rows written, or the error (the previous version is kept).
    pub result: std::result::Result<u64, String>,
    /// How it was built (meaningful when `result` is Ok).
    pub how: Materialized,
}

/// How a model's table was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Materialized {
    /// Recomputed whole.
    #[default]
    Full,
    /// Only the rows of this many keys were recomputed and replaced.
    Incremental {
        /// Keys rebuilt.
        keys: usize,
    },
    /// Its inputs had not changed since its last build: nothing written.
    UpToDate,
}

impl std::fmt::Display for Materialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Materialized::Full => write!(f, "full"),
            Materialized::Incremental { keys } => write!(f, "incremental, {keys} keys"),
            Materialized::UpToDate => write!(f, "up to date"),
        }
    }
}

/// Build options.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Rebuild incremental models whole.
    pub full_refresh: bool,
    /// The `[kpi]` settings, which models read as the [`PARAMS_TABLE`].
    pub kpi: KpiConfig,
}

impl BuildOptions {
    /// The options a project's `dealhouse.toml` sets (its `[kpi]`), without a full refresh.
    pub fn for_project(project: &Project) -> Self {
        Self { kpi: project.config.kpi, ..Default::default() }
    }
}

/// The [`PARAMS_TABLE`]: `churn_lookback_months` (Int64) and `conversion_window_days` (Int64,
/// null = the models use the median sales cycle).
pub fn params_table(kpi: &KpiConfig) -> Result<std::sync::Arc<datafusion::datasource::MemTable>> {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("churn_lookback_months", DataType::Int64, false),
        Field::new("conversion_window_days", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            std::sync::Arc::new(Int64Array::from(vec![i64::from(kpi.churn_lookback_months)])),
            std::sync::Arc::new(Int64Array::from(vec![kpi.conversion_window_days.map(i64::from)])),
        ],
    )?;
    Ok(std::sync::Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![vec![batch]])?))
}

/// Selection for a build: `NAME` or `NAME+` (the model and everything downstream).
pub fn select(models: &BTreeMap<String, Model>, selector: &str) -> Result<BTreeSet<String>> {
    let (name, downstream) = match selector.strip_suffix('+') {
        Some(n) => (n, true),
        None => (selector, false),
    };
    if !models.contains_key(name) {
        return Err(Error::UnknownModel { name: name.to_string(), known: models.keys().cloned().collect() });
    }
    let mut chosen = BTreeSet::from([name.to_string()]);
    if downstream {
        loop {
            let more: Vec<String> = models
                .values()
                .filter(|m| !chosen.contains(&m.name) && m.depends_on.iter().any(|d| chosen.contains(d)))
                .map(|m| m.name.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            chosen.extend(more);
        }
    }
    Ok(chosen)
}

/// Runs the selected models in dependency order (incremental models incrementally); independent
/// models of a level run in parallel. A failing model keeps its previous table and its dependents
/// are skipped.
pub async fn run(
    warehouse: &Warehouse,
    models: &BTreeMap<String, Model>,
    selection: Option<&BTreeSet<String>>,
    on_done: impl FnMut(&ModelRun),
) -> Result<Vec<ModelRun>> {
    run_with(warehouse, models, selection, BuildOptions::default(), on_done).await
}

/// [`run`] with options.
pub async fn run_with(
    warehouse: &Warehouse,
    models: &BTreeMap<String, Model>,
    selection: Option<&BTreeSet<String>>,
    options: BuildOptions,
    mut on_done: impl FnMut(&ModelRun),
) -> Result<Vec<ModelRun>> {
    warehouse.ensure_canonical().await?;
    let mut session = QuerySession::open(warehouse).await?;
    session.register(PARAMS_TABLE, params_table(&options.kpi)?)?;
    let base: BTreeSet<String> = crate::schema::canonical_tables().iter().map(|t| t.name.to_string()).collect();
    let levels = plan(models, &base)?;
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut runs = vec![];
    for level in levels {
        let mut todo = vec![];
        for name in level {
            if selection.is_some_and(|s| !s.contains(&name)) {
                continue;
            }
            let model = &models[&name];
            if let Some(dep) = model.depends_on.iter().find(|d| failed.contains(*d)) {
                failed.insert(name.clone());
                let run = ModelRun {
                    name,
                    result: Err(format!("skipped: upstream model `{dep}` failed")),
                    how: Materialized::Full,
                };
                on_done(&run);
                runs.push(run);
                continue;
            }
            todo.push(model);
        }
        let results = join_all(todo.iter().map(|m| materialise(warehouse, &session, models, m, options))).await;
        for (model, result) in todo.into_iter().zip(results) {
            let (result, how) = match result {
                Ok((rows, how)) => (Ok(rows), how),
                Err(e) => (Err(e.to_string()), Materialized::Full),
            };
            let run = ModelRun { name: model.name.clone(), result, how };
            if run.result.is_err() {
                failed.insert(model.name.clone());
            } else if let Some(p) = warehouse.provider(&model.name).await? {
                session.register(&model.name, p)?;
            }
            on_done(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

/// What a build read, stored in the model table's commit so the next build can tell what changed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct BuildState {
    /// Hash of the model's SQL: an edited model is rebuilt whole.
    sql: String,
    /// Canonical input table -> the version this build read (-1 = absent).
    inputs: BTreeMap<String, i64>,
}

/// The canonical tables a model reads, through the models it reads.
fn canonical_inputs(model: &Model, models: &BTreeMap<String, Model>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<&Model> = vec![model];
    let mut seen = BTreeSet::new();
    while let Some(m) = todo.pop() {
        for dep in &m.depends_on {
            match models.get(dep) {
                Some(upstream) if seen.insert(dep.clone()) => todo.push(upstream),
                Some(_) => {}
                None => {
                    out.insert(dep.clone());
                }
            }
        }
    }
    out
}

fn sql_hash(sql: &str) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: stable from run to run; a toolchain that changes it only costs
    // one full rebuild.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sql.hash(&mut h);
    format!("{:016x}", h.finish())
}

async fn materialise(
    warehouse: &Warehouse,
    session: &QuerySession,
    models: &BTreeMap<String, Model>,
    model: &Model,
    options: BuildOptions,
) -> Result<(u64, Materialized)> {
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| Error::ModelBuild {
        model: model.name.clone(),
        origin: model.origin.clone(),
        line: unknown_name_line(&model.sql, &e.to_string()),
        source: e,
    };
    let inputs = canonical_inputs(model, models);
    // The parameters are not a Delta table with versions: a model that reads them is keyed by
    // their values too, so a changed `[kpi]` rebuilds it whole.
    let sql = match inputs.contains(PARAMS_TABLE) {
        true => sql_hash(&format!("{}\n-- params: {:?}", model.sql, options.kpi)),
        false => sql_hash(&model.sql),
    };
    let mut state = BuildState { sql, inputs: BTreeMap::new() };
    // The versions the build's session pinned when it opened, not the tables' latest: a sync
    // committing during the build is then the next build's change instead of being recorded as
    // read and never built (the rows come from the session).
    for table in inputs.into_iter().filter(|t| t != PARAMS_TABLE) {
        let version = session.version_of(&table).unwrap_or(-1);
        state.inputs.insert(table, version);
    }
    let meta = CommitMeta {
        operation: "build".into(),
        source: model.name.clone(),
        cursor: Some(serde_json::to_string(&state).map_err(|e| fail(e.into()))?),
    };
    if let Some(inc) = &model.incremental
        && !options.full_refresh
        && let Some(keys) = changed_keys(warehouse, model, inc, &state).await?
    {
        if keys.is_empty() {
            return Ok((0, Materialized::UpToDate));
        }
        let filter = datafusion::prelude::col(inc.key.as_str())
            .in_list(keys.iter().cloned().map(datafusion::prelude::lit).collect(), false);
        let df =
            session.context().sql(&model.sql).await.and_then(|df| df.filter(filter)).map_err(|e| fail(e.into()))?;
        let schema = df.schema().as_arrow().clone();
        let batches: Vec<RecordBatch> = df.collect().await.map_err(|e| fail(e.into()))?;
        let stats = warehouse
            .replace_keys(&model.name, std::sync::Arc::new(schema), batches, &inc.key, &keys, &meta)
            .await
            .map_err(|e| fail(e.into()))?;
        return Ok((stats.inserted, Materialized::Incremental { keys: keys.len() }));
    }
    let df = session.context().sql(&model.sql).await.map_err(|e| fail(e.into()))?;
    let schema = df.schema().as_arrow().clone();
    let batches: Vec<RecordBatch> = df.collect().await.map_err(|e| fail(e.into()))?;
    let stats = warehouse
        .overwrite(&model.name, std::sync::Arc::new(schema), batches, &meta)
        .await
        .map_err(|e| fail(e.into()))?;
    Ok((stats.inserted, Materialized::Full))
}

/// The line of a model's SQL where a name DataFusion could not resolve first appears: planning
/// errors carry no position, and "No field named x" in a 200-line model is hard to find.
fn unknown_name_line(sql: &str, error: &str) -> Option<usize> {
    let rest = error.split("No field named ").nth(1)?;
    let quoted = rest.split(|c: char| c.is_whitespace() || c == ',').next()?.trim_end_matches('.');
    let name = quoted.rsplit('.').next()?.trim_matches('"');
    if name.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("--")).find_map(|(i, line)| {
        line.match_indices(name)
            .any(|(at, _)| {
                let before = line[..at].chars().next_back().is_none_or(|c| !is_word(c));
                let after = line[at + name.len()..].chars().next().is_none_or(|c| !is_word(c));
                before && after
            })
            .then_some(i + 1)
    })
}

/// The keys whose rows must be rebuilt, or `None` when the model must be rebuilt whole.
async fn changed_keys(
    warehouse: &Warehouse,
    model: &Model,
    inc: &Incremental,
    now: &BuildState,
) -> Result<Option<std::collections::HashSet<datafusion::scalar::ScalarValue>>> {
    let Some(last) = warehouse.last_commit(&model.name, &model.name, true).await? else { return Ok(None) };
    let Some(previous) = last.cursor.and_then(|c| serde_json::from_str::<BuildState>(&c).ok()) else {
        return Ok(None);
    };
    if previous.sql != now.sql || previous.inputs.keys().ne(now.inputs.keys()) {
        return Ok(None);
    }
    let mut keys = std::collections::HashSet::new();
    for (table, &version) in &now.inputs {
        let before = previous.inputs[table];
        if before == version {
            continue;
        }
        if before < 0 {
            return Ok(None);
        }
        let Some(diff) = warehouse.files_changed_between(table, before, version).await? else { return Ok(None) };
        if diff.is_empty() {
            continue;
        }
        match inc.changes.get(table) {
            Some(column) => keys.extend(warehouse.values_in_diff(table, (before, version), &diff, column).await?),
            None => return Ok(None),
        }
    }
    Ok(Some(keys))
}

/// The outcome of one data test.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// Model name.
    pub model: String,
    /// Test label.
    pub test: String,
    /// Offending rows (0 = pass) or the error.
    pub result: std::result::Result<usize, String>,
    /// The first offending row as `column = value` pairs: what a failure is about (a test that
    /// selects the currency, the day and the reason names the rate to add).
    pub first_row: Option<String>,
}

/// Runs the data tests of the given models against the current tables; `accepted_values` of a
/// vocabulary read the project's `vocabularies`.
pub async fn run_tests(
    warehouse: &Warehouse,
    models: &BTreeMap<String, Model>,
    only: Option<&BTreeSet<String>>,
    vocabularies: &VocabulariesConfig,
) -> Result<Vec<TestRun>> {
    let session = QuerySession::open(warehouse).await?;
    let mut out = vec![];
    for m in models.values().filter(|m| only.is_none_or(|s| s.contains(&m.name))) {
        for t in &m.tests {
            let (result, first_row) = match session.context().sql(&t.query(&m.name, vocabularies)).await {
                Ok(df) => match df.collect().await {
                    Ok(batches) => (Ok(batches.iter().map(|b| b.num_rows()).sum()), first_row(&batches)),
                    Err(e) => (Err(e.to_string()), None),
                },
                Err(e) => (Err(e.to_string()), None),
            };
            out.push(TestRun { model: m.name.clone(), test: t.label(), result, first_row });
        }
    }
    Ok(out)
}

/// The first row of `batches` as `column = value, ...`.
fn first_row(batches: &[RecordBatch]) -> Option<String> {
    use datafusion::arrow::array::Array;
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let schema = batch.schema();
    let cells: Vec<String> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let value = if column.is_null(0) {
                "NULL".to_string()
            } else {
                datafusion::arrow::util::display::array_value_to_string(column, 0).unwrap_or_else(|e| e.to_string())
            };
            format!("{} = {value}", field.name())
        })
        .collect();
    Some(cells.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, sql: &str) -> Model {
        Model::parse(name, &format!("{name}.sql"), sql).unwrap()
    }

    #[test]
    fn dependencies_come_from_the_sql_without_ctes() {
        let m = model(
            "x",
            "-- doc\n-- test: unique(a)\nwith d as (select * from deals) select * from d join clients c on true",
        );
        assert_eq!(m.depends_on, BTreeSet::from(["deals".to_string(), "clients".to_string()]));
        assert_eq!(m.description, "doc");
        assert_eq!(m.tests, vec![DataTest::Unique(vec!["a".into()])]);
    }

    #[test]
    fn accepted_values_of_a_vocabulary_read_the_configured_list() {
        let m =
            model("x", "-- doc\n-- test: accepted_values(kind: vocabularies.client_kind, none)\nselect * from clients");
        let test = &m.tests[0];
        assert_eq!(test.label(), "accepted_values(kind: vocabularies.client_kind, none)");
        let standard = test.query("x", &VocabulariesConfig::default());
        assert!(
            standard.contains("not in ('promoter', 'venue', 'theatre', 'sports_club', 'agency', 'other', 'none')"),
            "{standard}"
        );
        let configured = VocabulariesConfig { client_kind: vec!["promoter-agency".into()], ..Default::default() };
        let q = test.query("x", &configured);
        assert!(q.contains("'other', 'promoter-agency', 'none')"), "{q}");
        let e = Model::parse("y", "y.sql", "-- test: accepted_values(kind: vocabularies.kinds)\nselect 1").unwrap_err();
        assert!(e.to_string().contains("y.sql:1") && e.to_string().contains("vocabularies.client_kind"), "{e}");
    }

    #[test]
    fn plan_orders_levels_and_names_cycles_and_unknown_tables() {
        let base = BTreeSet::from(["deals".to_string()]);
        let mut ms = BTreeMap::new();
        ms.insert("a".into(), model("a", "select * from deals"));
        ms.insert("b".into(), model("b", "select * from a"));
        ms.insert("c".into(), model("c", "select * from deals"));
        assert_eq!(plan(&ms, &base).unwrap(), vec![vec!["a".to_string(), "c".to_string()], vec!["b".to_string()]]);
        ms.insert("a".into(), model("a", "select * from b"));
        let e = plan(&ms, &base).unwrap_err().to_string();
        assert!(e.contains("cycle") && e.contains("a.sql") && e.contains("b.sql"), "{e}");
        ms.insert("a".into(), model("a", "select * from nowhere"));
        let e = plan(&ms, &base).unwrap_err().to_string();
        assert!(e.contains("a.sql") && e.contains("nowhere"), "{e}");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let e = Model::parse("bad", "models/bad.sql", "-- doc\nselect *\nfrom deals\nwhere (").unwrap_err().to_string();
        assert!(e.contains("models/bad.sql") && e.contains("Line: 4"), "{e}");
    }

    #[test]
    fn unknown_column_errors_point_at_the_line() {
        let sql = "-- doc\n-- column a: x\nselect a,\n  amount_typo\nfrom deals";
        let e = "Schema error: No field named amount_typo. Valid fields are deals.amount.";
        assert_eq!(unknown_name_line(sql, e), Some(4));
        let e = "Schema error: No field named d.\"amount_typo\". Valid fields are d.amount.";
        assert_eq!(unknown_name_line(sql, e), Some(4));
        assert_eq!(unknown_name_line(sql, "Execution error: division by zero"), None);
        let sql = "-- Broken on purpose.\nselect\n    stage,\n    open_amount_typo\nfrom fct_deal\n";
        assert_eq!(
            unknown_name_line(sql, "Schema error: No field named open_amount_typo.\nValid fields are x."),
            Some(4)
        );
    }

    #[test]
    fn builtin_models_parse_and_form_a_dag() {
        let models = load_models(None).unwrap();
        assert!(models.contains_key("fct_deal"));
        let base = crate::schema::canonical_tables().iter().map(|t| t.name.to_string()).collect();
        plan(&models, &base).unwrap();
    }
}
