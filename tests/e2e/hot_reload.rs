//! Hot reload while records flow: plugin builds and pipeline settings swapped again and
//! again (some of the new versions broken), with every record delivered exactly once, in
//! order, each processed by exactly one version; and the ways a reload is asked for
//! (`POST /reload`, SIGHUP, the file changing on disk).

use crate::support::{append, Sluice};
use sluice_tests::{free_port, http, plugin_wasm, read_jsonl, wait_for, wait_for_lines};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes `path` the way deploy tools and editors do: a temporary file renamed over it.
pub(crate) fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The chaos plugin with a custom section appended: the same code, another build (another
/// sha256), as a rebuild of an unchanged plugin would be.
pub(crate) fn build(tag: &str) -> Vec<u8> {
    rebuild("sluice_plugin_chaos", tag)
}

/// `plugin` with a custom section appended.
fn rebuild(plugin: &str, tag: &str) -> Vec<u8> {
    let mut wasm = std::fs::read(plugin_wasm(plugin)).unwrap();
    let name = b"sluice-test-build";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(tag.as_bytes());
    assert!(content.len() < 128, "one-byte LEB128 size");
    wasm.push(0); // custom section
    wasm.push(content.len() as u8);
    wasm.extend_from_slice(&content);
    wasm
}

/// A module that speaks another ABI version: the host must refuse to swap it in.
pub(crate) const WRONG_ABI: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 99))
  (func (export "sluice_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "sluice_free") (param i32 i32))
  (func (export "sluice_init") (param i32 i32) (result i64) (i64.const 0))
  (func (export "sluice_process") (param i32 i32) (result i64) (i64.const 0)))"#;

struct Setup {
    dir: tempfile::TempDir,
    admin: String,
    plugin: PathBuf,
    config: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("plugin.wasm");
        std::fs::write(&plugin, build("a")).unwrap();
        let setup = Self {
            admin: format!("127.0.0.1:{}", free_port()),
            plugin,
            config: dir.path().join("pipeline.yaml"),
            dir,
        };
        setup.write_pipeline("version: v0");
        setup
    }

    fn write_pipeline(&self, plugin_settings: &str) {
        let d = self.dir.path().display();
        let text = format!(
            r#"
data_dir: {d}/data
admin: {{address: "{admin}"}}
sources:
  numbers: {{type: file, include: ["{d}/in.log"], decode: json, poll_interval_ms: 20}}
transforms:
  tag:
    inputs: [numbers]
    plugin: plugin.wasm
    on_error: drop
    config: {{{plugin_settings}}}
sinks:
  out: {{type: file, inputs: [tag], path: "{d}/out.jsonl"}}
"#,
            admin = self.admin
        );
        replace(&self.config, text.as_bytes());
    }

    fn post_reload(&self) -> (u16, serde_json::Value) {
        let (status, body) = http("POST", &self.admin, "/reload", &[], b"");
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
        )
    }

    fn metrics(&self) -> String {
        http("GET", &self.admin, "/metrics", &[], b"").1
    }
}

