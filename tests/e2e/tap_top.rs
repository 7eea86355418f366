//! `sluice tap` and `sluice top` against a running pipeline: a tap streams live records,
//! keeps streaming across a reload, refuses what redaction has not checked, and ends when
//! Sluice stops; `top` shows every component with its throughput.

use crate::support::{append, pipeline, Sluice};
use sluice_tests::{free_port, http, plugin_wasm, sluice_bin, wait_for};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn write_pipeline(dir: &std::path::Path, admin: &str, version: &str) -> std::path::PathBuf {
    let d = dir.display();
    let example = plugin_wasm("sluice_plugin_example").display().to_string();
    pipeline(
        dir,
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "{admin}"}}
sources:
  raw: {{type: file, include: ["{d}/in.log"], decode: json, poll_interval_ms: 20}}
transforms:
  scrub:
    inputs: [raw]
    plugin: {example}
    redaction: true
  tagger:
    inputs: [scrub]
    plugin: {example}
    config: {{add: {{version: {version}}}}}
sinks:
  out: {{type: file, inputs: [tagger], path: "{d}/out.jsonl"}}
"#
        ),
    )
}

/// `sluice tap OUTPUT` as a child whose stdout lines arrive on a channel.
fn spawn_tap(admin: &str, output: &str) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(sluice_bin())
        .args(["tap", output, "--address", admin])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Appends record `n` until the tap shows it with `version` (a reload is asynchronous).
fn until_tapped(
    input: &std::path::Path,
    tap: &mpsc::Receiver<String>,
    first: usize,
    version: &str,
) -> usize {
    let mut n = first;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no record with version {version} tapped"
        );
        append(input, [format!(r#"{{"n": {n}}}"#)]);
        n += 1;
        while let Ok(line) = tap.recv_timeout(Duration::from_millis(300)) {
            let record: serde_json::Value = serde_json::from_str(&line).unwrap();
            if record["version"] == version {
                return n;
            }
        }
    }
}

#[test]
fn a_tap_streams_across_a_reload_refuses_unredacted_outputs_and_ends_with_sluice() {
    let dir = tempfile::tempdir().unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let config = write_pipeline(dir.path(), &admin, "v1");
    let input = dir.path().join("in.log");
    append(&input, [r#"{"n": 0}"#.to_owned()]);
    let mut sluice = Sluice::start(dir.path(), &config);
    let up = wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(&admin).ok()?;
        (http("GET", &admin, "/ready", &[], b"").0 == 200).then_some(())
    });
    assert!(up.is_some(), "not ready:\n{}", sluice.log_text());

    // Upstream of the `redaction: true` transform: refused, with the reason.
    for output in ["raw", "scrub.dead_letter"] {
        let out = Command::new(sluice_bin())
            .args(["tap", output, "--address", &admin])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("upstream of the redaction transform `scrub`"),
            "{err}"
        );
    }
    let out = Command::new(sluice_bin())
        .args(["tap", "nothing", "--address", &admin])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no output `nothing`"));

    let (mut tap, lines) = spawn_tap(&admin, "tagger");
    let n = until_tapped(&input, &lines, 1, "v1");

    // A reload swaps the tagger's config; the same tap sees the new version's records.
    write_pipeline(dir.path(), &admin, "v2");
    let (status, body) = http("POST", &admin, "/reload", &[], b"");
    assert_eq!(status, 200, "{body}");
    until_tapped(&input, &lines, n, "v2");
    assert!(
        tap.try_wait().unwrap().is_none(),
        "the tap ended at the reload"
    );

    // `top --once`: every component, with the tagger's rate while records flow.
    let writer = {
        let input = input.clone();
        std::thread::spawn(move || {
            for i in 0..30 {
                append(&input, [format!(r#"{{"n": {}}}"#, 100_000 + i)]);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let out = Command::new(sluice_bin())
        .args(["top", "--once", "--interval", "1", "--address", &admin])
        .output()
        .unwrap();
    writer.join().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.starts_with("COMPONENT"), "{table}");
    for component in ["raw", "scrub", "tagger", "out"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&format!("{component} "))),
            "{component} missing:\n{table}"
        );
    }
    let tagger: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("tagger "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&tagger[1..3], ["transform", "running"], "{table}");
    let rate: f64 = tagger[3].parse().unwrap();
    assert!(
        rate > 0.0,
        "tagger took no records during top's interval:\n{table}"
    );

    // Sluice stops while the tap is connected: both end promptly.
    sluice.signal("TERM");
    assert_eq!(sluice.wait_exit(Duration::from_secs(15)), Some(0));
    let status = wait_for(Duration::from_secs(10), || tap.try_wait().unwrap())
        .expect("the tap did not end when Sluice stopped");
    assert!(status.success());
}

/// Nothing listening on the admin address: both commands say where they looked, exit 1.
#[test]
fn tap_and_top_name_an_admin_address_they_cannot_reach() {
    let address = format!("127.0.0.1:{}", free_port());
    for args in [vec!["tap", "x"], vec!["top", "--once"]] {
        let out = Command::new(sluice_bin())
            .args(&args)
            .args(["--address", &address])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot reach Sluice's admin API at {address}")),
            "{args:?}: {err}"
        );
    }
}
