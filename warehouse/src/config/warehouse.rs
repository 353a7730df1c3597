//! `[warehouse]`: where the Delta tables live and the object-store options to reach them, and
//! the rule every storage option in the project file follows: credentials come from the
//! environment, never from the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::issues::{ConfigIssue, KeyPath};

/// `[warehouse]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// A path (relative to the project directory), a `file://` URL or `s3://bucket/prefix`.
    #[serde(default = "default_location")]
    pub location: String,
    /// object_store options (region, endpoint, ...). Credentials come from the environment.
    #[serde(default)]
    pub storage_options: BTreeMap<String, String>,
}

fn default_location() -> String {
    "warehouse".to_string()
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        Self { location: default_location(), storage_options: BTreeMap::new() }
    }
}

impl WarehouseConfig {
    /// The location is a usable path or URL; no storage option carries a credential.
    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        let at = KeyPath::of(["warehouse"]);
        resolve_location(Path::new("/"), &self.location).map_err(|m| at.key("location").issue(m))?;
        check_storage_options(&self.storage_options, &at.key("storage_options"))
    }
}

/// The warehouse root as a URL: relative paths resolve against the project directory.
pub(crate) fn resolve_location(dir: &Path, location: &str) -> Result<Url, String> {
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

/// What to do instead of writing a credential in the project file.
pub const CREDENTIALS_IN_FILE: &str = "credentials do not belong in dealhouse.toml; set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / an instance role) in the environment";

/// Storage options that carry a secret (or name the key that goes with one): they are read from
/// the environment instead, so the project file can be committed and logged.
pub fn is_credential_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let key = key.strip_prefix("aws_").unwrap_or(&key);
    matches!(key, "access_key_id" | "secret_access_key" | "session_token" | "token")
}

/// A `storage_options` table (`at`) holds no credential: `[warehouse]` and file sources on S3.
pub fn check_storage_options(options: &BTreeMap<String, String>, at: &KeyPath) -> Result<(), ConfigIssue> {
    match options.keys().find(|k| is_credential_option(k)) {
        Some(key) => Err(at.key(key.as_str()).issue(CREDENTIALS_IN_FILE)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn bad_url_names_line_and_key() {
        let e = parse("\n[warehouse]\nlocation = \"ftp://x/y\"\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:3"), "{e}");
        assert!(e.contains("warehouse.location"), "{e}");
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
    fn relative_location_resolves_against_project_dir() {
        let url = resolve_location(Path::new("/p"), "wh").unwrap();
        assert_eq!(url.as_str(), "file:///p/wh/");
        assert_eq!(resolve_location(Path::new("/p"), "s3://b/pre").unwrap().as_str(), "s3://b/pre");
    }
}
