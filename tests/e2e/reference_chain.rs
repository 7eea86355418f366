//! The four reference plugins together, as the demo runs them: the demo generator's
//! trading log (with planted incidents and secrets) through redact → enrich → metrics →
//! alerts, checked against what the generator says it planted.

use crate::support::{pipeline, Sluice};
use serde_json::{json, Value};
use sluice::sources::demo::generator::{DemoConfig, Generator, LineKind};
use sluice_tests::{free_port, plugin_wasm, read_jsonl, wait_for_lines};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

struct Planted {
    lines: usize,
    secrets: Vec<String>,
    accepted: u64,
    order_lines: usize,
}

/// Writes the generator's lines to `dir/in.log` (rate 0: the stream's own clock, 200
/// lines per simulated second). The stream starts at the second clock minute from now, so
/// Binance's per-minute weight windows fall the same way in every run and every stamp is
/// ahead of the host's clock (see `chain_pipeline`).
fn generate(dir: &Path, count: u64, incidents: Value) -> Planted {
    let config: DemoConfig = serde_json::from_value(
        json!({"rate": 0, "count": count, "seed": 11, "incidents": incidents}),
    )
    .unwrap();
    let mut generator = Generator::new(&config);
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("in.log")).unwrap());
    let mut secrets = Vec::new();
    let mut order_lines = 0;
    let now = chrono::Utc::now().timestamp();
    let start = chrono::DateTime::from_timestamp((now / 60 + 2) * 60, 0).unwrap();
    for _ in 0..count {
        let line = generator.next_line(start);
        if let Some(secret) = line.planted_secret {
            secrets.push(secret);
        }
        if line.line.contains("[EVT] Order") {
            order_lines += 1;
        }
        writeln!(out, "{}", line.line).unwrap();
    }
    out.flush().unwrap();
    let stats = generator.stats();
    assert_eq!(stats.lines, count);
    assert!(stats.lines_of(LineKind::Secret) > 0);
    Planted {
        lines: count as usize,
        secrets,
        accepted: stats.orders.accepted,
        order_lines,
    }
}

fn chain_pipeline(dir: &Path) -> std::path::PathBuf {
    let d = dir.display();
    let plugin = |name: &str| {
        plugin_wasm(&format!("sluice_plugin_{name}"))
            .display()
            .to_string()
    };
    pipeline(
        dir,
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{admin}"}}
sources:
  bot: {{type: file, include: ["{d}/in.log"], decode: nautilus, poll_interval_ms: 50}}
transforms:
  redact: {{inputs: [bot], plugin: {redact}, on_error: drop}}
  enrich: {{inputs: [redact], plugin: {enrich}, config: {{env: test, service: hedge-grid}}}}
  metrics: {{inputs: [enrich], plugin: {metrics}}}
  # A replay: the generator wrote minutes of simulated trading that the chain reads in
  # seconds, all stamped ahead of the host's clock. With a skew allowance larger than the
  # stream, "now" is the stream's own time, so windows and `for:` run on simulated time.
  alerts: {{inputs: [metrics], plugin: {alerts}, config: {{max_clock_skew_seconds: 1000000}}}}
sinks:
  out: {{type: file, inputs: [alerts], path: "{d}/out.jsonl"}}
  metric_updates: {{type: file, inputs: [metrics.metrics], path: "{d}/metrics.jsonl"}}
  alert_events: {{type: file, inputs: [alerts.alerts], path: "{d}/alerts.jsonl"}}
"#,
            admin = free_port(),
            redact = plugin("redact"),
            enrich = plugin("enrich"),
            metrics = plugin("metrics"),
            alerts = plugin("alerts"),
        ),
    )
}

/// Runs the chain over `dir/in.log` until every record is out, then stops it.
fn run_chain(dir: &Path, lines: usize) -> Vec<serde_json::Map<String, Value>> {
    let sluice = Sluice::start(dir, &chain_pipeline(dir));
    let delivered = wait_for_lines(&dir.join("out.jsonl"), lines, Duration::from_secs(300));
    assert!(
        delivered,
        "the chain did not deliver {lines} records; log:\n{}",
        sluice.log_text()
    );
    // Let the alerts plugin's last window evaluations and side outputs land.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sluice.stop(), 0);
    read_jsonl(&dir.join("out.jsonl"))
}

/// (alert name → [statuses in order]).
fn alert_history(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut history: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in read_jsonl(&dir.join("alerts.jsonl")) {
        let name = alert["name"].as_str().unwrap().to_owned();
        let key = match alert["labels"].as_object() {
            Some(labels) if !labels.is_empty() => {
                format!("{name}{}", Value::Object(labels.clone()))
            }
            _ => name,
        };
        history
            .entry(key)
            .or_default()
            .push(alert["status"].as_str().unwrap().to_owned());
    }
    history
}

