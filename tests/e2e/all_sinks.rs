//! The demo as a team would deploy it: the demo generator's live trading log through
//! redact → enrich → metrics → alerts into all three sinks at once (Loki, Prometheus and
//! alert delivery), each checked on its receiving side: a receiver decoding Loki's
//! protobuf push, a real Prometheus server scraping the metrics, a webhook receiver.

use crate::loki_receiver::{Labels, Line, Receiver};
use crate::recorder::{ok, Recorder};
use crate::support::{pipeline, Sluice};
use sluice_tests::{free_port, plugin_wasm, PrometheusServer};
use std::time::Duration;

/// Lines the demo source writes (400 a second) before it ends.
const LINES: usize = 6_000;

#[test]
fn demo_through_four_plugins_reaches_loki_prometheus_and_the_alert_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let loki = Receiver::start(vec![]);
    let hook = Recorder::start(ok);
    let (metrics_port, admin_port, http_port) = (free_port(), free_port(), free_port());
    let plugin = |name: &str| {
        plugin_wasm(&format!("sluice_plugin_{name}"))
            .display()
            .to_string()
    };
    std::fs::write(dir.path().join("hook_url"), hook.url("/hook")).unwrap();
    let config = pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{admin_port}"}}
sources:
  bot:
    type: demo
    rate: 400
    count: {LINES}
    seed: 5
    secret_ratio: 0.05
    # Orders submitted from second 3 to 8 are accepted 1-3 s late: the latency
    # histogram's p99 jumps and order_latency_high fires.
    incidents: [{{kind: latency_spike, at_seconds: 3, duration_seconds: 5}}]
  # A source that never ends keeps Sluice (and its /metrics) up after the demo's last
  # line, as a deployment would be; nothing is posted to it.
  ingest: {{type: http, address: "127.0.0.1:{http_port}"}}
transforms:
  redact: {{inputs: [bot], plugin: {redact}, on_error: drop}}
  enrich: {{inputs: [redact], plugin: {enrich}, config: {{env: test, service: hedge-grid}}}}
  metrics: {{inputs: [enrich], plugin: {metrics}}}
  alerts: {{inputs: [metrics], plugin: {alerts}}}
sinks:
  loki:
    type: loki
    inputs: [alerts, ingest]
    url: http://{loki_addr}
    labels: {{job: sluice, env: "{{{{env}}}}", service: "{{{{service}}}}", level: "{{{{level}}}}"}}
    structured_metadata: {{client_order_id: "{{{{order.client_order_id}}}}"}}
    batch: {{timeout_ms: 200}}
  prometheus:
    type: prometheus
    inputs: [metrics.metrics]
    address: 127.0.0.1:{metrics_port}
    buckets: {{trading_order_latency_seconds: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]}}
  notify:
    type: alerts
    inputs: [alerts.alerts]
    route: {{receiver: hook, group_by: [alertname], group_wait_ms: 0}}
    receivers:
      hook: {{type: webhook, url: {{file: "{d}/hook_url"}}}}
"#,
            redact = plugin("redact"),
            enrich = plugin("enrich"),
            metrics = plugin("metrics"),
            alerts = plugin("alerts"),
            loki_addr = loki.addr,
        ),
    );
    let sluice = Sluice::start(dir.path(), &config);
    let prometheus = PrometheusServer::start(
        dir.path(),
        &[
            format!("127.0.0.1:{metrics_port}"),
            format!("127.0.0.1:{admin_port}"),
        ],
    );

    // Loki: every record, once, redacted, with its labels; order events carry their
    // client order id as structured metadata, never as a label.
    let delivered: Vec<(Labels, Line)> = loki.wait_delivered(LINES, &sluice);
    assert_eq!(delivered.len(), LINES, "every record exactly once");
    let mut redacted = 0;
    let mut accepted = 0;
    for (labels, line) in &delivered {
        assert_eq!(labels["job"], "sluice");
        assert_eq!(labels["env"], "test");
        assert_eq!(labels["service"], "hedge-grid");
        assert!(["DEBUG", "INFO", "WARN", "ERROR"].contains(&labels["level"].as_str()));
        assert!(!labels.contains_key("client_order_id"));
        let record: serde_json::Value = serde_json::from_str(&line.line).unwrap();
        let message = record["message"].as_str().unwrap_or_default();
        redacted += message.contains("[REDACTED:") as usize;
        if message.contains("[EVT] OrderAccepted(") {
            accepted += 1;
            assert_eq!(
                line.metadata.get("client_order_id").map(String::as_str),
                record["order"]["client_order_id"].as_str(),
                "{line:?}"
            );
        }
        for planted in ["X-MBX-APIKEY: ", "signature=", "listenKey="] {
            if let Some(at) = message.find(planted) {
                let after = &message[at + planted.len()..];
                assert!(
                    after.starts_with("[REDACTED:"),
                    "a secret after {planted:?} left unredacted: {message}"
                );
            }
        }
    }
    assert!(
        redacted > 0,
        "the generator planted secrets; none was redacted"
    );
    assert!(accepted > 20, "only {accepted} orders accepted");

    // Prometheus: the order latency histogram holds one observation per accepted order,
    // its quantiles show the planted spike (calm orders take milliseconds, spiked ones
    // 1-3 s), and the shipper's event counters have a rate.
    let count = prometheus.wait_for_value(
        "sum(trading_order_latency_seconds_count)",
        Duration::from_secs(30),
        |v| v == accepted as f64,
    );
    assert_eq!(
        count,
        Some(accepted as f64),
        "latency observations in Prometheus: {:?}",
        prometheus.query("sum(trading_order_latency_seconds_count)")
    );
    let p99 = prometheus
        .wait_for_value(
            "histogram_quantile(0.99, sum by (le) (trading_order_latency_seconds_bucket))",
            Duration::from_secs(10),
            |v| v.is_finite(),
        )
        .unwrap();
    let p50 = prometheus
        .wait_for_value(
            "histogram_quantile(0.5, sum by (le) (trading_order_latency_seconds_bucket))",
            Duration::from_secs(10),
            |v| v.is_finite(),
        )
        .unwrap();
    // The configured buckets are the ones Prometheus sees.
    assert!(!prometheus
        .query("trading_order_latency_seconds_bucket{le=\"1.5\"}")
        .is_empty());
    assert!((1.0..=3.5).contains(&p99), "p99 {p99} s");
    assert!(p50 < 0.25, "p50 {p50} s");
    let rate = prometheus.wait_for_value(
        "sum(rate(sluice_component_sent_events_total{component=\"enrich\"}[10s]))",
        Duration::from_secs(10),
        |v| v > 0.0,
    );
    assert!(rate.is_some(), "no rate over enrich's sent events");

    // The alert webhook: order_latency_high fired, in Alertmanager's webhook shape.
    let hooks = hook.wait("/hook", 1, Duration::from_secs(30));
    let fired: Vec<serde_json::Value> = hooks
        .iter()
        .flat_map(|r| r.json()["alerts"].as_array().cloned().unwrap_or_default())
        .collect();
    let latency = fired
        .iter()
        .find(|a| a["labels"]["alertname"] == "order_latency_high")
        .unwrap_or_else(|| panic!("order_latency_high was not delivered: {fired:#?}"));
    assert_eq!(latency["status"], "firing");
    assert_eq!(latency["labels"]["severity"], "warning");
    assert!(latency["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains("Order latency p99"));
    let names: Vec<&str> = fired
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    assert!(
        names.iter().all(|n| *n == "order_latency_high"),
        "only the planted condition fires: {names:?}"
    );
    assert_eq!(sluice.stop(), 0);
}
