//! The running pipeline: each component's task and the wiring between them. A reload
//! changes both in place (see `reconfigure.rs`), so what it does not touch keeps running.

use super::fanout::{Fanout, CHANNEL_CAPACITY};
use crate::buffers::Buffer;
use crate::config::PipelineConfig;
use crate::event::Batch;
use crate::plugin::PluginEngine;
use crate::reload::Loaded;
use crate::sinks::{SinkConfig, SinkContext};
use crate::sources::{SourceConfig, SourceContext};
use crate::telemetry::{Status, Telemetry};
use crate::transforms::{Outputs, Swap, TransformConfig, TransformWorker, Version};
use anyhow::Context as _;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a sink a reload removes or replaces gets to deliver what it holds before it is
/// told to give up (a disk buffer keeps the rest; a memory buffer's rest is read again
/// from its sources after a restart).
pub const RETIRE_DEADLINE: Duration = Duration::from_secs(30);

/// A source that ended: its name, which start of it, and how it ended.
pub type SourceFinished = (String, u64, anyhow::Result<()>);

pub enum SourceEnd {
    Finished,
    /// A source the pipeline was started with failed: the pipeline stops, as it would
    /// have refused to start.
    Failed,
    /// A source a reload started failed (a port in use, say): it is reported, and the rest
    /// of the pipeline, which was running fine, keeps running.
    FailedAfterReload,
}

pub struct Topology {
    pub(super) telemetry: Telemetry,
    pub(super) engine: PluginEngine,
    data_dir: PathBuf,
    /// Fires when the drain deadline passes: every sink stops retrying.
    abort: CancellationToken,
    /// Parent of every source's own token: shutdown cancels it.
    pub(super) sources_token: CancellationToken,
    /// Each output's fanout, shared with the component producing it.
    outputs: BTreeMap<String, Fanout>,
    /// Each transform's and sink's inputs, and where they send to it.
    consumers: BTreeMap<String, Consumer>,
    pub(super) sources: BTreeMap<String, SourceTask>,
    pub(super) transforms: BTreeMap<String, TransformTask>,
    pub(super) sinks: BTreeMap<String, SinkTask>,
    /// Threads of removed transforms, finishing what they were given.
    retired: Vec<std::thread::JoinHandle<()>>,
    /// Transforms a reload in progress is removing: their consumers stay connected to
    /// them until they have sent what they hold.
    pub(super) retiring: BTreeSet<String>,
    /// Sources that finished on their own (a demo with a `count`, stdin closed): a
    /// reload that leaves them as they are must not start them again.
    ended: BTreeMap<String, Value>,
    finished: mpsc::UnboundedSender<SourceFinished>,
    starts: u64,
    /// What the running pipeline was built from, for the next reload to compare.
    pub(super) current: Loaded,
}

struct Consumer {
    inputs: Vec<String>,
    sender: mpsc::Sender<Batch>,
}

pub struct SourceTask {
    /// The component as the YAML wrote it (merged), for the next reload to compare.
    spec: Value,
    kind: &'static str,
    /// Started by a reload: if it fails, the rest of the pipeline keeps running.
    by_reload: bool,
    start: u64,
    token: CancellationToken,
    handle: JoinHandle<()>,
}

pub struct TransformTask {
    pub(super) spec: Value,
    pub(super) config: TransformConfig,
    pub(super) sha256: String,
    pub(super) swaps: mpsc::Sender<Swap>,
    thread: std::thread::JoinHandle<()>,
}

pub struct SinkTask {
    pub(super) spec: Value,
    abort: CancellationToken,
    handle: JoinHandle<()>,
}

impl Topology {
    pub fn new(
        config: &PipelineConfig,
        engine: PluginEngine,
        telemetry: Telemetry,
        shutdown: &CancellationToken,
    ) -> (Self, mpsc::UnboundedReceiver<SourceFinished>) {
        let (finished, finishes) = mpsc::unbounded_channel();
        let topology = Topology {
            telemetry,
            engine,
            data_dir: config.data_dir.clone(),
            abort: CancellationToken::new(),
            sources_token: shutdown.child_token(),
            outputs: BTreeMap::new(),
            consumers: BTreeMap::new(),
            sources: BTreeMap::new(),
            transforms: BTreeMap::new(),
            sinks: BTreeMap::new(),
            retired: Vec::new(),
            retiring: BTreeSet::new(),
            ended: BTreeMap::new(),
            finished,
            starts: 0,
            current: Loaded::of(config),
        };
        (topology, finishes)
    }

