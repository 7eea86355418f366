//! Shadow rollout: a `canary:` plugin sees a copy of sampled batches, its differences from
//! the live version are counted and named (never their values), and nothing it produces
//! is shipped.

use crate::support::{append, pipeline, Sluice};
use sluice_tests::{free_port, http, plugin_wasm, read_jsonl, wait_for, wait_for_lines};
use std::time::Duration;

fn counter(metrics: &str, outcome: &str) -> f64 {
    let prefix = format!("sluice_canary_records_total{{outcome=\"{outcome}\",plugin=\"tag\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn a_canary_is_compared_and_never_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let admin = format!("127.0.0.1:{}", free_port());
    let chaos = plugin_wasm("sluice_plugin_chaos").display().to_string();
    let config = pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "{admin}"}}
sources:
  numbers: {{type: file, include: ["{d}/in.log"], decode: json, poll_interval_ms: 20}}
transforms:
  tag:
    inputs: [numbers]
    plugin: {chaos}
    config: {{version: live}}
    canary: {{plugin: {chaos}, config: {{version: candidate}}, sample: 1}}
  same:
    inputs: [numbers]
    plugin: {chaos}
    config: {{version: live}}
    canary: {{plugin: {chaos}, sample: 0.5}}
  trapping:
    inputs: [numbers]
    plugin: {chaos}
    config: {{version: live}}
    canary: {{plugin: {chaos}, config: {{version: candidate, trap: true}}, sample: 1}}
sinks:
  out: {{type: file, inputs: [tag], path: "{d}/out.jsonl"}}
  same_out: {{type: file, inputs: [same], path: "{d}/same.jsonl"}}
  trap_out: {{type: file, inputs: [trapping], path: "{d}/trap.jsonl"}}
"#
        ),
    );
    let sluice = Sluice::start(dir.path(), &config);
    for round in 0..10 {
        append(
            &dir.path().join("in.log"),
            (round * 100..round * 100 + 100)
                .map(|n| format!(r#"{{"n": {n}, "secret": "s3cr3t-{n}"}}"#)),
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(wait_for_lines(
        &dir.path().join("out.jsonl"),
        1000,
        Duration::from_secs(30)
    ));
    assert!(wait_for_lines(
        &dir.path().join("same.jsonl"),
        1000,
        Duration::from_secs(30)
    ));
    let metrics = wait_for(Duration::from_secs(10), || {
        let (_, m) = http("GET", &admin, "/metrics", &[], b"");
        (counter(&m, "different") == 1000.0).then_some(m)
    })
    .unwrap_or_else(|| {
        panic!(
            "canary counts wrong:\n{}",
            http("GET", &admin, "/metrics", &[], b"").1
        )
    });
    assert_eq!(counter(&metrics, "same"), 0.0);
    assert_eq!(counter(&metrics, "error"), 0.0);
    // The unchanged candidate: every sampled record the same, none different.
    let same_prefix = "sluice_canary_records_total{outcome=\"same\",plugin=\"same\"} ";
    let same: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(same_prefix))
        .map_or(0.0, |v| v.parse().unwrap());
    // Sampling is by batch (how lines fall into batches varies), so only bounds hold.
    assert!(same > 0.0 && same <= 1000.0, "{same}");
    assert!(
        metrics.contains("sluice_canary_records_total{outcome=\"different\",plugin=\"same\"} 0\n")
            || !metrics.contains("outcome=\"different\",plugin=\"same\""),
        "{metrics}"
    );
    // A canary that traps on every batch: counted and logged, the live output untouched.
    assert!(wait_for_lines(
        &dir.path().join("trap.jsonl"),
        1000,
        Duration::from_secs(30)
    ));
    let trap_errors = "sluice_canary_records_total{outcome=\"error\",plugin=\"trapping\"} ";
    let errors = wait_for(Duration::from_secs(10), || {
        let (_, m) = http("GET", &admin, "/metrics", &[], b"");
        m.lines()
            .find_map(|l| l.strip_prefix(trap_errors))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|n| *n > 0.0)
    });
    assert!(errors.is_some(), "no canary errors counted");
    let log = sluice.log_text();
    assert!(log.contains("canary of `trapping` failed"), "{log}");
    assert_eq!(sluice.stop(), 0);
    let trapped = read_jsonl(&dir.path().join("trap.jsonl"));
    assert!(
        trapped
            .iter()
            .enumerate()
            .all(|(i, r)| r["n"] == i && r["plugin_version"] == "live"),
        "the live output of `trapping` changed"
    );

    // Nothing of the canary's reached the sink.
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), 1000);
    assert!(out.iter().all(|r| r["plugin_version"] == "live"));
    // The log names the field that differs, never a value.
    assert!(
        log.contains("canary of `tag` differs from live: record 0: fields plugin_version"),
        "{log}"
    );
    assert!(
        !log.contains("candidate") && !log.contains("s3cr3t"),
        "{log}"
    );
}