/// Feeds `{"n": i}` lines in small bursts until `total`, on its own thread.
fn feed(input: PathBuf, total: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0;
        while n < total {
            let end = (n + 50).min(total);
            append(&input, (n..end).map(|i| format!(r#"{{"n": {i}}}"#)));
            n = end;
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[test]
fn a_hundred_swaps_under_load_lose_nothing_and_each_record_meets_one_version() {
    let s = Setup::new();
    let sluice = Sluice::start(s.dir.path(), &s.config);
    let up = wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(&s.admin).ok()?;
        (http("GET", &s.admin, "/ready", &[], b"").0 == 200).then_some(())
    });
    assert!(up.is_some(), "not ready:\n{}", sluice.log_text());
    const TOTAL: usize = 30_000;
    let feeder = feed(s.dir.path().join("in.log"), TOTAL);

    let builds = [build("a"), build("b"), build("c")];
    let mut version = 0;
    let (mut swapped, mut refused) = (0, 0);
    for i in 1..=100 {
        let expect_ok = match i % 10 {
            // A broken new version: the running one must stay.
            3 => {
                s.write_pipeline(&format!(
                    "version: v{version}, fail_init: 'broken build {i}'"
                ));
                false
            }
            5 => {
                s.write_pipeline(&format!("version: v{version}, trap: true"));
                false
            }
            7 => {
                replace(&s.plugin, WRONG_ABI.as_bytes());
                false
            }
            // New settings (a YAML change): records from here on carry the new version.
            0 | 4 | 8 => {
                version += 1;
                s.write_pipeline(&format!("version: v{version}"));
                true
            }
            // Another build of the plugin file, compiled once and cached after that.
            _ => {
                replace(&s.plugin, &builds[i % 3]);
                true
            }
        };
        let (status, body) = s.post_reload();
        if expect_ok {
            assert_eq!(status, 200, "reload {i}: {body}");
            swapped += 1;
        } else {
            assert_eq!(status, 422, "reload {i} must be refused: {body}");
            let error = body["error"].as_str().unwrap();
            assert!(error.contains("plugin `tag`"), "{error}");
            assert!(error.contains("running version stays"), "{error}");
            refused += 1;
            // Put the good version back (the next reload must swap to it or find it
            // unchanged).
            s.write_pipeline(&format!("version: v{version}"));
            replace(&s.plugin, &builds[i % 3]);
        }
    }
    assert_eq!((swapped, refused), (70, 30));
    feeder.join().unwrap();

    let out = s.dir.path().join("out.jsonl");
    assert!(
        wait_for_lines(&out, TOTAL, Duration::from_secs(60)),
        "records missing; log:\n{}",
        sluice.log_text()
    );
    let metrics = s.metrics();
    let health = http("GET", &s.admin, "/health", &[], b"").1;
    assert_eq!(sluice.stop(), 0);

    // Exactly once, in order, and versions only move forward: a record never meets two
    // versions, and no version came back after a later one.
    let records = read_jsonl(&out);
    assert_eq!(records.len(), TOTAL);
    let mut last_version = 0;
    let mut seen_versions = std::collections::BTreeSet::new();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["n"], i, "record {i} out of order or missing");
        let v: u32 = r["plugin_version"].as_str().unwrap()[1..].parse().unwrap();
        assert!(
            v >= last_version,
            "record {i} went back from v{last_version} to v{v}"
        );
        last_version = v;
        seen_versions.insert(v);
    }
    assert!(seen_versions.len() > 3, "versions seen: {seen_versions:?}");
    // At least the 30 refused here; the file watcher may also have tried a broken
    // file in the moment before the test put the good one back.
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_reload_failures_total{kind=\"pipeline\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no reload failure counter: {metrics}"));
    assert!(failures >= 30.0, "{failures} reload failures counted");
    assert!(
        metrics.contains("sluice_plugin_info{plugin=\"tag\""),
        "{metrics}"
    );
    assert!(health.contains("\"last_success\""), "{health}");
}

