//! The worker thread of one plugin transform.

use super::{Canary, OnError, TransformConfig};
use crate::event::{Batch, Record};
use crate::plugin::{
    encode_config, CallError, Grants, Limits, LoadError, PluginEngine, PluginInstance, PluginModule,
};
use crate::telemetry::{ComponentTelemetry, Status};
use crate::topology::Fanout;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sluice_sdk::abi::{AlertEvent, LogLevel, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone, Default)]
pub struct Outputs {
    pub records: Fanout,
    pub dead_letter: Fanout,
    pub metrics: Fanout,
    pub alerts: Fanout,
}

pub struct TransformWorker {
    name: String,
    engine: PluginEngine,
    module: PluginModule,
    /// The instance `init` already succeeded on (the topology builds it to refuse a bad
    /// plugin before starting); rebuilt here after a failure.
    instance: Option<PluginInstance>,
    config: Vec<u8>,
    limits: Limits,
    grants: Grants,
    on_error: OnError,
    tick_interval: Duration,
    input: mpsc::Receiver<Batch>,
    /// New plugin versions, already loaded, initialised and self-checked off this thread;
    /// taken between batches.
    swaps: mpsc::Receiver<Swap>,
    canary: Option<Canary>,
    outputs: Outputs,
    telemetry: ComponentTelemetry,
}

/// A plugin version ready to run: loaded, with an instance whose `init` succeeded.
pub struct Version {
    pub module: PluginModule,
    pub instance: PluginInstance,
    pub config: Vec<u8>,
    pub limits: Limits,
    pub grants: Grants,
    pub on_error: OnError,
    pub tick_interval: Duration,
    pub canary: Option<Canary>,
}

impl Version {
    /// Loads `config`'s plugin (refusing it unless it matches a `sha256:` pin) and its
    /// canary, and initialises an instance.
    pub fn load(
        engine: &PluginEngine,
        name: &str,
        config: &TransformConfig,
    ) -> Result<Self, LoadError> {
        let module = engine.load(name, &config.plugin, config.sha256.as_deref())?;
        Self::of(engine, name, module, config)
    }

    /// Initialises an instance of an already loaded `module`.
    pub fn of(
        engine: &PluginEngine,
        name: &str,
        module: PluginModule,
        config: &TransformConfig,
    ) -> Result<Self, LoadError> {
        let plugin_config = encode_config(&config.config);
        let instance = PluginInstance::new(
            engine,
            &module,
            config.limits,
            &config.grants,
            &plugin_config,
        )?;
        Ok(Self {
            canary: Canary::load(engine, name, config)?,
            module,
            instance,
            config: plugin_config,
            limits: config.limits,
            grants: config.grants.clone(),
            on_error: config.on_error,
            tick_interval: Duration::from_millis(config.tick_interval_ms.max(10)),
        })
    }
}

/// A replacement for the running plugin.
pub struct Swap {
    pub version: Version,
    /// What became of the swap, once it is done.
    pub done: tokio::sync::oneshot::Sender<Result<Swapped, String>>,
}

/// How a swap went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swapped {
    /// The old version's snapshot was restored into the new one.
    StateCarried,
    /// No state to carry (a version without snapshot/restore, or an empty snapshot).
    Fresh,
}

enum Received {
    Batch(Batch),
    Swap(Box<Swap>),
    /// Every input closed: the pipeline is draining.
    Closed,
    /// Time for a tick.
    Nothing,
}

/// Plugin log lines allowed per second before the rest are counted and skipped.
const PLUGIN_LOGS_PER_SECOND: u32 = 50;

impl TransformWorker {
    pub fn new(
        name: &str,
        engine: PluginEngine,
        version: Version,
        input: mpsc::Receiver<Batch>,
        swaps: mpsc::Receiver<Swap>,
        outputs: Outputs,
        telemetry: ComponentTelemetry,
    ) -> Self {
        Self {
            name: name.to_owned(),
            engine,
            module: version.module,
            instance: Some(version.instance),
            config: version.config,
            limits: version.limits,
            grants: version.grants,
            on_error: version.on_error,
            tick_interval: version.tick_interval,
            input,
            swaps,
            canary: version.canary,
            outputs,
            telemetry,
        }
    }

