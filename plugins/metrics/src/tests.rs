//! Whole-plugin tests through the SDK harness (MessagePack, init, process), as the host
//! runs it. Records are written by hand in the shape of docs/plugins/fields.md.

use super::*;
use sluice_sdk::testing::{Harness, Outcome};
use sluice_sdk::{record, MetricUpdate};

type Update = (String, MetricKind, Vec<(String, String)>, f64);

fn m(name: &str, kind: MetricKind, labels: &[(&str, &str)], value: f64) -> Update {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), kind, labels, value)
}

fn of(update: &MetricUpdate) -> Update {
    (
        update.name.clone(),
        update.kind,
        update.labels.clone().into_iter().collect(),
        update.value,
    )
}

/// Updates in a canonical order: the plugin's output order is deterministic but not the
/// point of most tests.
fn sorted(mut updates: Vec<Update>) -> Vec<Update> {
    updates.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)).then(a.3.total_cmp(&b.3)));
    updates
}

fn updates(out: &Outcome) -> Vec<Update> {
    assert_eq!(out.error, None);
    sorted(out.metrics.iter().map(of).collect())
}

fn harness(config: Value) -> Harness<Metrics> {
    Harness::new(config).unwrap_or_else(|e| panic!("init failed: {e}"))
}

fn rules(rules: Value) -> Harness<Metrics> {
    harness(json!({ "rules": rules }))
}

fn init_error(config: Value) -> String {
    match Harness::<Metrics>::new(config) {
        Ok(_) => panic!("config was accepted"),
        Err(e) => e,
    }
}

use MetricKind::{Counter, Gauge, GaugeAdd, Histogram};

#[test]
fn records_pass_through_unchanged() {
    let records = vec![
        record!({"event": "OrderFilled", "order": {"last_qty": 1, "instrument_id": "X"}, "level": "INFO"}),
        record!({"message": "no structure at all"}),
        record!({"event": "rest_call", "rest": {"status": "not a number"}}),
    ];
    let out = harness(Value::Null).process(records.clone());
    assert_eq!(out.records, records);
    let out = rules(json!([])).process(records.clone());
    assert_eq!(out.records, records);
    assert!(out.metrics.is_empty());
}

#[test]
fn equality_conditions_on_strings_numbers_and_booleans() {
    let mut h = rules(json!([
        {"metric": "a_total", "kind": "counter", "when": {"event": "rest_call", "rest.status": 429, "retry": true}},
    ]));
    let out = h.process([
        record!({"event": "rest_call", "rest": {"status": 429}, "retry": true}),
        record!({"event": "rest_call", "rest": {"status": 429.0}, "retry": true}),
        record!({"event": "rest_call", "rest": {"status": 429}, "retry": false}),
        record!({"event": "rest_call", "rest": {"status": 200}, "retry": true}),
        record!({"event": "other", "rest": {"status": 429}, "retry": true}),
        record!({"rest": {"status": 429}, "retry": true}),
    ]);
    assert_eq!(updates(&out), [m("a_total", Counter, &[], 2.0)]);
}

#[test]
fn in_not_in_exists_and_comparisons() {
    let mut h = rules(json!([
        {"metric": "in_total", "kind": "counter", "when": {"level": {"in": ["WARN", "ERROR"]}}},
        {"metric": "not_in_total", "kind": "counter", "when": {"level": {"not_in": ["DEBUG"]}}},
        {"metric": "exists_total", "kind": "counter", "when": {"order.reason": {"exists": true}}},
        {"metric": "absent_total", "kind": "counter", "when": {"order.reason": {"exists": false}}},
        {"metric": "client_errors_total", "kind": "counter", "when": {"status": {"gte": 400, "lt": 500}}},
        {"metric": "gt_total", "kind": "counter", "when": {"status": {"gt": 400}}},
        {"metric": "lte_total", "kind": "counter", "when": {"status": {"lte": 400}}},
    ]));
    let out = h.process([
        record!({"level": "WARN", "status": 400}),
        record!({"level": "ERROR", "status": 499, "order": {"reason": "x"}}),
        record!({"level": "DEBUG", "status": 500}),
        record!({"level": "INFO", "status": "bad"}),
        record!({"status": 399, "order": {"reason": null}}),
    ]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("absent_total", Counter, &[], 4.0),
            m("client_errors_total", Counter, &[], 2.0),
            m("exists_total", Counter, &[], 1.0),
            m("gt_total", Counter, &[], 2.0),
            m("in_total", Counter, &[], 2.0),
            m("lte_total", Counter, &[], 2.0),
            // A record without `level` is not "not DEBUG": missing fields fail every test
            // except `exists: false`.
            m("not_in_total", Counter, &[], 3.0),
        ])
    );
}

#[test]
fn value_forms_constant_field_mul_div_time() {
    let mut h = rules(json!([
        {"metric": "const", "kind": "gauge", "value": 2.5},
        {"metric": "field", "kind": "gauge", "value": "a.b"},
        {"metric": "mul", "kind": "gauge", "value": {"mul": ["a.b", "c", 10]}},
        {"metric": "div", "kind": "gauge", "value": {"div": ["a.b", "c"]}},
        {"metric": "time", "kind": "gauge", "value": {"time": "timestamp"}},
        {"metric": "ns", "kind": "gauge", "value": {"time": "ts_event"}},
    ]));
    let out = h.process([record!({
        "a": {"b": 3}, "c": "1_5", "timestamp": "2024-06-03T00:00:01.5Z", "ts_event": 1_717_372_801_500_000_000u64
    })]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("const", Gauge, &[], 2.5),
            m("div", Gauge, &[], 0.2),
            m("field", Gauge, &[], 3.0),
            m("mul", Gauge, &[], 450.0),
            m("ns", Gauge, &[], 1_717_372_801.5),
            m("time", Gauge, &[], 1_717_372_801.5),
        ])
    );
}

#[test]
fn counters_default_to_one_and_gauge_add_sums() {
    let mut h = rules(json!([
        {"metric": "seen_total", "kind": "counter"},
        {"metric": "open_orders", "kind": "gauge_add", "value": "delta"},
    ]));
    let out = h.process([
        record!({"delta": 1}),
        record!({"delta": 1}),
        record!({"delta": -1}),
    ]);
    assert_eq!(
        updates(&out),
        [
            m("open_orders", GaugeAdd, &[], 1.0),
            m("seen_total", Counter, &[], 3.0)
        ]
    );
}

