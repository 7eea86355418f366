//! Metric families built from plugins' metric updates. A family's kind and label names
//! are fixed by its first update; later updates that disagree are refused (and counted)
//! rather than breaking the exposition. Counters and histograms live as long as the
//! process, so `rate()` never sees a reset; idle gauges expire.

use super::config::{valid_label_name, valid_metric_name};
use crate::event::Record;
use prometheus::{
    CounterVec, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
};
use sluice_sdk::{MetricKind, MetricUpdate};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct MetricStore {
    inner: Arc<Mutex<Inner>>,
    registry: Registry,
}

struct Inner {
    default_buckets: Vec<f64>,
    buckets: BTreeMap<String, Vec<f64>>,
    max_series: usize,
    gauge_ttl: Duration,
    families: HashMap<String, Family>,
    overflow: IntCounterVec,
    registry: Registry,
}

struct Family {
    kind: MetricKind,
    label_names: Vec<String>,
    collector: Collector,
    /// Label values of every live series, with the time of its last update.
    series: HashMap<Vec<String>, Instant>,
}

enum Collector {
    Counter(CounterVec),
    Gauge(GaugeVec),
    Histogram(HistogramVec),
}

impl Default for MetricStore {
    fn default() -> Self {
        let registry = Registry::new();
        let overflow = IntCounterVec::new(
            Opts::new(
                "sluice_prometheus_series_overflow_total",
                "Metric updates dropped because their metric reached max_series_per_metric.",
            ),
            &["metric"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(overflow.clone()))
            .expect("unique metric");
        Self {
            inner: Arc::new(Mutex::new(Inner {
                default_buckets: prometheus::DEFAULT_BUCKETS.to_vec(),
                buckets: BTreeMap::new(),
                max_series: usize::MAX,
                gauge_ttl: Duration::ZERO,
                families: HashMap::new(),
                overflow,
                registry: registry.clone(),
            })),
            registry,
        }
    }
}

impl MetricStore {
    pub fn new(
        default_buckets: Vec<f64>,
        buckets: BTreeMap<String, Vec<f64>>,
        max_series: usize,
        gauge_ttl: Duration,
    ) -> Self {
        let store = Self::default();
        store.configure(default_buckets, buckets, max_series, gauge_ttl);
        store
    }