    /// Runs until every upstream is done; call on a dedicated thread.
    pub fn run(mut self, runtime: tokio::runtime::Handle) {
        let origin: Arc<str> = self.name.as_str().into();
        let mut instance = self.instance.take();
        let mut log_window = (Instant::now(), 0u32);
        let mut next_tick = Instant::now() + self.tick_interval;
        self.telemetry.set_status(Status::Running, None);
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let received = runtime.block_on(async {
                tokio::select! {
                    biased;
                    Some(swap) = self.swaps.recv() => Received::Swap(Box::new(swap)),
                    batch = tokio::time::timeout(wait, self.input.recv()) => match batch {
                        Ok(Some(batch)) => Received::Batch(batch),
                        Ok(None) => Received::Closed,
                        Err(_) => Received::Nothing,
                    },
                }
            });
            let now = Instant::now();
            match received {
                Received::Closed => break,
                Received::Swap(swap) => self.swap(*swap, &mut instance),
                Received::Batch(batch) => {
                    self.telemetry.received(batch.len());
                    let encoded =
                        rmp_serde::to_vec_named(&batch.records).expect("JSON maps always encode");
                    let started = Instant::now();
                    let result = self
                        .ensure(&mut instance)
                        .and_then(|live| live.process(&encoded));
                    self.telemetry.plugin_call("process", started.elapsed());
                    if let (Some(canary), Ok(live)) = (self.canary.as_mut(), &result) {
                        if live.error.is_none() && canary.sampled() {
                            canary.compare(&self.engine, &encoded, &live.records, &self.telemetry);
                        }
                    }
                    self.handle(result, Some(batch), &origin, &mut instance, &mut log_window);
                }
                Received::Nothing => {}
            }
            if now >= next_tick {
                next_tick = now + self.tick_interval;
                if self.module.has_tick {
                    let started = Instant::now();
                    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
                    let result = self
                        .ensure(&mut instance)
                        .and_then(|live| live.tick(now_ns));
                    self.telemetry.plugin_call("tick", started.elapsed());
                    self.handle(result, None, &origin, &mut instance, &mut log_window);
                }
            }
        }
        self.telemetry.set_status(Status::Stopped, None);
    }

    /// Puts a new version in place of the running one, between two batches, handing it
    /// the old one's state when both can. Nothing is in flight here: the last batch was
    /// answered and the next one is still in the channel.
    fn swap(&mut self, swap: Swap, instance: &mut Option<PluginInstance>) {
        let started = Instant::now();
        let Swap {
            version:
                Version {
                    module,
                    instance: mut fresh,
                    config,
                    limits,
                    grants,
                    on_error,
                    tick_interval,
                    canary,
                },
            done,
        } = swap;
        let carried = match instance.as_mut() {
            Some(old) if self.module.has_snapshot && module.has_snapshot => {
                match carry_state(old, &mut fresh) {
                    Ok(carried) => carried,
                    Err(e) => {
                        let _ = done.send(Err(e));
                        return;
                    }
                }
            }
            _ => Swapped::Fresh,
        };
        self.module = module;
        self.config = config;
        self.limits = limits;
        self.grants = grants;
        self.on_error = on_error;
        self.tick_interval = tick_interval;
        self.canary = canary;
        *instance = Some(fresh);
        self.telemetry.plugin_swapped(started.elapsed());
        let _ = done.send(Ok(carried));
    }

    /// The live instance, rebuilding it if a failure poisoned the last one.
    fn ensure<'a>(
        &self,
        instance: &'a mut Option<PluginInstance>,
    ) -> Result<&'a mut PluginInstance, CallError> {
        if instance.is_none() {
            let fresh = PluginInstance::new(
                &self.engine,
                &self.module,
                self.limits,
                &self.grants,
                &self.config,
            )
            .map_err(|e| CallError::Unavailable(e.to_string()))?;
            tracing::info!(plugin = %self.name, "plugin instance rebuilt");
            *instance = Some(fresh);
        }
        Ok(instance.as_mut().expect("set above"))
    }

    fn handle(
        &self,
        result: Result<Response, CallError>,
        batch: Option<Batch>,
        origin: &Arc<str>,
        instance: &mut Option<PluginInstance>,
        log_window: &mut (Instant, u32),
    ) {
        let response = match result {
            Ok(mut response) => {
                self.forward_logs(std::mem::take(&mut response.logs), log_window);
                match response.error.take() {
                    Some(message) => Err((CallError::Guest(message), response)),
                    None => Ok(response),
                }
            }
            Err(e) => Err((e, Response::default())),
        };
        // Side outputs answer for the same source data as the batch that caused them; the
        // template carries its acknowledgements only, never a copy of its records.
        let template = batch.as_ref().map_or_else(
            || Batch::new(origin.clone(), Vec::new(), None),
            |b| b.with_records(origin.clone(), Vec::new()),
        );
        match response {
            Ok(response) => {
                self.telemetry.set_status(Status::Running, None);
                self.send_side_outputs(&template, origin, response.metrics, response.alerts);
                let out = template.with_records(origin.clone(), response.records);
                if let Some(batch) = &batch {
                    if out.len() < batch.len() {
                        self.telemetry.dropped("plugin", batch.len() - out.len());
                    }
                }
                self.telemetry.sent("default", out.len());
                if !out.is_empty() {
                    self.outputs.records.blocking_send(out);
                }
            }
            Err((error, partial)) => {
                if error.poisons_instance() {
                    *instance = None;
                }
                self.send_side_outputs(&template, origin, partial.metrics, partial.alerts);
                self.fail(error, batch, origin);
            }
        }
    }

    fn fail(&self, error: CallError, batch: Option<Batch>, origin: &Arc<str>) {
        self.telemetry.plugin_error(error.kind());
        self.telemetry.error(error.kind());
        let n = batch.as_ref().map_or(0, Batch::len);
        let policy = match self.on_error {
            OnError::Drop => "dropped",
            OnError::Pass => "passed on unchanged",
            OnError::DeadLetter => "sent to dead_letter",
        };
        let message = if batch.is_some() {
            format!(
                "plugin `{}` failed on a batch of {n} records: {error}; the batch was {policy}",
                self.name
            )
        } else {
            format!("plugin `{}` failed in tick: {error}", self.name)
        };
        self.telemetry
            .set_status(Status::Degraded, Some(message.clone()));
        self.telemetry.warn_limited(error.kind(), &message);
        let Some(batch) = batch else { return };
        match self.on_error {
            OnError::Drop => self.telemetry.dropped("plugin_error", n),
            OnError::Pass => {
                self.telemetry.sent("default", n);
                self.outputs.records.blocking_send(batch);
            }
            OnError::DeadLetter => {
                let annotation = json!({"transform": self.name, "kind": error.kind(), "reason": error.to_string()});
                let records = batch
                    .records
                    .iter()
                    .cloned()
                    .map(|mut r| {
                        r.insert("dead_letter".into(), annotation.clone());
                        r
                    })
                    .collect();
                self.telemetry.sent("dead_letter", n);
                self.outputs
                    .dead_letter
                    .blocking_send(batch.with_records(origin.clone(), records));
            }
        }
    }

    fn send_side_outputs(
        &self,
        template: &Batch,
        origin: &Arc<str>,
        metrics: Vec<sluice_sdk::MetricUpdate>,
        alerts: Vec<AlertEvent>,
    ) {
        if !metrics.is_empty() {
            let records: Vec<Record> = metrics.iter().map(|m| to_record(m, &self.name)).collect();
            self.telemetry.sent("metrics", records.len());
            self.outputs
                .metrics
                .blocking_send(template.with_records(origin.clone(), records));
        }
        if !alerts.is_empty() {
            let records: Vec<Record> = alerts
                .into_iter()
                .map(|mut a| {
                    if a.fingerprint.is_empty() {
                        a.fingerprint = fingerprint(&a);
                    }
                    to_record(&a, &self.name)
                })
                .collect();
            self.telemetry.sent("alerts", records.len());
            self.outputs
                .alerts
                .blocking_send(template.with_records(origin.clone(), records));
        }
    }

    fn forward_logs(&self, logs: Vec<sluice_sdk::LogLine>, window: &mut (Instant, u32)) {
        for line in logs {
            if window.0.elapsed() >= Duration::from_secs(1) {
                *window = (Instant::now(), 0);
            }
            if window.1 >= PLUGIN_LOGS_PER_SECOND {
                self.telemetry.dropped("plugin_log_rate", 1);
                continue;
            }
            window.1 += 1;
            let plugin = self.name.as_str();
            let message = line.message.as_str();
            match line.level {
                LogLevel::Error => tracing::error!(plugin, "{message}"),
                LogLevel::Warn => tracing::warn!(plugin, "{message}"),
                LogLevel::Info => tracing::info!(plugin, "{message}"),
                LogLevel::Debug => tracing::debug!(plugin, "{message}"),
                LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            }
        }
    }
}

