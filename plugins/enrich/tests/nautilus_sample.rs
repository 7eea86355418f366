//! Every line of a real NautilusTrader 1.221.0 log (`tests/fixtures/nautilus/`), in both of
//! its file formats, through the parser and the plugin.

use serde_json::{json, Map, Value};
use sluice_plugin_enrich::extract::{extract, Component, LineInfo};
use sluice_plugin_enrich::parse::parse_call;
use sluice_plugin_enrich::Enrich;
use sluice_sdk::testing::Harness;
use sluice_sdk::Record;
use std::collections::HashSet;
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/nautilus")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared fixtures sit beside the repo)",
            path.display()
        )
    })
}

/// `<ts> [LEVEL] <trader>.<component>: <message>` split as the `nautilus` decoder does.
fn plain_record(line: &str) -> Record {
    let (head, message) = line.split_once(": ").expect("': ' in every sample line");
    let mut parts = head.splitn(3, ' ');
    let timestamp = parts.next().unwrap();
    let level = parts.next().unwrap().trim_matches(['[', ']']);
    let (trader_id, component) = parts.next().unwrap().split_once('.').unwrap();
    Record::from_value(json!({
        "timestamp": timestamp, "level": level, "trader_id": trader_id,
        "component": component, "message": message,
    }))
    .unwrap()
}

/// The text after `name=` up to the next `,` or `)`, the way a reader of the log would.
fn field<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    let start = message.find(&key)? + key.len();
    let rest = &message[start..];
    Some(&rest[..rest.find([',', ')']).unwrap_or(rest.len())])
}

/// Where the event's name starts: after `<--[EVT] ` or `[CMD]--> [Target] `.
fn name_start(message: &str) -> usize {
    let marker = message.find("[EVT]").or(message.find("[CMD]")).unwrap() + 5;
    let rest = message[marker..]
        .trim_start_matches("-->")
        .trim_start_matches("<--")
        .trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => &r[r.find("] ").unwrap() + 2..],
        None => rest,
    };
    message.len() - rest.len()
}

fn event_with_args(message: &str) -> bool {
    ["[EVT]", "[CMD]"].iter().any(|m| {
        message
            .find(m)
            .is_some_and(|at| message[at..].contains('('))
    })
}

#[test]
fn every_event_and_command_line_parses_with_balanced_structure() {
    let text = fixture("sample.log");
    let mut checked = 0;
    for line in text.lines() {
        let message = plain_record(line).message().unwrap().to_owned();
        if !event_with_args(&message) {
            continue;
        }
        // The raw reader, from the name on: it must reach the final ')' exactly.
        let name_at = name_start(&message);
        let (call, end) =
            parse_call(&message[name_at..]).unwrap_or_else(|e| panic!("{e} in {message}"));
        assert_eq!(end, message.len() - name_at, "unbalanced: {message}");
        assert!(!call.name.is_empty());
        // And through the extractor, which must name the event.
        let mut out = Map::new();
        let line = LineInfo {
            error_level: false,
            component: Component::Other,
        };
        let parsed = extract(&message, line, &mut out, true);
        assert_eq!(parsed.parse_error, None, "{message}");
        assert_eq!(out["event"], call.name, "{message}");
        assert!(out["event_fields"].is_object());
        checked += 1;
    }
    assert!(checked > 1_000, "only {checked} event lines");
}

#[test]
fn the_whole_plain_log_through_the_plugin() {
    let text = fixture("sample.log");
    let records: Vec<Record> = text.lines().map(plain_record).collect();
    let mut h = Harness::<Enrich>::new(json!({"env": "test"})).unwrap();
    let mut out = Vec::new();
    let mut metrics = Vec::new();
    for chunk in records.chunks(256) {
        let o = h.process(chunk.to_vec());
        assert_eq!(o.error, None);
        metrics.extend(o.metrics);
        out.extend(o.records);
    }
    assert_eq!(out.len(), records.len());
    assert!(
        !metrics
            .iter()
            .any(|m| m.name == "enrich_parse_failures_total"),
        "no event line of the real log may fail to parse"
    );

    let mut fills = 0;
    let mut submitted = HashSet::new();
    let mut accepted_after_submit = 0;
    let mut accept_latencies = 0;
    for (input, r) in records.iter().zip(&out) {
        let message = input.message().unwrap();
        assert_eq!(r.message(), Some(message), "the message is kept as it was");
        assert_eq!(r.get_str("env"), Some("test"));
        assert!(r.get_str("correlation_id").is_some());
        if message.contains("[EVT] OrderFilled(") {
            fills += 1;
            let id = field(message, "client_order_id").unwrap();
            assert_eq!(r.get_str("order.client_order_id"), Some(id));
            assert_eq!(
                r.get_str("correlation_id"),
                Some(format!("order:{id}").as_str())
            );
            assert_eq!(
                r.get_str("order.instrument_id"),
                field(message, "instrument_id")
            );
            assert_eq!(r.get_str("order.side"), field(message, "order_side"));
            let qty: f64 = field(message, "last_qty").unwrap().parse().unwrap();
            assert_eq!(r.get_f64("order.last_qty"), Some(qty));
            let px = field(message, "last_px").unwrap();
            let (px, ccy) = px.split_once(' ').unwrap();
            assert_eq!(
                r.get_f64("order.last_px"),
                Some(px.replace('_', "").parse().unwrap())
            );
            assert_eq!(r.get_str("order.currency"), Some(ccy));
            assert!(matches!(
                r.get_str("order.status"),
                Some("filled" | "partially_filled")
            ));
        }
        if message.contains("[EVT] OrderSubmitted(") {
            submitted.insert(field(message, "client_order_id").unwrap().to_owned());
        }
        if message.contains("[EVT] OrderAccepted(") {
            let id = field(message, "client_order_id").unwrap();
            if submitted.contains(id) {
                accepted_after_submit += 1;
            }
        }
        if let Some(l) = r.get_f64("latency.submit_to_accept_seconds") {
            assert!(l >= 0.0);
            accept_latencies += 1;
        }
        if message.starts_with("Updated AccountState(") {
            let balances = r.get("account.balances").unwrap().as_array().unwrap();
            assert_eq!(balances[0]["currency"], "USDT");
            assert!(balances[0]["total"].as_f64().unwrap() > 0.0);
        }
        if message.contains("[EVT] Position") {
            assert!(r.get_str("position.position_id").is_some(), "{message}");
            assert!(r.get_f64("position.quantity").is_some(), "{message}");
        }
    }
    assert!(fills >= 50, "{fills} fills");
    assert!(accepted_after_submit > 0);
    assert_eq!(accept_latencies, accepted_after_submit);
}

#[test]
fn the_json_log_decodes_to_the_same_events() {
    let mut events = Vec::new();
    for name in ["sample.log", "sample.json"] {
        let text = fixture(name);
        let mut h = Harness::<Enrich>::new(json!({"event_fields": false})).unwrap();
        let records: Vec<Record> = text
            .lines()
            .map(|l| match name {
                "sample.json" => {
                    Record::from_value(serde_json::from_str::<Value>(l).unwrap()).unwrap()
                }
                _ => plain_record(l),
            })
            .collect();
        let out = h.process(records);
        let mut seen: Vec<String> = out
            .records
            .iter()
            .filter_map(|r| r.get_str("event").map(str::to_owned))
            .collect();
        seen.sort();
        events.push(seen);
    }
    assert!(events[0].len() > 1_000);
    assert_eq!(events[0], events[1]);
}
