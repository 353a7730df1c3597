//! What the ingest integration tests share: a project directory (from the tests crate's
//! `ProjectDir`) loaded as a `Project`, a local warehouse inside it, sync and queries through
//! `QuerySession`. Each test file builds its `[organisation]` with `dealhouse_tests::project::Org`.
#![allow(dead_code)] // each test target uses its own part

use std::collections::HashMap;
use std::sync::Arc;

use dealhouse_ingest::quarantine::limit::QuarantineLimit;
use dealhouse_ingest::sync::{LogProgress, SourceReport, SyncOptions, SyncReport, sync_project};
use dealhouse_tests::project::ProjectDir;
use dealhouse_warehouse::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use dealhouse_warehouse::datafusion::arrow::datatypes::{Decimal128Type, Int64Type};
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse};
use url::Url;

/// A project under test: its directory, the loaded project and its warehouse (`warehouse/`).
pub struct Env {
    pub dir: ProjectDir,
    pub project: Arc<Project>,
    pub warehouse: Warehouse,
}

/// A project whose `dealhouse.toml` is `toml`, loaded as `dealhouse` loads it.
pub fn env(toml: &str) -> Env {
    let dir = ProjectDir::new(toml);
    let project = load(&dir);
    let warehouse = Warehouse::new(Url::from_directory_path(dir.join("warehouse")).unwrap(), HashMap::new());
    Env { dir, project, warehouse }
}

fn load(dir: &ProjectDir) -> Arc<Project> {
    Arc::new(
        dealhouse_ingest::project::load(dir.path()).unwrap_or_else(|e| panic!("the test project does not load: {e}")),
    )
}

impl Env {
    /// Writes a file into the project directory.
    pub fn write(&self, rel: &str, bytes: &[u8]) {
        self.dir.write(rel, bytes);
    }

    /// The same directory and warehouse under an edited dealhouse.toml.
    pub fn reconfigure(&mut self, toml: &str) {
        self.dir.set_config(toml);
        self.project = load(&self.dir);
    }

    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.join(rel)
    }

    /// The cursor `source` last committed to `table`.
    pub async fn cursor(&self, table: &str, source: &str) -> Option<String> {
        self.warehouse.last_cursor(table, source).await.unwrap()
    }

    /// Syncs every source with no quarantine limit: the fixtures quarantine on purpose, and
    /// the limit has its own tests (`sync_with`).
    pub async fn sync(&self) -> SyncReport {
        let options = SyncOptions { max_quarantined: Some(QuarantineLimit::Unlimited), ..Default::default() };
        self.sync_with(&options).await
    }

    pub async fn sync_with(&self, options: &SyncOptions) -> SyncReport {
        sync_project(self.project.clone(), &self.warehouse, options, &LogProgress).await.unwrap()
    }

    pub async fn query(&self, sql: &str) -> Vec<RecordBatch> {
        QuerySession::open(&self.warehouse).await.unwrap().query(sql).await.unwrap()
    }

    /// Every value as display text, row by row.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let mut out = vec![];
        for b in self.query(sql).await {
            for r in 0..b.num_rows() {
                out.push(
                    b.columns()
                        .iter()
                        .map(|c| if c.is_null(r) { "NULL".into() } else { array_value_to_string(c, r).unwrap() })
                        .collect(),
                );
            }
        }
        out
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let b = self.query(sql).await;
        b[0].column(0).as_primitive::<Int64Type>().value(0)
    }

    /// The stored Decimal128 integers of the first column (kopecks for money).
    pub async fn scaled(&self, sql: &str) -> Vec<Option<i128>> {
        let mut out = vec![];
        for b in self.query(sql).await {
            let a = b.column(0).as_primitive::<Decimal128Type>();
            out.extend((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i))));
        }
        out
    }
}

pub fn source<'a>(report: &'a SyncReport, name: &str) -> &'a SourceReport {
    report.sources.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no source {name} in {report:?}"))
}
