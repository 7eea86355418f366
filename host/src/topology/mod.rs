//! Builds a running pipeline from a validated configuration and tears it down in order:
//! sources stop first, each downstream component finishes when all of its inputs have
//! closed, so everything read is processed and written before the process exits.

mod fanout;

pub use fanout::{Fanout, CHANNEL_CAPACITY};

use crate::buffers::Buffer;
use crate::config::PipelineConfig;
use crate::plugin::{encode_config, PluginEngine, PluginInstance};
use crate::reload::{LoadPipeline, ReloadHandle, ReloadRequest, Reloader, Running};
use crate::sinks::SinkContext;
use crate::sources::SourceContext;
use crate::telemetry::Telemetry;
use crate::transforms::{Canary, Outputs, TransformWorker};
use anyhow::Context as _;
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
/// served while it runs (see [`crate::reload`]).
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

    // Load every plugin before starting anything, and report all refusals at once.
    let mut workers = BTreeMap::new();
    let mut refusals = Vec::new();
    for (name, t) in &config.transforms {
        let engine = engine.clone();
        let (name2, t2) = (name.clone(), t.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let module = engine.load(&name2, &t2.plugin, t2.sha256.as_deref())?;
            let config = encode_config(&t2.config);
            let instance = PluginInstance::new(&engine, &module, t2.limits, &t2.grants, &config)?;
            let canary = Canary::load(&engine, &name2, &t2)?;
            Ok::<_, crate::plugin::LoadError>((module, instance, config, canary))
        })
        .await?;
        match loaded {
            Ok(parts) => {
                tracing::info!(plugin = %name, sha256 = %parts.0.sha256, cached = !parts.0.compiled, "plugin loaded");
                telemetry.plugin_running(name, &parts.0.sha256, None);
                workers.insert(name.clone(), parts);
            }
            Err(e) => refusals.push(e.to_string()),
        }
    }
    if !refusals.is_empty() {
        anyhow::bail!("{}", refusals.join("\n"));
    }
    crate::plugin::release_freed_memory();

    let reload_config = crate::reload::Loaded::of(&config);
    // One bounded channel per consumer (a sink's buffer, for sinks); each output fans out
    // to the consumers naming it.
    let abort = CancellationToken::new();
    let mut fanouts: BTreeMap<String, Fanout> = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    let mut connect = |name: &str, inputs: &[String], tx: mpsc::Sender<_>| {
        telemetry.watch_buffer(name, &tx);
        let consumer: Arc<str> = name.into();
        for input in inputs {
            fanouts
                .entry(input.clone())
                .or_default()
                .add(consumer.clone(), tx.clone());
        }
    };
    for (name, t) in &config.transforms {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        connect(name, &t.inputs, tx);
        receivers.insert(name.clone(), rx);
    }
    let mut sinks = Vec::new();
    for (name, sink) in config.sinks {
        let sink_telemetry = telemetry.component(&name, sink.kind());
        let buffer = Buffer::build(
            sink.buffer(),
            &name,
            &config.data_dir,
            &sink_telemetry,
            &abort,
        )
        .with_context(|| format!("sink `{name}`: cannot open its buffer"))?;
        connect(&name, sink.inputs(), buffer.sender);
        let cx = SinkContext {
            telemetry: sink_telemetry,
            input: buffer.receiver,
            abort: buffer.sink_abort.unwrap_or_else(|| abort.clone()),
            name: name.clone(),
        };
        let guard = buffer.guard;
        let task = async move {
            let result = sink.run(cx).await;
            drop(guard);
            result
        };
        sinks.push((name, tokio::spawn(task)));
    }

    let taps = telemetry.taps().clone();
    taps.set_outputs(crate::tap::outputs(
        config.sources.keys().cloned(),
        &config
            .transforms
            .iter()
            .map(|(name, t)| (name.clone(), (t.inputs.clone(), t.redaction)))
            .collect(),
    ));
    let mut running = std::collections::BTreeMap::new();
    let mut threads = Vec::new();
    for (name, t) in config.transforms {
        let (module, instance, plugin_config, canary) =
            workers.remove(&name).expect("loaded above");
        let mut take = |output: &str| {
            fanouts
                .remove(output)
                .unwrap_or_default()
                .tapped(taps.point(output))
        };
        let outputs = Outputs {
            records: take(&name),
            dead_letter: take(&format!("{name}.dead_letter")),
            metrics: take(&format!("{name}.metrics")),
            alerts: take(&format!("{name}.alerts")),
        };
        let (swaps_tx, swaps) = mpsc::channel(1);
        running.insert(
            name.clone(),
            Running {
                config: t.clone(),
                sha256: module.sha256.clone(),
                swaps: swaps_tx,
            },
        );
        let worker = TransformWorker {
            telemetry: telemetry.component(&name, "transform"),
            input: receivers.remove(&name).expect("a channel per transform"),
            name: name.clone(),
            engine: engine.clone(),
            module,
            instance: Some(instance),
            config: plugin_config,
            limits: t.limits,
            grants: t.grants,
            on_error: t.on_error,
            tick_interval: Duration::from_millis(t.tick_interval_ms.max(10)),
            swaps,
            canary,
            outputs,
        };
        let handle = tokio::runtime::Handle::current();
        threads.push(
            std::thread::Builder::new()
                .name(format!("transform-{name}"))
                .spawn(move || worker.run(handle))?,
        );
    }

    let sources_token = shutdown.child_token();
    let mut sources = tokio::task::JoinSet::new();
    for (name, source) in config.sources {
        let cx = SourceContext {
            telemetry: telemetry.component(&name, source.kind()),
            out: fanouts
                .remove(&name)
                .unwrap_or_default()
                .tapped(taps.point(&name)),
            shutdown: sources_token.clone(),
            data_dir: config.data_dir.clone(),
            name: name.clone(),
        };
        sources.spawn(async move { (name, source.run(cx).await) });
    }
    drop(fanouts);
    let reloader = reload.map(|reload| {
        let (watched_tx, watched) = tokio::sync::watch::channel(Vec::new());
        let reloader = Reloader {
            load: reload.load,
            current: reload_config,
            engine: engine.clone(),
            transforms: running,
            telemetry: telemetry.clone(),
            watched: Some(watched_tx),
        };
        let files = reloader.files();
        if let Some(tx) = &reloader.watched {
            let _ = tx.send(files);
        }
        if reload.watch_files {
            if let Err(e) = crate::reload::watch_files(reload.handle, watched, shutdown.clone()) {
                tracing::warn!(error = %e, "cannot watch the pipeline's files; SIGHUP and POST /reload still reload");
            }
        }
        tokio::spawn(reloader.run(reload.requests))
    });
    ready.store(true, Ordering::Release);
    tracing::info!("pipeline running");

    let mut failure = None;
    while let Some(joined) = sources.join_next().await {
        let (name, result) = joined?;
        if let Err(e) = result {
            tracing::error!(source = %name, error = %format!("{e:#}"), "source failed; stopping the pipeline");
            failure.get_or_insert(anyhow::anyhow!("source `{name}` failed: {e:#}"));
            sources_token.cancel();
        } else {
            tracing::info!(source = %name, "source finished");
        }
    }
    ready.store(false, Ordering::Release);
    // No reload once draining: the reloader holds the workers' swap channels, and letting
    // go of them is what lets a worker finish.
    if let Some(reloader) = reloader {
        reloader.abort();
        let _ = reloader.await;
    }

    // Everything downstream of the sources gets one deadline: a sink that cannot deliver
    // would otherwise hold up the plugins feeding it, and them the shutdown.
    let drain = async {
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        });
        let _ = joined.await;
        for (name, handle) in sinks {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(sink = %name, error = %format!("{e:#}"), "sink failed")
                }
                Err(e) => tracing::error!(sink = %name, error = %e, "sink panicked"),
            }
        }
    };
    tokio::pin!(drain);
    if tokio::time::timeout(DRAIN_DEADLINE, &mut drain)
        .await
        .is_err()
    {
        tracing::warn!("sinks did not drain within {DRAIN_DEADLINE:?}; giving up on what is left (it will be read again)");
        abort.cancel();
        drain.await;
    }
    tracing::info!("pipeline stopped");
    failure.map_or(Ok(()), Err)
}