    /// New settings, from a reload: a histogram keeps the buckets it was created with
    /// (changing them would break its series); the others apply from now on.
    pub fn configure(
        &self,
        default_buckets: Vec<f64>,
        buckets: BTreeMap<String, Vec<f64>>,
        max_series: usize,
        gauge_ttl: Duration,
    ) {
        let mut inner = self.inner.lock().unwrap();
        inner.default_buckets = default_buckets;
        inner.buckets = buckets;
        inner.max_series = max_series;
        inner.gauge_ttl = gauge_ttl;
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Applies metric-update records; returns how many were refused (and logs why).
    pub fn apply(&self, records: &[Record]) -> usize {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        let mut refused = 0;
        for record in records {
            let update = match serde_json::from_value::<MetricUpdate>(serde_json::Value::Object(
                record.clone(),
            )) {
                Ok(u) => u,
                Err(e) => {
                    refused += 1;
                    tracing::warn!(error = %e, "not a metric update; is this sink's input a `.metrics` output?");
                    continue;
                }
            };
            if let Err(reason) = inner.apply(&update, now) {
                refused += 1;
                tracing::warn!(metric = %update.name, "metric update refused: {reason}");
            }
        }
        refused
    }

    pub fn expire_idle_gauges(&self) {
        let mut inner = self.inner.lock().unwrap();
        let ttl = inner.gauge_ttl;
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        for family in inner.families.values_mut() {
            let Collector::Gauge(gauge) = &family.collector else {
                continue;
            };
            family.series.retain(|values, last| {
                let keep = now.duration_since(*last) < ttl;
                if !keep {
                    let _ = gauge.remove_label_values(
                        &values.iter().map(String::as_str).collect::<Vec<_>>(),
                    );
                }
                keep
            });
        }
    }
}

impl Inner {
    fn apply(&mut self, update: &MetricUpdate, now: Instant) -> Result<(), String> {
        if !valid_metric_name(&update.name) {
            return Err(format!(
                "`{}` is not a valid Prometheus metric name",
                update.name
            ));
        }
        if update.name.starts_with("sluice_") {
            return Err("the `sluice_` prefix is reserved for Sluice's own metrics".into());
        }
        if !update.value.is_finite() {
            return Err(format!("value {} is not finite", update.value));
        }
        if update.kind == MetricKind::Counter && update.value < 0.0 {
            return Err(format!(
                "a counter cannot decrease (value {})",
                update.value
            ));
        }
        let label_names: Vec<String> = update.labels.keys().cloned().collect();
        if let Some(bad) = label_names.iter().find(|l| !valid_label_name(l)) {
            return Err(format!("`{bad}` is not a valid Prometheus label name"));
        }
        if !self.families.contains_key(&update.name) {
            let family = self.create(update, label_names.clone())?;
            self.families.insert(update.name.clone(), family);
        }
        let family = self.families.get_mut(&update.name).expect("inserted above");
        if !same_kind(family.kind, update.kind) {
            return Err(format!(
                "it was a {:?} and now comes as a {:?}",
                family.kind, update.kind
            ));
        }
        if family.label_names != label_names {
            return Err(format!(
                "its labels were {:?} and now are {:?}",
                family.label_names, label_names
            ));
        }
        let values: Vec<String> = update.labels.values().cloned().collect();
        if !family.series.contains_key(&values) && family.series.len() >= self.max_series {
            self.overflow.with_label_values(&[&update.name]).inc();
            return Ok(());
        }
        family.series.insert(values.clone(), now);
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        match (&family.collector, update.kind) {
            (Collector::Counter(c), _) => c.with_label_values(&values).inc_by(update.value),
            (Collector::Gauge(g), MetricKind::GaugeAdd) => {
                g.with_label_values(&values).add(update.value)
            }
            (Collector::Gauge(g), _) => g.with_label_values(&values).set(update.value),
            (Collector::Histogram(h), _) => h.with_label_values(&values).observe(update.value),
        }
        Ok(())
    }

