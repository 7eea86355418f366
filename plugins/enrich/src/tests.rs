//! The plugin as the host drives it (MessagePack, init, process, tick, snapshot/restore),
//! through `sluice_sdk::testing`.

use super::*;
use sluice_sdk::testing::{self, Harness, Outcome};
use sluice_sdk::MetricKind;

const BTC: &str = "BTCUSDT-PERP.BINANCE";

fn rec(message: &str, ts: &str) -> Record {
    Record::from_value(json!({
        "timestamp": ts,
        "level": "INFO",
        "trader_id": "TRADER-001",
        "component": "HedgeGrid",
        "message": message,
    }))
    .unwrap()
}

fn submitted(id: &str, ts_event: i64) -> String {
    format!("<--[EVT] OrderSubmitted(instrument_id={BTC}, client_order_id={id}, account_id=BINANCE-001, ts_event={ts_event})")
}

fn accepted(id: &str, ts_event: i64) -> String {
    format!("<--[EVT] OrderAccepted(instrument_id={BTC}, client_order_id={id}, venue_order_id=4000000001, account_id=BINANCE-001, ts_event={ts_event})")
}

fn filled(id: &str, qty: &str, ts_event: i64) -> String {
    format!("<--[EVT] OrderFilled(instrument_id={BTC}, client_order_id={id}, venue_order_id=4000000001, account_id=BINANCE-001, trade_id=5200000001, position_id={BTC}-LONG, order_side=BUY, order_type=LIMIT, last_qty={qty}, last_px=67_472.5 USDT, commission=0.16193400 USDT, liquidity_side=MAKER, ts_event={ts_event})")
}

fn submit_cmd(id: &str, qty: &str) -> String {
    format!("[CMD]--> [Risk] SubmitOrder(order=LimitOrder(BUY {qty} {BTC} LIMIT @ 67_472.5 GTC, status=INITIALIZED, client_order_id={id}, venue_order_id=None, position_id=None, tags=None), position_id=None)")
}

const T0: i64 = 1_717_372_811_000_000_000;
const MS: i64 = 1_000_000;

fn counter_value(out: &Outcome, name: &str, label: Option<(&str, &str)>) -> f64 {
    out.metrics
        .iter()
        .filter(|m| m.name == name && m.kind == MetricKind::Counter)
        .filter(|m| label.is_none_or(|(k, v)| m.labels.get(k).map(String::as_str) == Some(v)))
        .map(|m| m.value)
        .sum()
}

#[test]
fn unknown_records_get_only_config_fields_and_a_correlation_id() {
    let config = json!({"env": "prod", "host": "bot-1", "service": "hedge-grid", "version": "1.4.2", "git_sha": "0a1b2c3"});
    let input = rec(
        "Registered Strategy HedgeGrid-001",
        "2024-06-03T00:00:11.000000000Z",
    );
    let out = testing::run::<Enrich>(config, [input.clone(), record!({"no_message": 1})]);
    assert_eq!(out.error, None);
    let mut got = out.records[0].clone();
    let id = got.remove("correlation_id").unwrap();
    for key in ["env", "host", "service", "version", "git_sha"] {
        got.remove(key).unwrap();
    }
    assert_eq!(got, input, "nothing else was added or changed");
    assert_eq!(id.as_str().unwrap().len(), 36);
    assert_eq!(out.records[1].get_str("env"), Some("prod"));
    assert!(out.records[1].contains("correlation_id"));
}

#[test]
fn config_fields_do_not_overwrite_what_a_record_has() {
    let out = testing::run::<Enrich>(
        json!({"env": "prod", "host": "bot-1"}),
        [record!({"message": "x", "host": "metrics-node"})],
    );
    assert_eq!(out.records[0].get_str("host"), Some("metrics-node"));
    assert_eq!(out.records[0].get_str("env"), Some("prod"));
}