#[test]
fn sighup_and_a_file_change_reload_and_a_bad_file_changes_nothing() {
    let s = Setup::new();
    let sluice = Sluice::start(s.dir.path(), &s.config);
    let input = s.dir.path().join("in.log");
    let out = s.dir.path().join("out.jsonl");
    let version_of_last = |n: usize| -> Option<String> {
        read_jsonl(&out)
            .iter()
            .find(|r| r["n"] == n)
            .map(|r| r["plugin_version"].as_str().unwrap().to_owned())
    };
    // Sends record `n` until it comes out with `version` (a reload is asynchronous).
    let mut n = 0;
    let mut until_version = |version: &str, what: &str| {
        let got = wait_for(Duration::from_secs(20), || {
            append(&input, [format!(r#"{{"n": {n}}}"#)]);
            let seen = wait_for(Duration::from_secs(5), || version_of_last(n));
            n += 1;
            (seen.as_deref() == Some(version)).then_some(())
        });
        assert!(
            got.is_some(),
            "{what}: records never carried {version}; log:\n{}",
            sluice.log_text()
        );
    };
    until_version("v0", "start");

    // SIGHUP after the YAML changed.
    s.write_pipeline("version: v1");
    sluice.signal("HUP");
    until_version("v1", "SIGHUP");

    // The file alone, written by rename: the watcher notices.
    s.write_pipeline("version: v2");
    until_version("v2", "file watch");

    // A pipeline that does not parse: refused, v2 keeps running, /health says why.
    replace(&s.config, b"sources: [unclosed\n");
    let health = wait_for(Duration::from_secs(20), || {
        let (_, body) = http("GET", &s.admin, "/health", &[], b"");
        body.contains("\"last_failure\":{").then_some(body)
    })
    .unwrap_or_else(|| panic!("no reload failure in /health; log:\n{}", sluice.log_text()));
    assert!(health.contains("invalid"), "{health}");
    until_version("v2", "after the broken file");

    // Deleted and created again (with new content): one reload, of the new content.
    std::fs::remove_file(&s.config).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.write_pipeline("version: v3");
    until_version("v3", "delete and re-create");
    // A build that does not match the pipeline's sha256 pin is refused, and v3 stays.
    let pinned = std::fs::read_to_string(&s.config).unwrap().replace(
        "    on_error: drop\n",
        &format!("    on_error: drop\n    sha256: \"{}\"\n", "0".repeat(64)),
    );
    replace(&s.config, pinned.as_bytes());
    let (status, body) = s.post_reload();
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("but the pipeline pins 0000"), "{error}");
    until_version("v3", "after a pin mismatch");
    let log = sluice.log_text();
    assert!(log.contains("reload refused"), "{log}");
    assert_eq!(sluice.stop(), 0);
}

/// What the kubelet does to a mounted ConfigMap: each version in its own `..TIMESTAMP`
/// directory, `..data` a symlink to the current one, each key a symlink through `..data`;
/// an update writes a new directory and renames a new `..data` link over the old.
#[test]
fn a_kubernetes_configmap_update_reloads() {
    let s = Setup::new();
    let mount = s.dir.path().join("configmap");
    std::fs::create_dir(&mount).unwrap();
    let plugin = s.plugin.display().to_string();
    let publish = |version: &str, stamp: &str| {
        s.write_pipeline(&format!("version: {version}"));
        let text = std::fs::read_to_string(&s.config)
            .unwrap()
            .replace("plugin: plugin.wasm", &format!("plugin: {plugin}"));
        let data = mount.join(stamp);
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("pipeline.yaml"), text).unwrap();
        let tmp = mount.join("..data_tmp");
        std::os::unix::fs::symlink(stamp, &tmp).unwrap();
        std::fs::rename(&tmp, mount.join("..data")).unwrap();
    };
    publish("v1", "..2026_11_28_13_00_00.1");
    std::os::unix::fs::symlink("..data/pipeline.yaml", mount.join("pipeline.yaml")).unwrap();
    let sluice = Sluice::start(s.dir.path(), &mount.join("pipeline.yaml"));
    let input = s.dir.path().join("in.log");
    let out = s.dir.path().join("out.jsonl");
    let mut n = 0;
    let mut until_version = |version: &str| {
        wait_for(Duration::from_secs(20), || {
            append(&input, [format!(r#"{{"n": {n}}}"#)]);
            n += 1;
            let last = read_jsonl(&out).last().cloned()?;
            (last["plugin_version"] == version).then_some(())
        })
        .is_some()
    };
    assert!(until_version("v1"), "log:\n{}", sluice.log_text());

    publish("v2", "..2026_11_28_13_05_00.2");
    std::fs::remove_dir_all(mount.join("..2026_11_28_13_00_00.1")).unwrap();
    assert!(
        until_version("v2"),
        "the ConfigMap update was not noticed; log:\n{}",
        sluice.log_text()
    );
    assert_eq!(sluice.stop(), 0);
}

/// A plugin that exports snapshot/restore hands its state to its next version in a running
/// pipeline; one that does not starts fresh, and the log says which happened.
#[test]
fn a_stateful_plugin_carries_its_state_into_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    for plugin in ["enrich", "metrics"] {
        std::fs::copy(
            plugin_wasm(&format!("sluice_plugin_{plugin}")),
            dir.path().join(format!("{plugin}.wasm")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("chaos.wasm"), build("a")).unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let config = crate::support::pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "{admin}"}}
sources:
  bot: {{type: demo, rate: 500}}
transforms:
  enrich: {{inputs: [bot], plugin: enrich.wasm}}
  metrics: {{inputs: [enrich], plugin: metrics.wasm}}
  chaos: {{inputs: [metrics], plugin: chaos.wasm, config: {{version: a}}}}
sinks:
  out: {{type: file, inputs: [chaos], path: "{d}/out.jsonl"}}
"#
        ),
    );
    let sluice = Sluice::start(dir.path(), &config);
    assert!(
        wait_for_lines(&dir.path().join("out.jsonl"), 200, Duration::from_secs(30)),
        "log:\n{}",
        sluice.log_text()
    );
    replace(
        &dir.path().join("metrics.wasm"),
        &rebuild("sluice_plugin_metrics", "2"),
    );
    replace(&dir.path().join("chaos.wasm"), &build("b"));
    let (status, body) = http("POST", &admin, "/reload", &[], b"");
    assert_eq!(status, 200, "{body}");
    // The file watcher may have applied the new builds before this request: the log says
    // what each swap did either way.
    let swaps = wait_for(Duration::from_secs(20), || {
        let log = sluice.log_text();
        let carried = log
            .lines()
            .any(|l| l.contains("state carried over") && l.contains("plugin=metrics"));
        let fresh = log
            .lines()
            .any(|l| l.contains("fresh state") && l.contains("plugin=chaos"));
        (carried && fresh).then_some(log)
    });
    assert!(swaps.is_some(), "log:\n{}", sluice.log_text());

    // A new version that cannot take the running one's state (here: another plugin
    // entirely) is refused, and the running version keeps its state and its place.
    let metrics_before = http("GET", &admin, "/metrics", &[], b"").1;
    let running = metrics_before
        .lines()
        .find(|l| l.starts_with("sluice_plugin_info{plugin=\"metrics\""))
        .unwrap_or_else(|| panic!("{metrics_before}"))
        .to_owned();
    std::fs::copy(
        plugin_wasm("sluice_plugin_enrich"),
        dir.path().join("metrics.tmp~"),
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("metrics.tmp~"),
        dir.path().join("metrics.wasm"),
    )
    .unwrap();
    let refused = wait_for(Duration::from_secs(20), || {
        let (status, body) = http("POST", &admin, "/reload", &[], b"");
        (status == 422).then_some(body)
    })
    .unwrap_or_else(|| panic!("the reload was not refused; log:\n{}", sluice.log_text()));
    assert!(
        refused.contains("refused the running version's state"),
        "{refused}"
    );
    assert!(refused.contains("running version stays"), "{refused}");
    // Not marked as applied: the next reload tries again, and is refused again.
    let (status, body) = http("POST", &admin, "/reload", &[], b"");
    assert_eq!(status, 422, "{body}");
    let lines = read_jsonl(&dir.path().join("out.jsonl")).len();
    assert!(
        wait_for_lines(
            &dir.path().join("out.jsonl"),
            lines + 100,
            Duration::from_secs(20)
        ),
        "records stopped after the refused swap"
    );
    let metrics_after = http("GET", &admin, "/metrics", &[], b"").1;
    assert!(metrics_after.contains(&running), "{metrics_after}");
    assert_eq!(sluice.stop(), 0);
}