    /// Starts every component of `config`, whose plugins are loaded into `versions`.
    /// Consumers are connected before anything that feeds them starts, so no batch is
    /// sent to an output nobody listens to yet.
    pub fn start(
        &mut self,
        config: PipelineConfig,
        versions: BTreeMap<String, Version>,
    ) -> anyhow::Result<()> {
        let doc = config.merged;
        for (name, sink) in config.sinks {
            self.start_sink(&name, sink, None, spec(&doc, "sinks", &name))?;
        }
        let transforms = config
            .transforms
            .into_iter()
            .map(|(name, t)| {
                let spec = spec(&doc, "transforms", &name);
                (name, (t, spec))
            })
            .collect();
        self.start_transforms(transforms, versions)?;
        for (name, source) in config.sources {
            self.start_source(&name, source, spec(&doc, "sources", &name), false);
        }
        self.update_taps();
        Ok(())
    }

    /// The running pipeline as a document of the YAML's shape: what each running component
    /// was started (or last successfully changed) with. A reload compares the new pipeline
    /// with this, so a change that did not apply is tried again by the next one.
    pub(super) fn running_document(&self) -> Value {
        let specs = |components: Vec<(&String, &Value)>| -> Value {
            Value::Object(
                components
                    .into_iter()
                    .map(|(name, spec)| (name.clone(), spec.clone()))
                    .collect(),
            )
        };
        let mut doc = serde_json::json!({
            "sources": specs(
                self.sources
                    .iter()
                    .map(|(n, t)| (n, &t.spec))
                    .chain(self.ended.iter())
                    .collect()
            ),
            "transforms": specs(self.transforms.iter().map(|(n, t)| (n, &t.spec)).collect()),
            "sinks": specs(self.sinks.iter().map(|(n, t)| (n, &t.spec)).collect()),
        });
        for key in ["data_dir", "admin"] {
            if let Some(value) = self.current.merged.get(key) {
                doc[key] = value.clone();
            }
        }
        doc
    }

