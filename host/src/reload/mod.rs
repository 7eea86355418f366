//! Hot reload: new plugin versions and pipeline files take effect without a restart,
//! without losing or repeating a record, and without resetting anything.
//!
//! Every trigger (a watched file changing, SIGHUP, `POST /reload`) becomes a
//! [`ReloadRequest`] on one queue, served by the pipeline's own task, so a request that
//! arrives during a reload waits for the next one and is never dropped. A reload re-reads
//! and validates the pipeline and compares it with what runs (`topology/diff.rs`). Every
//! new or changed plugin is loaded, initialised and self-checked here ([`prepare`]) before
//! anything changes; then the topology applies the difference (`topology/reconfigure.rs`):
//! workers swap plugin versions between two batches, carrying state over when both
//! versions export snapshot/restore; new components start, removed ones finish what they
//! hold, and what did not change keeps running. Anything refused leaves the pipeline as it
//! was, and says why in the log, in `sluice_reload_failures_total` and in `/health`.

mod watch;

pub use watch::watch_files;

use crate::config::PipelineConfig;
use crate::plugin::{encode_config, LoadError, PluginEngine, PluginInstance};
use crate::telemetry::Telemetry;
use crate::transforms::{TransformConfig, Version};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Re-reads the pipeline from where it came from (files, or the embedded demo).
pub type LoadPipeline = Arc<dyn Fn() -> anyhow::Result<PipelineConfig> + Send + Sync>;

pub struct ReloadRequest {
    /// What asked for it, for the log: `SIGHUP`, `POST /reload`, a file name.
    pub cause: String,
    pub done: Option<oneshot::Sender<Result<ReloadReport, String>>>,
}

/// Where reload requests go; cheap to clone.
#[derive(Clone)]
pub struct ReloadHandle(mpsc::UnboundedSender<ReloadRequest>);

impl ReloadHandle {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ReloadRequest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Queues a reload without waiting for it.
    pub fn request(&self, cause: impl Into<String>) {
        let _ = self.0.send(ReloadRequest {
            cause: cause.into(),
            done: None,
        });
    }

    /// Queues a reload and waits for its outcome.
    pub async fn reload(&self, cause: impl Into<String>) -> Result<ReloadReport, String> {
        let (done, outcome) = oneshot::channel();
        self.0
            .send(ReloadRequest {
                cause: cause.into(),
                done: Some(done),
            })
            .map_err(|_| "the pipeline is not running".to_owned())?;
        outcome
            .await
            .map_err(|_| "the pipeline stopped during the reload".to_owned())?
    }
}

/// What a successful reload changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// Transforms now running a new version (or new settings), with whether the old
    /// version's state was carried over.
    pub swapped: BTreeMap<String, SwapOutcome>,
    /// Transforms whose plugin and settings were unchanged.
    pub unchanged: Vec<String>,
    /// Components started, of any kind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Components stopped after finishing what they held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Sources and sinks whose settings changed: stopped, then started with the new ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restarted: Vec<String>,
    /// Transforms and sinks now reading from other inputs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rewired: Vec<String>,
}

impl ReloadReport {
    /// Components whose part in the pipeline changed (a plugin swap aside).
    pub fn components_changed(&self) -> usize {
        self.added.len() + self.removed.len() + self.restarted.len() + self.rewired.len()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SwapOutcome {
    StateCarried,
    Fresh,
}

/// What a reload compares the new pipeline with.
pub struct Loaded {
    pub files: Vec<PathBuf>,
    pub merged: serde_json::Value,
}

impl Loaded {
    pub fn of(config: &PipelineConfig) -> Self {
        Self {
            files: config.files.clone(),
            merged: config.merged.clone(),
        }
    }
}

/// How the error of a reload that changed some things but not all begins.
pub const PARTLY_APPLIED: &str = "the reload applied in part";

/// Logs and counts how a reload went.
pub fn record_outcome(telemetry: &Telemetry, outcome: &Result<ReloadReport, String>) {
    match outcome {
        Ok(report) => {
            if report.swapped.is_empty() && report.components_changed() == 0 {
                tracing::info!("reload: nothing changed");
            }
            if report.components_changed() > 0 {
                tracing::info!(
                    added = ?report.added,
                    removed = ?report.removed,
                    restarted = ?report.restarted,
                    rewired = ?report.rewired,
                    "reload: pipeline changed"
                );
            }
            for (name, how) in &report.swapped {
                match how {
                    SwapOutcome::StateCarried => {
                        tracing::info!(plugin = %name, "reload: new version live, state carried over")
                    }
                    SwapOutcome::Fresh => {
                        tracing::info!(plugin = %name, "reload: new version live; it starts with fresh state (the running version handed over none)")
                    }
                }
            }
            telemetry.reloaded("pipeline", 1);
            telemetry.reloaded("plugin", report.swapped.len() as u64);
            telemetry.reloaded("component", report.components_changed() as u64);
            telemetry.reload_succeeded();
        }
        Err(e) if e.starts_with(PARTLY_APPLIED) => {
            tracing::error!(error = %e, "reload applied in part; what it names keeps running as it was");
            telemetry.reload_failed("pipeline", e);
        }
        Err(e) => {
            tracing::error!(error = %e, "reload refused; everything keeps running as it was");
            telemetry.reload_failed("pipeline", e);
        }
    }
}

/// The record every new version must process cleanly before it goes live.
fn self_check_batch() -> Vec<u8> {
    let record = json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "level": "INFO",
        "component": "sluice",
        "message": "sluice reload self-check",
    });
    rmp_serde::to_vec_named(&[record]).expect("a JSON value encodes")
}

/// Loads, initialises and self-checks a transform's plugin if its file or settings
/// changed (always for a transform that is not running yet: `running_sha` empty); `None`
/// when neither did.
pub fn prepare(
    engine: &PluginEngine,
    name: &str,
    config: &TransformConfig,
    running_sha: &str,
    same_settings: bool,
) -> Result<Option<Version>, String> {
    let keeps = if running_sha.is_empty() {
        "nothing was changed"
    } else {
        "the running version stays"
    };
    // LoadError names the plugin already.
    let failed = |e: LoadError| format!("{e}; {keeps}");
    if same_settings {
        // The common case, every transform on every reload: skip the load when the file
        // is the one running.
        if let Ok(bytes) = std::fs::read(&config.plugin) {
            if hex::encode(Sha256::digest(&bytes)) == running_sha {
                return Ok(None);
            }
        }
    }
    let module = engine
        .load(name, &config.plugin, config.sha256.as_deref())
        .map_err(failed)?;
    if same_settings && module.sha256 == running_sha {
        return Ok(None);
    }
    let mut check = PluginInstance::new(
        engine,
        &module,
        config.limits,
        &config.grants,
        &encode_config(&config.config),
    )
    .map_err(failed)?;
    let refused = |e: String| {
        format!("plugin `{name}`: the new version failed its self-check batch: {e}; {keeps}")
    };
    match check.process(&self_check_batch()) {
        Ok(response) => {
            if let Some(e) = response.error {
                return Err(refused(e));
            }
        }
        Err(e) => return Err(refused(e.to_string())),
    }
    drop(check);
    let sha256 = module.sha256.clone();
    let version = Version::of(engine, name, module, config).map_err(failed)?;
    tracing::info!(plugin = %name, sha256 = %sha256, cached = !version.module.compiled, "reload: new version loaded and self-checked");
    Ok(Some(version))
}
