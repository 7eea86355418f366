//! Wasm tests of the `alerts` reference plugin: the compiled module, driven through
//! `process` and `tick` as the host drives it, fires once, stays quiet, resolves once, and
//! passes records through unchanged.

use serde_json::{json, Map, Value};
use sluice::plugin::WasmHarness;
use sluice_sdk::abi::{AlertEvent, AlertStatus};

const T0: i64 = 1_717_372_800_000_000_000; // 2024-06-03T00:00:00Z
const S: i64 = 1_000_000_000;

fn harness(config: Value) -> WasmHarness {
    let path = sluice_tests::plugin_wasm("sluice_plugin_alerts");
    WasmHarness::load(&path, &config).expect("the alerts plugin loads")
}

/// A record at `T0 + sec`, stamped as the host stamps them.
fn rec(sec: i64, fields: Value) -> Map<String, Value> {
    let mut m = fields.as_object().cloned().expect("an object");
    let t = T0 + sec * S;
    // 2024-06-03 plus at most a day, which is all these tests need
    let day_s = (t - T0) / S;
    assert!(day_s < 86_400);
    let ts = format!(
        "2024-06-03T{:02}:{:02}:{:02}.{:09}Z",
        day_s / 3600,
        day_s / 60 % 60,
        day_s % 60,
        (t - T0) % S
    );
    m.insert("timestamp".into(), json!(ts));
    m
}

fn brief(alerts: &[AlertEvent]) -> Vec<(&str, AlertStatus)> {
    alerts.iter().map(|a| (a.name.as_str(), a.status)).collect()
}

fn process(h: &mut WasmHarness, records: Vec<Map<String, Value>>) -> Vec<AlertEvent> {
    let out = h.process(&records).expect("process succeeds");
    assert_eq!(out.error, None);
    assert_eq!(out.records, records, "records pass through unchanged");
    out.alerts
}

fn tick(h: &mut WasmHarness, sec: i64) -> Vec<AlertEvent> {
    let out = h.tick(T0 + sec * S).expect("tick succeeds");
    assert_eq!(out.error, None);
    out.alerts
}

