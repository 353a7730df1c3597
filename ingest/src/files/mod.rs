//! File sources: CSV (1C and spreadsheet exports), XLSX workbooks and JSON Lines, one file or a
//! glob of them, in the project folder or on an object store (`file://`, `s3://`), each row
//! mapped onto one or several canonical tables by the source's `columns` and `values`.
//!
//! A file is all or nothing at the file level: a wrong encoding or a header some table maps
//! that is not there refuses the whole file ([`Error::File`]) before any of its rows is
//! written; the other files of a glob still load, and the sync reports the refusal. Bad values
//! only quarantine their row. Each file is tracked on its own: the cursor of each table is a
//! JSON map from each file to the SHA-256 of its bytes plus a fingerprint of the mapping, and
//! the last chunk of a file carries the map with that file's new hash. So an unchanged file is
//! skipped, a changed or new one is read whole, and a crash mid-file reads only that file again.
//!
//! The quarantine keys a file's rows by `file:line`. A file read whole settles every key of
//! that file (its old rows give way to this read's failures), so a changed mapping, which reads
//! every file again, clears what now loads; a file that is gone takes its rows with it. A
//! replay (`--replay-quarantine`) reads the files holding quarantined rows again, cursor
//! untouched.

mod columns;
pub mod config;
mod formats;
mod location;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dealhouse_warehouse::schema::QuarantineRecord;

use encoding_rs::Encoding;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use columns::TableMapping;
use config::FileConfig;
use formats::FileReader;
use location::{FileLocation, ListedFile};

use crate::mapping::{ChunkSink, MappingOptions, RecordMapper, RecordOrigin, blocking_chunks, parse_time_zone};
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::{Error, Result};

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Delimited text.
    Csv,
    /// Excel workbook.
    Xlsx,
    /// JSON Lines: one object per line.
    Jsonl,
}

/// Files mapped onto canonical tables.
pub struct FileSource {
    ctx: SourceContext,
    kind: FileKind,
    config: Arc<FileConfig>,
    location: FileLocation,
    tables: Arc<Vec<TableMapping>>,
    fingerprint: String,
}

impl FileSource {
    /// Builds the source and opens the store its files are on.
    pub fn new(ctx: SourceContext, config: FileConfig, kind: FileKind) -> Result<Self> {
        let name = ctx.source_name.clone();
        let config_error = |message: String| Error::Config { source_name: name.clone(), message };
        if let Some(label) = &config.encoding
            && Encoding::for_label(label.trim().as_bytes()).is_none()
        {
            return Err(config_error(format!("encoding `{label}` is unknown; use \"utf-8\" or \"windows-1251\"")));
        }
        let mappings = config.mappings();
        if mappings.is_empty() {
            return Err(config_error(format!("no table: set [sources.{name}].table or [sources.{name}.tables.*]")));
        }
        let shared = MappingOptions {
            origin: RecordOrigin::File,
            time_zone: parse_time_zone(&name, config.time_zone.as_deref())?,
            decimal_comma: config.decimal_comma,
            date_format: config.date_format.clone(),
            own_branches: mappings.iter().any(|m| m.table == "branches"),
            quarantine_per_table: mappings.len() > 1,
            currency: config.currency.clone(),
            ..MappingOptions::default()
        };
        let tables = mappings.iter().map(|m| TableMapping::new(&name, m, &shared)).collect::<Result<Vec<_>>>()?;
        let location = FileLocation::new(&ctx.project, &name, &config.path, &config.storage_options)?;
        let fingerprint = mapping_fingerprint(&ctx, &config);
        Ok(Self { ctx, kind, config: Arc::new(config), location, tables: Arc::new(tables), fingerprint })
    }
}

