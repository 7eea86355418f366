//! The shipper's own telemetry, uniform across components (as Vector's component spec
//! has it): every component counts what it received, sent, dropped and failed on, under
//! its own name, from this one place; `/health` reads the same state.

use crate::event::Batch;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct Telemetry {
    pub registry: Registry,
    received: IntCounterVec,
    sent: IntCounterVec,
    dropped: IntCounterVec,
    errors: IntCounterVec,
    plugin_errors: IntCounterVec,
    plugin_duration: HistogramVec,
    swap_duration: HistogramVec,
    canary: IntCounterVec,
    retries: IntCounterVec,
    buffers: Buffers,
    disk_buffer_bytes: IntGaugeVec,
    disk_buffer_max_bytes: IntGaugeVec,
    reloads: IntCounterVec,
    reload_failures: IntCounterVec,
    last_reload: prometheus::Gauge,
    plugin_info: IntGaugeVec,
    reload_status: Arc<Mutex<ReloadStatus>>,
    health: Arc<Mutex<BTreeMap<String, ComponentHealth>>>,
    taps: crate::tap::Taps,
    kept: Kept,
}

/// State a component keeps across reloads that restart it, by component name.
type Kept = Arc<Mutex<HashMap<String, Box<dyn std::any::Any + Send>>>>;

