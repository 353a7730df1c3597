//! Loading a project for a command: the warehouse's [`Project::load`] (everything but the
//! sources) and every `[sources.*]` read and validated ([`parse_sources`]), so `sync`, `serve`,
//! `check`, `build` and the rest refuse a bad source, with its file:line:key, before any work.

use std::path::Path;

use dealhouse_warehouse::{Project, ProjectConfig, Result};

use crate::source_config::parse_sources;

/// Loads and validates `DIR/dealhouse.toml`, its sources included.
pub fn load(dir: &Path) -> Result<Project> {
    let project = Project::load(dir)?;
    parse_sources(&project.config)?;
    Ok(project)
}

/// Parses and validates the text of `file`, its sources included.
pub fn parse(text: &str, file: &Path) -> Result<ProjectConfig> {
    let config = ProjectConfig::parse(text, file)?;
    parse_sources(&config)?;
    Ok(config)
}
