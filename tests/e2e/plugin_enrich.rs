//! Wasm tests of the `enrich` reference plugin: the compiled module on the demo generator's
//! output (`plugins/enrich/tests/fixtures/demo-5k.jsonl`), with the expected counts taken
//! from the lines themselves, as the native test in `plugins/enrich/tests/demo_fixture.rs`
//! does; a hot reload through `snapshot`/`restore`; and `host_env` through `grants.env`.

use serde_json::{json, Map, Value};
use sluice::plugin::{encode_config, Grants, Limits, PluginEngine, PluginInstance, WasmHarness};
use std::collections::HashSet;
use std::time::Instant;

type Fields = Map<String, Value>;

fn fixture() -> Vec<Fields> {
    let path = sluice_tests::workspace_root().join("plugins/enrich/tests/fixtures/demo-5k.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn message(r: &Fields) -> &str {
    r["message"].as_str().unwrap()
}

fn get<'a>(r: &'a Fields, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = r.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

fn field<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    let start = message.find(&key)? + key.len();
    let rest = &message[start..];
    Some(&rest[..rest.find([',', ')']).unwrap_or(rest.len())])
}

/// What the lines allow: accepted orders whose submit was seen, first fills of those.
struct Expected {
    accept_latencies: usize,
    fill_latencies: usize,
    order_lines: usize,
}

fn expected(records: &[Fields]) -> Expected {
    let mut submitted = HashSet::new();
    let mut accepted = HashSet::new();
    let mut filled = HashSet::new();
    let mut e = Expected {
        accept_latencies: 0,
        fill_latencies: 0,
        order_lines: 0,
    };
    for r in records {
        let m = message(r);
        if m.contains("[EVT] Order") || m.contains("SubmitOrder(") {
            e.order_lines += 1;
        }
        let id = field(m, "client_order_id").map(str::to_owned);
        if m.contains("[EVT] OrderSubmitted(") {
            submitted.insert(id.unwrap());
        } else if m.contains("[EVT] OrderAccepted(") {
            let id = id.unwrap();
            if submitted.contains(&id) && accepted.insert(id) {
                e.accept_latencies += 1;
            }
        } else if m.contains("[EVT] OrderFilled(") {
            let id = id.unwrap();
            if submitted.contains(&id) && filled.insert(id) {
                e.fill_latencies += 1;
            }
        }
    }
    e
}

struct Seen {
    accept_latencies: usize,
    fill_latencies: usize,
}

/// Checks every output record against its input and counts the latency samples.
fn check(inputs: &[Fields], outputs: &[Fields]) -> Seen {
    assert_eq!(inputs.len(), outputs.len());
    let mut seen = Seen {
        accept_latencies: 0,
        fill_latencies: 0,
    };
    for (input, r) in inputs.iter().zip(outputs) {
        let m = message(input);
        assert_eq!(message(r), m, "the message is kept");
        assert_eq!(r["env"], "demo");
        assert!(r["correlation_id"].is_string());
        if m.contains("[EVT] Order") || m.contains("SubmitOrder(") {
            let id = field(m, "client_order_id").unwrap();
            assert_eq!(get(r, "order.client_order_id"), Some(&json!(id)), "{m}");
            assert_eq!(r["correlation_id"], format!("order:{id}"));
            assert_eq!(
                get(r, "lookup.asset_class"),
                Some(&json!("crypto_perp")),
                "{m}"
            );
        }
        if let Some(l) = get(r, "latency.submit_to_accept_seconds") {
            assert_eq!(r["event"], "OrderAccepted");
            let l = l.as_f64().unwrap();
            assert!(l > 0.0 && l < 1.0, "{l}: {m}");
            seen.accept_latencies += 1;
        }
        if let Some(l) = get(r, "latency.submit_to_fill_seconds") {
            assert_eq!(r["event"], "OrderFilled");
            assert!(l.as_f64().unwrap() > 0.0, "{m}");
            seen.fill_latencies += 1;
        }
    }
    seen
}

fn config() -> Value {
    json!({
        "env": "demo",
        "service": "hedge-grid",
        "lookups": [{"name": "asset_class", "key": "order.instrument_id",
                     "table": {"BTCUSDT-PERP.BINANCE": "crypto_perp", "ETHUSDT-PERP.BINANCE": "crypto_perp"},
                     "default": "unknown"}]
    })
}

fn assert_clean_metrics(metrics: &[sluice_sdk::MetricUpdate]) {
    for m in metrics {
        assert!(
            !(m.name == "enrich_parse_failures_total"
                || m.name == "enrich_latency_evictions_total"),
            "{m:?}"
        );
    }
}

