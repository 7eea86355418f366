//! Hot reload: new plugin versions and pipeline files take effect without a restart,
//! without losing or repeating a record, and without resetting anything.
//!
//! Every trigger (a watched file changing, SIGHUP, `POST /reload`) becomes a
//! [`ReloadRequest`] on one queue; one task works through it, so a request that arrives
//! during a reload waits for the next one and is never dropped. A reload re-reads and
//! validates the pipeline, then for each transform whose plugin file or settings changed:
//! loads and compiles the module (the cache makes a known build instant), initialises it,
//! runs a self-check batch through a throwaway instance, and only when every changed
//! transform passed, hands each worker its new instance to swap in between two batches,
//! with the old instance's state when both versions export snapshot/restore. Anything
//! failing leaves every running version as it was, and says why in the log, in
//! `sluice_reload_failures_total` and in `/health`.

mod watch;

pub use watch::watch_files;

use crate::config::PipelineConfig;
use crate::plugin::{encode_config, LoadError, PluginEngine, PluginInstance};
use crate::telemetry::Telemetry;
use crate::transforms::{Canary, Swap, Swapped, TransformConfig};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SwapOutcome {
    StateCarried,
    Fresh,
}

/// One running transform, as the reloader knows it.
pub struct Running {
    pub config: TransformConfig,
    pub sha256: String,
    pub swaps: mpsc::Sender<Swap>,
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

pub struct Reloader {
    pub load: LoadPipeline,
    pub current: Loaded,
    pub engine: PluginEngine,
    pub transforms: BTreeMap<String, Running>,
    pub telemetry: Telemetry,
    /// Told the files to watch after every reload (plugin paths can change).
    pub watched: Option<tokio::sync::watch::Sender<Vec<PathBuf>>>,
}

/// A new version, ready to swap in.
struct Prepared {
    name: String,
    config: TransformConfig,
    swap: Swap,
    outcome: oneshot::Receiver<Result<Swapped, String>>,
    sha256: String,
}

impl Reloader {
    /// The files a reload depends on: the pipeline files and every plugin in use.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = self.current.files.clone();
        files.extend(self.transforms.values().map(|t| t.config.plugin.clone()));
        files
    }

    /// Serves reload requests until the queue closes.
    pub async fn run(mut self, mut requests: mpsc::UnboundedReceiver<ReloadRequest>) {
        while let Some(first) = requests.recv().await {
            // Everything queued by now is answered by this one reload: it reads the files
            // as they are after every one of those requests was made.
            let mut batch = vec![first];
            while let Ok(more) = requests.try_recv() {
                batch.push(more);
            }
            let causes: Vec<&str> = batch.iter().map(|r| r.cause.as_str()).collect();
            tracing::info!(cause = %causes.join(", "), "reloading");
            let outcome = self.reload().await;
            crate::plugin::release_freed_memory();
            match &outcome {
                Ok(report) if report.swapped.is_empty() => {
                    tracing::info!("reload: nothing changed");
                    self.telemetry.reloaded("pipeline", 1);
                    self.telemetry.reload_succeeded();
                }
                Ok(report) => {
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
                    self.telemetry.reloaded("pipeline", 1);
                    self.telemetry
                        .reloaded("plugin", report.swapped.len() as u64);
                    self.telemetry.reload_succeeded();
                }
                Err(e) => {
                    tracing::error!(error = %e, "reload refused; everything keeps running as it was");
                    self.telemetry.reload_failed("pipeline", e);
                }
            }
            if let Some(watched) = &self.watched {
                let _ = watched.send(self.files());
            }
            for request in batch {
                if let Some(done) = request.done {
                    let _ = done.send(outcome.clone());
                }
            }
        }
    }

