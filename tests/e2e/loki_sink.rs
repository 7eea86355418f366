//! The loki sink against a receiver that speaks Loki's push API (`loki_receiver`): every
//! line, label, metadata pair and timestamp, and 429/500/400/timeout behaviour.

use crate::loki_receiver::*;
use crate::support::{append, pipeline, Sluice};
use sluice_tests::{free_port, http, wait_for};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const BASE_NS: i64 = 1_717_372_800_000_000_000; // 2024-06-03T00:00:00Z

fn level(n: usize) -> &'static str {
    ["INFO", "INFO", "WARN", "ERROR"][n % 4]
}

fn component(n: usize) -> &'static str {
    ["RiskEngine", "ExecEngine", "Strategy"][n % 3]
}

/// Adjacent lines have swapped timestamps, so the sink must sort them.
fn ts(n: usize) -> i64 {
    BASE_NS + (n ^ 1) as i64 * 1_000
}

/// Trading records as the `json` decoder reads them; some without a correlation id, some
/// with an order, some with a value that needs escaping in a label.
fn records(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(|n| {
        let t = ts(n);
        let mut r = serde_json::json!({
            "timestamp": format!("2024-06-03T00:00:{:02}.{:09}Z", (t - BASE_NS) / 1_000_000_000, (t - BASE_NS) % 1_000_000_000),
            "env": "prod",
            "service": if n % 10 == 9 { "bot \"b\"" } else { "bot" },
            "level": level(n),
            "component": component(n),
            "trader_id": "TRADER-001",
            "message": format!("line {n}"),
        });
        if !n.is_multiple_of(5) {
            r["correlation_id"] = format!("c-{n}").into();
        }
        if n.is_multiple_of(2) {
            r["order"] = serde_json::json!({"client_order_id": format!("O-{n}"), "side": "BUY"});
        }
        r.to_string()
    })
}

