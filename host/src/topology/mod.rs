//! Builds a running pipeline from a validated configuration, changes it in place on a
//! reload, and tears it down in order: sources stop first, each downstream component
//! finishes when all of its inputs have closed, so everything read is processed and
//! written before the process exits.

mod diff;
mod fanout;
mod reconfigure;
mod running;

pub use fanout::{Fanout, CHANNEL_CAPACITY};

use crate::config::PipelineConfig;
use crate::plugin::PluginEngine;
use crate::reload::{LoadPipeline, ReloadHandle, ReloadRequest};
use crate::telemetry::Telemetry;
use crate::transforms::Version;
use anyhow::Context as _;
use running::{SourceEnd, Topology};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a pipeline needs to reload itself.
pub struct Reload {
    pub load: LoadPipeline,
    pub handle: ReloadHandle,
    pub requests: mpsc::UnboundedReceiver<ReloadRequest>,
    /// Watch the files in use (off for callers that reload only on request).
    pub watch_files: bool,
}

/// How long sinks get to flush after the sources stopped before they are told to give up.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the pipeline until `shutdown` fires or every source has finished (stdin closed, a
/// demo with a `count`), then drains it. `ready` turns true once everything has started.
///
/// With `reload`, the pipeline's files and plugins are watched and reload requests are
/// served while it runs (see [`crate::reload`]), by this task, so a reload and the
/// pipeline's own changes (a source finishing) never race.
pub async fn run(
    config: PipelineConfig,
    telemetry: Telemetry,
    shutdown: CancellationToken,
    ready: Arc<AtomicBool>,
    reload: Option<Reload>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let engine = PluginEngine::new(Some(config.data_dir.join("plugin-cache")))?;
    let versions = load_plugins(&engine, &config).await?;
    for (name, version) in &versions {
        tracing::info!(plugin = %name, sha256 = %version.module.sha256, cached = !version.module.compiled, "plugin loaded");
    }
    crate::plugin::release_freed_memory();

    let (mut topology, mut finished) = Topology::new(&config, engine, telemetry.clone(), &shutdown);
    topology.start(config, versions)?;

    let (load, mut requests) = match reload {
        Some(reload) => {
            let (watched_tx, watched) = tokio::sync::watch::channel(topology.files());
            if reload.watch_files {
                if let Err(e) = crate::reload::watch_files(reload.handle, watched, shutdown.clone())
                {
                    tracing::warn!(error = %e, "cannot watch the pipeline's files; SIGHUP and POST /reload still reload");
                }
            }
            (Some((reload.load, watched_tx)), Some(reload.requests))
        }
        None => (None, None),
    };
    ready.store(true, Ordering::Release);
    tracing::info!("pipeline running");

    let mut failure = None;
    while !topology.sources.is_empty() {
        tokio::select! {
            Some((name, start, result)) = finished.recv() => {
                match (topology.source_finished(&name, start, &result), result) {
                    (Some(SourceEnd::Failed), Err(e)) => {
                        tracing::error!(source = %name, error = %format!("{e:#}"), "source failed; stopping the pipeline");
                        failure.get_or_insert(anyhow::anyhow!("source `{name}` failed: {e:#}"));
                        topology.sources_token.cancel();
                    }
                    (Some(SourceEnd::FailedAfterReload), Err(e)) => {
                        tracing::error!(source = %name, error = %format!("{e:#}"), "source started by a reload failed; the rest of the pipeline keeps running (fix it and reload)");
                    }
                    (Some(_), _) => tracing::info!(source = %name, "source finished"),
                    (None, Err(e)) => tracing::warn!(source = %name, error = %format!("{e:#}"), "a source stopped by a reload ended with an error"),
                    (None, Ok(())) => {}
                }
            }
            Some(first) = next_request(&mut requests) => {
                // Everything queued by now is answered by this one reload: it reads the
                // files as they are after every one of those requests was made.
                let mut batch = vec![first];
                while let Some(more) = requests.as_mut().and_then(|r| r.try_recv().ok()) {
                    batch.push(more);
                }
                let causes: Vec<&str> = batch.iter().map(|r| r.cause.as_str()).collect();
                let outcome = if topology.sources_token.is_cancelled() {
                    Err("the pipeline is stopping".to_owned())
                } else {
                    tracing::info!(cause = %causes.join(", "), "reloading");
                    let (load, watched) = load.as_ref().expect("requests come with a loader");
                    let outcome = topology.reload(load).await;
                    crate::plugin::release_freed_memory();
                    crate::reload::record_outcome(&telemetry, &outcome);
                    let _ = watched.send(topology.files());
                    outcome
                };
                for request in batch {
                    if let Some(done) = request.done {
                        let _ = done.send(outcome.clone());
                    }
                }
            }
        }
    }
    ready.store(false, Ordering::Release);
    // Requests that arrive from now on find the queue closed and are told the pipeline
    // is not running.
    drop(requests);

    // Everything downstream of the sources gets one deadline: a sink that cannot deliver
    // would otherwise hold up the plugins feeding it, and them the shutdown.
    topology.drain(DRAIN_DEADLINE).await;
    tracing::info!("pipeline stopped");
    failure.map_or(Ok(()), Err)
}

async fn next_request(
    requests: &mut Option<mpsc::UnboundedReceiver<ReloadRequest>>,
) -> Option<ReloadRequest> {
    match requests {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

/// Loads every plugin before starting anything, and reports all refusals at once.
async fn load_plugins(
    engine: &PluginEngine,
    config: &PipelineConfig,
) -> anyhow::Result<BTreeMap<String, Version>> {
    let mut versions = BTreeMap::new();
    let mut refusals = Vec::new();
    for (name, t) in &config.transforms {
        let (engine, name2, t2) = (engine.clone(), name.clone(), t.clone());
        match tokio::task::spawn_blocking(move || Version::load(&engine, &name2, &t2)).await? {
            Ok(version) => {
                versions.insert(name.clone(), version);
            }
            Err(e) => refusals.push(e.to_string()),
        }
    }
    if refusals.is_empty() {
        Ok(versions)
    } else {
        anyhow::bail!("{}", refusals.join("\n"))
    }
}
