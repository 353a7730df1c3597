//! Test projects: the `[organisation]` block every test project starts with, written from a
//! builder instead of copied TOML, and a scratch project directory holding a `dealhouse.toml`.
//!
//! `Org::new().holding("center", "Центр").branch("msk", "center", "Москва", "Europe/Moscow")
//! .codes(&[("onec", "12")]).toml()` is the block; a test appends its `[sources.*]` to it.

use std::path::{Path, PathBuf};

/// The name of a project's configuration file.
pub const PROJECT_FILE: &str = "dealhouse.toml";

/// One `[[organisation.branches]]` entry.
#[derive(Debug, Clone)]
pub struct Branch {
    /// Branch id.
    pub id: String,
    /// Holding id.
    pub holding: String,
    /// Display name.
    pub name: String,
    /// City (the name unless set).
    pub city: String,
    /// IANA time zone.
    pub time_zone: String,
    /// `codes = { system = "code" }`: how each source names the branch.
    pub codes: Vec<(String, String)>,
}

/// The `[organisation]` of a test project: group, holdings, branches.
#[derive(Debug, Clone, Default)]
pub struct Org {
    group: Option<String>,
    holdings: Vec<(String, String)>,
    branches: Vec<Branch>,
}

impl Org {
    /// An organisation without holdings or branches.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the group name (`[organisation] group`).
    pub fn group(mut self, name: &str) -> Self {
        self.group = Some(name.into());
        self
    }

    /// Adds a holding.
    pub fn holding(mut self, id: &str, name: &str) -> Self {
        self.holdings.push((id.into(), name.into()));
        self
    }

    /// Adds a branch whose city is its name.
    pub fn branch(mut self, id: &str, holding: &str, name: &str, time_zone: &str) -> Self {
        self.branches.push(Branch {
            id: id.into(),
            holding: holding.into(),
            name: name.into(),
            city: name.into(),
            time_zone: time_zone.into(),
            codes: vec![],
        });
        self
    }

    /// Sets the city of the branch added last.
    pub fn city(mut self, city: &str) -> Self {
        self.last_branch().city = city.into();
        self
    }

    /// Sets the source codes of the branch added last.
    pub fn codes(mut self, codes: &[(&str, &str)]) -> Self {
        self.last_branch().codes = codes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }

    fn last_branch(&mut self) -> &mut Branch {
        self.branches.last_mut().expect("Org::city/codes follow a branch(...)")
    }

    /// The TOML: `[organisation]` (when a group is set), then the holdings and the branches.
    pub fn toml(&self) -> String {
        let mut t = String::new();
        if let Some(group) = &self.group {
            t.push_str(&format!("[organisation]\ngroup = {}\n", quoted(group)));
        }
        for (id, name) in &self.holdings {
            t.push_str(&format!("\n[[organisation.holdings]]\nid = {}\nname = {}\n", quoted(id), quoted(name)));
        }
        for b in &self.branches {
            t.push_str(&format!(
                "\n[[organisation.branches]]\nid = {}\nholding = {}\nname = {}\ncity = {}\ntime_zone = {}\n",
                quoted(&b.id),
                quoted(&b.holding),
                quoted(&b.name),
                quoted(&b.city),
                quoted(&b.time_zone)
            ));
            if !b.codes.is_empty() {
                let codes: Vec<String> = b.codes.iter().map(|(k, v)| format!("{k} = {}", quoted(v))).collect();
                t.push_str(&format!("codes = {{ {} }}\n", codes.join(", ")));
            }
        }
        t
    }
}

/// A TOML basic string (JSON string escapes are valid TOML).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.into()).to_string()
}

/// A scratch project directory with a `dealhouse.toml`, removed on drop.
#[derive(Debug)]
pub struct ProjectDir {
    dir: tempfile::TempDir,
}

impl ProjectDir {
    /// A fresh directory whose `dealhouse.toml` is `toml`.
    pub fn new(toml: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("dealhouse-project-").tempdir().expect("cannot create a temp dir");
        let project = ProjectDir { dir };
        project.set_config(toml);
        project
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The `dealhouse.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.join(PROJECT_FILE)
    }

    /// Replaces the `dealhouse.toml`.
    pub fn set_config(&self, toml: &str) {
        self.write(PROJECT_FILE, toml.as_bytes());
    }

    /// Writes a file (creating its folders).
    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_organisation_block() {
        let org = Org::new()
            .group("G")
            .holding("h1", "North")
            .branch("msk", "h1", "Branch \"msk\"", "Europe/Moscow")
            .city("City msk")
            .codes(&[("onec", "12"), ("legacy", "MSK")]);
        assert_eq!(
            org.toml(),
            "[organisation]\ngroup = \"G\"\n\n[[organisation.holdings]]\nid = \"h1\"\nname = \"North\"\n\n\
             [[organisation.branches]]\nid = \"msk\"\nholding = \"h1\"\nname = \"Branch \\\"msk\\\"\"\n\
             city = \"City msk\"\ntime_zone = \"Europe/Moscow\"\ncodes = { onec = \"12\", legacy = \"MSK\" }\n"
        );
    }

    #[test]
    fn a_project_dir_holds_its_config_and_files() {
        let p = ProjectDir::new("[warehouse]\n");
        p.write("exports/a.csv", b"x\n");
        assert_eq!(std::fs::read_to_string(p.config_file()).unwrap(), "[warehouse]\n");
        assert_eq!(std::fs::read(p.join("exports/a.csv")).unwrap(), b"x\n");
    }
}