#[test]
fn a_value_that_is_missing_or_not_a_number_skips_the_rule_and_is_counted() {
    let mut h = rules(json!([
        {"metric": "qty_total", "kind": "counter", "value": "qty", "when": {"event": "fill"}},
        {"metric": "px", "kind": "gauge", "value": "px", "when": {"event": "fill"}},
    ]));
    let out = h.process([
        record!({"event": "fill", "qty": 2, "px": 10}),
        record!({"event": "fill", "qty": "lots", "px": 11}),
        record!({"event": "fill", "px": {"nested": 1}}),
        record!({"event": "fill", "qty": -3, "px": 1e300}),
        record!({"event": "other", "qty": 5}),
    ]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("qty_total", Counter, &[], 2.0),
            m("px", Gauge, &[], 1e300),
            // A negative amount would make the counter go down: skipped.
            m(SKIPPED_METRIC, Counter, &[("metric", "qty_total")], 3.0),
            m(SKIPPED_METRIC, Counter, &[("metric", "px")], 1.0),
        ])
    );
}

#[test]
fn labels_from_fields_literals_numbers_and_missing_fields() {
    let mut h = rules(json!([
        {"metric": "req_total", "kind": "counter",
         "labels": {"endpoint": "rest.endpoint", "status": "rest.status", "ok": "rest.ok",
                    "source": "=binance", "nested": "rest", "missing": "nope"}},
    ]));
    let out = h.process([
        record!({"rest": {"endpoint": "/fapi/v1/order", "status": 200, "ok": true}}),
        record!({"rest": {"endpoint": "/fapi/v1/order", "status": 200.5, "ok": false}}),
    ]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m(
                "req_total",
                Counter,
                &[
                    ("endpoint", "/fapi/v1/order"),
                    ("status", "200"),
                    ("ok", "true"),
                    ("source", "binance"),
                    ("nested", ""),
                    ("missing", "")
                ],
                1.0
            ),
            m(
                "req_total",
                Counter,
                &[
                    ("endpoint", "/fapi/v1/order"),
                    ("status", "200.5"),
                    ("ok", "false"),
                    ("source", "binance"),
                    ("nested", ""),
                    ("missing", "")
                ],
                1.0
            ),
        ])
    );
}

#[test]
fn free_text_labels_are_masked_and_truncated() {
    let mut h = harness(json!({
        "max_label_length": 12,
        "rules": [
            {"metric": "rej_total", "kind": "counter",
             "labels": {"reason": {"field": "reason", "mask_digits": true, "max_len": 60}, "short": "reason"}},
        ]
    }));
    let out = h.process([
        record!({"reason": "trigger px of 67516.0 was in the market: bid=67_516.0, ask=67516"}),
        record!({"reason": "trigger px of 1.5 was in the market: bid=2, ask=3"}),
    ]);
    let masked = "trigger px of # was in the market: bid=#, ask=#";
    assert_eq!(
        updates(&out),
        [m(
            "rej_total",
            Counter,
            &[("reason", masked), ("short", "trigger px o")],
            2.0
        )]
    );

    // Truncation never splits a character.
    let mut h = harness(json!({
        "rules": [{"metric": "t_total", "kind": "counter", "labels": {"v": {"field": "v", "max_len": 4}}}]
    }));
    let out = h.process([record!({"v": "abcé"}), record!({"v": "ééé"})]);
    assert_eq!(
        updates(&out),
        [
            m("t_total", Counter, &[("v", "abc")], 1.0),
            m("t_total", Counter, &[("v", "éé")], 1.0)
        ]
    );
}

#[test]
fn for_each_over_a_list_with_root_paths() {
    let mut h = rules(json!([
        {"metric": "balance", "kind": "gauge", "for_each": "account.balances", "value": "free",
         "labels": {"currency": "currency", "account": "$.account.account_id", "i": "@key"}},
    ]));
    let out = h.process([record!({
        "account": {"account_id": "BINANCE-001", "balances": [
            {"currency": "USDT", "free": 10.5},
            {"currency": "BNB", "free": "0.25"},
            {"currency": "ETH"},
            "not a map"
        ]}
    })]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m(
                "balance",
                Gauge,
                &[("currency", "USDT"), ("account", "BINANCE-001"), ("i", "0")],
                10.5
            ),
            m(
                "balance",
                Gauge,
                &[("currency", "BNB"), ("account", "BINANCE-001"), ("i", "1")],
                0.25
            ),
            m(SKIPPED_METRIC, Counter, &[("metric", "balance")], 2.0),
        ])
    );
}

#[test]
fn for_each_over_a_map_labels_by_key() {
    let mut h = rules(json!([
        {"metric": "rl_ratio", "kind": "gauge", "when": {"event": "rate_limit"},
         "for_each": "rate_limit", "value": "ratio", "labels": {"limit_type": "@key"}},
    ]));
    let out = h.process([
        record!({"event": "rate_limit", "rate_limit": {
            "REQUEST_WEIGHT": {"used": 11, "limit": 2400, "ratio": 0.25},
            "ORDERS_10S": {"used": 9, "limit": 300, "ratio": 0.03}
        }}),
        record!({"event": "rate_limit"}),
        record!({"event": "rate_limit", "rate_limit": {}}),
    ]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("rl_ratio", Gauge, &[("limit_type", "ORDERS_10S")], 0.03),
            m("rl_ratio", Gauge, &[("limit_type", "REQUEST_WEIGHT")], 0.25),
            // The field to iterate was missing; an empty map is just nothing to do.
            m(SKIPPED_METRIC, Counter, &[("metric", "rl_ratio")], 1.0),
        ])
    );
}