/// The last reload attempts, for `/health`: what runs may not be what the files say.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Unix time of the last reload that succeeded.
    pub last_success: Option<f64>,
    /// The last reload that failed and why, until a later one succeeds.
    pub last_failure: Option<ReloadFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadFailure {
    pub at: f64,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentHealth {
    pub kind: &'static str,
    pub status: Status,
    /// The last problem, if any; cleared when the component works again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Starting,
    Running,
    Degraded,
    Stopped,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let received = counter(
            "sluice_component_received_events_total",
            "Records a component received.",
            &["component", "component_kind"],
        );
        let sent = counter(
            "sluice_component_sent_events_total",
            "Records a component sent on, by output.",
            &["component", "output"],
        );
        let dropped = counter(
            "sluice_component_dropped_events_total",
            "Records a component dropped, by reason (intentional drops included).",
            &["component", "reason"],
        );
        let errors = counter(
            "sluice_component_errors_total",
            "Errors a component met, by kind.",
            &["component", "error_kind"],
        );
        let plugin_errors = counter(
            "sluice_plugin_errors_total",
            "Failed plugin calls by kind: trap, timeout, out_of_memory, malformed, guest_error.",
            &["plugin", "kind"],
        );
        let plugin_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_plugin_call_duration_seconds",
                "Duration of one plugin call (one batch).",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["plugin", "call"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(plugin_duration.clone()))
            .expect("unique metric");
        let swap_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_plugin_swap_duration_seconds",
                "Time a transform's worker spent swapping in a new version (snapshot, restore, \
                 replace): the delay a reload adds to records waiting for that transform.",
            )
            .buckets(vec![
                0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                0.025, 0.05, 0.1,
            ]),
            &["plugin"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(swap_duration.clone()))
            .expect("unique metric");
        let canary = counter(
            "sluice_canary_records_total",
            "Records of sampled batches a transform's canary produced, compared with the live \
             version's: outcome same, different, or error (per failed batch).",
            &["plugin", "outcome"],
        );
        let retries = counter(
            "sluice_sink_retries_total",
            "Deliveries a sink retried after a failure it expects to pass (connection, 429, 5xx).",
            &["component"],
        );
        let reloads = counter(
            "sluice_reloads_total",
            "Reloads that took effect: kind=pipeline per reload, kind=plugin per plugin swapped.",
            &["kind"],
        );
        let reload_failures = counter(
            "sluice_reload_failures_total",
            "Reloads refused (the running versions stay): kind=pipeline or plugin.",
            &["kind"],
        );
        let last_reload = prometheus::Gauge::new(
            "sluice_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload (0: none since start).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(last_reload.clone()))
            .expect("unique metric");
        let plugin_info = IntGaugeVec::new(
            Opts::new(
                "sluice_plugin_info",
                "The plugin each transform runs now: version is the sha256's first 12 digits.",
            ),
            &["plugin", "version", "sha256"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(plugin_info.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["component"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let disk_buffer_bytes = gauge(
            "sluice_buffer_disk_bytes",
            "Bytes in a sink's disk buffer not yet acknowledged by the sink.",
        );
        let disk_buffer_max_bytes = gauge(
            "sluice_buffer_disk_max_bytes",
            "The configured size of a sink's disk buffer (`max_bytes`).",
        );
        let buffers = Buffers::default();
        registry
            .register(Box::new(buffers.clone()))
            .expect("unique metric");
        let build = IntGaugeVec::new(
            Opts::new("sluice_build_info", "Version of the running Sluice."),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build.clone()))
            .expect("unique metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Self {
            registry,
            received,
            sent,
            dropped,
            errors,
            plugin_errors,
            plugin_duration,
            swap_duration,
            canary,
            retries,
            buffers,
            disk_buffer_bytes,
            disk_buffer_max_bytes,
            reloads,
            reload_failures,
            last_reload,
            plugin_info,
            reload_status: Arc::default(),
            health: Arc::default(),
            taps: crate::tap::Taps::default(),
            kept: Kept::default(),
        }
    }

    /// The taps of every output; they live as long as the process, across reloads.
    pub fn taps(&self) -> &crate::tap::Taps {
        &self.taps
    }

    /// Records which module a transform runs, replacing what it ran before.
    pub fn plugin_running(&self, plugin: &str, sha256: &str, previous: Option<&str>) {
        if let Some(old) = previous.filter(|old| *old != sha256) {
            let _ = self
                .plugin_info
                .remove_label_values(&[plugin, &old[..old.len().min(12)], old]);
        }
        self.plugin_info
            .with_label_values(&[plugin, &sha256[..sha256.len().min(12)], sha256])
            .set(1);
    }

    /// A removed transform must not look like it still runs a version on a dashboard.
    pub fn plugin_stopped(&self, plugin: &str, sha256: &str) {
        let _ = self.plugin_info.remove_label_values(&[
            plugin,
            &sha256[..sha256.len().min(12)],
            sha256,
        ]);
    }

    /// A reload removed `component`: it leaves `/health`. Its counters stay, so a
    /// dashboard's `rate()` does not see a reset if it comes back.
    pub fn forget(&self, component: &str) {
        self.health.lock().unwrap().remove(component);
    }

    pub fn reloaded(&self, kind: &str, n: u64) {
        self.reloads.with_label_values(&[kind]).inc_by(n);
    }

    pub fn reload_succeeded(&self) {
        let now = unix_now();
        self.last_reload.set(now);
        let mut status = self.reload_status.lock().unwrap();
        status.last_success = Some(now);
        status.last_failure = None;
    }

    pub fn reload_failed(&self, kind: &str, error: &str) {
        self.reload_failures.with_label_values(&[kind]).inc();
        self.reload_status.lock().unwrap().last_failure = Some(ReloadFailure {
            at: unix_now(),
            error: error.to_owned(),
        });
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.reload_status.lock().unwrap().clone()
    }

    /// Reports how full `component`'s input channel is, read at each scrape.
    pub fn watch_buffer(&self, component: &str, sender: &mpsc::Sender<Batch>) {
        self.buffers
            .0
            .lock()
            .unwrap()
            .push((component.to_owned(), sender.downgrade()));
    }

    /// The handle a component reports through; registers it in `/health`.
    pub fn component(&self, name: &str, kind: &'static str) -> ComponentTelemetry {
        self.health.lock().unwrap().insert(
            name.to_owned(),
            ComponentHealth {
                kind,
                status: Status::Starting,
                last_error: None,
            },
        );
        ComponentTelemetry {
            name: name.into(),
            telemetry: self.clone(),
            received: self.received.with_label_values(&[name, kind]),
            limiters: Arc::default(),
        }
    }

    pub fn health(&self) -> BTreeMap<String, ComponentHealth> {
        self.health.lock().unwrap().clone()
    }

    pub fn encode(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct ComponentTelemetry {
    pub name: Arc<str>,
    telemetry: Telemetry,
    received: prometheus::IntCounter,
    limiters: Arc<Mutex<BTreeMap<String, LogLimiter>>>,
}

impl ComponentTelemetry {
    pub fn received(&self, n: usize) {
        self.received.inc_by(n as u64);
    }

    /// The registry of Sluice's own metrics, for sinks that serve them.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.telemetry.registry
    }

    /// The state this component kept when it last ran in this process (a reload restarted
    /// it with new settings), or `make()` the first time. A `T` of another type (the name
    /// now belongs to another kind of component) is replaced.
    pub fn kept<T: Clone + Send + 'static>(&self, make: impl FnOnce() -> T) -> T {
        let mut kept = self.telemetry.kept.lock().unwrap();
        if let Some(state) = kept.get(&*self.name).and_then(|s| s.downcast_ref::<T>()) {
            return state.clone();
        }
        let state = make();
        kept.insert(self.name.to_string(), Box::new(state.clone()));
        state
    }

    pub fn sent(&self, output: &str, n: usize) {
        self.telemetry
            .sent
            .with_label_values(&[&self.name, output])
            .inc_by(n as u64);
    }

    pub fn dropped(&self, reason: &str, n: usize) {
        self.telemetry
            .dropped
            .with_label_values(&[&self.name, reason])
            .inc_by(n as u64);
    }

    /// A disk buffer's fill, so `used / max` can be alerted on before it blocks or drops.
    pub fn buffer_bytes(&self, used: u64, max: u64) {
        let set = |g: &IntGaugeVec, v: u64| {
            g.with_label_values(&[&*self.name])
                .set(i64::try_from(v).unwrap_or(i64::MAX))
        };
        set(&self.telemetry.disk_buffer_bytes, used);
        set(&self.telemetry.disk_buffer_max_bytes, max);
    }

    pub fn error(&self, kind: &str) {
        self.telemetry
            .errors
            .with_label_values(&[&self.name, kind])
            .inc();
    }

    pub fn retry(&self) {
        self.telemetry
            .retries
            .with_label_values(&[&self.name])
            .inc();
    }

    pub fn plugin_error(&self, kind: &str) {
        self.telemetry
            .plugin_errors
            .with_label_values(&[&self.name, kind])
            .inc();
    }

    pub fn plugin_call(&self, call: &str, elapsed: Duration) {
        self.telemetry
            .plugin_duration
            .with_label_values(&[&self.name, call])
            .observe(elapsed.as_secs_f64());
    }

    pub fn canary(&self, outcome: &str, n: usize) {
        self.telemetry
            .canary
            .with_label_values(&[&self.name, outcome])
            .inc_by(n as u64);
    }

    pub fn plugin_swapped(&self, elapsed: Duration) {
        self.telemetry
            .swap_duration
            .with_label_values(&[&self.name])
            .observe(elapsed.as_secs_f64());
    }

    pub fn set_status(&self, status: Status, last_error: Option<String>) {
        if let Some(h) = self.telemetry.health.lock().unwrap().get_mut(&*self.name) {
            h.status = status;
            if last_error.is_some() || status == Status::Running {
                h.last_error = last_error;
            }
        }
    }

    /// Logs a warning at most once per interval per component and `cause`, with how many
    /// were held back, so a failing plugin or sink cannot flood the log while distinct
    /// causes still each get a line.
    pub fn warn_limited(&self, cause: &str, message: &str) {
        let admitted = self
            .limiters
            .lock()
            .unwrap()
            .entry(cause.to_owned())
            .or_default()
            .admit();
        if let Some(suppressed) = admitted {
            if suppressed > 0 {
                tracing::warn!(component = %self.name, suppressed, "{message}");
            } else {
                tracing::warn!(component = %self.name, "{message}");
            }
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every component's input channel, held weakly (a strong sender would keep a finished
/// channel open); read at scrape time, so filling and draining cost nothing in between.
#[derive(Clone, Default)]
struct Buffers(Arc<Mutex<Vec<WatchedBuffer>>>);

/// A component's name and its input channel.
type WatchedBuffer = (String, mpsc::WeakSender<Batch>);

impl prometheus::core::Collector for Buffers {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        Vec::new()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let used = IntGaugeVec::new(
            Opts::new(
                "sluice_buffer_batches",
                "Batches waiting in a component's input buffer.",
            ),
            &["component"],
        )
        .expect("valid metric");
        let capacity = IntGaugeVec::new(
            Opts::new(
                "sluice_buffer_capacity_batches",
                "Batches a component's input buffer holds before its inputs wait.",
            ),
            &["component"],
        )
        .expect("valid metric");
        let mut buffers = self.0.lock().unwrap();
        buffers.retain(|(component, weak)| {
            let Some(sender) = weak.upgrade() else {
                return false;
            };
            let max = sender.max_capacity();
            used.with_label_values(&[component])
                .set((max - sender.capacity()) as i64);
            capacity.with_label_values(&[component]).set(max as i64);
            true
        });
        let mut families = used.collect();
        families.extend(capacity.collect());
        families
    }
}

#[derive(Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

const LOG_INTERVAL: Duration = Duration::from_secs(10);

impl LogLimiter {
    /// `Some(n)` when a line may be written now, `n` lines having been held back before it.
    fn admit(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < LOG_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_admits_one_line_per_interval_and_counts_the_rest() {
        let mut l = LogLimiter::default();
        assert_eq!(l.admit(), Some(0));
        assert_eq!(l.admit(), None);
        assert_eq!(l.admit(), None);
        l.last = Some(Instant::now() - LOG_INTERVAL);
        assert_eq!(l.admit(), Some(2));
    }

    #[test]
    fn component_counters_appear_in_the_exposition() {
        let t = Telemetry::new();
        let c = t.component("redact", "transform");
        c.received(5);
        c.sent("default", 4);
        c.dropped("on_error", 1);
        c.plugin_error("timeout");
        let text = t.encode();
        assert!(text.contains("sluice_component_received_events_total{component=\"redact\",component_kind=\"transform\"} 5"), "{text}");
        assert!(
            text.contains("sluice_plugin_errors_total{kind=\"timeout\",plugin=\"redact\"} 1"),
            "{text}"
        );
        assert_eq!(t.health()["redact"].status, Status::Starting);
    }

    #[tokio::test]
    async fn buffer_fill_is_read_at_scrape_time_and_gone_with_the_channel() {
        let t = Telemetry::new();
        let (tx, mut rx) = mpsc::channel(8);
        t.watch_buffer("loki", &tx);
        tx.send(Batch::new("src".into(), vec![], None))
            .await
            .unwrap();
        tx.send(Batch::new("src".into(), vec![], None))
            .await
            .unwrap();
        let text = t.encode();
        assert!(
            text.contains("sluice_buffer_batches{component=\"loki\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("sluice_buffer_capacity_batches{component=\"loki\"} 8"),
            "{text}"
        );
        rx.recv().await.unwrap();
        assert!(t
            .encode()
            .contains("sluice_buffer_batches{component=\"loki\"} 1"));
        drop(tx);
        assert!(
            !t.encode().contains("component=\"loki\""),
            "a closed channel is forgotten"
        );
    }

    #[test]
    fn retries_are_counted_per_component() {
        let t = Telemetry::new();
        let c = t.component("loki", "loki");
        c.retry();
        c.retry();
        assert!(t
            .encode()
            .contains("sluice_sink_retries_total{component=\"loki\"} 2"));
    }
}