#[test]
fn demo_stream_through_the_wasm_plugin_matches_the_lines() {
    let path = sluice_tests::plugin_wasm("sluice_plugin_enrich");
    let records = fixture();
    let want = expected(&records);
    assert!(want.accept_latencies > 100 && want.fill_latencies > 100);

    let mut h = WasmHarness::load(&path, &config()).unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    for batch in records.chunks(500) {
        let response = h.process(batch).unwrap();
        assert_eq!(response.error, None);
        assert_clean_metrics(&response.metrics);
        out.extend(response.records);
    }
    let took = start.elapsed();
    let seen = check(&records, &out);
    assert_eq!(seen.accept_latencies, want.accept_latencies);
    assert_eq!(seen.fill_latencies, want.fill_latencies);
    let order_lines = out
        .iter()
        .filter(|r| get(r, "order.client_order_id").is_some() && r.contains_key("event_kind"))
        .filter(|r| matches!(r["event_kind"].as_str(), Some("order" | "command")))
        .count();
    assert_eq!(order_lines, want.order_lines);
    eprintln!(
        "enrich.wasm: {} records in {took:?} ({:.2} µs/record, MessagePack both ways included)",
        records.len(),
        took.as_secs_f64() * 1e6 / records.len() as f64
    );
}

fn instance(
    engine: &PluginEngine,
    grants: &Grants,
    config: &Value,
) -> Result<PluginInstance, String> {
    let path = sluice_tests::plugin_wasm("sluice_plugin_enrich");
    let module = engine
        .load("enrich", &path, None)
        .map_err(|e| e.to_string())?;
    PluginInstance::new(
        engine,
        &module,
        Limits::default(),
        grants,
        &encode_config(config),
    )
    .map_err(|e| e.to_string())
}

fn run(instance: &mut PluginInstance, records: &[Fields]) -> Vec<Fields> {
    let mut out = Vec::new();
    for batch in records.chunks(500) {
        let bytes = rmp_encode(batch);
        let response = instance.process(&bytes).unwrap();
        assert_eq!(response.error, None);
        assert_clean_metrics(&response.metrics);
        out.extend(response.records);
    }
    out
}

/// One MessagePack array of maps, as the ABI passes a batch (the config encoder writes any
/// JSON value as MessagePack).
fn rmp_encode(batch: &[Fields]) -> Vec<u8> {
    encode_config(&Value::Array(
        batch.iter().cloned().map(Value::Object).collect(),
    ))
}

#[test]
fn a_hot_reload_keeps_open_orders() {
    let records = fixture();
    let want = expected(&records);
    let engine = PluginEngine::new(None).unwrap();
    // Cut where orders are in flight: right after the 40th OrderSubmitted.
    let cut = records
        .iter()
        .enumerate()
        .filter(|(_, r)| message(r).contains("[EVT] OrderSubmitted("))
        .nth(39)
        .map(|(i, _)| i + 1)
        .unwrap();
    let mut old = instance(&engine, &Grants::default(), &config()).unwrap();
    let mut out = run(&mut old, &records[..cut]);
    let state = old.snapshot().unwrap().expect("enrich keeps state");
    let open: Value = serde_json::from_slice(&state).unwrap();
    assert!(
        !open["pending"].as_array().unwrap().is_empty(),
        "orders were in flight"
    );

    let mut new = instance(&engine, &Grants::default(), &config()).unwrap();
    let response = new.restore(&state).unwrap();
    assert_eq!(response.error, None);
    out.extend(run(&mut new, &records[cut..]));
    let seen = check(&records, &out);
    assert_eq!(seen.accept_latencies, want.accept_latencies);
    assert_eq!(seen.fill_latencies, want.fill_latencies);

    // Without the state, the orders in flight at the cut lose their latencies.
    let mut fresh = instance(&engine, &Grants::default(), &config()).unwrap();
    let mut cold = run(&mut fresh, &records[..cut]);
    let mut fresh = instance(&engine, &Grants::default(), &config()).unwrap();
    cold.extend(run(&mut fresh, &records[cut..]));
    assert!(check(&records, &cold).accept_latencies < want.accept_latencies);
}

#[test]
fn host_comes_from_a_granted_env_var_only() {
    const VAR: &str = "SLUICE_E2E_ENRICH_HOSTNAME";
    std::env::set_var(VAR, "node-e2e-7");
    let engine = PluginEngine::new(None).unwrap();
    let granted = Grants {
        env: vec![VAR.to_owned()],
        ..Grants::default()
    };
    let config = json!({"host_env": VAR});
    let mut plugin = instance(&engine, &granted, &config).unwrap();
    let out = run(
        &mut plugin,
        &[json!({"message": "hi"}).as_object().unwrap().clone()],
    );
    assert_eq!(out[0]["host"], "node-e2e-7");

    let refused = instance(&engine, &Grants::default(), &config)
        .err()
        .unwrap();
    assert!(
        refused.contains(VAR) && refused.contains("grants"),
        "{refused}"
    );
}

#[test]
fn bad_config_is_refused_at_load_with_the_key() {
    let path = sluice_tests::plugin_wasm("sluice_plugin_enrich");
    let err = match WasmHarness::load(&path, &json!({"latency": {"max_entries": 0}})) {
        Ok(_) => panic!("max_entries 0 accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("latency.max_entries"), "{err}");
}
