use super::canary::CanaryConfig;
use crate::plugin::{Grants, Limits};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    pub inputs: Vec<String>,
    /// Path of the `.wasm` plugin, relative to the pipeline file that names it.
    pub plugin: PathBuf,
    /// Refuse the plugin unless its sha256 is this (hex), so only a reviewed build runs.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The plugin's own settings, handed to its `init` as they are.
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub grants: Grants,
    /// Interval of the plugin's `tick` call, in milliseconds, if it exports one.
    #[serde(default = "default_tick_ms")]
    pub tick_interval_ms: u64,
    /// A candidate version that sees a sample of batches; compared, never shipped.
    #[serde(default)]
    pub canary: Option<CanaryConfig>,
    /// This transform removes secrets: `sluice tap` refuses every component before it, so
    /// a tap never shows a record redaction has not checked.
    #[serde(default)]
    pub redaction: bool,
}

fn default_tick_ms() -> u64 {
    1000
}

/// What happens to a batch the plugin failed on (trap, timeout, memory, bad output, or an
/// error it reported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Drop the batch (counted). The safe default for redaction: nothing unredacted leaves.
    #[default]
    Drop,
    /// Send the batch on unchanged, as if the plugin were not there.
    Pass,
    /// Send the batch, each record annotated with the failure, to `NAME.dead_letter`.
    DeadLetter,
}
