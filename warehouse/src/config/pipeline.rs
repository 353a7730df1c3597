//! `[pipeline]`: the canonical stages' stalled-deal thresholds.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Days without a call, meeting or email after which an open deal in a stage is stalled.
    #[serde(default = "default_sla")]
    pub stall_days: BTreeMap<String, u32>,
}

fn default_sla() -> BTreeMap<String, u32> {
    [("new", 2), ("contact", 5), ("proposal", 5), ("negotiation", 7), ("contract", 10)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { stall_days: default_sla() }
    }
}