    async fn reload(&mut self) -> Result<ReloadReport, String> {
        let load = self.load.clone();
        let new = tokio::task::spawn_blocking(move || load())
            .await
            .map_err(|e| format!("loading the pipeline panicked: {e}"))?
            .map_err(|e| format!("the new pipeline is invalid: {e:#}"))?;
        self.check_same_topology(&new)?;

        // Prepare every changed transform before touching any.
        let mut report = ReloadReport::default();
        let mut prepared = Vec::new();
        let mut failures = Vec::new();
        for (name, config) in &new.transforms {
            let running = &self.transforms[name];
            let (engine, name2, config2) = (self.engine.clone(), name.clone(), config.clone());
            let running_sha = running.sha256.clone();
            let same_settings = running.config == *config;
            let ready = tokio::task::spawn_blocking(move || {
                prepare(&engine, &name2, &config2, &running_sha, same_settings)
            })
            .await
            .map_err(|e| format!("preparing `{name}` panicked: {e}"))?;
            match ready {
                Ok(None) => report.unchanged.push(name.clone()),
                Ok(Some((swap, outcome, sha256))) => prepared.push(Prepared {
                    name: name.clone(),
                    config: config.clone(),
                    swap,
                    outcome,
                    sha256,
                }),
                Err(e) => {
                    self.telemetry.reload_failed("plugin", &e);
                    failures.push(e);
                }
            }
        }
        if !failures.is_empty() {
            return Err(failures.join("; "));
        }

        let mut refused = Vec::new();
        for p in prepared {
            let running = self.transforms.get_mut(&p.name).expect("same topology");
            if running.swaps.send(p.swap).await.is_err() {
                refused.push(format!("`{}` stopped before the swap", p.name));
                continue;
            }
            match p.outcome.await {
                Ok(Ok(how)) => {
                    self.telemetry
                        .plugin_running(&p.name, &p.sha256, Some(&running.sha256));
                    running.sha256 = p.sha256;
                    running.config = p.config;
                    report.swapped.insert(
                        p.name,
                        match how {
                            Swapped::StateCarried => SwapOutcome::StateCarried,
                            Swapped::Fresh => SwapOutcome::Fresh,
                        },
                    );
                }
                Ok(Err(e)) => {
                    let e = format!("plugin `{}`: {e}; the running version stays", p.name);
                    self.telemetry.reload_failed("plugin", &e);
                    refused.push(e);
                }
                Err(_) => refused.push(format!("`{}` stopped during the swap", p.name)),
            }
        }
        self.current = Loaded::of(&new);
        if refused.is_empty() {
            Ok(report)
        } else {
            Err(refused.join("; "))
        }
    }

    /// This version reloads plugins and their settings; a change to sources, sinks, the
    /// graph or the admin server is refused, loudly, rather than half applied.
    fn check_same_topology(&self, new: &PipelineConfig) -> Result<(), String> {
        let mut changed = Vec::new();
        for key in ["data_dir", "admin", "sources", "sinks"] {
            if self.current.merged.get(key) != new.merged.get(key) {
                changed.push(format!("`{key}`"));
            }
        }
        let old_names: Vec<&String> = self.transforms.keys().collect();
        let new_names: Vec<&String> = new.transforms.keys().collect();
        if old_names != new_names {
            changed.push("the set of transforms".into());
        } else {
            for (name, t) in &new.transforms {
                if self.transforms[name].config.inputs != t.inputs {
                    changed.push(format!("the inputs of `{name}`"));
                }
            }
        }
        if changed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the new pipeline changes {}: live reload applies plugin changes and transform settings only; restart Sluice to apply it (nothing was changed)",
                changed.join(", ")
            ))
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

type Ready = (Swap, oneshot::Receiver<Result<Swapped, String>>, String);

/// Loads, initialises and self-checks a transform's plugin if its file or settings
/// changed; `None` when neither did.
fn prepare(
    engine: &PluginEngine,
    name: &str,
    config: &TransformConfig,
    running_sha: &str,
    same_settings: bool,
) -> Result<Option<Ready>, String> {
    // LoadError names the plugin already.
    let failed = |e: LoadError| format!("{e}; the running version stays");
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
    let plugin_config = encode_config(&config.config);
    let instantiate = || {
        PluginInstance::new(
            engine,
            &module,
            config.limits,
            &config.grants,
            &plugin_config,
        )
        .map_err(failed)
    };
    let mut check = instantiate()?;
    match check.process(&self_check_batch()) {
        Ok(response) if response.error.is_none() => {}
        Ok(response) => {
            return Err(format!(
                "plugin `{name}`: the new version failed its self-check batch: {}; the running version stays",
                response.error.unwrap_or_default()
            ))
        }
        Err(e) => {
            return Err(format!(
                "plugin `{name}`: the new version failed its self-check batch: {e}; the running version stays"
            ))
        }
    }
    drop(check);
    let canary = Canary::load(engine, name, config).map_err(failed)?;
    let instance = instantiate()?;
    let (done, outcome) = oneshot::channel();
    let sha256 = module.sha256.clone();
    tracing::info!(plugin = %name, sha256 = %sha256, cached = !module.compiled, "reload: new version loaded and self-checked");
    Ok(Some((
        Swap {
            module,
            instance,
            config: plugin_config,
            limits: config.limits,
            grants: config.grants.clone(),
            on_error: config.on_error,
            tick_interval: Duration::from_millis(config.tick_interval_ms.max(10)),
            canary,
            done,
        },
        outcome,
        sha256,
    )))
}