#[async_trait::async_trait]
impl Source for FileSource {
    async fn check(&self) -> Result<()> {
        self.location.list().await.map(|_| ())
    }

    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        Ok(self.tables.iter().map(|t| StreamInfo { table: t.table, estimated_rows: None }).collect())
    }

    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        self.run(table, Pass::Cursor(cursor))
    }

    fn mapping_fingerprint(&self) -> Option<String> {
        Some(self.fingerprint.clone())
    }

    fn replay(&self, table: &'static str, held: Vec<QuarantineRecord>) -> BoxStream<'_, Result<Chunk>> {
        // Keys read `file:line` (`#table` after it when the file feeds several tables).
        let files: BTreeSet<String> = held
            .iter()
            .filter_map(|q| {
                let key = q.source_id.split_once('#').map_or(q.source_id.as_str(), |(k, _)| k);
                key.rsplit_once(':').map(|(file, _)| file.to_string())
            })
            .collect();
        self.run(table, Pass::Replay(files))
    }
}

/// What a read of a table covers.
enum Pass {
    /// Files new or changed since the stored cursor (`None`: every file).
    Cursor(Option<String>),
    /// The named files, whole, for a replay of their quarantined rows; the cursor stays.
    Replay(BTreeSet<String>),
}

impl FileSource {
    fn run(&self, table: &'static str, pass: Pass) -> BoxStream<'_, Result<Chunk>> {
        let fail = |e: Error| -> BoxStream<'_, Result<Chunk>> { Box::pin(futures::stream::once(async { Err(e) })) };
        let Some(target) = self.tables.iter().position(|t| t.table == table) else {
            let filled: Vec<&str> = self.tables.iter().map(|t| t.table).collect();
            return fail(Error::Config {
                source_name: self.ctx.source_name.clone(),
                message: format!("this source fills {}, not `{table}`", filled.join(", ")),
            });
        };
        let options = self.tables[target].options.clone();
        let mapper = match RecordMapper::new(self.ctx.project.clone(), &self.ctx.source_name, table, options) {
            Ok(m) => m,
            Err(e) => return fail(e),
        };
        let job = FileJob {
            source_name: self.ctx.source_name.clone(),
            kind: self.kind,
            config: self.config.clone(),
            location: self.location.clone(),
            tables: self.tables.clone(),
            target,
            mapper,
            fingerprint: self.fingerprint.clone(),
        };
        blocking_chunks(self.ctx.source_name.clone(), move |sink| match pass {
            Pass::Cursor(cursor) => job.run(cursor, sink),
            Pass::Replay(files) => job.replay(files, sink),
        })
    }
}

/// Each file's key -> `<SHA-256 of its bytes>.<mapping fingerprint>`, as loaded into one table.
type FileHashes = BTreeMap<String, String>;

/// Everything one read of one table needs, moved to the blocking pool.
struct FileJob {
    source_name: String,
    kind: FileKind,
    config: Arc<FileConfig>,
    location: FileLocation,
    tables: Arc<Vec<TableMapping>>,
    target: usize,
    mapper: RecordMapper,
    fingerprint: String,
}

impl FileJob {
    /// Reads every new or changed file in path order, each ending with a chunk that carries
    /// the hashes of the files loaded so far.
    fn run(mut self, cursor: Option<String>, sink: &ChunkSink) -> Result<()> {
        // The blocking pool runs inside the runtime, and the stream's consumer keeps driving it
        // while it waits for chunks, so the object store's I/O can be awaited from here.
        let runtime = tokio::runtime::Handle::current();
        let files = runtime.block_on(self.location.list())?;
        // A cursor that is not such a map (none yet, or from an older version) loads everything.
        let loaded: FileHashes = cursor.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        // A file that is gone drops out; one not read yet keeps its entry until it is.
        let mut hashes: FileHashes = loaded
            .iter()
            .filter(|(key, _)| files.iter().any(|f| &f.key == *key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // A file that is gone cannot be read again: its quarantined rows go with the next chunk.
        for key in loaded.keys().filter(|k| !files.iter().any(|f| &f.key == *k)) {
            self.mapper.settle_prefix(format!("{key}:"));
        }
        let mut committed = loaded.clone();
        let mut refused: Vec<Error> = vec![];
        for file in &files {
            let bytes = match runtime.block_on(self.location.fetch(file)) {
                Ok(bytes) => bytes,
                Err(e) => {
                    refused.push(e);
                    continue;
                }
            };
            let hash = format!("{}.{}", hex::encode(Sha256::digest(&bytes)), self.fingerprint);
            if loaded.get(&file.key) == Some(&hash) {
                debug!(source = %self.source_name, file = %file.key, "unchanged since the last sync; skipped");
                continue;
            }
            match self.read_file(file, bytes, sink) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e @ Error::File { .. }) => {
                    // Rows of the refused file still waiting for a chunk are dropped with it.
                    self.mapper.finish()?;
                    refused.push(e);
                    continue;
                }
                Err(e) => return Err(e),
            }
            hashes.insert(file.key.clone(), hash);
            info!(source = %self.source_name, table = self.mapper.table(), file = %file.key, "file read");
            self.mapper.settle_prefix(format!("{}:", file.key));
            if !sink.flush(&mut self.mapper, Some(cursor_text(&hashes)))? {
                return Ok(());
            }
            committed = hashes.clone();
        }
        if committed != hashes && !sink.flush(&mut self.mapper, Some(cursor_text(&hashes)))? {
            return Ok(());
        }
        match refused.len() {
            0 => Ok(()),
            1 => Err(refused.remove(0)),
            n => Err(Error::Read {
                source_name: self.source_name,
                location: self.config.path.clone(),
                message: format!(
                    "{n} of {} files refused (the others were loaded): {}",
                    files.len(),
                    refused.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
                ),
            }),
        }
    }

