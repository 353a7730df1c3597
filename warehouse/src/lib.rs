//! The warehouse: project config, the canonical schema, Delta table storage, the SQL model DAG
//! and the query session. It depends on no other dealhouse crate; `ingest` writes through it and
//! `api` reads through it.

mod append;
pub mod as_of;
mod changes;
pub mod config;
pub mod deadline;
mod error;
pub mod models;
pub mod schema;
pub mod scope;
pub mod session;
pub mod sql_guard;
pub mod storage;
pub mod udf;

pub use changes::FileDiff;
pub use config::{Project, ProjectConfig};
pub use datafusion;
pub use error::{Error, Result};
pub use storage::{CommitMark, CommitMeta, TableInfo, Warehouse, WriteStats};
/// The TOML crate the config is read with, for crates that read parts of it (`[sources.*]`).
pub use toml;