#[test]
fn planted_incidents_fire_once_and_resolve_and_secrets_never_leave() {
    let dir = tempfile::tempdir().unwrap();
    // Simulated seconds: every kind of incident but `silence` (an absence is measured
    // against the host's clock, which a replay outruns; plugin_alerts tests it). Each
    // incident's alerts resolve before the next incident that trips the same alert, and
    // all before the end of the stream (2,400 s at 200 lines/s).
    let incidents = json!([
        {"kind": "ws_outage", "at_seconds": 30, "duration_seconds": 60},
        {"kind": "rejection_burst", "at_seconds": 150, "duration_seconds": 30},
        {"kind": "rate_limit_pressure", "at_seconds": 260, "duration_seconds": 50},
        {"kind": "latency_spike", "at_seconds": 400, "duration_seconds": 40},
        {"kind": "execution_failure", "at_seconds": 500, "duration_seconds": 30},
        {"kind": "position_jump", "at_seconds": 900},
        {"kind": "balance_jump", "at_seconds": 1000},
        {"kind": "error_spike", "at_seconds": 1250, "duration_seconds": 120},
        {"kind": "restart", "at_seconds": 1500, "duration_seconds": 45},
        {"kind": "exchange_errors", "at_seconds": 1800, "duration_seconds": 60},
    ]);
    let planted = generate(dir.path(), 480_000, incidents);
    let out = run_chain(dir.path(), planted.lines);
    assert_eq!(out.len(), planted.lines, "every record comes out once");

    // No planted secret survives, anywhere in any record: searched for as written and as
    // JSON escapes it (a PEM block's newlines, a quote in a URL).
    let text = std::fs::read(dir.path().join("out.jsonl")).unwrap();
    let patterns: Vec<String> = planted
        .secrets
        .iter()
        .flat_map(|s| {
            let escaped = serde_json::to_string(s).unwrap();
            [s.clone(), escaped[1..escaped.len() - 1].to_owned()]
        })
        .collect();
    let finder = aho_corasick::AhoCorasick::new(&patterns).unwrap();
    let leaked: Vec<&str> = finder
        .find_iter(&text)
        .map(|m| patterns[m.pattern().as_usize()].as_str())
        .take(3)
        .collect();
    assert!(
        leaked.is_empty(),
        "planted secrets leaked (of {}), e.g. {leaked:?}",
        planted.secrets.len()
    );

    // Every order event is parsed.
    let order_events: Vec<_> = out
        .iter()
        .filter(|r| {
            r["message"]
                .as_str()
                .is_some_and(|m| m.contains("[EVT] Order"))
        })
        .collect();
    assert_eq!(order_events.len(), planted.order_lines);
    for r in &order_events {
        assert!(
            r.get("order")
                .and_then(|o| o.get("client_order_id"))
                .is_some(),
            "unparsed: {r:?}"
        );
        assert!(r.get("event").is_some(), "{r:?}");
    }

    // One latency observation per accepted order.
    let observations = read_jsonl(&dir.path().join("metrics.jsonl"))
        .iter()
        .filter(|m| m["name"] == "trading_order_latency_seconds" && m["kind"] == "histogram")
        .count() as u64;
    assert_eq!(observations, planted.accepted);

    // Each planted condition fires and resolves, as many times as the incidents trip it,
    // and nothing else fires.
    let history = alert_history(dir.path());
    let mut episodes: BTreeMap<&str, usize> = BTreeMap::new();
    for (alert, statuses) in &history {
        assert!(
            statuses.len() % 2 == 0 && statuses.chunks(2).all(|p| p == ["firing", "resolved"]),
            "{alert} must alternate firing → resolved and end resolved: {statuses:?}"
        );
        *episodes
            .entry(alert.split('{').next().unwrap())
            .or_default() += statuses.len() / 2;
    }
    let expected: BTreeMap<&str, usize> = [
        ("websocket_down", 1), // ws_outage, down for over 30 s
        // ws_outage's reconnect errors; execution_failure's "no execution client
        // configured" (orders cannot reach the venue); exchange_errors' 5xx.
        ("exchange_connection_failures", 3),
        ("order_rejection_burst", 1),
        ("rate_limit_high", 1),
        // Binance's weight counter restarts every clock minute and the stream starts on a
        // minute, so 260-310 s is two pressure episodes.
        ("rest_weight_high", 2),
        ("order_latency_high", 1),
        ("order_execution_failure", 1),
        ("unexpected_position_change", 1),
        ("balance_discrepancy", 1),
        ("error_rate_spike", 1),
        ("bot_stopped", 1),   // restart: stopped for 45 s, over the 30 s `for:`
        ("bot_restarted", 1), // restart: the start-up banner
        ("exchange_rate_limited", 1), // exchange_errors' 418s
    ]
    .into_iter()
    .collect();
    assert_eq!(episodes, expected, "alert episodes; history: {history:#?}");
}

#[test]
fn calm_traffic_fires_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let planted = generate(dir.path(), 60_000, json!([]));
    let out = run_chain(dir.path(), planted.lines);
    assert_eq!(out.len(), planted.lines);
    let alerts = read_jsonl(&dir.path().join("alerts.jsonl"));
    assert!(alerts.is_empty(), "alerts on calm traffic: {alerts:#?}");
    // The chain did work: records are enriched and metrics were emitted.
    assert!(out.iter().any(|r| r.contains_key("order")));
    assert!(!read_jsonl(&dir.path().join("metrics.jsonl")).is_empty());
}
