//! Where a file source's files are: a folder on an object store (the project folder, a
//! `file://` folder, an S3 prefix) and one file name or a glob under it.
//!
//! `exports/deals_*.csv` is split at the last `/` before the first glob character: the folder
//! `exports/` becomes the store's root, and the glob is matched against the paths listed under
//! it (`*` and `?` stay within one folder, `**` crosses folders).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use super::config::GLOB_CHARS;
use dealhouse_warehouse::Project;
use deltalake::logstore::object_store::path::Path as StorePath;
use deltalake::logstore::object_store::{self, ObjectMeta, ObjectStore, ObjectStoreExt};
use futures::TryStreamExt;
use glob::{MatchOptions, Pattern};
use url::Url;

use crate::{Error, Result};

/// One file of the source.
#[derive(Debug, Clone)]
pub(super) struct ListedFile {
    /// The file as the configuration names it (`exports/deals_1.csv`, `s3://b/x/deals_1.csv`):
    /// quarantine locations and the cursor use it.
    pub key: String,
    /// Where it is, for errors: the absolute path of a local file, else its URL.
    pub display: PathBuf,
    /// Its path in the store.
    path: StorePath,
}

#[derive(Clone)]
enum Rest {
    File(String),
    Glob(Pattern),
}

/// A configured `path`, opened.
#[derive(Clone)]
pub(super) struct FileLocation {
    source_name: String,
    store: Arc<dyn ObjectStore>,
    /// The folder before the first glob character, as configured: `exports/`, empty for the
    /// project folder, `s3://b/x/`.
    base_key: String,
    /// The same folder on this machine (a plain path), for errors.
    local_base: Option<PathBuf>,
    /// The file name or glob after the folder.
    rest: Rest,
}

impl FileLocation {
    /// Opens the store holding `path` (relative to the project folder, or a URL);
    /// `storage_options` configure it as `[warehouse]`'s do.
    pub fn new(
        project: &Project,
        source_name: &str,
        path: &str,
        storage_options: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let config_error = |message: String| Error::Config { source_name: source_name.to_string(), message };
        let (base, rest) = split(path);
        let (url, local_base) = if path.contains("://") {
            let url = Url::parse(base).map_err(|e| {
                config_error(format!("`{path}` is not a valid URL ({e}); fix [sources.{source_name}].path"))
            })?;
            (url, None)
        } else {
            let dir = project.path(Path::new(base));
            let url = Url::from_directory_path(&dir)
                .map_err(|()| config_error(format!("{} is not a folder path", dir.display())))?;
            (url, Some(dir))
        };
        if matches!(url.scheme(), "s3" | "s3a") {
            static S3: Once = Once::new();
            S3.call_once(|| deltalake::aws::register_handlers(None));
        }
        let store = deltalake::logstore::store_for(&url, storage_options).map_err(|e| {
            config_error(format!("cannot open {url} ({e}); check [sources.{source_name}].path and storage_options"))
        })?;
        let rest = if rest.contains(GLOB_CHARS) {
            Rest::Glob(Pattern::new(rest).map_err(|e| config_error(format!("`{path}` is not a valid glob ({e})")))?)
        } else {
            Rest::File(rest.to_string())
        };
        Ok(Self { source_name: source_name.to_string(), store, base_key: base.to_string(), local_base, rest })
    }

