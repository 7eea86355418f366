//! Memory stays bounded whatever the records say: groups per rule, window entries and
//! marks are capped, overflow is counted, and quiet groups are forgotten.

mod common;

use common::*;
use serde_json::json;
use sluice_sdk::Record;

fn stats(h: &mut H, name: &str) -> sluice_plugin_alerts::RuleStats {
    h.h.plugin()
        .stats()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
}

#[test]
fn groups_per_rule_are_capped_and_overflow_is_counted_and_logged_once() {
    let mut h = H::new(json!({"max_groups_per_rule": 50, "rules": [
        {"name": "rej", "kind": "count", "when": {"event": "OrderRejected"},
         "group_by": ["order.instrument_id"], "at_least": 2, "window_seconds": 60}]}));
    let mut dropped = 0.0;
    let mut warnings = 0;
    for batch in 0..10 {
        let records: Vec<Record> = (0..1000)
            .map(|i| {
                rec(
                    batch as f64,
                    json!({"event": "OrderRejected",
                "order": {"instrument_id": format!("I-{batch}-{i}")}}),
                )
            })
            .collect();
        let out = h.h.process(records);
        dropped += out
            .metrics
            .iter()
            .filter(|m| m.name == "alerts_groups_dropped_total")
            .map(|m| m.value)
            .sum::<f64>();
        warnings += out.logs.len();
    }
    assert_eq!(stats(&mut h, "rej").groups, 50);
    assert_eq!(dropped, 10_000.0 - 50.0);
    assert_eq!(warnings, 1, "warned once, counted always");
    // once the window passes, the groups are forgotten and new ones fit again
    h.tick(100.0);
    assert_eq!(stats(&mut h, "rej").groups, 0);
    let a = h.send(vec![
        rec(
            101.0,
            json!({"event": "OrderRejected", "order": {"instrument_id": "NEW"}}),
        ),
        rec(
            101.5,
            json!({"event": "OrderRejected", "order": {"instrument_id": "NEW"}}),
        ),
    ]);
    assert_eq!(brief(&a), firing("rej"));
}

#[test]
fn window_entries_are_capped() {
    let mut h = H::new(json!({"max_window_entries": 100, "rules": [
        {"name": "rej", "kind": "count", "when": {"event": "OrderRejected"}, "at_least": 3,
         "window_seconds": 3600},
        {"name": "lat", "kind": "quantile", "when": {"event": "OrderAccepted"},
         "field": "latency.submit_to_accept_seconds", "quantile": 0.99, "above": 0.5,
         "window_seconds": 3600, "max_samples": 64}]}));
    let records: Vec<Record> = (0..50_000)
        .map(|i| {
            let s = i as f64 * 0.01;
            if i % 2 == 0 {
                rec(s, json!({"event": "OrderRejected"}))
            } else {
                rec(
                    s,
                    json!({"event": "OrderAccepted", "latency": {"submit_to_accept_seconds": 0.1}}),
                )
            }
        })
        .collect();
    let out = h.h.process(records);
    assert_eq!(stats(&mut h, "rej").entries, 100);
    assert_eq!(stats(&mut h, "lat").entries, 64);
    let dropped = |rule: &str| {
        out.metrics
            .iter()
            .filter(|m| m.name == "alerts_window_entries_dropped_total" && m.labels["rule"] == rule)
            .map(|m| m.value)
            .sum::<f64>()
    };
    assert_eq!(dropped("rej"), 25_000.0 - 100.0);
    assert_eq!(dropped("lat"), 25_000.0 - 64.0);
    assert_eq!(
        brief(&out.alerts),
        firing("rej"),
        "the cap does not stop the count firing"
    );
}

#[test]
fn unless_marks_are_capped_and_expire() {
    let mut h = H::new(json!({"max_groups_per_rule": 20, "rules": [
        {"name": "pos", "kind": "count", "when": {"event": "PositionChanged"},
         "unless_after": {"when": {"event": "OrderFilled"}, "within_seconds": 10},
         "group_by": ["order.instrument_id"], "window_seconds": 60}]}));
    let fills: Vec<Record> = (0..500)
        .map(|i| {
            rec(
                0.0,
                json!({"event": "OrderFilled", "order": {"instrument_id": format!("I{i}")}}),
            )
        })
        .collect();
    h.send(fills);
    assert_eq!(stats(&mut h, "pos").marks, 20);
    h.tick(11.0);
    assert_eq!(stats(&mut h, "pos").marks, 0);
}

#[test]
fn quiet_groups_are_forgotten_on_tick_but_firing_and_absent_ones_stay() {
    let mut h = H::rules(json!([
        {"name": "mem", "kind": "threshold", "when": {"metric": "memory"}, "field": "used_ratio",
         "above": 0.9, "group_by": ["host"]},
        {"name": "silent", "kind": "absent", "when": {"host": {"exists": true}},
         "group_by": ["host"], "window_seconds": 600}
    ]));
    let mut records: Vec<Record> = (0..100)
        .map(|i| {
            rec(
                0.0,
                json!({"metric": "memory", "host": format!("h{i}"), "used_ratio": 0.5}),
            )
        })
        .collect();
    records.push(rec(
        0.0,
        json!({"metric": "memory", "host": "hot", "used_ratio": 0.95}),
    ));
    h.send(records);
    assert_eq!(stats(&mut h, "mem").groups, 101);
    h.tick(1.0);
    assert_eq!(
        stats(&mut h, "mem").groups,
        1,
        "only the firing one is kept"
    );
    assert_eq!(
        stats(&mut h, "silent").groups,
        101,
        "absence needs to remember who it saw"
    );
}