#[test]
fn one_update_per_series_per_batch_but_every_histogram_observation() {
    let mut h = rules(json!([
        {"metric": "fills_total", "kind": "counter", "when": {"event": "OrderFilled"},
         "labels": {"instrument": "i"}},
        {"metric": "qty_total", "kind": "counter", "when": {"event": "OrderFilled"},
         "value": "q", "labels": {"instrument": "i"}},
        {"metric": "connected", "kind": "gauge", "when": {"event": {"in": ["up", "reup"]}}, "value": 1},
        {"metric": "connected", "kind": "gauge", "when": {"event": "down"}, "value": 0},
        {"metric": "lat", "kind": "histogram", "when": {"event": "OrderFilled"}, "value": "l"},
    ]));
    let out = h.process([
        record!({"event": "OrderFilled", "i": "BTC", "q": 0.5, "l": 0.1}),
        record!({"event": "up"}),
        record!({"event": "OrderFilled", "i": "ETH", "q": 2, "l": 0.2}),
        record!({"event": "OrderFilled", "i": "BTC", "q": 0.25, "l": 0.1}),
        record!({"event": "down"}),
    ]);
    assert_eq!(out.metrics.len(), 8);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("connected", Gauge, &[], 0.0),
            m("fills_total", Counter, &[("instrument", "BTC")], 2.0),
            m("fills_total", Counter, &[("instrument", "ETH")], 1.0),
            m("lat", Histogram, &[], 0.1),
            m("lat", Histogram, &[], 0.1),
            m("lat", Histogram, &[], 0.2),
            m("qty_total", Counter, &[("instrument", "BTC")], 0.75),
            m("qty_total", Counter, &[("instrument", "ETH")], 2.0),
        ])
    );
    // Histogram observations keep record order.
    let lat: Vec<f64> = out
        .metrics
        .iter()
        .filter(|u| u.name == "lat")
        .map(|u| u.value)
        .collect();
    assert_eq!(lat, [0.1, 0.2, 0.1]);
    // The next batch starts from zero: counters are deltas.
    let out = h.process([record!({"event": "OrderFilled", "i": "BTC", "q": 1, "l": 0.3})]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("fills_total", Counter, &[("instrument", "BTC")], 1.0),
            m("lat", Histogram, &[], 0.3),
            m("qty_total", Counter, &[("instrument", "BTC")], 1.0),
        ])
    );
}

#[test]
fn series_cap_drops_new_label_sets_and_counts_them() {
    let mut h = harness(json!({
        "max_series_per_metric": 2,
        "rules": [
            {"metric": "a_total", "kind": "counter", "labels": {"k": "k"}},
            {"metric": "b_total", "kind": "counter", "labels": {"k": "k"}, "max_series": 3},
        ]
    }));
    let out = h.process((0..5).map(|i| record!({ "k": format!("v{i}") })));
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("a_total", Counter, &[("k", "v0")], 1.0),
            m("a_total", Counter, &[("k", "v1")], 1.0),
            m("b_total", Counter, &[("k", "v0")], 1.0),
            m("b_total", Counter, &[("k", "v1")], 1.0),
            m("b_total", Counter, &[("k", "v2")], 1.0),
            m(OVERFLOW_METRIC, Counter, &[("metric", "a_total")], 3.0),
            m(OVERFLOW_METRIC, Counter, &[("metric", "b_total")], 2.0),
        ])
    );
    assert_eq!(out.logs.len(), 2, "one warning per metric: {:?}", out.logs);
    assert!(out.logs[0]
        .message
        .contains("`a_total` reached its limit of 2"));

    // Admitted series keep counting; the warning is not repeated.
    let out = h.process([record!({"k": "v1"}), record!({"k": "v9"})]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("a_total", Counter, &[("k", "v1")], 1.0),
            m("b_total", Counter, &[("k", "v1")], 1.0),
            m(OVERFLOW_METRIC, Counter, &[("metric", "a_total")], 1.0),
            m(OVERFLOW_METRIC, Counter, &[("metric", "b_total")], 1.0),
        ])
    );
    assert!(out.logs.is_empty());
}

#[test]
fn the_cap_survives_a_hot_reload() {
    let config = json!({"max_series_per_metric": 2, "rules": [
        {"metric": "a_total", "kind": "counter", "labels": {"k": "k"}},
    ]});
    let mut old = harness(config.clone());
    old.process([record!({"k": "x"}), record!({"k": "y"})]);
    let state = old.plugin().snapshot().expect("has state");

    let mut new = harness(config);
    new.plugin().restore(&state).unwrap();
    let out = new.process([record!({"k": "z"}), record!({"k": "y"})]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("a_total", Counter, &[("k", "y")], 1.0),
            m(OVERFLOW_METRIC, Counter, &[("metric", "a_total")], 1.0),
        ])
    );

    // A metric whose labels changed starts afresh; garbage is refused.
    let mut changed = harness(json!({"max_series_per_metric": 2, "rules": [
        {"metric": "a_total", "kind": "counter", "labels": {"other": "k"}},
    ]}));
    changed.plugin().restore(&state).unwrap();
    let out = changed.process([record!({"k": "z"})]);
    assert_eq!(
        updates(&out),
        [m("a_total", Counter, &[("other", "z")], 1.0)]
    );
    assert!(changed.plugin().restore(b"not json").is_err());
}

#[test]
fn gauges_are_refreshed_on_tick_but_counters_and_samples_are_not() {
    let mut h = harness(json!({"refresh_gauges_seconds": 60, "rules": [
        {"metric": "connected", "kind": "gauge", "value": 1, "labels": {"url": "url"}},
        {"metric": "usage", "kind": "gauge", "value": 0.5, "refresh": false},
        {"metric": "seen_total", "kind": "counter"},
    ]}));
    let s = 1_000_000_000i64;
    let t0 = 1_800_000_000 * s;
    assert!(
        h.tick(t0).metrics.is_empty(),
        "the first tick only starts the clock"
    );
    h.process([record!({"url": "wss://a"})]);
    assert!(h.tick(t0 + 59 * s).metrics.is_empty());
    let out = h.tick(t0 + 60 * s);
    assert_eq!(
        updates(&out),
        [m("connected", Gauge, &[("url", "wss://a")], 1.0)]
    );
    assert!(
        h.tick(t0 + 61 * s).metrics.is_empty(),
        "the interval starts again"
    );
    assert_eq!(h.tick(t0 + 120 * s).metrics.len(), 1);

    // The last value survives a hot reload and keeps being refreshed.
    let state = h.plugin().snapshot().unwrap();
    let mut next = harness(json!({"refresh_gauges_seconds": 60, "rules": [
        {"metric": "connected", "kind": "gauge", "value": 1, "labels": {"url": "url"}},
    ]}));
    next.plugin().restore(&state).unwrap();
    next.tick(t0);
    assert_eq!(
        updates(&next.tick(t0 + 60 * s)),
        [m("connected", Gauge, &[("url", "wss://a")], 1.0)]
    );

    let mut never = harness(json!({"refresh_gauges_seconds": 0, "rules": [
        {"metric": "connected", "kind": "gauge", "value": 1},
    ]}));
    never.process([record!({})]);
    never.tick(t0);
    assert!(never.tick(t0 + 3600 * s).metrics.is_empty());
}

