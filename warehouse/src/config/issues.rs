//! What a validator reports: a [`ConfigIssue`], the key path it is about and what to do, before
//! [`super::locate`] places it on a line of the file (as [`crate::Error::Config`]).

use std::fmt;
use std::ops::Range;

/// One step of a [`KeyPath`]: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// A key of a table (`sources`, `crm`, `webhook_url`).
    Key(String),
    /// An element of an array (`[[organisation.branches]]` number 0).
    Index(usize),
}

/// The keys from the file's root to a value: `sources.crm.webhook_url`,
/// `organisation.branches[0].time_zone`. Kept as parts (not a dotted string), so keys that
/// contain dots themselves are still found in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<KeyPart>);

impl KeyPath {
    /// The file's root (an empty path).
    pub fn root() -> Self {
        Self::default()
    }

    /// A path of table keys: `KeyPath::of(["sources", name])`.
    pub fn of<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self(keys.into_iter().map(|k| KeyPart::Key(k.into())).collect())
    }

    /// This path and one more key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut path = self.clone();
        path.0.push(KeyPart::Key(key.into()));
        path
    }

    /// This path and more keys: `at.keys(["tables", table, "query"])`.
    pub fn keys<S: Into<String>>(&self, keys: impl IntoIterator<Item = S>) -> Self {
        let mut path = self.clone();
        path.0.extend(keys.into_iter().map(|k| KeyPart::Key(k.into())));
        path
    }

    /// This path and an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(KeyPart::Index(index));
        path
    }

    /// The parts, root first.
    pub fn parts(&self) -> &[KeyPart] {
        &self.0
    }

    /// True for the root.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An issue about this key.
    pub fn issue(&self, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue::new(self.clone(), message)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            match part {
                KeyPart::Key(k) if i == 0 => f.write_str(k)?,
                KeyPart::Key(k) => write!(f, ".{k}")?,
                KeyPart::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One thing wrong in a config file: the key it is about (empty for the file as a whole), the
/// byte span when the TOML parser knew it, and what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The key the issue is about.
    pub key: KeyPath,
    /// Where in the text, when known exactly (parse errors); else the key is looked up.
    pub span: Option<Range<usize>>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigIssue {
    /// An issue about `key`, placed on the line that key is written on.
    pub fn new(key: KeyPath, message: impl Into<String>) -> Self {
        Self { key, span: None, message: message.into() }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() { f.write_str(&self.message) } else { write!(f, "key `{}`: {}", self.key, self.message) }
    }
}

impl std::error::Error for ConfigIssue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_written_in_messages() {
        let branch = KeyPath::of(["organisation", "branches"]).index(2).key("time_zone");
        assert_eq!(branch.to_string(), "organisation.branches[2].time_zone");
        let issue = KeyPath::of(["server"]).keys(["bind"]).issue("bad");
        assert_eq!(issue.to_string(), "key `server.bind`: bad");
        assert_eq!(KeyPath::root().issue("unreadable").to_string(), "unreadable");
    }
}
