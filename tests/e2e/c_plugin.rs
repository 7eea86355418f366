//! The plugin ABI is language-neutral: `plugins-c/level_filter`, freestanding C written
//! from `docs/plugin-abi.md` alone, is built with its own `build.sh` and run through the
//! real host. Skipped (with a message) only when clang is not installed; CI installs it.

use serde_json::{json, Map, Value};
use sluice::plugin::{Grants, Limits, PluginEngine, PluginInstance, WasmHarness};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Built {
    /// Declares ABI version 1, as it should.
    plugin: PathBuf,
    /// The same source built with `-DABI_VERSION=2`.
    abi2: PathBuf,
}

fn clang_installed() -> bool {
    let names = [
        "clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14",
    ];
    std::env::var("CC")
        .into_iter()
        .chain(names.into_iter().map(String::from))
        .any(|cc| {
            Command::new(cc)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn build(script: &Path, out: &Path, flags: &[&str]) {
    let output = Command::new("sh")
        .arg(script)
        .arg(out)
        .args(flags)
        .output()
        .expect("run build.sh");
    assert!(
        output.status.success(),
        "{} {} {flags:?} failed:\n{}{}",
        script.display(),
        out.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds both variants once per test process; `None` when clang is missing.
fn built() -> Option<&'static Built> {
    static BUILT: OnceLock<Option<Built>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !clang_installed() {
                return None;
            }
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins-c/level_filter/build.sh");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_plugin");
            std::fs::create_dir_all(&dir).expect("create build dir");
            let built = Built {
                plugin: dir.join("level_filter.wasm"),
                abi2: dir.join("level_filter_abi2.wasm"),
            };
            build(&script, &built.plugin, &[]);
            build(&script, &built.abi2, &["-DABI_VERSION=2"]);
            Some(built)
        })
        .as_ref()
}

macro_rules! built_or_skip {
    () => {
        match built() {
            Some(b) => b,
            None => {
                eprintln!("SKIPPED: clang is not installed, so the C plugin cannot be built (apt-get install -y clang lld)");
                return;
            }
        }
    };
}

fn records(values: &[Value]) -> Vec<Map<String, Value>> {
    values
        .iter()
        .map(|v| v.as_object().expect("test records are objects").clone())
        .collect()
}

fn load(path: &Path, config: Value) -> WasmHarness {
    match WasmHarness::load(path, &config) {
        Ok(h) => h,
        Err(e) => panic!("the C plugin should load with {config}: {e}"),
    }
}

fn load_error(path: &Path, config: Value) -> String {
    match WasmHarness::load(path, &config) {
        Ok(_) => panic!("{} should be refused with config {config}", path.display()),
        Err(e) => e.to_string(),
    }
}

fn dropped_metric(n: u32) -> Value {
    json!([{"name": "c_filter_dropped_total", "kind": "counter", "value": f64::from(n)}])
}

#[test]
fn drops_records_below_min_level_and_counts_them() {
    let b = built_or_skip!();
    let mut plugin = load(&b.plugin, json!({"min_level": "WARN"}));
    let long = "x".repeat(70_000); // str32 on the wire
    let wide: Map<String, Value> = (0..20).map(|i| (format!("k{i:02}"), json!(i))).collect(); // map16
    let kept = vec![
        json!({"level": "ERROR", "message": "b", "n": -7, "big": u64::MAX, "f": 1.5,
               "nested": {"x": [1, null, true, false, "s"], "y": {"z": 0.25}}}),
        json!({"message": "no level at all"}),
        json!({"level": "warn", "message": "case does not matter"}),
        json!({"level": 42, "message": "a level that is not a string is kept"}),
        json!({"level": "NOTICE", "message": "an unknown level is kept"}),
        json!({"level": "WARN", "message": long, "wide": wide}),
    ];
    let batch = records(&[
        json!({"level": "INFO", "message": "a"}),
        kept[0].clone(),
        kept[1].clone(),
        json!({"level": "DEBUG", "message": "dropped"}),
        kept[2].clone(),
        json!({"level": "trace", "message": "dropped too"}),
        kept[3].clone(),
        kept[4].clone(),
        kept[5].clone(),
    ]);

    let response = plugin.process(&batch).expect("the call succeeds");
    assert_eq!(response.error, None);
    assert_eq!(
        response.records,
        records(&kept),
        "kept records pass through unchanged, in order"
    );
    assert_eq!(
        serde_json::to_value(&response.metrics).unwrap(),
        dropped_metric(3)
    );
    assert!(response.alerts.is_empty());
    assert!(response.logs.is_empty());

    // The same instance keeps working (its allocator rewinds between calls), and a batch
    // with nothing to drop reports no metric at all.
    for _ in 0..3 {
        let response = plugin.process(&records(&kept)).expect("the call succeeds");
        assert_eq!(response.records, records(&kept));
        assert!(
            response.metrics.is_empty(),
            "no metric when nothing was dropped"
        );
    }
}

#[test]
fn exact_worked_example_from_the_abi_document() {
    let b = built_or_skip!();
    let mut plugin = load(&b.plugin, json!({"min_level": "WARN"}));
    let response = plugin
        .process(&records(&[
            json!({"level": "INFO", "message": "a"}),
            json!({"level": "ERROR", "message": "b"}),
        ]))
        .expect("the call succeeds");
    assert_eq!(
        response.records,
        records(&[json!({"level": "ERROR", "message": "b"})])
    );
    assert_eq!(
        serde_json::to_value(&response.metrics).unwrap(),
        dropped_metric(1)
    );
}

#[test]
fn default_min_level_is_info() {
    let b = built_or_skip!();
    for config in [Value::Null, json!({})] {
        let mut plugin = load(&b.plugin, config.clone());
        let response = plugin
            .process(&records(&[
                json!({"level": "DEBUG", "message": "d"}),
                json!({"level": "INFO", "message": "i"}),
                json!({"level": "TRACE", "message": "t"}),
            ]))
            .expect("the call succeeds");
        assert_eq!(
            response.records,
            records(&[json!({"level": "INFO", "message": "i"})]),
            "config {config}"
        );
        assert_eq!(
            serde_json::to_value(&response.metrics).unwrap(),
            dropped_metric(2)
        );
    }
}

#[test]
fn everything_dropped_and_empty_batches() {
    let b = built_or_skip!();
    let mut plugin = load(&b.plugin, json!({"min_level": "ERROR"}));
    let response = plugin
        .process(&records(&[
            json!({"level": "WARN"}),
            json!({"level": "INFO"}),
        ]))
        .expect("the call succeeds");
    assert!(response.records.is_empty());
    assert_eq!(
        serde_json::to_value(&response.metrics).unwrap(),
        dropped_metric(2)
    );

    let response = plugin.process(&[]).expect("an empty batch is fine");
    assert_eq!(response, Default::default());
}

#[test]
fn big_batches_repeatedly() {
    let b = built_or_skip!();
    let mut plugin = load(&b.plugin, json!({"min_level": "WARN"}));
    let batch: Vec<Map<String, Value>> = (0..2000)
        .map(|i| {
            let level = ["INFO", "WARN", "ERROR", "DEBUG"][i % 4];
            json!({"level": level, "message": format!("line {i} {}", "y".repeat(200)), "i": i})
                .as_object()
                .unwrap()
                .clone()
        })
        .collect();
    for _ in 0..20 {
        let response = plugin.process(&batch).expect("the call succeeds");
        assert_eq!(response.records.len(), 1000);
        assert_eq!(response.records[0]["i"], json!(1));
        assert_eq!(
            serde_json::to_value(&response.metrics).unwrap(),
            dropped_metric(1000)
        );
    }
}

#[test]
fn unknown_min_level_refuses_the_plugin() {
    let b = built_or_skip!();
    assert_eq!(
        load_error(&b.plugin, json!({"min_level": "LOUD"})),
        "plugin `level_filter`: init failed: unknown min_level `LOUD`"
    );
    let e = load_error(&b.plugin, json!({"min_lvl": "WARN"}));
    assert_eq!(
        e,
        "plugin `level_filter`: init failed: unknown config key `min_lvl` (expected min_level)"
    );
    let e = load_error(&b.plugin, json!({"min_level": 3}));
    assert!(
        e.starts_with("plugin `level_filter`: init failed: min_level must be a string"),
        "{e}"
    );
    let e = load_error(&b.plugin, json!(["WARN"]));
    assert!(
        e.starts_with("plugin `level_filter`: init failed: config must be a map"),
        "{e}"
    );
}

#[test]
fn another_abi_version_is_refused() {
    let b = built_or_skip!();
    assert_eq!(
        load_error(&b.abi2, json!({"min_level": "WARN"})),
        "plugin `level_filter_abi2`: declares ABI version 2, but this host speaks version 1"
    );
}

#[test]
fn malformed_input_is_a_guest_error_not_a_trap() {
    let b = built_or_skip!();
    let engine = PluginEngine::new(None).expect("engine");
    let module = engine
        .load("level_filter", &b.plugin, None)
        .expect("module loads");
    let config = sluice::plugin::encode_config(&json!({"min_level": "WARN"}));
    let mut instance = PluginInstance::new(
        &engine,
        &module,
        Limits::default(),
        &Grants::default(),
        &config,
    )
    .unwrap_or_else(|e| panic!("instance: {e}"));
    let cases: &[(&[u8], &str)] = &[
        (
            &[0x81, 0xa1, b'a', 0x01],
            "input batch is not a MessagePack array of maps",
        ),
        (
            &[0x92, 0x80, 0x01],
            "input batch is not a MessagePack array of maps: record 1 is not a map",
        ),
        (
            &[0x91, 0x81, 0x01, 0x02],
            "input batch: record 0 has a key that is not a string",
        ),
        (
            &[0x91, 0x81, 0xa1, b'a', 0xda, 0xff],
            "input batch is not valid MessagePack",
        ),
        (
            &[0x91, 0x80, 0xc0],
            "input batch has trailing bytes after its array",
        ),
        (&[], "input batch is not a MessagePack array of maps"),
    ];
    for (bytes, want) in cases {
        let response = instance
            .process(bytes)
            .unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"));
        let error = response
            .error
            .unwrap_or_else(|| panic!("{bytes:02x?} should be refused"));
        assert!(error.starts_with(want), "{bytes:02x?}: {error}");
        assert!(response.records.is_empty());
    }
    // A guest error leaves the instance usable.
    let batch = [
        0x91, 0x81, 0xa5, b'l', b'e', b'v', b'e', b'l', 0xa4, b'W', b'A', b'R', b'N',
    ];
    let response = instance.process(&batch).expect("the call succeeds");
    assert_eq!(response.records, records(&[json!({"level": "WARN"})]));
}

#[test]
fn a_batch_over_the_memory_cap_is_out_of_memory() {
    let b = built_or_skip!();
    let engine = PluginEngine::new(None).expect("engine");
    let module = engine
        .load("level_filter", &b.plugin, None)
        .expect("module loads");
    let limits = Limits {
        memory_mb: 1,
        ..Limits::default()
    };
    let mut instance = PluginInstance::new(&engine, &module, limits, &Grants::default(), &[])
        .unwrap_or_else(|e| panic!("instance: {e}"));
    let small = records(&[json!({"level": "INFO", "message": "fits"})]);
    let batch = encode(&small);
    assert_eq!(
        instance
            .process(&batch)
            .expect("a small batch fits")
            .records,
        small
    );

    let big = records(&[json!({"level": "INFO", "message": "z".repeat(2 << 20)})]);
    let error = instance
        .process(&encode(&big))
        .expect_err("2 MiB cannot fit in 1 MiB");
    assert_eq!(error.kind(), "out_of_memory", "{error}");
    assert_eq!(
        error.to_string(),
        "exceeded its memory limit of 1048576 bytes"
    );
}

/// A batch as the host encodes it: `rmp_serde::to_vec_named` of the records, which is also
/// what `encode_config` does with a JSON array.
fn encode(records: &[Map<String, Value>]) -> Vec<u8> {
    sluice::plugin::encode_config(&Value::Array(
        records.iter().cloned().map(Value::Object).collect(),
    ))
}