#[test]
fn correlation_ids_kept_derived_or_new() {
    let out = testing::run::<Enrich>(
        (),
        [
            record!({"message": "x", "correlation_id": "trace-7"}),
            rec(&accepted("O-1", T0), "2024-06-03T00:00:11Z"),
            record!({"message": "y", "order": {"client_order_id": "O-2"}}),
            record!({"message": "z"}),
            record!({"message": "z", "correlation_id": ""}),
            record!({"message": "z", "correlation_id": null}),
        ],
    );
    let ids: Vec<&str> = out
        .records
        .iter()
        .map(|r| r.get_str("correlation_id").unwrap())
        .collect();
    assert_eq!(&ids[..3], ["trace-7", "order:O-1", "order:O-2"]);
    for id in &ids[3..] {
        let b = id.as_bytes();
        assert_eq!(b.len(), 36, "{id}");
        assert_eq!((b[8], b[13], b[18], b[23]), (b'-', b'-', b'-', b'-'));
        assert_eq!(b[14], b'4', "version 4: {id}");
        assert!(matches!(b[19], b'8' | b'9' | b'a' | b'b'), "variant: {id}");
        assert!(id.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
    }
    assert!(ids[3] != ids[4] && ids[4] != ids[5] && ids[3] != ids[5]);
}

#[test]
fn generated_ids_are_unique_and_differ_between_instances() {
    let mut a = IdGen::from_os().unwrap();
    let mut b = IdGen::from_os().unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50_000 {
        assert!(seen.insert(a.next_uuid()));
    }
    assert!(!seen.contains(&b.next_uuid()));
}

#[test]
fn correlation_field_is_configurable_and_may_nest() {
    let out = testing::run::<Enrich>(
        json!({"correlation_field": "trace.id"}),
        [
            rec(&submit_cmd("O-5", "0.010"), "2024-06-03T00:00:11Z"),
            record!({"message": "x", "trace": {"id": "keep"}}),
        ],
    );
    assert_eq!(out.records[0].get_str("trace.id"), Some("order:O-5"));
    assert!(!out.records[0].contains("correlation_id"));
    assert_eq!(out.records[1].get_str("trace.id"), Some("keep"));
}

#[test]
fn lookups_join_tables_with_defaults() {
    let config = json!({"lookups": [
        {"name": "asset_class", "key": "order.instrument_id",
         "table": {BTC: "crypto_perp", "ETHUSDT-PERP.BINANCE": "crypto_perp"}, "default": "unknown"},
        {"name": "owner_team", "key": "component", "table": {"HedgeGrid": {"team": "grid", "pager": true}}},
        {"name": "status_class", "key": "rest.status", "table": {"429": "throttled"}},
    ]});
    let sol = submitted("O-1", T0).replace(BTC, "SOLUSDT-PERP.BINANCE");
    let eth = rec(&sol, "2024-06-03T00:00:11Z");
    let mut rest = rec(
        "GET /fapi/v1/time 429 (1.0ms) x-mbx-used-weight-1m=2400/2400",
        "2024-06-03T00:00:11Z",
    );
    rest.set("component", "BinanceFuturesHttpClient");
    let out = testing::run::<Enrich>(
        config,
        [
            rec(&submitted("O-2", T0), "2024-06-03T00:00:11Z"),
            eth,
            rest,
        ],
    );
    let r = &out.records;
    assert_eq!(r[0].get_str("lookup.asset_class"), Some("crypto_perp"));
    assert_eq!(
        r[0].get("lookup.owner_team"),
        Some(&json!({"team": "grid", "pager": true}))
    );
    assert_eq!(
        r[1].get_str("lookup.asset_class"),
        Some("unknown"),
        "default on a miss"
    );
    assert_eq!(
        r[2].get("lookup.asset_class"),
        None,
        "no key field: no default"
    );
    assert_eq!(
        r[2].get("lookup.owner_team"),
        None,
        "no table entry, no default"
    );
    assert_eq!(
        r[2].get_str("lookup.status_class"),
        Some("throttled"),
        "numbers match as text"
    );
}

#[test]
fn submit_accept_fill_latencies_and_fill_status() {
    let mut h = Harness::<Enrich>::new(()).unwrap();
    let out = h.process([
        rec(&submit_cmd("O-1", "0.020"), "2024-06-03T00:00:10.999Z"),
        rec(&submitted("O-1", T0), "2024-06-03T00:00:11.000Z"),
        rec(&accepted("O-1", T0 + 18 * MS), "2024-06-03T00:00:11.020Z"),
        rec(&accepted("O-1", T0 + 19 * MS), "2024-06-03T00:00:11.021Z"),
        rec(
            &filled("O-1", "0.005", T0 + 600 * MS),
            "2024-06-03T00:00:11.602Z",
        ),
        rec(
            &filled("O-1", "0.015", T0 + 900 * MS),
            "2024-06-03T00:00:11.902Z",
        ),
    ]);
    let r = &out.records;
    assert_eq!(
        r[2].get_f64("latency.submit_to_accept_seconds"),
        Some(0.018)
    );
    assert_eq!(
        r[3].get("latency"),
        None,
        "a duplicate acceptance is not a second sample"
    );
    assert_eq!(r[4].get_f64("latency.submit_to_fill_seconds"), Some(0.6));
    assert_eq!(r[4].get_str("order.status"), Some("partially_filled"));
    assert_eq!(r[5].get("latency"), None, "only the first fill");
    assert_eq!(r[5].get_str("order.status"), Some("filled"));
    assert_eq!(r[1].get_str("order.status"), Some("submitted"));
    assert_eq!(
        h.plugin().tracker.len(),
        0,
        "a completely filled order is forgotten"
    );
}

#[test]
fn latency_falls_back_to_record_timestamps() {
    let mut h = Harness::<Enrich>::new(()).unwrap();
    let no_ts = |m: String| m.replace(&format!(", ts_event={T0}"), "");
    let out = h.process([
        rec(&no_ts(submitted("O-1", T0)), "2024-06-03T00:00:11.000Z"),
        rec(&no_ts(accepted("O-1", T0)), "2024-06-03T00:00:11.025Z"),
    ]);
    assert_eq!(
        out.records[1].get_f64("latency.submit_to_accept_seconds"),
        Some(0.025)
    );
}

#[test]
fn negative_latencies_are_counted_not_written() {
    let mut h = Harness::<Enrich>::new(()).unwrap();
    let out = h.process([
        rec(&submitted("O-1", T0), "2024-06-03T00:00:11Z"),
        rec(&accepted("O-1", T0 - MS), "2024-06-03T00:00:11Z"),
    ]);
    assert_eq!(out.records[1].get("latency"), None);
    assert_eq!(
        counter_value(
            &out,
            "enrich_latency_skipped_total",
            Some(("reason", "negative"))
        ),
        1.0
    );
}

#[test]
fn capacity_and_ttl_evictions_are_counted() {
    let mut h =
        Harness::<Enrich>::new(json!({"latency": {"max_entries": 2, "ttl_seconds": 10}})).unwrap();
    let out = h.process([
        rec(&submitted("O-1", T0), "2024-06-03T00:00:11Z"),
        rec(&submitted("O-2", T0 + 1), "2024-06-03T00:00:11Z"),
        rec(&submitted("O-3", T0 + 2), "2024-06-03T00:00:11Z"),
        rec(&accepted("O-1", T0 + 3), "2024-06-03T00:00:11Z"),
    ]);
    assert_eq!(
        out.records[3].get("latency"),
        None,
        "O-1 was evicted for O-3"
    );
    assert_eq!(
        counter_value(
            &out,
            "enrich_latency_evictions_total",
            Some(("reason", "capacity"))
        ),
        1.0
    );
    assert_eq!(
        counter_value(
            &out,
            "enrich_latency_evictions_total",
            Some(("reason", "ttl"))
        ),
        0.0
    );
    let pending = out
        .metrics
        .iter()
        .find(|m| m.name == "enrich_latency_pending")
        .unwrap();
    assert_eq!((pending.kind, pending.value), (MetricKind::Gauge, 2.0));

    // 11 s of event time later, by a record about another order: both age out.
    let out = h.process([rec(
        &submitted("O-4", T0 + 11_000 * MS),
        "2024-06-03T00:00:22Z",
    )]);
    assert_eq!(
        counter_value(
            &out,
            "enrich_latency_evictions_total",
            Some(("reason", "ttl"))
        ),
        2.0
    );
    assert_eq!(
        counter_value(
            &out,
            "enrich_latency_evictions_total",
            Some(("reason", "capacity"))
        ),
        0.0
    );

    // The host's tick ages what no record does.
    h.tick(T0);
    let out = h.tick(T0 + 10_000 * MS + 1);
    assert_eq!(
        counter_value(
            &out,
            "enrich_latency_evictions_total",
            Some(("reason", "ttl"))
        ),
        1.0
    );
    assert_eq!(h.plugin().tracker.len(), 0);
}

#[test]
fn snapshot_and_restore_keep_open_orders_across_a_reload() {
    let mut old = Harness::<Enrich>::new(()).unwrap();
    old.process([
        rec(&submit_cmd("O-1", "0.020"), "2024-06-03T00:00:11Z"),
        rec(&submitted("O-1", T0), "2024-06-03T00:00:11Z"),
        rec(&submitted("O-2", T0), "2024-06-03T00:00:11Z"),
    ]);
    let state = old.plugin().snapshot().unwrap();

    let mut new = Harness::<Enrich>::new(()).unwrap();
    new.plugin().restore(&state).unwrap();
    let out = new.process([
        rec(&accepted("O-1", T0 + 20 * MS), "2024-06-03T00:00:11Z"),
        rec(
            &filled("O-1", "0.010", T0 + 30 * MS),
            "2024-06-03T00:00:11Z",
        ),
    ]);
    assert_eq!(
        out.records[0].get_f64("latency.submit_to_accept_seconds"),
        Some(0.02)
    );
    assert_eq!(
        out.records[1].get_str("order.status"),
        Some("partially_filled")
    );

    let mut tight = Harness::<Enrich>::new(json!({"latency": {"max_entries": 1}})).unwrap();
    tight.plugin().restore(&state).unwrap();
    assert_eq!(tight.plugin().tracker.len(), 1);
    assert!(new
        .plugin()
        .restore(b"{")
        .unwrap_err()
        .0
        .contains("latency state"));
}

#[test]
fn bad_config_is_refused_with_the_key() {
    for (config, needle) in [
        (
            json!({"latency": {"ttl_seconds": -1}}),
            "latency.ttl_seconds",
        ),
        (
            json!({"lookups": [{"name": "a", "key": "k", "table": []}]}),
            "lookups[0].table",
        ),
        (json!({"evn": "prod"}), "unknown field `evn`"),
        (json!({"env": 5}), "env: invalid type"),
        (json!("prod"), "invalid config"),
        (
            json!({"host_env": "SLUICE_ENRICH_TEST_SURELY_UNSET"}),
            "SLUICE_ENRICH_TEST_SURELY_UNSET",
        ),
    ] {
        let err = Harness::<Enrich>::new(config.clone())
            .err()
            .unwrap_or_else(|| panic!("{config} accepted"));
        assert!(err.contains(needle), "{config}: {err}");
    }
}

#[test]
fn host_env_reads_the_environment() {
    // A name no other test uses, so setting it cannot race with them.
    std::env::set_var("SLUICE_ENRICH_TEST_HOSTNAME", "node-42");
    let out = testing::run::<Enrich>(
        json!({"host_env": "SLUICE_ENRICH_TEST_HOSTNAME", "host": "fallback"}),
        [record!({"message": "x"})],
    );
    assert_eq!(out.records[0].get_str("host"), Some("node-42"));
    let mut h = Harness::<Enrich>::new(
        json!({"host_env": "SLUICE_ENRICH_TEST_UNSET_2", "host": "fallback"}),
    )
    .unwrap();
    assert_eq!(
        h.process([record!({})]).records[0].get_str("host"),
        Some("fallback")
    );
}

#[test]
fn event_fields_can_be_turned_off() {
    let line = rec(&filled("O-1", "0.005", T0), "2024-06-03T00:00:11Z");
    let on = testing::run::<Enrich>((), [line.clone()]);
    assert_eq!(
        on.records[0].get_str("event_fields.liquidity_side"),
        Some("MAKER")
    );
    assert_eq!(
        on.records[0].get_str("event_fields.venue_order_id"),
        Some("4000000001")
    );
    let off = testing::run::<Enrich>(json!({"event_fields": false}), [line]);
    assert_eq!(off.records[0].get("event_fields"), None);
    assert_eq!(off.records[0].get_f64("order.last_px"), Some(67472.5));
}

#[test]
fn unparsable_event_lines_pass_untouched_and_are_counted() {
    let broken = rec(
        "<--[EVT] OrderFilled(instrument_id=X, reason='never closed",
        "2024-06-03T00:00:11Z",
    );
    let out = testing::run::<Enrich>((), [broken.clone()]);
    let mut got = out.records[0].clone();
    got.remove("correlation_id").unwrap();
    assert_eq!(got, broken);
    assert_eq!(
        counter_value(&out, "enrich_parse_failures_total", None),
        1.0
    );
    assert!(out.logs[0].message.contains("unterminated quote"));
}

#[test]
fn non_string_messages_and_odd_fields_do_not_break() {
    let out = testing::run::<Enrich>(
        json!({"lookups": [{"name": "x", "key": "order.instrument_id", "table": {}}]}),
        [
            record!({"message": 42}),
            record!({"message": null, "level": 3, "component": ["x"]}),
            record!({"message": submitted("O-1", T0), "order": "not a map", "latency": 5, "timestamp": "garbage"}),
        ],
    );
    assert_eq!(out.error, None);
    assert_eq!(out.records.len(), 3);
    assert_eq!(out.records[0].get_i64("message"), Some(42));
    assert_eq!(out.records[2].get_str("order.client_order_id"), Some("O-1"));
}