    /// Reads `keys`' files whole again, each ending with a chunk that settles its quarantine
    /// rows; a file no longer there settles its rows with an empty chunk. A refused file keeps
    /// them and fails the replay, as it fails a read.
    fn replay(mut self, keys: BTreeSet<String>, sink: &ChunkSink) -> Result<()> {
        let runtime = tokio::runtime::Handle::current();
        let files = runtime.block_on(self.location.list())?;
        for key in keys.iter().filter(|k| !files.iter().any(|f| &f.key == *k)) {
            info!(source = %self.source_name, file = %key, "file gone; its quarantined rows are cleared");
            self.mapper.settle_prefix(format!("{key}:"));
        }
        for file in files.iter().filter(|f| keys.contains(&f.key)) {
            let bytes = runtime.block_on(self.location.fetch(file))?;
            if !self.read_file(file, bytes, sink)? {
                return Ok(());
            }
            self.mapper.settle_prefix(format!("{}:", file.key));
            if !sink.flush(&mut self.mapper, None)? {
                return Ok(());
            }
        }
        sink.flush(&mut self.mapper, None)?;
        Ok(())
    }

    fn read_file(&mut self, file: &ListedFile, bytes: Vec<u8>, sink: &ChunkSink) -> Result<bool> {
        let mut reader = FileReader {
            source_name: &self.source_name,
            config: &self.config,
            file,
            tables: &self.tables,
            target: &self.tables[self.target],
            mapper: &mut self.mapper,
            sink,
        };
        reader.read(self.kind, bytes)
    }
}

fn cursor_text(hashes: &FileHashes) -> String {
    serde_json::Value::from_iter(hashes.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))))
        .to_string()
}

/// What, besides the bytes, decides how a file maps: this source's config and the branch codes
/// and holdings its rows are checked against. Part of each file's hash in the cursor, so fixing
/// a mapping (the fix a quarantine reason asks for) re-reads unchanged files instead of
/// skipping them.
fn mapping_fingerprint(ctx: &SourceContext, config: &FileConfig) -> String {
    // Where the files are read from does not change how they map.
    let config = FileConfig { storage_options: BTreeMap::new(), ..config.clone() };
    crate::quarantine::fingerprint(&ctx.project.config, &ctx.source_name, &format!("{config:?}"))
}
