//! Turning toml's spans into file:line:key. A [`ConfigText`] keeps a config file's path and text;
//! it parses the text into toml's spanned tree (`toml::de::DeTable`), finds where a [`KeyPath`]
//! is written (the span of its key, else of its nearest written ancestor), finds the key path at
//! a parser error's span, and places a [`ConfigIssue`] as [`Error::Config`].
//!
//! Nothing here reads the text line by line: every position comes from the TOML parser, and a
//! byte offset becomes a line number in one place ([`ConfigText::line_of`]).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::issues::{ConfigIssue, KeyPart, KeyPath};
use crate::{Error, Result};

/// A config file's path and text, kept so issues found after parsing still name their line.
#[derive(Clone, Default)]
pub struct ConfigText {
    path: PathBuf,
    text: Arc<str>,
}

/// The text may hold a secret (an inline database URL): debug output names the file only.
impl fmt::Debug for ConfigText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigText").field("path", &self.path).field("bytes", &self.text.len()).finish()
    }
}

impl ConfigText {
    /// The text of the file at `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self { path: path.into(), text: text.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text as toml's spanned tree (the root table as a value), for reading one part of
    /// the file with its spans (`ValueDeserializer::from` a subtree keeps them).
    pub fn tree(&self) -> Result<Spanned<DeValue<'_>>> {
        let root = DeTable::parse(&self.text).map_err(|e| self.toml_error(&e, &KeyPath::root()))?;
        let span = root.span();
        Ok(Spanned::new(span, DeValue::Table(root.into_inner())))
    }

    /// Deserializes the whole text; errors name the line and key.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        toml::from_str(&self.text).map_err(|e| self.toml_error(&e, &KeyPath::root()))
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
    }

    /// A TOML parser or serde error as an issue: its span, the key path written there (else
    /// `fallback`), its message.
    pub fn issue_from(&self, e: &toml::de::Error, fallback: &KeyPath) -> ConfigIssue {
        let span = e.span();
        let key = span
            .as_ref()
            .and_then(|s| {
                // A recovered tree, so a syntax error still finds the table it is in.
                let (root, _) = DeTable::parse_recoverable(&self.text);
                let root_span = root.span();
                path_at(&Spanned::new(root_span, DeValue::Table(root.into_inner())), s.start)
            })
            .unwrap_or_else(|| fallback.clone());
        ConfigIssue { key, span, message: e.message().to_string() }
    }

    /// [`Self::issue_from`], placed.
    pub fn toml_error(&self, e: &toml::de::Error, fallback: &KeyPath) -> Error {
        self.error(self.issue_from(e, fallback))
    }

    /// Places an issue on its line: its span's, else the line its key (or the nearest written
    /// ancestor of its key) is written on; 0 when the file says nothing about it.
    pub fn error(&self, issue: ConfigIssue) -> Error {
        let line = match &issue.span {
            Some(span) => self.line_of(span.start),
            None => {
                let (root, _) = DeTable::parse_recoverable(&self.text);
                let root_span = root.span();
                span_of(&Spanned::new(root_span, DeValue::Table(root.into_inner())), &issue.key)
                    .map_or(0, |s| self.line_of(s.start))
            }
        };
        Error::Config { file: self.path.clone(), line, issue }
    }
}

/// Where `path` is written: the span of its last key found in the tree (a `[table]` header, a
/// `key = value` line, an `[[array]]` element's header), walking down from the root.
pub fn span_of(root: &Spanned<DeValue<'_>>, path: &KeyPath) -> Option<Range<usize>> {
    let mut at = root;
    let mut found = None;
    for part in path.parts() {
        let next = match (part, at.get_ref()) {
            (KeyPart::Key(k), DeValue::Table(t)) => t.get_key_value(k.as_str()).map(|(key, v)| (key.span(), v)),
            (KeyPart::Index(i), DeValue::Array(a)) => a.get(*i).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((span, value)) = next else { break };
        found = Some(span);
        at = value;
    }
    found
}

/// The key path at `offset`: the key written there, else the deepest value covering it (a
/// `[table]` header covers the keys it names, so a key's own span wins).
pub fn path_at(root: &Spanned<DeValue<'_>>, offset: usize) -> Option<KeyPath> {
    fn covers(span: Range<usize>, offset: usize) -> bool {
        span.contains(&offset) || (span.is_empty() && span.start == offset)
    }
    fn find(value: &Spanned<DeValue<'_>>, offset: usize, path: &KeyPath) -> Option<KeyPath> {
        match value.get_ref() {
            DeValue::Table(t) => t.iter().find_map(|(k, v)| {
                let here = path.key(k.get_ref().to_string());
                if covers(k.span(), offset) {
                    return Some(here);
                }
                find(v, offset, &here).or_else(|| covers(v.span(), offset).then_some(here))
            }),
            DeValue::Array(a) => a.iter().enumerate().find_map(|(i, v)| {
                let here = path.index(i);
                find(v, offset, &here).or_else(|| covers(v.span(), offset).then_some(here))
            }),
            _ => None,
        }
    }
    find(root, offset, &KeyPath::root())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[server]\nbind = \"x\"\n\n[[organisation.branches]]\nid = \"a\"\n\
                        [[organisation.branches]]\nid = \"b\"\ncodes = { crm = \"1\", \"a.b\" = \"2\" }\n\n\
                        [sources.x.tables.deals]\nquery = \"q\"\n";

    fn line(path: KeyPath) -> usize {
        let text = ConfigText::new("/p/f.toml", TEXT);
        match text.error(path.issue("m")) {
            Error::Config { line, .. } => line,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn keys_are_found_on_the_line_they_are_written() {
        assert_eq!(line(KeyPath::of(["server", "bind"])), 2);
        assert_eq!(line(KeyPath::of(["organisation", "branches"]).index(1)), 6);
        assert_eq!(line(KeyPath::of(["organisation", "branches"]).index(1).key("id")), 7);
        // A key with a dot in it is one part, not two.
        assert_eq!(line(KeyPath::of(["organisation", "branches"]).index(1).keys(["codes", "a.b"])), 8);
        // A table only named in a deeper header is found at that header.
        assert_eq!(line(KeyPath::of(["sources", "x", "tables"])), 10);
        // A key not written falls back to its nearest written ancestor.
        assert_eq!(line(KeyPath::of(["server", "tokens_file"])), 1);
        assert_eq!(line(KeyPath::of(["pipeline", "stall_days"])), 0);
    }

    #[test]
    fn the_key_at_an_offset_is_the_deepest_one_written_there() {
        let text = ConfigText::new("/p/f.toml", TEXT);
        let tree = text.tree().unwrap();
        let at = |needle: &str| path_at(&tree, TEXT.find(needle).unwrap()).map(|p| p.to_string());
        assert_eq!(at("bind").as_deref(), Some("server.bind"));
        assert_eq!(at("\"b\"\n").as_deref(), Some("organisation.branches[1].id"));
        assert_eq!(at("\"2\"").as_deref(), Some("organisation.branches[1].codes.a.b"));
        assert_eq!(at("query").as_deref(), Some("sources.x.tables.deals.query"));
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let text = ConfigText::new("/p/f.toml", "[server]\nbind = \"x\"\nbind = \"y\"\n");
        let e = text.tree().unwrap_err().to_string();
        assert!(e.starts_with("/p/f.toml:3: ") && e.contains("duplicate key"), "{e}");
    }
}