#[test]
fn default_state_gauges_are_refreshed_and_rate_limit_samples_are_not() {
    let mut h = harness(Value::Null);
    let s = 1_000_000_000i64;
    h.tick(s);
    h.process([
        enriched(
            "INFO",
            "BinanceWebSocketClient",
            "ws_connected",
            "websocket",
            json!({"ws": {"url": "wss://x"}}),
        ),
        enriched(
            "INFO",
            "BinanceFuturesHttpClient",
            "rate_limit",
            "rate_limit",
            json!({"rate_limit": {"ORDERS_10S": {"used": 1, "limit": 300, "ratio": 0.01}}}),
        ),
    ]);
    let names: Vec<String> = h.tick(61 * s).metrics.into_iter().map(|u| u.name).collect();
    assert_eq!(
        sorted_names(names),
        [
            "trading_ws_connected",
            "trading_ws_last_connect_timestamp_seconds"
        ]
    );
}

fn sorted_names(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[test]
fn config_errors_name_the_rule_and_key() {
    let e = init_error(json!({"rules": [
        {"metric": "ok_total", "kind": "counter"},
        {"metric": "bad", "kind": "counter"},
    ]}));
    assert!(
        e.starts_with("rules[1].metric: counter `bad` must end in `_total`"),
        "{e}"
    );

    let e = init_error(
        json!({"rules": [{"metric": "x_total", "kind": "counter", "when": {"a": {"regex": "."}}}]}),
    );
    assert!(
        e.starts_with("rules[0].when.a.regex: unknown test `regex`"),
        "{e}"
    );

    let e = init_error(json!({"rulez": []}));
    assert!(e.contains("unknown field `rulez`"), "{e}");
    let e = init_error(json!({"max_series_per_metric": 0}));
    assert!(
        e.starts_with("max_series_per_metric: must be at least 1"),
        "{e}"
    );
    let e = init_error(json!({"max_label_length": 0}));
    assert!(e.starts_with("max_label_length: must be at least 1"), "{e}");
    let e = init_error(json!({"max_label_length": "long"}));
    assert!(
        e.starts_with("max_label_length: invalid type: string"),
        "{e}"
    );
    let e = init_error(json!({"rules": {"metric": "a_total"}}));
    assert!(
        e.starts_with("rules: invalid type: map, expected a sequence"),
        "{e}"
    );
    let e = init_error(json!({"include_default_rules": "yes"}));
    assert!(
        e.starts_with("include_default_rules: invalid type: string"),
        "{e}"
    );
}

#[test]
fn rules_added_to_the_defaults_are_numbered_as_written() {
    let e = init_error(json!({"include_default_rules": true, "rules": [
        {"metric": "mine_total", "kind": "counter"},
        {"metric": "trading_orders_total", "kind": "counter", "labels": {"status": "order.status"}},
    ]}));
    assert!(
        e.starts_with("rules[1].labels: metric `trading_orders_total` has labels [status] here but [instrument, status] in default_rules[2]"),
        "{e}"
    );

    let mut h = harness(json!({"include_default_rules": true, "rules": [
        {"metric": "mine_total", "kind": "counter", "when": {"event": "OrderDenied"}},
    ]}));
    let out = h.process([
        record!({"event": "OrderDenied", "order": {"instrument_id": "X", "reason": "r"}}),
    ]);
    assert_eq!(
        updates(&out),
        sorted(vec![
            m("mine_total", Counter, &[], 1.0),
            m(
                "trading_order_denials_total",
                Counter,
                &[("instrument", "X"), ("reason", "r")],
                1.0
            ),
        ])
    );
}

#[test]
fn renumber_rewrites_every_reference() {
    assert_eq!(
        renumber("rules[5].kind: x in rules[2] and rules[7]", 4),
        "rules[1].kind: x in default_rules[2] and rules[3]"
    );
    assert_eq!(renumber("rules[x] rules[", 4), "rules[x] rules[");
    assert_eq!(renumber("rules[5]", 0), "rules[5]");
}

// ---------------------------------------------------------------------------------------
// The default trading rule set, against records shaped as `enrich` writes them.

const BTC: &str = "BTCUSDT-PERP.BINANCE";

fn base(level: &str, component: &str, event: &str, kind: &str) -> Value {
    json!({
        "timestamp": "2026-11-28T00:23:22.079851243Z",
        "level": level,
        "trader_id": "TRADER-001",
        "component": component,
        "message": "(the raw line)",
        "env": "prod",
        "correlation_id": "order:O-20261128-002322-001-001-3",
        "event": event,
        "event_kind": kind,
    })
}

fn enriched(level: &str, component: &str, event: &str, kind: &str, extra: Value) -> Record {
    let mut v = base(level, component, event, kind);
    let map = v.as_object_mut().unwrap();
    for (k, x) in extra.as_object().unwrap() {
        map.insert(k.clone(), x.clone());
    }
    Record::from_value(v).unwrap()
}

fn order(status: &str, extra: Value) -> Value {
    let mut o = json!({
        "client_order_id": "O-20261128-002322-001-001-3",
        "venue_order_id": "4000619321",
        "instrument_id": BTC,
        "venue": "BINANCE",
        "symbol": "BTCUSDT-PERP",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": 0.002,
        "price": 67480.1,
        "currency": "USDT",
        "status": status,
    });
    for (k, x) in extra.as_object().unwrap() {
        o[k] = x.clone();
    }
    o
}

/// Runs each record in its own batch through the default rules and returns each batch's
/// updates.
fn defaults_on(records: Vec<Record>) -> Vec<Vec<Update>> {
    let mut h = harness(Value::Null);
    records
        .into_iter()
        .map(|r| {
            let out = h.process([r.clone()]);
            assert_eq!(out.records, [r]);
            updates(&out)
        })
        .collect()
}

#[test]
fn defaults_order_lifecycle() {
    let fill_fields = json!({
        "instrument_id": BTC, "client_order_id": "O-20261128-002322-001-001-3",
        "trade_id": "5012", "order_side": "BUY", "order_type": "LIMIT",
        "last_qty": 0.002, "last_px": 67480.1, "commission": 0.0269, "liquidity_side": "MAKER",
        "ts_event": 1_795_825_402_078_000_000u64,
    });
    let records = vec![
        enriched(
            "INFO",
            "HedgeGrid",
            "OrderSubmitted",
            "order",
            json!({"order": order("submitted", json!({}))}),
        ),
        enriched(
            "INFO",
            "HedgeGrid",
            "OrderAccepted",
            "order",
            json!({
                "order": order("accepted", json!({})),
                "latency": {"submit_to_accept_seconds": 0.0213},
            }),
        ),
        enriched(
            "INFO",
            "HedgeGrid",
            "OrderFilled",
            "order",
            json!({
                "order": order("partially_filled", json!({"last_qty": 0.002, "last_px": 67480.1, "commission": 0.0269, "trade_id": "5012"})),
                "latency": {"submit_to_fill_seconds": 0.5},
                "event_fields": fill_fields,
            }),
        ),
        // A later fill of the same order: no fill latency any more.
        enriched(
            "INFO",
            "HedgeGrid",
            "OrderFilled",
            "order",
            json!({
                "order": order("filled", json!({"side": "SELL", "last_qty": 0.001, "last_px": 67500.0})),
                "event_fields": {"liquidity_side": "TAKER"},
            }),
        ),
        enriched(
            "INFO",
            "HedgeGrid",
            "OrderCanceled",
            "order",
            json!({"order": order("canceled", json!({}))}),
        ),
        enriched(
            "INFO",
            "HedgeGrid",
            "OrderExpired",
            "order",
            json!({"order": order("expired", json!({}))}),
        ),
        // A failed cancel is an order event too; it says nothing about fills.
        enriched(
            "WARN",
            "HedgeGrid",
            "OrderCancelRejected",
            "order",
            json!({"order": order("cancel_rejected", json!({"reason": "Unknown order sent."}))}),
        ),
    ];
    let labels_accept = [
        ("venue", "BINANCE"),
        ("instrument", BTC),
        ("order_type", "LIMIT"),
    ];
    let status = |s| {
        m(
            "trading_orders_total",
            Counter,
            &[("status", s), ("instrument", BTC)],
            1.0,
        )
    };
    assert_eq!(
        defaults_on(records),
        [
            vec![status("submitted")],
            sorted(vec![
                m(
                    "trading_order_latency_seconds",
                    Histogram,
                    &labels_accept,
                    0.0213
                ),
                status("accepted"),
            ]),
            sorted(vec![
                m(
                    "trading_order_fill_latency_seconds",
                    Histogram,
                    &labels_accept,
                    0.5
                ),
                m(
                    "trading_order_filled_notional_total",
                    Counter,
                    &[("instrument", BTC), ("side", "BUY"), ("currency", "USDT")],
                    0.002 * 67480.1
                ),
                m(
                    "trading_order_filled_quantity_total",
                    Counter,
                    &[("instrument", BTC), ("side", "BUY")],
                    0.002
                ),
                m(
                    "trading_order_fills_total",
                    Counter,
                    &[("instrument", BTC), ("side", "BUY"), ("liquidity", "MAKER")],
                    1.0
                ),
                status("partially_filled"),
            ]),
            sorted(vec![
                m(
                    "trading_order_filled_notional_total",
                    Counter,
                    &[("instrument", BTC), ("side", "SELL"), ("currency", "USDT")],
                    0.001 * 67500.0
                ),
                m(
                    "trading_order_filled_quantity_total",
                    Counter,
                    &[("instrument", BTC), ("side", "SELL")],
                    0.001
                ),
                m(
                    "trading_order_fills_total",
                    Counter,
                    &[
                        ("instrument", BTC),
                        ("side", "SELL"),
                        ("liquidity", "TAKER")
                    ],
                    1.0
                ),
                status("filled"),
            ]),
            vec![status("canceled")],
            vec![status("expired")],
            sorted(vec![
                status("cancel_rejected"),
                m(
                    "trading_log_errors_total",
                    Counter,
                    &[("level", "WARN"), ("component", "HedgeGrid")],
                    1.0
                ),
            ]),
        ]
    );
}

#[test]
fn defaults_rejections_and_denials() {
    let records = vec![
        enriched(
            "WARN",
            "HedgeGrid",
            "OrderRejected",
            "order",
            json!({
                "order": order("rejected", json!({"reason": "LIMIT_IF_TOUCHED BUY order trigger stop px of 67516.0 was in the market: bid=67516.0, ask=67516.0"})),
            }),
        ),
        enriched(
            "WARN",
            "RiskEngine",
            "OrderDenied",
            "order",
            json!({
                "order": order("denied", json!({"reason": "Exceeded MAX_ORDER_SUBMIT_RATE"})),
            }),
        ),
    ];
    assert_eq!(
        defaults_on(records),
        [
            sorted(vec![
                m("trading_order_rejections_total", Counter, &[("instrument", BTC), ("reason", "LIMIT_IF_TOUCHED BUY order trigger stop px of # was in the market: bid=#, ask=#")], 1.0),
                m("trading_orders_total", Counter, &[("status", "rejected"), ("instrument", BTC)], 1.0),
                m("trading_log_errors_total", Counter, &[("level", "WARN"), ("component", "HedgeGrid")], 1.0),
            ]),
            sorted(vec![
                m("trading_order_denials_total", Counter, &[("instrument", BTC), ("reason", "Exceeded MAX_ORDER_SUBMIT_RATE")], 1.0),
                m("trading_orders_total", Counter, &[("status", "denied"), ("instrument", BTC)], 1.0),
                m("trading_log_errors_total", Counter, &[("level", "WARN"), ("component", "RiskEngine")], 1.0),
            ]),
        ]
    );
}

#[test]
fn defaults_rest_calls_and_rate_limits() {
    let http = "BinanceFuturesHttpClient";
    let records = vec![
        enriched(
            "DEBUG",
            http,
            "rest_call",
            "rest",
            json!({"rest": {
                "method": "GET", "endpoint": "/fapi/v2/account", "status": 200,
                "latency_seconds": 0.0124, "used_weight": 600, "weight_limit": 2400,
            }}),
        ),
        enriched(
            "WARN",
            http,
            "rest_call",
            "rest",
            json!({"rest": {
                "method": "GET", "endpoint": "/fapi/v1/openOrders", "status": 429,
                "latency_seconds": 0.0087, "used_weight": 2400, "weight_limit": 2400,
                "error_code": -1003, "error_message": "Too many requests; current limit is 2400 requests per minute.",
            }}),
        ),
        enriched(
            "INFO",
            http,
            "rate_limit",
            "rate_limit",
            json!({"rate_limit": {
                "REQUEST_WEIGHT": {"used": 11, "limit": 2400, "ratio": 11.0 / 2400.0},
                "ORDERS_10S": {"used": 9, "limit": 300, "ratio": 0.03},
                "ORDERS_1M": {"used": 9, "limit": 1200, "ratio": 0.0075},
            }}),
        ),
        enriched(
            "DEBUG",
            http,
            "rest_call",
            "rest",
            json!({"rest": {
                "method": "POST", "endpoint": "/fapi/v1/order", "status": 200,
                "used_weight": 100, "weight_limit": 2400,
                "order_count_10s": 30, "order_limit_10s": 300,
                "order_count_1m": 90, "order_limit_1m": 1200,
            }}),
        ),
    ];
    let gauges = |t: &str, used: f64, limit: f64| {
        vec![
            m(
                "trading_exchange_rate_limit_used_ratio",
                Gauge,
                &[("limit_type", t)],
                used / limit,
            ),
            m(
                "trading_exchange_rate_limit_used",
                Gauge,
                &[("limit_type", t)],
                used,
            ),
            m(
                "trading_exchange_rate_limit_max",
                Gauge,
                &[("limit_type", t)],
                limit,
            ),
        ]
    };
    let mut ok = vec![
        m(
            "trading_exchange_api_requests_total",
            Counter,
            &[
                ("method", "GET"),
                ("endpoint", "/fapi/v2/account"),
                ("status", "200"),
            ],
            1.0,
        ),
        m(
            "trading_exchange_api_latency_seconds",
            Histogram,
            &[("method", "GET"), ("endpoint", "/fapi/v2/account")],
            0.0124,
        ),
    ];
    ok.extend(gauges("REQUEST_WEIGHT", 600.0, 2400.0));
    let mut limited = vec![
        m(
            "trading_exchange_api_requests_total",
            Counter,
            &[
                ("method", "GET"),
                ("endpoint", "/fapi/v1/openOrders"),
                ("status", "429"),
            ],
            1.0,
        ),
        m(
            "trading_exchange_api_failures_total",
            Counter,
            &[("endpoint", "/fapi/v1/openOrders"), ("status", "429")],
            1.0,
        ),
        m(
            "trading_exchange_api_error_codes_total",
            Counter,
            &[("endpoint", "/fapi/v1/openOrders"), ("code", "-1003")],
            1.0,
        ),
        m(
            "trading_exchange_api_latency_seconds",
            Histogram,
            &[("method", "GET"), ("endpoint", "/fapi/v1/openOrders")],
            0.0087,
        ),
        m(
            "trading_log_errors_total",
            Counter,
            &[("level", "WARN"), ("component", http)],
            1.0,
        ),
    ];
    limited.extend(gauges("REQUEST_WEIGHT", 2400.0, 2400.0));
    let mut usage = gauges("REQUEST_WEIGHT", 11.0, 2400.0);
    usage.extend(gauges("ORDERS_10S", 9.0, 300.0));
    usage.extend(gauges("ORDERS_1M", 9.0, 1200.0));
    let got = defaults_on(records);
    assert_eq!(got[0], sorted(ok));
    assert_eq!(got[1], sorted(limited));
    assert_eq!(got[2], sorted(usage));
    // Order-count headers feed the same gauges as the usage lines; no latency, no histogram.
    let mut post = vec![m(
        "trading_exchange_api_requests_total",
        Counter,
        &[
            ("method", "POST"),
            ("endpoint", "/fapi/v1/order"),
            ("status", "200"),
        ],
        1.0,
    )];
    post.extend(gauges("REQUEST_WEIGHT", 100.0, 2400.0));
    post.extend(gauges("ORDERS_10S", 30.0, 300.0));
    post.extend(gauges("ORDERS_1M", 90.0, 1200.0));
    assert_eq!(got[3], sorted(post));
}

#[test]
fn defaults_websocket_state_and_errors() {
    let ws = "BinanceWebSocketClient";
    let url = "wss://fstream.binance.com/stream?streams=btcusdt@bookTicker/btcusdt@aggTrade";
    let at = |ts: &str, mut r: Record| {
        r.set("timestamp", ts);
        r
    };
    let records = vec![
        at(
            "2026-11-28T00:23:21.5Z",
            enriched(
                "INFO",
                ws,
                "ws_connected",
                "websocket",
                json!({"ws": {"state": "connected", "url": url}}),
            ),
        ),
        enriched(
            "WARN",
            ws,
            "ws_disconnected",
            "websocket",
            json!({"ws": {"state": "disconnected", "url": url, "code": 1006, "reason": "abnormal closure"}}),
        ),
        at(
            "2026-11-28T00:23:25.25Z",
            enriched(
                "INFO",
                ws,
                "ws_reconnected",
                "websocket",
                json!({"ws": {"state": "reconnected", "url": url}}),
            ),
        ),
        enriched(
            "ERROR",
            ws,
            "ws_error",
            "websocket",
            json!({"ws": {"state": "error", "reason": "no close frame received or sent"},
                   "error": {"type": "ConnectionClosedError"}}),
        ),
        enriched(
            "ERROR",
            "ExecClient-BINANCE",
            "exchange_error",
            "error",
            json!({"error": {"type": "BinanceServerError"}, "rest": {"status": 503, "error_code": -1001}}),
        ),
        // An ERROR line from a component that does not talk to the venue.
        enriched("ERROR", "ExecEngine", "error", "error", json!({})),
        // Plain log lines without an event still count by level.
        Record::from_value(json!({"level": "ERROR", "component": "ExecEngine", "message": "boom"}))
            .unwrap(),
        Record::from_value(json!({"level": "INFO", "component": "Portfolio", "message": "ok"}))
            .unwrap(),
    ];
    let connect_ts = 1_795_825_401.5;
    assert_eq!(
        defaults_on(records),
        [
            sorted(vec![
                m("trading_ws_connected", Gauge, &[("url", url)], 1.0),
                m(
                    "trading_ws_last_connect_timestamp_seconds",
                    Gauge,
                    &[("url", url)],
                    connect_ts
                ),
            ]),
            sorted(vec![
                m("trading_ws_connected", Gauge, &[("url", url)], 0.0),
                m(
                    "trading_ws_disconnects_total",
                    Counter,
                    &[("url", url), ("code", "1006")],
                    1.0
                ),
                m(
                    "trading_log_errors_total",
                    Counter,
                    &[("level", "WARN"), ("component", ws)],
                    1.0
                ),
            ]),
            sorted(vec![
                m("trading_ws_connected", Gauge, &[("url", url)], 1.0),
                m(
                    "trading_ws_last_connect_timestamp_seconds",
                    Gauge,
                    &[("url", url)],
                    connect_ts + 3.75
                ),
                m("trading_ws_reconnects_total", Counter, &[("url", url)], 1.0),
            ]),
            sorted(vec![
                m(
                    "trading_errors_total",
                    Counter,
                    &[
                        ("event", "ws_error"),
                        ("error_type", "ConnectionClosedError"),
                        ("component", ws)
                    ],
                    1.0
                ),
                m(
                    "trading_log_errors_total",
                    Counter,
                    &[("level", "ERROR"), ("component", ws)],
                    1.0
                ),
            ]),
            sorted(vec![
                m(
                    "trading_errors_total",
                    Counter,
                    &[
                        ("event", "exchange_error"),
                        ("error_type", "BinanceServerError"),
                        ("component", "ExecClient-BINANCE")
                    ],
                    1.0
                ),
                m(
                    "trading_log_errors_total",
                    Counter,
                    &[("level", "ERROR"), ("component", "ExecClient-BINANCE")],
                    1.0
                ),
            ]),
            sorted(vec![
                m(
                    "trading_errors_total",
                    Counter,
                    &[
                        ("event", "error"),
                        ("error_type", ""),
                        ("component", "ExecEngine")
                    ],
                    1.0
                ),
                m(
                    "trading_log_errors_total",
                    Counter,
                    &[("level", "ERROR"), ("component", "ExecEngine")],
                    1.0
                ),
            ]),
            vec![m(
                "trading_log_errors_total",
                Counter,
                &[("level", "ERROR"), ("component", "ExecEngine")],
                1.0
            )],
            vec![],
        ]
    );
}

#[test]
fn defaults_positions_and_balances() {
    let position = |event: &str, qty: f64, rpnl: f64, upnl: f64| {
        enriched(
            "INFO",
            "HedgeGrid",
            event,
            "position",
            json!({"position": {
                "instrument_id": BTC, "position_id": "BTCUSDT-PERP.BINANCE-SHORT", "side": if qty == 0.0 { "FLAT" } else { "SHORT" },
                "signed_qty": qty, "quantity": qty.abs(), "avg_px_open": 67500.0,
                "realized_pnl": rpnl, "unrealized_pnl": upnl,
            }}),
        )
    };
    let records = vec![
        position("PositionChanged", -0.005, -0.128, 0.0275),
        position("PositionClosed", 0.0, 1.25, 0.0),
        enriched(
            "INFO",
            "Portfolio",
            "AccountState",
            "account",
            json!({"account": {
                "account_id": "BINANCE-001",
                "balances": [
                    {"currency": "USDT", "total": 10_000.5, "locked": 6.75, "free": 9_993.75},
                    {"currency": "BNB", "total": 1.0, "locked": 0.0, "free": 1.0},
                ],
                "margins": [
                    {"instrument_id": BTC, "initial": 6.75, "maintenance": 0.5, "currency": "USDT"},
                ],
            }}),
        ),
        // The Portfolio's own lines: one margin figure, or a net position, at a time.
        enriched(
            "INFO",
            "Portfolio",
            "margin",
            "account",
            json!({"margin": {"instrument_id": BTC, "currency": "USDT", "maintenance": 0.625}}),
        ),
        enriched(
            "INFO",
            "Portfolio",
            "net_position",
            "position",
            json!({"position": {"instrument_id": BTC, "net_qty": -0.012}}),
        ),
    ];
    let margin = |kind: &str, v: f64| {
        m(
            "trading_margin",
            Gauge,
            &[("instrument", BTC), ("currency", "USDT"), ("kind", kind)],
            v,
        )
    };
    let pos = [
        ("instrument", BTC),
        ("position_id", "BTCUSDT-PERP.BINANCE-SHORT"),
    ];
    let bal = |currency: &str, kind: &str, v: f64| {
        m(
            "trading_account_balance",
            Gauge,
            &[
                ("account", "BINANCE-001"),
                ("currency", currency),
                ("kind", kind),
            ],
            v,
        )
    };
    assert_eq!(
        defaults_on(records),
        [
            sorted(vec![
                m("trading_position_quantity", Gauge, &pos, -0.005),
                m("trading_position_realized_pnl", Gauge, &pos, -0.128),
                m("trading_position_unrealized_pnl", Gauge, &pos, 0.0275),
                m(
                    "trading_position_entry_notional",
                    Gauge,
                    &pos,
                    -0.005 * 67500.0
                ),
            ]),
            sorted(vec![
                m("trading_position_quantity", Gauge, &pos, 0.0),
                m("trading_position_realized_pnl", Gauge, &pos, 1.25),
                m("trading_position_unrealized_pnl", Gauge, &pos, 0.0),
                m("trading_position_entry_notional", Gauge, &pos, 0.0),
            ]),
            sorted(vec![
                bal("USDT", "total", 10_000.5),
                bal("USDT", "free", 9_993.75),
                bal("USDT", "locked", 6.75),
                bal("BNB", "total", 1.0),
                bal("BNB", "free", 1.0),
                bal("BNB", "locked", 0.0),
                margin("initial", 6.75),
                margin("maintenance", 0.5),
            ]),
            vec![margin("maintenance", 0.625)],
            vec![m(
                "trading_position_net_quantity",
                Gauge,
                &[("instrument", BTC)],
                -0.012
            )],
        ]
    );
}

#[test]
fn defaults_strategy_heartbeat() {
    let mut beat = enriched(
        "INFO",
        "HedgeGrid",
        "heartbeat",
        "strategy",
        json!({"heartbeat": {"instrument_id": BTC, "mid": 67500.0, "open_orders": 3, "long": 0.012, "short": 0.0}}),
    );
    beat.set("timestamp", "2026-11-28T00:23:21.5Z");
    assert_eq!(
        defaults_on(vec![beat]),
        [sorted(vec![
            m(
                "trading_last_heartbeat_timestamp_seconds",
                Gauge,
                &[("component", "HedgeGrid")],
                1_795_825_401.5
            ),
            m("trading_open_orders", Gauge, &[("instrument", BTC)], 3.0),
        ])]
    );
}

#[test]
fn defaults_ignore_records_they_have_no_rule_for() {
    let records = vec![
        enriched(
            "INFO",
            "HedgeGrid",
            "SubmitOrder",
            "command",
            json!({"order": {"instrument_id": BTC, "side": "BUY"}}),
        ),
        enriched(
            "INFO",
            "HedgeGrid",
            "OrderInitialized",
            "order",
            json!({"order": {"instrument_id": BTC}}),
        ),
        enriched(
            "DEBUG",
            "BinanceWebSocketClient",
            "something_new",
            "websocket",
            json!({}),
        ),
        enriched(
            "DEBUG",
            "BinanceWebSocketClient",
            "ws_ping",
            "websocket",
            json!({}),
        ),
        enriched(
            "DEBUG",
            "BinanceFuturesHttpClient",
            "rest_request",
            "rest",
            json!({"rest": {"method": "GET", "endpoint": "/fapi/v2/account"}}),
        ),
        // An account state that lists no balances is not an error of the rules.
        enriched(
            "INFO",
            "Portfolio",
            "AccountState",
            "account",
            json!({"account": {"account_id": "X", "balances": []}}),
        ),
        Record::from_value(json!({"event": "host_metrics", "metric": "memory", "used_ratio": 0.5}))
            .unwrap(),
        Record::from_value(json!({"decode_error": "bad line", "message": "\u{0}garbage"})).unwrap(),
    ];
    for got in defaults_on(records) {
        assert_eq!(got, []);
    }
}

#[test]
fn defaults_compile_and_every_metric_is_documented() {
    let set = rules::compile(
        &defaults::rules(),
        &Limits {
            max_series_per_metric: 1000,
            max_label_length: 128,
        },
    )
    .unwrap();
    let doc = include_str!("../../../docs/plugins/metrics.md");
    for metric in &set.metrics {
        assert!(
            doc.contains(&format!("`{}`", metric.name)),
            "docs/plugins/metrics.md does not mention `{}`",
            metric.name
        );
        assert!(metric.help.is_some(), "{} has no help", metric.name);
    }

    // The table numbers rules as `default_rules[N]` in error messages: each row's numbers
    // must be the rules of the metrics it names, and every rule must have a row.
    let mut covered = vec![false; set.rules.len()];
    let table = doc
        .split("## The default trading rule set")
        .nth(1)
        .expect("the defaults section");
    for row in table
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes()[2].is_ascii_digit())
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (numbers, names) = (cells[1], cells[2]);
        let mut indexes = Vec::new();
        for part in numbers.split(", ") {
            match part.split_once('–') {
                Some((a, b)) => indexes.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
                None => indexes.push(part.parse::<usize>().unwrap()),
            }
        }
        for i in indexes {
            let name = &set.metrics[set.rules[i].metric].name;
            assert!(
                names.contains(&format!("`{name}`")),
                "docs row `{numbers}` names {names}, but default rule {i} is {name}"
            );
            covered[i] = true;
        }
    }
    let missing: Vec<usize> = (0..covered.len()).filter(|&i| !covered[i]).collect();
    assert!(
        missing.is_empty(),
        "default rules without a docs row: {missing:?}"
    );
}