    fn create(&self, update: &MetricUpdate, label_names: Vec<String>) -> Result<Family, String> {
        let names: Vec<&str> = label_names.iter().map(String::as_str).collect();
        let help = format!("{} (from plugin metric updates)", update.name);
        let collector = match update.kind {
            MetricKind::Counter => Collector::Counter(
                CounterVec::new(Opts::new(&update.name, help), &names)
                    .map_err(|e| e.to_string())?,
            ),
            MetricKind::Gauge | MetricKind::GaugeAdd => Collector::Gauge(
                GaugeVec::new(Opts::new(&update.name, help), &names).map_err(|e| e.to_string())?,
            ),
            MetricKind::Histogram => {
                let buckets = self
                    .buckets
                    .get(&update.name)
                    .unwrap_or(&self.default_buckets)
                    .clone();
                Collector::Histogram(
                    HistogramVec::new(
                        HistogramOpts::new(&update.name, help).buckets(buckets),
                        &names,
                    )
                    .map_err(|e| e.to_string())?,
                )
            }
        };
        let registered = match &collector {
            Collector::Counter(c) => self.registry.register(Box::new(c.clone())),
            Collector::Gauge(g) => self.registry.register(Box::new(g.clone())),
            Collector::Histogram(h) => self.registry.register(Box::new(h.clone())),
        };
        registered.map_err(|e| e.to_string())?;
        Ok(Family {
            kind: update.kind,
            label_names,
            collector,
            series: HashMap::new(),
        })
    }
}

fn same_kind(a: MetricKind, b: MetricKind) -> bool {
    let gauge = |k| matches!(k, MetricKind::Gauge | MetricKind::GaugeAdd);
    a == b || (gauge(a) && gauge(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(v: serde_json::Value) -> Record {
        v.as_object().unwrap().clone()
    }

    fn store(max_series: usize, ttl: Duration) -> MetricStore {
        MetricStore::new(
            vec![0.1, 1.0],
            BTreeMap::from([("lat_seconds".into(), vec![0.5, 1_000_000.0])]),
            max_series,
            ttl,
        )
    }

    fn text(store: &MetricStore) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&store.registry().gather())
            .unwrap()
    }

    #[test]
    fn counters_gauges_and_histograms_are_exposed() {
        let s = store(100, Duration::ZERO);
        let refused = s.apply(&[
            update(json!({"name": "orders_total", "kind": "counter", "value": 2.0, "labels": {"status": "filled"}, "plugin": "m"})),
            update(json!({"name": "orders_total", "kind": "counter", "value": 3.0, "labels": {"status": "filled"}})),
            update(json!({"name": "position", "kind": "gauge", "value": -1.5, "labels": {"instrument": "BTCUSDT-PERP.BINANCE"}})),
            update(json!({"name": "position", "kind": "gauge_add", "value": 0.5, "labels": {"instrument": "BTCUSDT-PERP.BINANCE"}})),
            update(json!({"name": "lat_seconds", "kind": "histogram", "value": 0.3})),
            update(json!({"name": "lat_seconds", "kind": "histogram", "value": 2.0})),
        ]);
        assert_eq!(refused, 0);
        let t = text(&s);
        assert!(t.contains("orders_total{status=\"filled\"} 5"), "{t}");
        assert!(
            t.contains("position{instrument=\"BTCUSDT-PERP.BINANCE\"} -1"),
            "{t}"
        );
        assert!(t.contains("lat_seconds_bucket{le=\"0.5\"} 1"), "{t}");
        assert!(
            t.contains("lat_seconds_bucket{le=\"1000000\"} 2"),
            "bucket bounds print as plain numbers: {t}"
        );
        assert!(t.contains("lat_seconds_count 2"), "{t}");
    }

    #[test]
    fn inconsistent_or_invalid_updates_are_refused_and_the_rest_kept() {
        let s = store(100, Duration::ZERO);
        let refused = s.apply(&[
            update(
                json!({"name": "x_total", "kind": "counter", "value": 1.0, "labels": {"a": "1"}}),
            ),
            update(json!({"name": "x_total", "kind": "gauge", "value": 1.0, "labels": {"a": "1"}})),
            update(
                json!({"name": "x_total", "kind": "counter", "value": 1.0, "labels": {"b": "1"}}),
            ),
            update(
                json!({"name": "x_total", "kind": "counter", "value": -1.0, "labels": {"a": "1"}}),
            ),
            update(json!({"name": "bad-name", "kind": "counter", "value": 1.0})),
            update(json!({"name": "sluice_fake", "kind": "counter", "value": 1.0})),
            update(json!({"name": "y", "kind": "gauge", "value": 1.0, "labels": {"__x": "1"}})),
            update(json!({"message": "not a metric update"})),
        ]);
        assert_eq!(refused, 7);
        assert!(text(&s).contains("x_total{a=\"1\"} 1"));
    }

    #[test]
    fn series_beyond_the_cap_are_dropped_and_counted() {
        let s = store(2, Duration::ZERO);
        for i in 0..5 {
            s.apply(&[update(json!({"name": "c_total", "kind": "counter", "value": 1.0, "labels": {"id": i.to_string()}}))]);
        }
        s.apply(&[update(
            json!({"name": "c_total", "kind": "counter", "value": 1.0, "labels": {"id": "0"}}),
        )]);
        let t = text(&s);
        assert!(t.contains("c_total{id=\"0\"} 2"), "{t}");
        assert!(!t.contains("c_total{id=\"2\"}"), "{t}");
        assert!(
            t.contains("sluice_prometheus_series_overflow_total{metric=\"c_total\"} 3"),
            "{t}"
        );
    }

    #[test]
    fn idle_gauges_expire_but_counters_never_do() {
        let s = store(100, Duration::from_millis(1));
        s.apply(&[
            update(json!({"name": "g", "kind": "gauge", "value": 1.0, "labels": {"k": "v"}})),
            update(
                json!({"name": "c_total", "kind": "counter", "value": 1.0, "labels": {"k": "v"}}),
            ),
        ]);
        std::thread::sleep(Duration::from_millis(5));
        s.expire_idle_gauges();
        let t = text(&s);
        assert!(!t.contains("g{k=\"v\"}"), "{t}");
        assert!(t.contains("c_total{k=\"v\"} 1"), "{t}");
    }
}
