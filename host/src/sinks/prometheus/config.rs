use super::store::MetricStore;
use crate::sinks::SinkContext;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSinkConfig {
    /// Metric-update outputs to serve, e.g. `[metrics.metrics]`.
    pub inputs: Vec<String>,
    /// Where batches wait for this sink (see [`crate::buffers`]).
    #[serde(default)]
    pub buffer: crate::buffers::BufferConfig,
    /// Where `/metrics` is served (separate from the admin address, so Prometheus can
    /// scrape trading metrics without reaching the admin API).
    pub address: SocketAddr,
    /// Histogram buckets used when a metric has none of its own below.
    #[serde(default = "default_buckets")]
    pub default_buckets: Vec<f64>,
    /// Buckets per histogram name.
    #[serde(default)]
    pub buckets: BTreeMap<String, Vec<f64>>,
    /// Distinct label sets kept per metric; updates for new ones beyond it are dropped
    /// and counted in `sluice_prometheus_series_overflow_total{metric}`.
    #[serde(default = "default_max_series")]
    pub max_series_per_metric: usize,
    /// Gauges not updated for this long disappear (counters and histograms never do, so
    /// `rate()` never sees a reset). `0` keeps them forever.
    #[serde(default = "default_gauge_ttl")]
    pub gauge_ttl_seconds: u64,
    /// Serve Sluice's own metrics (`sluice_*`) on the same endpoint.
    #[serde(default = "default_true")]
    pub include_internal: bool,
}

fn default_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

fn default_max_series() -> usize {
    10_000
}

fn default_gauge_ttl() -> u64 {
    300
}

fn default_true() -> bool {
    true
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, as the Prometheus data model has it.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, without the reserved `__` prefix.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

impl PrometheusSinkConfig {
    pub(crate) fn check(&self) -> Vec<(Vec<String>, String)> {
        let mut problems = Vec::new();
        let check_buckets =
            |key: Vec<String>, buckets: &[f64], problems: &mut Vec<(Vec<String>, String)>| {
                if buckets.is_empty()
                    || buckets.iter().any(|b| !b.is_finite())
                    || buckets.windows(2).any(|w| w[0] >= w[1])
                {
                    problems.push((
                        key,
                        "buckets must be finite and strictly increasing".to_owned(),
                    ));
                }
            };
        check_buckets(
            vec!["default_buckets".into()],
            &self.default_buckets,
            &mut problems,
        );
        for (name, buckets) in &self.buckets {
            let key = vec!["buckets".to_owned(), name.clone()];
            if !valid_metric_name(name) {
                problems.push((
                    key.clone(),
                    format!("`{name}` is not a valid Prometheus metric name"),
                ));
            }
            check_buckets(key, buckets, &mut problems);
        }
        if self.max_series_per_metric == 0 {
            problems.push((
                vec!["max_series_per_metric".into()],
                "must be at least 1".into(),
            ));
        }
        problems
    }

    pub(crate) async fn run(self, mut cx: SinkContext) -> anyhow::Result<()> {
        // A reload that restarts this sink (new settings) keeps its series and their
        // values: a counter never resets while the process lives.
        let store = cx.telemetry.kept(MetricStore::default);
        store.configure(
            self.default_buckets.clone(),
            self.buckets.clone(),
            self.max_series_per_metric,
            Duration::from_secs(self.gauge_ttl_seconds),
        );
        let internal = self
            .include_internal
            .then(|| cx.telemetry.registry().clone());
        let server =
            super::server::serve(self.address, store.clone(), internal, cx.abort.clone()).await?;
        tracing::info!(sink = %cx.name, address = %server.0, "prometheus sink serving /metrics");
        cx.telemetry
            .set_status(crate::telemetry::Status::Running, None);
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                batch = cx.input.recv() => {
                    let Some(batch) = batch else { break };
                    cx.telemetry.received(batch.len());
                    let rejected = store.apply(&batch.records);
                    if rejected > 0 {
                        cx.telemetry.dropped("invalid_metric_update", rejected);
                    }
                    cx.telemetry.sent("default", batch.len() - rejected);
                }
                _ = sweep.tick() => store.expire_idle_gauges(),
            }
        }
        // Stopped, and waited for, so a sink a reload starts in this one's place can bind
        // the same address at once.
        server.1.abort();
        let _ = server.1.await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prometheus_data_model() {
        for good in ["order_latency_seconds", "a:b_c", "_x", "x9"] {
            assert!(valid_metric_name(good), "{good}");
        }
        for bad in ["", "9x", "order-latency", "a b", "é"] {
            assert!(!valid_metric_name(bad), "{bad}");
        }
        assert!(valid_label_name("instrument"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name("a:b"));
    }
}
