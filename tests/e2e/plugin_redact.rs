//! Wasm tests of the `redact` reference plugin: the compiled module on the same labelled
//! corpus as the native test (`plugins/redact/tests/corpus.rs`): 1,050 planted
//! synthetic secrets in 21 categories must all be gone and the lines without secrets (real
//! NautilusTrader lines, demo generator lines, near-misses) must come out unchanged. Also
//! the per-batch counter, the keyed hash through `grants.env`, and the init errors an
//! operator sees.

#[allow(dead_code)]
mod corpus {
    include!("../../plugins/redact/tests/common/corpus.rs");
}

use serde_json::{json, Map, Value};
use sluice::plugin::{encode_config, Grants, Limits, PluginEngine, PluginInstance, WasmHarness};

type Fields = Map<String, Value>;

const SEED: u64 = 0x5EC2_E7D0;

fn wasm() -> std::path::PathBuf {
    sluice_tests::plugin_wasm("sluice_plugin_redact")
}

fn load(config: Value) -> WasmHarness {
    WasmHarness::load(&wasm(), &config).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn load_error(config: Value) -> String {
    match WasmHarness::load(&wasm(), &config) {
        Ok(_) => panic!("init accepted {config}"),
        Err(e) => e.to_string(),
    }
}

fn run(plugin: &mut WasmHarness, records: &[Fields]) -> (Vec<Fields>, Vec<(String, f64)>) {
    let mut out = Vec::new();
    let mut metrics = Vec::new();
    for chunk in records.chunks(256) {
        let response = plugin.process(chunk).unwrap();
        assert_eq!(response.error, None);
        assert_eq!(response.records.len(), chunk.len());
        out.extend(response.records);
        for m in response.metrics {
            assert_eq!(m.name, "redact_secrets_total");
            metrics.push((m.labels["category"].clone(), m.value));
        }
    }
    (out, metrics)
}

fn clean_cases() -> Vec<corpus::CleanCase> {
    let root = sluice_tests::workspace_root();
    let sample = std::fs::read_to_string(root.join("tests/fixtures/nautilus/sample.log"))
        .expect("tests/fixtures/nautilus/sample.log");
    let demo = std::fs::read_to_string(root.join("plugins/redact/tests/fixtures/demo-clean.jsonl"))
        .unwrap();
    let mut cases = corpus::nautilus_lines(&sample);
    cases.extend(corpus::demo_lines(&demo));
    cases.extend(corpus::near_miss_lines(SEED));
    cases
}

#[test]
fn corpus_secrets_are_gone_and_clean_lines_unchanged() {
    let secrets = corpus::secret_cases(SEED, 50);
    let clean = clean_cases();
    let mut plugin = load(Value::Null);

    let (secret_out, metrics) = run(
        &mut plugin,
        &secrets.iter().map(|c| c.record.clone()).collect::<Vec<_>>(),
    );
    let (clean_out, clean_metrics) = run(
        &mut plugin,
        &clean.iter().map(|c| c.record.clone()).collect::<Vec<_>>(),
    );
    let report = corpus::Report::measure(&secrets, &secret_out, &clean, &clean_out);
    report.print();

    assert!(
        report.missed.is_empty(),
        "secrets survived in Wasm:\n{}",
        report.missed.join("\n")
    );
    for (case, out) in clean.iter().zip(&clean_out) {
        assert_eq!(&case.record, out, "a line without secrets changed");
    }
    assert!(
        clean_metrics.is_empty(),
        "nothing counted on clean lines: {clean_metrics:?}"
    );
    for (case, out) in secrets.iter().zip(&secret_out) {
        for key in ["timestamp", "level", "trader_id", "component"] {
            assert_eq!(case.record[key], out[key]);
        }
    }

    // Every category was counted, at most once per batch.
    for category in corpus::CATEGORIES {
        assert!(
            metrics.iter().any(|(c, v)| c == category && *v >= 1.0),
            "{category} never counted"
        );
    }
    let batches = secrets.len().div_ceil(256);
    for category in corpus::CATEGORIES {
        assert!(metrics.iter().filter(|(c, _)| c == category).count() <= batches);
    }
}

#[test]
fn ungranted_hash_key_fails_init_saying_to_grant_it() {
    // WasmHarness grants nothing, so even a variable set in the host's environment is
    // invisible to the plugin.
    const VAR: &str = "SLUICE_E2E_REDACT_UNGRANTED";
    std::env::set_var(VAR, "a-key-the-plugin-must-not-see");
    let err = load_error(json!({"hash_key_env": VAR}));
    assert!(err.contains(&format!("grants: {{env: [{VAR}]}}")), "{err}");
}

fn granted(var: &str, value: &str) -> PluginInstance {
    std::env::set_var(var, value);
    let engine = PluginEngine::new(None).unwrap();
    let module = engine.load("redact", &wasm(), None).unwrap();
    let grants = Grants {
        env: vec![var.to_owned()],
        ..Grants::default()
    };
    PluginInstance::new(
        &engine,
        &module,
        Limits::default(),
        &grants,
        &encode_config(&json!({"hash_key_env": var})),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn redact_messages(plugin: &mut PluginInstance, messages: &[String]) -> Vec<String> {
    // A batch is a MessagePack array of maps, which is what encoding this value gives.
    let batch = encode_config(&Value::Array(
        messages.iter().map(|m| json!({"message": m})).collect(),
    ));
    let response = plugin.process(&batch).unwrap();
    assert_eq!(response.error, None);
    response
        .records
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn granted_hash_key_tags_secrets_stably_per_key() {
    let key = "ZBITDIohmQt6kKuPdHXsfnYBFFTXRmw2Y35j3fFnHZNXAdWwHO0Q3403QBE5OZfc";
    let lines = [
        format!("API key {key} has trading permissions"),
        format!("Request header X-MBX-APIKEY: {key}"),
    ];
    let a = redact_messages(&mut granted("SLUICE_E2E_REDACT_KEY_A", "first key"), &lines);
    let b = redact_messages(
        &mut granted("SLUICE_E2E_REDACT_KEY_B", "second key"),
        &lines,
    );
    let tag = |s: &str| {
        let start = s
            .find("[REDACTED:binance_api_key:")
            .unwrap_or_else(|| panic!("no keyed tag in {s}"));
        s[start..start + "[REDACTED:binance_api_key:".len() + 9].to_owned()
    };
    assert!(a.iter().chain(&b).all(|s| !s.contains(key)));
    assert_eq!(tag(&a[0]), tag(&a[1]), "one secret, one tag across lines");
    assert_ne!(tag(&a[0]), tag(&b[0]), "another key, another tag");
    assert!(tag(&a[0]).ends_with(']'));
}

#[test]
fn config_mistakes_fail_init_with_their_name() {
    let err = load_error(json!({"patterns": [{"name": "desk_code", "pattern": "DESK-([0-9"}]}));
    assert!(
        err.contains("`desk_code`") && err.contains("does not compile"),
        "{err}"
    );
    let err = load_error(json!({"categories": ["email", "telegram"]}));
    assert!(err.contains("`telegram`"), "{err}");
    let err = load_error(json!({"hash_key": "inline-secret"}));
    assert!(err.contains("unknown field `hash_key`"), "{err}");
}
