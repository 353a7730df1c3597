//! Where export files go, written so a reader never sees half a file: on a local folder a
//! temporary file in the same folder, synced, then renamed over the target (a rename within a
//! file system is atomic); on S3 (or any object store URL) one PUT of the whole body, which the
//! store makes visible at once. Object stores are opened as the warehouse's are
//! (`deltalake::logstore::store_for` with `[warehouse] storage_options`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use deltalake::logstore::object_store::path::Path as StorePath;
use deltalake::logstore::object_store::{ObjectStoreExt, PutPayload};
use url::Url;

/// Where a run writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A local folder: files go to `<folder>/<report>/[<branch>/]<period>.<ext>`.
    Folder(PathBuf),
    /// Exactly this local file (one file only).
    File(PathBuf),
    /// An object store folder (`s3://bucket/prefix/`), laid out as [`Destination::Folder`].
    StoreFolder {
        /// The folder URL.
        url: Url,
        /// Its object_store options (endpoint, region, ...).
        options: BTreeMap<String, String>,
    },
    /// Exactly this object (one file only).
    StoreFile {
        /// The object URL.
        url: Url,
        /// Its object_store options.
        options: BTreeMap<String, String>,
    },
}

impl Destination {
    /// `--out`: a URL (`s3://...`) or a path (relative to `base`); a name ending in `.<ext>`
    /// is the file itself, anything else a folder. Object stores get `storage_options`.
    pub fn parse(
        out: &str,
        base: &Path,
        ext: &str,
        storage_options: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let is_file = out.rsplit('/').next().is_some_and(|name| name.ends_with(&format!(".{ext}")));
        if out.contains("://") {
            let mut url = Url::parse(out).map_err(|e| format!("--out `{out}` is not a valid URL ({e})"))?;
            let options = storage_options.clone();
            if is_file {
                return Ok(Self::StoreFile { url, options });
            }
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            return Ok(Self::StoreFolder { url, options });
        }
        let path = base.join(out);
        Ok(if is_file { Self::File(path) } else { Self::Folder(path) })
    }

    /// Whether it names one file (and so cannot take one file per branch).
    pub fn is_single_file(&self) -> bool {
        matches!(self, Self::File(_) | Self::StoreFile { .. })
    }

    /// Writes `bytes` to `relative` under this destination (or to the file it names),
    /// atomically; returns where it went.
    pub async fn write(&self, relative: &str, bytes: Vec<u8>) -> Result<String, String> {
        match self {
            Self::Folder(dir) => write_local(&dir.join(relative), &bytes),
            Self::File(path) => write_local(path, &bytes),
            Self::StoreFolder { url, options } => put(url, relative, options, bytes).await,
            Self::StoreFile { url, options } => {
                let name = url.path().rsplit('/').next().unwrap_or_default().to_string();
                let mut folder = url.clone();
                folder.set_path(&url.path()[..url.path().len() - name.len()]);
                put(&folder, &name, options, bytes).await
            }
        }
    }
}

/// A temporary sibling, synced, renamed over `path`.
fn write_local(path: &Path, bytes: &[u8]) -> Result<String, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("export");
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}; check the folder exists and is writable", path.display()));
    }
    Ok(path.display().to_string())
}

/// One PUT of the whole file.
async fn put(
    folder: &Url,
    relative: &str,
    options: &BTreeMap<String, String>,
    bytes: Vec<u8>,
) -> Result<String, String> {
    if matches!(folder.scheme(), "s3" | "s3a") {
        static S3: Once = Once::new();
        S3.call_once(|| deltalake::aws::register_handlers(None));
    }
    let store = deltalake::logstore::store_for(folder, options)
        .map_err(|e| format!("cannot open {folder} ({e}); check --out and [warehouse] storage_options"))?;
    let target = format!("{folder}{relative}");
    store.put(&StorePath::from(relative), PutPayload::from(bytes)).await.map_err(|e| {
        format!("cannot write {target} ({e}); check the bucket exists and the credentials allow writing")
    })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_is_a_folder_unless_it_names_a_file_of_the_format() {
        let none = BTreeMap::new();
        let base = Path::new("/p");
        assert_eq!(
            Destination::parse("exports", base, "csv", &none).unwrap(),
            Destination::Folder("/p/exports".into())
        );
        assert_eq!(
            Destination::parse("/tmp/a.csv", base, "csv", &none).unwrap(),
            Destination::File("/tmp/a.csv".into())
        );
        match Destination::parse("s3://b/x", base, "csv", &none).unwrap() {
            Destination::StoreFolder { url, .. } => assert_eq!(url.as_str(), "s3://b/x/"),
            other => panic!("{other:?}"),
        }
        assert!(Destination::parse("s3://b/x/r.xlsx", base, "xlsx", &none).unwrap().is_single_file());
    }
}