/// `cargo test --release -p sluice-plugin-metrics -- --ignored --nocapture throughput`
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    let url = "wss://fstream.binance.com/ws/btcusdt@depth20@100ms";
    let mix: Vec<Record> = vec![
        enriched("INFO", "HedgeGrid", "OrderAccepted", "order", json!({"order": order("accepted", json!({})), "latency": {"submit_to_accept_seconds": 0.02}})),
        enriched("INFO", "HedgeGrid", "OrderFilled", "order", json!({"order": order("filled", json!({"last_qty": 0.002, "last_px": 67480.1})), "event_fields": {"liquidity_side": "MAKER"}})),
        enriched("DEBUG", "BinanceFuturesHttpClient", "rest_call", "rest", json!({"rest": {"method": "GET", "endpoint": "/fapi/v1/openOrders", "status": 200, "latency_seconds": 0.01, "used_weight": 40, "weight_limit": 2400}})),
        enriched("INFO", "BinanceFuturesHttpClient", "rate_limit", "rate_limit", json!({"rate_limit": {"REQUEST_WEIGHT": {"used": 11, "limit": 2400, "ratio": 0.004}}})),
        enriched("INFO", "HedgeGrid", "PositionChanged", "position", json!({"position": {"instrument_id": BTC, "position_id": "P", "signed_qty": 0.1, "avg_px_open": 1.0, "realized_pnl": 0.0, "unrealized_pnl": 0.1}})),
        enriched("INFO", "BinanceWebSocketClient", "ws_connected", "websocket", json!({"ws": {"url": url}})),
        Record::from_value(json!({"timestamp": "2026-11-28T00:23:22.079851243Z", "level": "INFO", "component": "HedgeGrid", "message": "Heartbeat mid=67480.1 open_orders=12"})).unwrap(),
        Record::from_value(json!({"timestamp": "2026-11-28T00:23:22.079851243Z", "level": "INFO", "component": "Portfolio", "message": "BTCUSDT-PERP.BINANCE net_position=0.003"})).unwrap(),
    ];
    let batch: Vec<Record> = mix.iter().cycle().take(1000).cloned().collect();
    let mut h = harness(Value::Null);
    let plugin = h.plugin();
    let rounds = 2000;
    let start = (std::time::Instant::now(), cpu_ns());
    for _ in 0..rounds {
        let mut fields = Fields::new(&plugin.rules.paths);
        for record in &batch {
            fields.start(record.fields());
            match_record(
                &plugin.rules,
                &mut plugin.series,
                &mut plugin.key,
                &mut fields,
            );
        }
        plugin.flush();
        sluice_sdk::rt::respond_with(Output::default(), Ok(()));
    }
    let n = (rounds * batch.len()) as f64;
    let wall = start.0.elapsed().as_nanos() as f64 / n;
    let cpu = (cpu_ns() - start.1) as f64 / n;
    println!(
        "{cpu:.0} ns CPU ({wall:.0} ns wall) per record: default rules, 8 kinds of record, 1000-record batches"
    );
}

/// This thread's CPU time, so the figure holds on a machine shared with other builds.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
