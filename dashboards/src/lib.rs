//! The dashboards: their definitions and the static UI assets, embedded into the binary so the
//! UI works with no internet access. A leaf crate: it knows nothing of HTTP or the warehouse.

/// An embedded static file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// File contents.
    pub bytes: &'static [u8],
    /// MIME type.
    pub content_type: &'static str,
}

const ASSETS: &[(&str, &[u8], &str)] = &[
    ("index.html", include_bytes!("../assets/index.html"), "text/html; charset=utf-8"),
    ("app.js", include_bytes!("../assets/app.js"), "text/javascript; charset=utf-8"),
    ("style.css", include_bytes!("../assets/style.css"), "text/css; charset=utf-8"),
];

/// The asset at `path` (`""` is `index.html`).
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|(_, bytes, content_type)| Asset { bytes, content_type })
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_references_only_embedded_assets() {
        let index = std::str::from_utf8(super::asset("").unwrap().bytes).unwrap();
        for reference in ["app.js", "style.css"] {
            assert!(index.contains(reference) && super::asset(reference).is_some());
        }
        assert!(
            !index.contains("http://") && !index.contains("https://"),
            "no external URLs: the UI must work offline"
        );
    }
}
