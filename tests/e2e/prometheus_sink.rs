//! The prometheus sink against the real tools: `promtool check metrics` on its exposition,
//! and a real Prometheus server scraping it.

use crate::support::{append, pipeline, Sluice};
use sluice_tests::{free_port, http, plugin_wasm, wait_for, PrometheusServer};
use std::path::Path;
use std::time::Duration;

fn metrics_pipeline(dir: &Path, metrics_port: u16, admin_port: u16) -> std::path::PathBuf {
    let d = dir.display();
    pipeline(
        dir,
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{admin_port}"}}
sources:
  logs: {{type: file, include: ["{d}/in.log"], decode: nautilus, poll_interval_ms: 50}}
transforms:
  count:
    inputs: [logs]
    plugin: {plugin}
sinks:
  prom:
    type: prometheus
    inputs: [count.metrics]
    address: 127.0.0.1:{metrics_port}
  out: {{type: file, inputs: [count], path: "{d}/out.jsonl"}}
"#,
            plugin = plugin_wasm("sluice_plugin_example").display()
        ),
    )
}

fn lines(range: std::ops::Range<usize>, level: &str) -> impl Iterator<Item = String> + '_ {
    range.map(move |n| {
        format!("2024-06-03T00:00:00.{n:09}Z [{level}] TRADER-001.Strategy: line {n}")
    })
}

#[test]
fn exposition_passes_promtool_and_counts_plugin_metrics() {
    let promtool = Path::new("/usr/bin/promtool");
    assert!(
        promtool.is_file(),
        "promtool is missing: `apt-get install prometheus` (.ci/run does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    append(
        &dir.path().join("in.log"),
        lines(0..30, "INFO").chain(lines(30..40, "WARN")),
    );
    let sluice = Sluice::start(dir.path(), &metrics_pipeline(dir.path(), port, free_port()));
    let addr = format!("127.0.0.1:{port}");
    let body = wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(&addr).ok()?;
        let (_, body) = http("GET", &addr, "/metrics", &[], b"");
        body.contains("example_records_total{level=\"WARN\"} 10")
            .then_some(body)
    })
    .unwrap_or_else(|| panic!("metrics never showed up; log:\n{}", sluice.log_text()));
    assert!(
        body.contains("example_records_total{level=\"INFO\"} 30"),
        "{body}"
    );
    assert!(body.contains("sluice_component_received_events_total{component=\"count\",component_kind=\"transform\"} 40"), "{body}");

    let (ok, output) = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(body.as_bytes());
    assert!(ok, "promtool check metrics failed:\n{output}\n{body}");
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn a_reload_that_moves_the_sink_keeps_every_counter() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let admin = format!("127.0.0.1:{admin_port}");
    append(
        &dir.path().join("in.log"),
        lines(0..30, "INFO").chain(lines(30..40, "WARN")),
    );
    let sluice = Sluice::start(dir.path(), &metrics_pipeline(dir.path(), port, admin_port));
    let scrape = |port: u16, expect: &str| {
        let addr = format!("127.0.0.1:{port}");
        wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&addr).ok()?;
            let body = http("GET", &addr, "/metrics", &[], b"").1;
            body.contains(expect).then_some(body)
        })
    };
    let warn_10 = "example_records_total{level=\"WARN\"} 10";
    assert!(
        scrape(port, warn_10).is_some(),
        "log:\n{}",
        sluice.log_text()
    );

    // New settings for the sink (another port): it restarts, its series stay.
    let moved = free_port();
    metrics_pipeline(dir.path(), moved, admin_port);
    let (status, body) = http("POST", &admin, "/reload", &[], b"");
    assert_eq!(status, 200, "{body}");
    // (The file watcher may have applied the change before this request did.)
    let log = sluice.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("reload: pipeline changed") && l.contains("restarted=[\"prom\"]")),
        "{log}"
    );
    append(&dir.path().join("in.log"), lines(40..45, "WARN"));
    let body = scrape(moved, "example_records_total{level=\"WARN\"} 15")
        .unwrap_or_else(|| panic!("counter reset or missing; log:\n{}", sluice.log_text()));
    assert!(
        body.contains("example_records_total{level=\"INFO\"} 30"),
        "{body}"
    );
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "the old address still serves"
    );
    assert_eq!(sluice.stop(), 0);
}

trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> (bool, String);
}

impl OutputWithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> (bool, String) {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

#[test]
fn a_real_prometheus_scrapes_the_sink_and_computes_rates() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let input = dir.path().join("in.log");
    append(&input, lines(0..10, "INFO"));
    let sluice = Sluice::start(dir.path(), &metrics_pipeline(dir.path(), port, free_port()));
    let prometheus = PrometheusServer::start(dir.path(), &[format!("127.0.0.1:{port}")]);
    // Keep records flowing so rates are above zero over the query window.
    let feeder = {
        let input = input.clone();
        std::thread::spawn(move || {
            for round in 0..40 {
                append(&input, lines(100 + round * 10..110 + round * 10, "INFO"));
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let rate = prometheus.wait_for_value(
        "sum(rate(sluice_component_received_events_total{component=\"count\"}[5s]))",
        Duration::from_secs(60),
        |v| v > 0.0,
    );
    assert!(
        rate.is_some(),
        "no rate over the event counter; sluice log:\n{}",
        sluice.log_text()
    );
    let plugin_rate = prometheus.wait_for_value(
        "sum(rate(example_records_total{level=\"INFO\"}[5s]))",
        Duration::from_secs(30),
        |v| v > 0.0,
    );
    assert!(plugin_rate.is_some());
    feeder.join().unwrap();
    // Every INFO line the plugin saw is counted exactly once.
    let total = prometheus.wait_for_value(
        "example_records_total{level=\"INFO\"}",
        Duration::from_secs(30),
        |v| v == 410.0,
    );
    assert_eq!(total, Some(410.0));
    assert_eq!(sluice.stop(), 0);
}