fn expected_labels(n: usize) -> Labels {
    [
        ("env", "prod"),
        ("service", if n % 10 == 9 { "bot \"b\"" } else { "bot" }),
        ("level", level(n)),
        ("component", component(n)),
        ("job", "sluice"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn expected_metadata(n: usize) -> Labels {
    let mut m = Labels::new();
    if !n.is_multiple_of(5) {
        m.insert("correlation_id".into(), format!("c-{n}"));
    }
    if n.is_multiple_of(2) {
        m.insert("client_order_id".into(), format!("O-{n}"));
    }
    m
}

fn number(line: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
    v["message"].as_str().unwrap()["line ".len()..]
        .parse()
        .unwrap()
}

/// Every record arrived exactly once, with its labels, metadata, timestamp and line.
fn assert_delivered_exactly(delivered: &[(Labels, Line)], range: std::ops::Range<usize>) {
    let mut seen = BTreeMap::new();
    for (labels, line) in delivered {
        let n = number(&line.line);
        assert!(seen.insert(n, ()).is_none(), "line {n} delivered twice");
        assert_eq!(labels, &expected_labels(n), "labels of line {n}");
        assert_eq!(line.metadata, expected_metadata(n), "metadata of line {n}");
        assert_eq!(line.ts, ts(n), "timestamp of line {n}");
        let record: serde_json::Value = serde_json::from_str(&line.line).unwrap();
        assert_eq!(record["trader_id"], "TRADER-001");
        assert_eq!(record["level"], level(n));
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        range.collect::<Vec<_>>()
    );
}

fn loki_pipeline(
    dir: &Path,
    receiver: &Receiver,
    admin_port: u16,
    extra: &str,
) -> std::path::PathBuf {
    let d = dir.display();
    pipeline(
        dir,
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{admin_port}"}}
sources:
  logs: {{type: file, include: ["{d}/in.log"], decode: json, poll_interval_ms: 50}}
sinks:
  loki:
    type: loki
    inputs: [logs]
    url: http://{addr}
    labels: {{env: "{{{{env}}}}", service: "{{{{service}}}}", level: "{{{{level}}}}", component: "{{{{component}}}}", job: sluice}}
    structured_metadata: {{correlation_id: "{{{{correlation_id}}}}", client_order_id: "{{{{order.client_order_id}}}}"}}
    batch: {{timeout_ms: 200}}
    request_timeout_ms: 1000
    retry_initial_backoff_ms: 100
    retry_max_backoff_ms: 400
{extra}
"#,
            addr = receiver.addr
        ),
    )
}

/// Each stream of each request is in timestamp order.
fn assert_sorted(receiver: &Receiver) {
    for r in receiver.requests() {
        for (labels, lines) in &r.streams {
            assert!(
                lines.windows(2).all(|w| w[0].ts <= w[1].ts),
                "stream {labels:?} not sorted"
            );
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn protobuf_snappy_push_carries_every_line_label_metadata_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-bearer-token\n").unwrap();
    let receiver = Receiver::start(vec![]);
    let input = dir.path().join("in.log");
    append(&input, records(0..300));
    let config = loki_pipeline(
        dir.path(),
        &receiver,
        free_port(),
        &format!(
            "    tenant_id: desk-1\n    auth: {{bearer: {{file: \"{}\"}}}}",
            token.display()
        ),
    );
    let sluice = Sluice::start(dir.path(), &config);
    receiver.wait_delivered(300, &sluice);
    append(&input, records(300..400));
    let delivered = receiver.wait_delivered(400, &sluice);
    let log_path = sluice.log.clone();
    assert_eq!(sluice.stop(), 0);
    assert_delivered_exactly(&delivered, 0..400);
    assert_sorted(&receiver);
    let requests = receiver.requests();
    assert!(requests.len() >= 2, "two appends, two requests at least");
    for r in &requests {
        assert_eq!(r.answered, 204);
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["content-encoding"], "snappy");
        assert_eq!(r.headers["x-scope-orgid"], "desk-1");
        assert_eq!(r.headers["authorization"], "Bearer s3cret-bearer-token");
    }
    // One stream per distinct label set, not one per record.
    let streams: std::collections::BTreeSet<Labels> =
        delivered.iter().map(|(l, _)| l.clone()).collect();
    assert_eq!(
        streams.len(),
        (0..400)
            .map(expected_labels)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(log.contains("loki sink pushing"), "{log}");
    assert!(!log.contains("s3cret-bearer-token"), "{log}");
}

#[test]
fn json_gzip_push_carries_the_same_data_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "pa55word").unwrap();
    let receiver = Receiver::start(vec![]);
    append(&dir.path().join("in.log"), records(0..250));
    let config = loki_pipeline(
        dir.path(),
        &receiver,
        free_port(),
        &format!(
            "    format: json\n    compression: gzip\n    auth: {{basic: {{user: bot, password: {{file: \"{}\"}}}}}}",
            password.display()
        ),
    );
    let sluice = Sluice::start(dir.path(), &config);
    let delivered = receiver.wait_delivered(250, &sluice);
    assert_eq!(sluice.stop(), 0);
    assert_delivered_exactly(&delivered, 0..250);
    assert_sorted(&receiver);
    for r in receiver.requests() {
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert_eq!(
            r.headers["authorization"],
            format!("Basic {}", base64(b"bot:pa55word"))
        );
        assert!(!r.headers.contains_key("x-scope-orgid"));
    }
}

/// The first request is answered `first`; the same body must come again, once, after
/// `at_least`, and be delivered exactly once.
fn retried_once(first: Reply, at_least: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![first]);
    append(&dir.path().join("in.log"), records(0..50));
    let sluice = Sluice::start(
        dir.path(),
        &loki_pipeline(dir.path(), &receiver, free_port(), ""),
    );
    let delivered = receiver.wait_delivered(50, &sluice);
    assert_delivered_exactly(&delivered, 0..50);
    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        2,
        "{:?}",
        requests.iter().map(|r| r.answered).collect::<Vec<_>>()
    );
    assert_eq!(
        requests[0].body, requests[1].body,
        "the same request is retried"
    );
    assert_eq!(requests[1].answered, 204);
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= at_least,
        "retried after {waited:?}, expected at least {at_least:?}"
    );
    assert!(
        waited < at_least + Duration::from_secs(3),
        "retried only after {waited:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        receiver.requests().len(),
        2,
        "nothing sent again after delivery"
    );
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn a_429_is_retried_after_retry_after() {
    retried_once(
        Reply::Status {
            code: 429,
            headers: vec![("Retry-After".into(), "2".into())],
            body: "Ingestion rate limit exceeded".into(),
        },
        // Far beyond the configured backoff (100..400 ms): only Retry-After explains it.
        Duration::from_millis(1900),
    );
}

#[test]
fn a_500_is_retried_with_backoff() {
    retried_once(
        Reply::Status {
            code: 500,
            headers: vec![],
            body: "internal error".into(),
        },
        Duration::from_millis(50),
    );
}

#[test]
fn a_stalled_request_times_out_and_is_retried() {
    // request_timeout_ms is 1000: a 4 s stall must be cut short.
    retried_once(
        Reply::Stall(Duration::from_secs(4)),
        Duration::from_millis(1000),
    );
}

