//! What the file and SQL source tests share: a project built from a small TOML in a temp dir,
//! a local warehouse, queries through `QuerySession`.
#![allow(dead_code)] // each test target uses its own part

use std::collections::HashMap;
use std::sync::Arc;

use dealhouse_ingest::sync::{LogProgress, SourceReport, SyncOptions, SyncReport, sync_project};
use dealhouse_warehouse::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use dealhouse_warehouse::datafusion::arrow::datatypes::{Decimal128Type, Int64Type};
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse};
use tempfile::TempDir;
use url::Url;

pub struct Env {
    pub dir: TempDir,
    pub project: Arc<Project>,
    pub warehouse: Warehouse,
}

pub fn env(toml: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let config = dealhouse_ingest::project::parse(toml, &dir.path().join("dealhouse.toml")).unwrap();
    let project = Arc::new(Project { dir: dir.path().to_path_buf(), config });
    let warehouse = Warehouse::new(Url::from_directory_path(dir.path().join("warehouse")).unwrap(), HashMap::new());
    Env { dir, project, warehouse }
}

impl Env {
    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The same directory and warehouse under an edited dealhouse.toml.
    pub fn reconfigure(&mut self, toml: &str) {
        let config = dealhouse_ingest::project::parse(toml, &self.dir.path().join("dealhouse.toml")).unwrap();
        self.project = Arc::new(Project { dir: self.dir.path().to_path_buf(), config });
    }

    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// The cursor `source` last committed to `table`.
    pub async fn cursor(&self, table: &str, source: &str) -> Option<String> {
        self.warehouse.last_cursor(table, source).await.unwrap()
    }

    pub async fn sync(&self) -> SyncReport {
        sync_project(self.project.clone(), &self.warehouse, &SyncOptions::default(), &LogProgress).await.unwrap()
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
    report.sources.iter().find(|s| s.name == name).unwrap()
}