    /// The files a reload depends on: the pipeline files and every plugin in use.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = self.current.files.clone();
        files.extend(self.transforms.values().map(|t| t.config.plugin.clone()));
        files
    }

    /// The fanout of `output`, created (with its tap) on first use.
    fn output(&mut self, output: &str) -> Fanout {
        if !self.outputs.contains_key(output) {
            let tap = self.telemetry.taps().point(output);
            self.outputs
                .insert(output.to_owned(), Fanout::default().tapped(tap));
        }
        self.outputs[output].clone()
    }

    /// Makes every output in `inputs` send to `consumer` through `sender`. A consumer
    /// connected before is moved: each output it keeps switches to `sender` in one step,
    /// then the outputs it no longer lists stop sending to it, so no batch misses it.
    pub(super) fn connect(
        &mut self,
        consumer: &str,
        inputs: Vec<String>,
        sender: mpsc::Sender<Batch>,
    ) {
        let name: Arc<str> = consumer.into();
        for input in &inputs {
            self.output(input).add(name.clone(), sender.clone());
        }
        let before = self
            .consumers
            .insert(consumer.to_owned(), Consumer { inputs, sender });
        if let Some(before) = before {
            let now = &self.consumers[consumer].inputs;
            let gone: Vec<&String> = before.inputs.iter().filter(|o| !now.contains(o)).collect();
            self.cut(consumer, gone);
        }
    }

    /// Stops `outputs` sending to `consumer`, except those of a transform being removed:
    /// it still sends what it was given before its inputs were cut (to a consumer that
    /// moved elsewhere, or to the next removed transform of a chain), then its fanout goes
    /// away with it.
    fn cut<'a>(&self, consumer: &str, outputs: impl IntoIterator<Item = &'a String>) {
        for output in outputs {
            if self.retiring.contains(component(output)) {
                continue;
            }
            if let Some(fanout) = self.outputs.get(output) {
                fanout.remove(consumer);
            }
        }
    }

    /// Keeps `consumer`'s sender: a transform or sink that only changed inputs goes on
    /// reading the same channel, so nothing queued for it is lost.
    pub(super) fn rewire(&mut self, consumer: &str, inputs: Vec<String>) {
        if let Some(sender) = self.consumers.get(consumer).map(|c| c.sender.clone()) {
            self.connect(consumer, inputs, sender);
        }
    }

    /// Stops every output sending to `consumer`; once the batches already on their way
    /// arrive, its input closes and it finishes.
    pub(super) fn disconnect(&mut self, consumer: &str) {
        if let Some(Consumer { inputs, .. }) = self.consumers.remove(consumer) {
            self.cut(consumer, &inputs);
        }
    }

    /// Builds `name`'s buffer and runs the sink on it. With `intake`, batches come from that
    /// channel (already connected by a reload replacing the sink); otherwise the sink's
    /// inputs are connected to its buffer.
    pub(super) fn start_sink(
        &mut self,
        name: &str,
        sink: SinkConfig,
        intake: Option<mpsc::Receiver<Batch>>,
        spec: Value,
    ) -> anyhow::Result<()> {
        let telemetry = self.telemetry.component(name, sink.kind());
        let abort = self.abort.child_token();
        let buffer = match Buffer::build(sink.buffer(), name, &self.data_dir, &telemetry, &abort) {
            Ok(buffer) => buffer,
            Err(e) => {
                self.telemetry.forget(name);
                return Err(e).with_context(|| format!("sink `{name}`: cannot open its buffer"));
            }
        };
        self.telemetry.watch_buffer(name, &buffer.sender);
        match intake {
            Some(mut intake) => {
                let sender = buffer.sender;
                tokio::spawn(async move {
                    while let Some(batch) = intake.recv().await {
                        if let Err(e) = sender.send(batch).await {
                            e.0.fail();
                        }
                    }
                });
            }
            None => self.connect(name, sink.inputs().to_vec(), buffer.sender),
        }
        let cx = SinkContext {
            telemetry,
            input: buffer.receiver,
            abort: buffer.sink_abort.unwrap_or_else(|| abort.clone()),
            name: name.to_owned(),
        };
        let guard = buffer.guard;
        let sink_name = name.to_owned();
        let handle = tokio::spawn(async move {
            match sink.run(cx).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(sink = %sink_name, error = %format!("{e:#}"), "sink failed")
                }
            }
            // Saves how far a disk buffer's sink got, once the sink is done with it.
            drop(guard);
        });
        self.sinks.insert(
            name.to_owned(),
            SinkTask {
                spec,
                abort,
                handle,
            },
        );
        Ok(())
    }

    /// Waits for a sink whose inputs were disconnected to deliver what it holds, for at
    /// most [`RETIRE_DEADLINE`]. Returns whether it finished in time.
    pub(super) async fn retire_sink(&mut self, name: &str) -> bool {
        let Some(SinkTask {
            abort, mut handle, ..
        }) = self.sinks.remove(name)
        else {
            return true;
        };
        let in_time = tokio::time::timeout(RETIRE_DEADLINE, &mut handle)
            .await
            .is_ok();
        if !in_time {
            abort.cancel();
            // A sink waiting for input rather than retrying does not look at `abort`; its
            // undelivered batches are marked failed when its task is dropped.
            if tokio::time::timeout(Duration::from_secs(5), &mut handle)
                .await
                .is_err()
            {
                handle.abort();
                let _ = handle.await;
            }
        }
        in_time
    }

    /// Connects every transform's input, then starts their workers: a transform's output
    /// has its consumers before it can send anything.
    pub(super) fn start_transforms(
        &mut self,
        transforms: BTreeMap<String, (TransformConfig, Value)>,
        mut versions: BTreeMap<String, Version>,
    ) -> anyhow::Result<()> {
        let mut inputs = Vec::new();
        for (name, (t, spec)) in transforms {
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
            self.telemetry.watch_buffer(&name, &tx);
            self.connect(&name, t.inputs.clone(), tx);
            inputs.push((name, t, spec, rx));
        }
        for (name, t, spec, input) in inputs {
            let version = versions.remove(&name).expect("a version per transform");
            let outputs = Outputs {
                records: self.output(&name),
                dead_letter: self.output(&format!("{name}.dead_letter")),
                metrics: self.output(&format!("{name}.metrics")),
                alerts: self.output(&format!("{name}.alerts")),
            };
            let (swaps_tx, swaps) = mpsc::channel(1);
            let sha256 = version.module.sha256.clone();
            let worker = TransformWorker::new(
                &name,
                self.engine.clone(),
                version,
                input,
                swaps,
                outputs,
                self.telemetry.component(&name, "transform"),
            );
            let handle = tokio::runtime::Handle::current();
            let thread = std::thread::Builder::new()
                .name(format!("transform-{name}"))
                .spawn(move || worker.run(handle))?;
            self.telemetry.plugin_running(&name, &sha256, None);
            self.transforms.insert(
                name,
                TransformTask {
                    spec,
                    config: t,
                    sha256,
                    swaps: swaps_tx,
                    thread,
                },
            );
        }
        Ok(())
    }

    /// Disconnects a transform; it finishes the batches it was given on its own (joined
    /// when the pipeline drains).
    pub(super) fn retire_transform(&mut self, name: &str) {
        self.disconnect(name);
        self.retired.retain(|thread| !thread.is_finished());
        if let Some(task) = self.transforms.remove(name) {
            self.retired.push(task.thread);
            self.telemetry.plugin_stopped(name, &task.sha256);
        }
    }

    pub(super) fn start_source(
        &mut self,
        name: &str,
        source: SourceConfig,
        spec: Value,
        by_reload: bool,
    ) {
        self.ended.remove(name);
        let kind = source.kind();
        self.starts += 1;
        let start = self.starts;
        let token = self.sources_token.child_token();
        let cx = SourceContext {
            telemetry: self.telemetry.component(name, kind),
            out: self.output(name),
            shutdown: token.clone(),
            data_dir: self.data_dir.clone(),
            name: name.to_owned(),
        };
        let finished = self.finished.clone();
        let source_name = name.to_owned();
        let handle = tokio::spawn(async move {
            let result = source.run(cx).await;
            let _ = finished.send((source_name, start, result));
        });
        self.sources.insert(
            name.to_owned(),
            SourceTask {
                spec,
                kind,
                by_reload,
                start,
                token,
                handle,
            },
        );
    }

    /// Waits for the source to finish, so a file source has saved its checkpoint before a
    /// successor with new settings reads from it.
    pub(super) async fn stop_source(&mut self, name: &str) {
        self.ended.remove(name);
        if let Some(task) = self.sources.remove(name) {
            task.token.cancel();
            let _ = task.handle.await;
        }
    }

    /// Takes note of a source that ended. `None` for one a reload already stopped.
    pub fn source_finished(
        &mut self,
        name: &str,
        start: u64,
        result: &anyhow::Result<()>,
    ) -> Option<SourceEnd> {
        if self.sources.get(name).is_none_or(|s| s.start != start) {
            return None;
        }
        let task = self.sources.remove(name).expect("checked above");
        Some(match result {
            Ok(()) => {
                self.ended.insert(name.to_owned(), task.spec);
                SourceEnd::Finished
            }
            // Not remembered: the next reload starts it again.
            Err(e) if task.by_reload => {
                self.telemetry
                    .component(name, task.kind)
                    .set_status(Status::Degraded, Some(format!("{e:#}")));
                SourceEnd::FailedAfterReload
            }
            Err(_) => SourceEnd::Failed,
        })
    }

    /// Lets go of every output no component produces any more.
    pub(super) fn forget_outputs(&mut self) {
        let live: Vec<String> = self
            .sources
            .keys()
            .cloned()
            .chain(self.transforms.keys().flat_map(|t| {
                ["", ".metrics", ".alerts", ".dead_letter"].map(|suffix| format!("{t}{suffix}"))
            }))
            .collect();
        self.outputs.retain(|output, _| live.contains(output));
    }

    /// Tells the taps what the pipeline now has, and which outputs precede a redaction.
    pub(super) fn update_taps(&self) {
        self.telemetry.taps().set_outputs(crate::tap::outputs(
            self.sources.keys().cloned(),
            &self
                .transforms
                .iter()
                .map(|(name, t)| (name.clone(), (t.config.inputs.clone(), t.config.redaction)))
                .collect(),
        ));
    }

    /// Once every source has finished: lets each component finish what it was given, in
    /// order, within `deadline` after which sinks stop retrying.
    pub async fn drain(self, deadline: Duration) {
        let Topology {
            abort,
            outputs,
            consumers,
            transforms,
            sinks,
            mut retired,
            ..
        } = self;
        // Only the producers hold their fanouts now: each input closes when the last
        // component feeding it finishes.
        drop((outputs, consumers));
        retired.extend(transforms.into_values().map(|t| t.thread));
        let drain = async {
            let _ = tokio::task::spawn_blocking(move || {
                for thread in retired {
                    let _ = thread.join();
                }
            })
            .await;
            for (name, sink) in sinks {
                if let Err(e) = sink.handle.await {
                    tracing::error!(sink = %name, error = %e, "sink panicked");
                }
            }
        };
        tokio::pin!(drain);
        if tokio::time::timeout(deadline, &mut drain).await.is_err() {
            tracing::warn!("sinks did not drain within {deadline:?}; giving up on what is left (it will be read again)");
            abort.cancel();
            drain.await;
        }
    }
}

/// The component an output belongs to: `enrich` for `enrich.metrics`.
fn component(output: &str) -> &str {
    output.split('.').next().unwrap_or(output)
}

/// `doc[kind][name]`: one component as the merged YAML wrote it.
pub(super) fn spec(doc: &Value, kind: &str, name: &str) -> Value {
    doc.get(kind)
        .and_then(|components| components.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}