/// Hands the running instance's state to the new one.
fn carry_state(old: &mut PluginInstance, fresh: &mut PluginInstance) -> Result<Swapped, String> {
    let state = old
        .snapshot()
        .map_err(|e| format!("the running version failed to snapshot its state: {e}"))?;
    // The running version keeps no state: nothing to carry.
    let Some(state) = state else {
        return Ok(Swapped::Fresh);
    };
    let response = fresh.restore(&state).map_err(|e| {
        format!("the new version failed to restore the running version's state: {e}")
    })?;
    match response.error {
        None => Ok(Swapped::StateCarried),
        Some(e) => Err(format!(
            "the new version refused the running version's state: {e}"
        )),
    }
}

fn to_record(value: &impl serde::Serialize, plugin: &str) -> Record {
    let mut record = match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Record::new(),
    };
    record.insert("plugin".into(), Value::String(plugin.to_owned()));
    record
}

/// Alertmanager-style identity: the alert's name and sorted labels, hashed.
pub fn fingerprint(alert: &AlertEvent) -> String {
    let mut hasher = Sha256::new();
    hasher.update(alert.name.as_bytes());
    for (k, v) in &alert.labels {
        hasher.update([0]);
        hasher.update(k.as_bytes());
        hasher.update([0xff]);
        hasher.update(v.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}
