//! Plugins that trap, loop forever, allocate without bound, return garbage, report an
//! error, or do not speak ABI v1: each is contained, counted, named in the log, and the
//! pipeline keeps running.

use crate::support::{append, pipeline, Sluice};
use sluice_tests::{free_port, http, plugin_wasm, read_jsonl, sluice_bin, wait_for};
use std::path::Path;
use std::time::Duration;

/// A hand-written module with the ABI's exports; `process` is given as WAT.
fn wat_plugin(dir: &Path, name: &str, version: i32, process: &str) -> std::path::PathBuf {
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "\c1\c1\c1\c1")
  (global $bump (mut i32) (i32.const 1024))
  (func (export "sluice_abi_version") (result i32) (i32.const {version}))
  (func (export "sluice_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $n)))
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
        (br $grow)))
    (local.get $p))
  (func (export "sluice_free") (param i32 i32))
  (func (export "sluice_init") (param i32 i32) (result i64) (i64.const 0))
  {process}
)"#
    );
    let path = dir.join(format!("{name}.wat"));
    std::fs::write(&path, wat).unwrap();
    path
}

fn metric(addr: &str, line_prefix: &str) -> Option<f64> {
    let (_, body) = http("GET", addr, "/metrics", &[], b"");
    body.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn every_kind_of_plugin_failure_is_contained_counted_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let port = free_port();
    let config = pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{port}"}}
sources:
  in:
    type: file
    include: ["{d}/in.log"]
    decode: json
    batch_size: 1
    poll_interval_ms: 20
transforms:
  chaos:
    inputs: [in]
    plugin: {plugin}
    config: {{version: v1}}
    on_error: dead_letter
    limits: {{timeout_ms: 200, memory_mb: 32}}
sinks:
  out: {{type: file, inputs: [chaos], path: "{d}/out.jsonl"}}
  dead: {{type: file, inputs: [chaos.dead_letter], path: "{d}/dead.jsonl"}}
"#,
            plugin = plugin_wasm("sluice_plugin_chaos").display()
        ),
    );
    let input = dir.path().join("in.log");
    let sluice = Sluice::start(dir.path(), &config);
    // One line per batch (batch_size 1), written one at a time so each is its own batch.
    let kinds = ["trap", "loop", "alloc", "error"];
    for n in 0..12 {
        let line = match n % 3 {
            1 => format!(r#"{{"n": {n}, "chaos": "{}"}}"#, kinds[n / 3]),
            _ => format!(r#"{{"n": {n}}}"#),
        };
        append(&input, [line]);
        let expected = n + 1;
        wait_for(Duration::from_secs(20), || {
            let done = read_jsonl(&dir.path().join("out.jsonl")).len()
                + read_jsonl(&dir.path().join("dead.jsonl")).len();
            (done >= expected).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "record {n} did not come through; log:\n{}",
                sluice.log_text()
            )
        });
    }

    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let ok: Vec<i64> = out.iter().map(|r| r["n"].as_i64().unwrap()).collect();
    assert_eq!(ok, vec![0, 2, 3, 5, 6, 8, 9, 11]);
    assert!(out.iter().all(|r| r["plugin_version"] == "v1"));

    let dead = read_jsonl(&dir.path().join("dead.jsonl"));
    let failed: Vec<(i64, String)> = dead
        .iter()
        .map(|r| {
            (
                r["n"].as_i64().unwrap(),
                r["dead_letter"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (1, "trap".into()),
            (4, "timeout".into()),
            (7, "out_of_memory".into()),
            (10, "guest_error".into())
        ]
    );
    assert!(
        dead[0]["dead_letter"]["reason"]
            .as_str()
            .unwrap()
            .contains("chaos asked for a trap"),
        "{:?}",
        dead[0]
    );

    let addr = format!("127.0.0.1:{port}");
    for kind in ["trap", "timeout", "out_of_memory", "guest_error"] {
        let prefix = format!("sluice_plugin_errors_total{{kind=\"{kind}\",plugin=\"chaos\"}}");
        assert_eq!(metric(&addr, &prefix), Some(1.0), "{prefix}");
    }
    let log = sluice.log_text();
    for cause in [
        "trapped",
        "timed out after 200 ms",
        "exceeded its memory limit",
        "reported an error: chaos asked for an error",
    ] {
        assert!(
            log.contains("plugin `chaos` failed") && log.contains(cause),
            "log lacks {cause:?}:\n{log}"
        );
    }
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn malformed_output_passes_the_batch_through_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let port = free_port();
    // Returns the 4 bytes c1 c1 c1 c1 (never valid MessagePack) from every call.
    let garbage = wat_plugin(
        dir.path(),
        "garbage",
        1,
        r#"(func (export "sluice_process") (param i32 i32) (result i64) (i64.const 68719476740))"#,
    );
    let config = pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{port}"}}
sources:
  in: {{type: file, include: ["{d}/in.log"], decode: json, poll_interval_ms: 20}}
transforms:
  garbage: {{inputs: [in], plugin: {plugin}, on_error: pass}}
sinks:
  out: {{type: file, inputs: [garbage], path: "{d}/out.jsonl"}}
"#,
            plugin = garbage.display()
        ),
    );
    append(
        &dir.path().join("in.log"),
        (0..5).map(|n| format!(r#"{{"n": {n}}}"#)),
    );
    let sluice = Sluice::start(dir.path(), &config);
    let out = wait_for(Duration::from_secs(20), || {
        let r = read_jsonl(&dir.path().join("out.jsonl"));
        (r.len() >= 5).then_some(r)
    })
    .unwrap_or_else(|| panic!("log:\n{}", sluice.log_text()));
    assert_eq!(
        out.iter()
            .map(|r| r["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    let addr = format!("127.0.0.1:{port}");
    assert!(
        metric(
            &addr,
            "sluice_plugin_errors_total{kind=\"malformed\",plugin=\"garbage\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        sluice.log_text().contains("returned malformed output"),
        "{}",
        sluice.log_text()
    );
    assert_eq!(sluice.stop(), 0);
}

fn refusal(dir: &Path, plugin: &Path, config: &str) -> String {
    let d = dir.display();
    let path = pipeline(
        dir,
        &format!(
            "data_dir: {d}/data\nadmin: {{address: null}}\nsources:\n  in: {{type: stdin}}\ntransforms:\n  bad: {{inputs: [in], plugin: {}, config: {config}}}\nsinks:\n  out: {{type: console, inputs: [bad]}}\n",
            plugin.display()
        ),
    );
    let out = std::process::Command::new(sluice_bin())
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused plugin must fail the start"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn modules_that_do_not_speak_abi_v1_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let process = r#"(func (export "sluice_process") (param i32 i32) (result i64) (i64.const 0))"#;
    let v2 = wat_plugin(dir.path(), "v2", 2, process);
    let err = refusal(dir.path(), &v2, "null");
    assert!(
        err.contains("plugin `bad`: declares ABI version 2, but this host speaks version 1"),
        "{err}"
    );

    let missing = wat_plugin(dir.path(), "missing", 1, "");
    let err = refusal(dir.path(), &missing, "null");
    assert!(
        err.contains("plugin `bad`") && err.contains("lacks the required export(s) sluice_process"),
        "{err}"
    );

    let wrong_type = wat_plugin(
        dir.path(),
        "wrong",
        1,
        r#"(func (export "sluice_process") (param i32) (result i64) (i64.const 0))"#,
    );
    let err = refusal(dir.path(), &wrong_type, "null");
    assert!(
        err.contains(
            "export `sluice_process` has type (i32) -> (i64), ABI v1 requires (i32, i32) -> (i64)"
        ),
        "{err}"
    );

    let not_wasm = dir.path().join("truncated.wasm");
    let real = std::fs::read(plugin_wasm("sluice_plugin_example")).unwrap();
    std::fs::write(&not_wasm, &real[..real.len() / 2]).unwrap();
    let err = refusal(dir.path(), &not_wasm, "null");
    assert!(
        err.contains("plugin `bad`") && err.contains("is not a valid WebAssembly module"),
        "{err}"
    );

    let err = refusal(
        dir.path(),
        &plugin_wasm("sluice_plugin_chaos"),
        "{fail_init: 'no API key configured'}",
    );
    assert!(
        err.contains("plugin `bad`: init failed: no API key configured"),
        "{err}"
    );
}
