//! The dashboards: their definitions (`definitions/*.toml`, one file per dashboard) and the static
//! UI (`assets/**`), both embedded into the binary by `rust-embed` (in debug builds too: the
//! workspace turns on `debug-embed`), so the UI works with no internet access and an analyst adds a
//! dashboard by adding a file. A leaf crate: it knows nothing of HTTP
//! or the warehouse; `api` serves both and checks every panel's query against its routes.

mod definition;

pub use definition::{
    Better, Chart, Compare, Dashboard, Field, Filter, Format, Label, Panel, Period, Query, Rollup, Show,
};

use std::borrow::Cow;

/// Every file under `assets/`, by its path relative to it.
#[derive(rust_embed::RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Every file under `definitions/`; the `*.toml` ones are dashboards.
#[derive(rust_embed::RustEmbed)]
#[folder = "definitions/"]
struct Definitions;

/// The bytes of an embedded file. With `debug-embed` (set in the workspace) every build includes
/// the files, so the data is always a `'static` borrow; an owned copy would mean rust-embed read
/// the disk at run time, which this crate does not allow (the UI must not depend on the checkout).
fn embedded(data: Cow<'static, [u8]>) -> Option<&'static [u8]> {
    match data {
        Cow::Borrowed(bytes) => Some(bytes),
        Cow::Owned(_) => None,
    }
}

/// Every embedded name, as a `'static` borrow (see [`embedded`]).
fn names(iter: impl Iterator<Item = Cow<'static, str>>) -> impl Iterator<Item = &'static str> {
    iter.filter_map(|name| match name {
        Cow::Borrowed(name) => Some(name),
        Cow::Owned(_) => None,
    })
}

/// Errors of the dashboards crate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A definition file does not parse or fails validation.
    #[error("dashboards/definitions/{file}.toml: {message}")]
    Definition {
        /// File stem.
        file: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Result with the dashboards [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An embedded static file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// File contents.
    pub bytes: &'static [u8],
    /// MIME type.
    pub content_type: &'static str,
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The asset at `path` (`""` is `index.html`).
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    let bytes = embedded(Assets::get(path)?.data)?;
    Some(Asset { bytes, content_type: content_type(path) })
}

/// Paths of every embedded asset.
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    names(Assets::iter())
}

/// Every dashboard, in menu order, parsed and validated once. An invalid file is an error naming
/// it (the unit test below keeps the shipped ones valid).
pub fn dashboards() -> Result<&'static [Dashboard], &'static Error> {
    static ALL: std::sync::OnceLock<Result<Vec<Dashboard>>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = names(Definitions::iter())
            .filter_map(|name| name.strip_suffix(".toml").map(|stem| (name, stem)))
            .map(|(name, stem)| {
                let bytes = Definitions::get(name).and_then(|f| embedded(f.data)).ok_or_else(|| Error::Definition {
                    file: stem.to_string(),
                    message: "listed but not embedded; keep rust-embed's `debug-embed` feature on in the workspace \
                              Cargo.toml"
                        .to_string(),
                })?;
                let text = std::str::from_utf8(bytes).map_err(|e| Error::Definition {
                    file: stem.to_string(),
                    message: format!("not UTF-8 text ({e}); save the file as UTF-8"),
                })?;
                Dashboard::parse(stem, text)
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.order, &a.id).cmp(&(b.order, &b.id)));
        Ok(out)
    })
    .as_deref()
}

/// The dashboard `id`.
pub fn dashboard(id: &str) -> Option<&'static Dashboard> {
    dashboards().ok()?.iter().find(|d| d.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_references_only_embedded_assets_and_nothing_external() {
        let index = std::str::from_utf8(asset("").unwrap().bytes).unwrap();
        for part in index.split("/assets/").skip(1) {
            let path = part.split('"').next().unwrap();
            assert!(asset(path).is_some(), "index.html references /assets/{path}, which is not embedded");
        }
        // Every script and stylesheet too: the UI must work offline, so no CDN, no web fonts.
        for path in asset_paths() {
            let text = String::from_utf8_lossy(asset(path).unwrap().bytes);
            for bad in ["http://", "https://", "@import", "url(", "//cdn"] {
                assert!(!text.contains(bad), "{path} contains `{bad}`: every asset must be embedded");
            }
        }
        // ES module imports (`... from "./x.js"`) name embedded files.
        for path in asset_paths().filter(|p| p.ends_with(".js")) {
            let text = String::from_utf8_lossy(asset(path).unwrap().bytes);
            for part in text.split("from \"./").skip(1) {
                let target = part.split('"').next().unwrap();
                assert!(asset(target).is_some(), "{path} imports ./{target}, which is not embedded");
            }
        }
    }

    #[test]
    fn every_listed_asset_is_embedded_in_this_build() {
        let paths: Vec<&str> = asset_paths().collect();
        assert_eq!(paths.len(), Assets::iter().count(), "a name rust-embed lists is not a 'static borrow");
        for path in ["index.html", "app.js", "style.css", "errors.js"] {
            assert!(paths.contains(&path), "{path} is not embedded: {paths:?}");
        }
        for path in paths {
            let a = asset(path).unwrap_or_else(|| panic!("{path} is listed but not embedded"));
            assert!(!a.bytes.is_empty(), "{path} is empty");
        }
        assert!(asset("nope.js").is_none() && asset("../Cargo.toml").is_none());
    }

    #[test]
    fn the_shipped_definitions_are_valid_and_cover_the_nine_dashboards() {
        let all = dashboards().unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            ["overview", "funnel", "pipeline", "branches", "managers", "clients", "stalled", "intake", "audit"],
            "menu order"
        );
        for d in all {
            assert!(!d.panels.is_empty(), "{} has no panels", d.id);
        }
        assert!(dashboard("funnel").is_some() && dashboard("nope").is_none());
    }
}