#[test]
fn a_400_is_not_retried_and_goes_to_the_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let reason = "entry for stream '{job=\"sluice\"}' has timestamp too old: 2024-06-03T00:00:00Z";
    let receiver = Receiver::start(vec![Reply::Status {
        code: 400,
        headers: vec![],
        body: reason.into(),
    }]);
    let input = dir.path().join("in.log");
    append(&input, records(0..40));
    let dead = dir.path().join("dead/loki.jsonl");
    let admin = free_port();
    let config = loki_pipeline(
        dir.path(),
        &receiver,
        admin,
        &format!("    dead_letter_path: \"{}\"", dead.display()),
    );
    let sluice = Sluice::start(dir.path(), &config);
    let dead_records = wait_for(Duration::from_secs(20), || {
        let r = sluice_tests::read_jsonl(&dead);
        (r.len() >= 40).then_some(r)
    })
    .unwrap_or_else(|| panic!("no dead letter; log:\n{}", sluice.log_text()));
    // Longer than several retries at the configured backoff would take.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.requests().len(), 1, "a 400 is never retried");
    assert_eq!(dead_records.len(), 40);
    let mut numbers: Vec<usize> = dead_records
        .iter()
        .map(|d| {
            assert_eq!(d["loki_status"], 400);
            assert!(d["loki_error"].as_str().unwrap().contains(reason), "{d:?}");
            let record = d["record"].as_object().unwrap();
            assert_eq!(record["trader_id"], "TRADER-001");
            record["message"].as_str().unwrap()["line ".len()..]
                .parse()
                .unwrap()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..40).collect::<Vec<_>>());
    let log = sluice.log_text();
    assert!(
        log.contains("timestamp too old"),
        "the log carries Loki's reason:\n{log}"
    );
    let (_, metrics) = http("GET", &format!("127.0.0.1:{admin}"), "/metrics", &[], b"");
    assert!(
        metrics.contains(
            r#"sluice_component_dropped_events_total{component="loki",reason="loki_rejected"} 40"#
        ),
        "{metrics}"
    );
    // Later records still flow (and are not dead-lettered).
    append(&input, records(40..60));
    let delivered = receiver.wait_delivered(20, &sluice);
    assert_delivered_exactly(&delivered, 40..60);
    assert_eq!(sluice.stop(), 0);
    assert_eq!(sluice_tests::read_jsonl(&dead).len(), 40);
}

fn checkpoint_offset(dir: &Path) -> u64 {
    let path = dir.join("data/checkpoints/logs.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    entries
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .max()
        .unwrap_or(0)
}

#[test]
fn the_checkpoint_waits_for_a_2xx() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![]);
    receiver.set_default(Reply::Status {
        code: 500,
        headers: vec![],
        body: "ingester unavailable".into(),
    });
    let input = dir.path().join("in.log");
    append(&input, records(0..100));
    let admin = free_port();
    let sluice = Sluice::start(dir.path(), &loki_pipeline(dir.path(), &receiver, admin, ""));
    wait_for(Duration::from_secs(20), || {
        (receiver.requests().len() >= 4).then_some(())
    })
    .unwrap_or_else(|| panic!("no retries; log:\n{}", sluice.log_text()));
    // Checkpoints are written every second: give them two chances to (wrongly) move.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        checkpoint_offset(dir.path()),
        0,
        "checkpoint moved before any 2xx"
    );
    let (code, health) = http("GET", &format!("127.0.0.1:{admin}"), "/health", &[], b"");
    assert_eq!(code, 503, "{health}");
    assert!(
        health.contains("degraded") && health.contains("ingester unavailable"),
        "{health}"
    );

    receiver.set_default(status(204));
    let delivered = receiver.wait_delivered(100, &sluice);
    assert_delivered_exactly(&delivered, 0..100);
    let len = std::fs::metadata(&input).unwrap().len();
    wait_for(Duration::from_secs(10), || {
        (checkpoint_offset(dir.path()) == len).then_some(())
    })
    .unwrap_or_else(|| panic!("checkpoint at {} of {len}", checkpoint_offset(dir.path())));
    let (code, health) = http("GET", &format!("127.0.0.1:{admin}"), "/health", &[], b"");
    assert_eq!(code, 200, "healthy again after delivery: {health}");
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn validate_refuses_a_bad_loki_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let config = pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
sources:
  logs: {{type: stdin}}
sinks:
  loki:
    type: loki
    inputs: [logs]
    url: "http://user:hunter2@loki:3100"
    labels: {{job: sluice, "bad-name": x, level: "{{{{level"}}
"#
        ),
    );
    let out = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["validate", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("credentials"), "{text}");
    assert!(text.contains("bad-name"), "{text}");
    assert!(text.contains("without `}}`"), "{text}");
}