    /// The source's files in path order: the one file (which must exist), or every file the
    /// glob matches (at least one).
    pub async fn list(&self) -> Result<Vec<ListedFile>> {
        let pattern = match &self.rest {
            Rest::File(name) => {
                let file = self.listed(StorePath::from(name.as_str()), name);
                return match self.store.head(&file.path).await {
                    Ok(_) => Ok(vec![file]),
                    Err(object_store::Error::NotFound { .. }) => Err(self.config_error(format!(
                        "file {} does not exist; fix [sources.{}].path{}",
                        file.display.display(),
                        self.source_name,
                        if self.local_base.is_some() { " (relative to the project directory)" } else { "" }
                    ))),
                    Err(e) => Err(Error::File {
                        path: file.display,
                        message: format!("cannot read it ({e}); check [sources.{}].path", self.source_name),
                    }),
                };
            }
            Rest::Glob(pattern) => pattern,
        };
        // A glob within one folder lists only that folder, not everything below it.
        let listed: std::result::Result<Vec<ObjectMeta>, _> = if pattern.as_str().contains('/') {
            self.store.list(None).try_collect().await
        } else {
            self.store.list_with_delimiter(None).await.map(|l| l.objects)
        };
        let listed = listed.map_err(|e| Error::Read {
            source_name: self.source_name.clone(),
            location: self.folder(),
            message: format!("cannot list the folder ({e}); check [sources.{}].path", self.source_name),
        })?;
        let options = MatchOptions { case_sensitive: true, require_literal_separator: true, ..MatchOptions::new() };
        let seen = listed.len();
        let mut files: Vec<ListedFile> = listed
            .into_iter()
            .filter(|m| pattern.matches_with(m.location.as_ref(), options))
            .map(|m| {
                let rel = m.location.to_string();
                self.listed(m.location, &rel)
            })
            .collect();
        if files.is_empty() {
            return Err(self.config_error(format!(
                "no file matches `{pattern}` in {} ({seen} {} there); fix [sources.{}].path",
                self.folder(),
                if pattern.as_str().contains('/') { "files" } else { "files directly" },
                self.source_name
            )));
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }

    /// The bytes of a listed file.
    pub async fn fetch(&self, file: &ListedFile) -> Result<Vec<u8>> {
        let unreadable = |e: object_store::Error| Error::File {
            path: file.display.clone(),
            message: format!("cannot read it ({e}); check [sources.{}].path", self.source_name),
        };
        let bytes = self.store.get(&file.path).await.map_err(unreadable)?.bytes().await.map_err(unreadable)?;
        Ok(bytes.into())
    }

    fn listed(&self, path: StorePath, rel: &str) -> ListedFile {
        let display = match &self.local_base {
            Some(dir) => dir.join(rel),
            None => PathBuf::from(format!("{}{rel}", self.base_key)),
        };
        ListedFile { key: format!("{}{rel}", self.base_key), display, path }
    }

    /// The folder searched, for messages: an absolute path or a URL.
    fn folder(&self) -> String {
        match &self.local_base {
            Some(dir) => dir.display().to_string(),
            None => self.base_key.clone(),
        }
    }

    fn config_error(&self, message: String) -> Error {
        Error::Config { source_name: self.source_name.clone(), message }
    }
}

/// `exports/deals_*.csv` -> (`exports/`, `deals_*.csv`): the folder up to the last `/` before
/// the first glob character (empty for none), and the rest.
fn split(path: &str) -> (&str, &str) {
    let glob_at = path.find(GLOB_CHARS).unwrap_or(path.len());
    match path[..glob_at].rfind('/') {
        Some(slash) => (&path[..=slash], &path[slash + 1..]),
        None => ("", path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_paths_split_at_the_folder_before_the_glob() {
        assert_eq!(split("deals.csv"), ("", "deals.csv"));
        assert_eq!(split("*.csv"), ("", "*.csv"));
        assert_eq!(split("exports/2025/deals_*.csv"), ("exports/2025/", "deals_*.csv"));
        assert_eq!(split("exports/*/deals.csv"), ("exports/", "*/deals.csv"));
        assert_eq!(split("exports/**/d?.jsonl"), ("exports/", "**/d?.jsonl"));
        assert_eq!(split("s3://bucket/in/[ab].csv"), ("s3://bucket/in/", "[ab].csv"));
        assert_eq!(split("file:///srv/x.csv"), ("file:///srv/", "x.csv"));
    }
}