/// The host's fingerprint, computed independently: SHA-256 over the name and each sorted
/// label as `\0key\xffvalue`, first 8 bytes in hex.
fn host_fingerprint(a: &AlertEvent) -> String {
    // A tiny SHA-256, so the test does not trust the plugin's own implementation.
    fn sha256(data: &[u8]) -> [u8; 32] {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
            0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
            0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
            0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
            0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
            0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
            0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
        for block in msg.chunks(64) {
            let mut w = [0u32; 64];
            for i in 0..16 {
                w[i] = u32::from_be_bytes(block[i * 4..i * 4 + 4].try_into().unwrap());
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let mut v = h;
            for i in 0..64 {
                let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
                let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
                let t1 = v[7]
                    .wrapping_add(s1)
                    .wrapping_add(ch)
                    .wrapping_add(K[i])
                    .wrapping_add(w[i]);
                let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
                let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
                let t2 = s0.wrapping_add(maj);
                v = [
                    t1.wrapping_add(t2),
                    v[0],
                    v[1],
                    v[2],
                    v[3].wrapping_add(t1),
                    v[4],
                    v[5],
                    v[6],
                ];
            }
            for i in 0..8 {
                h[i] = h[i].wrapping_add(v[i]);
            }
        }
        let mut out = [0u8; 32];
        for i in 0..8 {
            out[i * 4..i * 4 + 4].copy_from_slice(&h[i].to_be_bytes());
        }
        out
    }
    let mut data = a.name.as_bytes().to_vec();
    for (k, v) in &a.labels {
        data.push(0);
        data.extend_from_slice(k.as_bytes());
        data.push(0xff);
        data.extend_from_slice(v.as_bytes());
    }
    sha256(&data)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_tests_own_sha256_matches_the_fips_example() {
    // FIPS 180-2 example: "abc"
    let a = AlertEvent::firing("abc");
    let expected = "ba7816bf8f01cfea";
    assert_eq!(host_fingerprint(&a), expected);
}

#[test]
fn count_rule_fires_once_and_resolves_on_tick() {
    let mut h = harness(json!({"rules": [{
        "name": "order_rejection_burst", "kind": "count", "when": {"event": "OrderRejected"},
        "group_by": ["trader_id"], "at_least": 3, "window_seconds": 60, "severity": "critical",
        "summary": "{{$value}} rejections on {{trader_id}}", "runbook_url": "https://r#x"
    }]}));
    let rej = |s| {
        rec(
            s,
            json!({"event": "OrderRejected", "trader_id": "T-1", "level": "WARN"}),
        )
    };
    assert!(process(&mut h, vec![rej(0), rej(1)]).is_empty());
    let fired = process(&mut h, vec![rej(2), rej(3), rej(4)]);
    assert_eq!(
        brief(&fired),
        [("order_rejection_burst", AlertStatus::Firing)]
    );
    let a = &fired[0];
    assert_eq!(a.severity, "critical");
    assert_eq!(a.labels["trader_id"], "T-1");
    assert_eq!(a.annotations["summary"], "3 rejections on T-1");
    assert_eq!(a.annotations["runbook_url"], "https://r#x");
    assert_eq!(a.fingerprint, host_fingerprint(a));
    assert!(tick(&mut h, 30).is_empty());
    let res = tick(&mut h, 64);
    assert_eq!(
        brief(&res),
        [("order_rejection_burst", AlertStatus::Resolved)]
    );
    assert_eq!(res[0].fingerprint, a.fingerprint);
    assert!(tick(&mut h, 65).is_empty());
}

#[test]
fn default_rules_catch_a_silent_bot_and_a_websocket_outage() {
    let mut h = harness(Value::Null);
    let line = |s, extra: Value| {
        let mut m = rec(
            s,
            json!({"level": "INFO", "trader_id": "TRADER-001", "component": "HedgeGrid", "message": "Heartbeat"}),
        );
        for (k, v) in extra.as_object().unwrap() {
            m.insert(k.clone(), v.clone());
        }
        m
    };
    let url = "wss://fstream.binance.com/ws/btcusdt@markPrice@1s";
    assert!(tick(&mut h, 0).is_empty());
    assert!(process(
        &mut h,
        vec![
            line(1, json!({})),
            line(2, json!({"event": "ws_disconnected", "ws": {"url": url}}))
        ]
    )
    .is_empty());
    for s in 3..32 {
        assert!(process(&mut h, vec![line(s, json!({}))]).is_empty());
        assert!(tick(&mut h, s).is_empty(), "at {s}");
    }
    let fired = tick(&mut h, 32);
    assert_eq!(brief(&fired), [("websocket_down", AlertStatus::Firing)]);
    assert_eq!(fired[0].labels["url"], url);
    assert_eq!(
        fired[0].annotations["runbook_url"],
        "https://github.com/sluice/sluice/blob/main/docs/runbooks.md#websocket-down"
    );
    let res = process(
        &mut h,
        vec![line(
            33,
            json!({"event": "ws_reconnected", "ws": {"url": url}}),
        )],
    );
    assert_eq!(brief(&res), [("websocket_down", AlertStatus::Resolved)]);
    // then the bot goes quiet: host metrics keep coming, the bot does not
    for s in 34..93 {
        let m = rec(
            s,
            json!({"event": "host_metrics", "metric": "memory", "host": "h", "used_ratio": 0.4}),
        );
        assert!(process(&mut h, vec![m]).is_empty());
        assert!(tick(&mut h, s).is_empty(), "at {s}");
    }
    let silent = tick(&mut h, 93);
    assert_eq!(brief(&silent), [("bot_silent", AlertStatus::Firing)]);
    assert_eq!(silent[0].labels["trader_id"], "TRADER-001");
    assert_eq!(silent[0].fingerprint, host_fingerprint(&silent[0]));
    assert!(tick(&mut h, 100).is_empty(), "de-duplicated");
    let back = process(&mut h, vec![line(101, json!({}))]);
    assert_eq!(brief(&back), [("bot_silent", AlertStatus::Resolved)]);
}

#[test]
fn a_bad_rule_is_refused_at_load_with_its_name_and_key() {
    let path = sluice_tests::plugin_wasm("sluice_plugin_alerts");
    let err = match WasmHarness::load(
        &path,
        &json!({"rules": [{"name": "lat", "kind": "quantile", "when": {"event": "OrderAccepted"},
                           "field": "latency.submit_to_accept_seconds", "above": 0.5,
                           "window_seconds": 300}]}),
    ) {
        Ok(_) => panic!("accepted a quantile rule without `quantile`"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("rules[0] `lat`: `quantile` is required"),
        "{err}"
    );
}
