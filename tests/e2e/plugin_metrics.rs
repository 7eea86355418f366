//! The `metrics` reference plugin compiled to Wasm and run by the host's harness: the
//! default trading rules, a custom rule set, per-batch aggregation and the series cap give
//! the same updates as natively, and a bad rule is refused with its index and key.

use serde_json::{json, Map, Value};
use sluice::plugin::WasmHarness;

fn load(config: Value) -> WasmHarness {
    let path = sluice_tests::plugin_wasm("sluice_plugin_metrics");
    WasmHarness::load(&path, &config).unwrap_or_else(|e| panic!("{e}"))
}

fn load_error(config: Value) -> String {
    let path = sluice_tests::plugin_wasm("sluice_plugin_metrics");
    match WasmHarness::load(&path, &config) {
        Ok(_) => panic!("config was accepted: {config}"),
        Err(e) => e.to_string(),
    }
}

fn records(values: Vec<Value>) -> Vec<Map<String, Value>> {
    values
        .into_iter()
        .map(|v| match v {
            Value::Object(map) => map,
            other => panic!("not a record: {other}"),
        })
        .collect()
}

/// Runs one batch, checks the records came back unchanged, and returns the metric updates
/// as JSON (`{name, kind, value, labels}`) in a canonical order.
fn run(harness: &mut WasmHarness, batch: Vec<Value>) -> Vec<Value> {
    let batch = records(batch);
    let response = harness
        .process(&batch)
        .unwrap_or_else(|e| panic!("process failed: {e}"));
    assert_eq!(response.error, None);
    assert_eq!(response.records, batch, "records pass through unchanged");
    let mut updates: Vec<Value> = response
        .metrics
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect();
    updates.sort_by_key(|u| u.to_string());
    updates
}

fn update(name: &str, kind: &str, value: f64, labels: Value) -> Value {
    let mut u = json!({"name": name, "kind": kind, "value": value});
    if labels.as_object().is_some_and(|l| !l.is_empty()) {
        u["labels"] = labels;
    }
    u
}

fn sorted(mut updates: Vec<Value>) -> Vec<Value> {
    updates.sort_by_key(|u| u.to_string());
    updates
}

const BTC: &str = "BTCUSDT-PERP.BINANCE";

fn fill(side: &str, qty: f64, liquidity: &str) -> Value {
    json!({
        "timestamp": "2026-11-28T00:23:22.367826220Z", "level": "INFO", "component": "HedgeGrid",
        "message": "<--[EVT] OrderFilled(...)", "event": "OrderFilled", "event_kind": "order",
        "order": {"instrument_id": BTC, "venue": "BINANCE", "side": side, "type": "LIMIT",
                  "last_qty": qty, "last_px": 67480.0, "currency": "USDT", "status": "filled"},
        "event_fields": {"liquidity_side": liquidity},
    })
}

#[test]
fn default_rules_turn_enriched_records_into_updates() {
    let mut plugin = load(Value::Null);
    let batch = vec![
        json!({
            "timestamp": "2026-11-28T00:23:22.079851243Z", "level": "INFO", "component": "HedgeGrid",
            "event": "OrderAccepted", "event_kind": "order",
            "order": {"instrument_id": BTC, "venue": "BINANCE", "type": "LIMIT", "status": "accepted"},
            "latency": {"submit_to_accept_seconds": 0.0213},
        }),
        fill("BUY", 0.002, "MAKER"),
        fill("BUY", 0.003, "MAKER"),
        json!({
            "level": "WARN", "component": "BinanceFuturesHttpClient", "event": "rest_call", "event_kind": "rest",
            "rest": {"method": "GET", "endpoint": "/fapi/v1/openOrders", "status": 429, "latency_seconds": 0.0087,
                     "used_weight": 1800, "weight_limit": 2400, "error_code": -1003},
        }),
        json!({
            "level": "INFO", "component": "Portfolio", "event": "AccountState", "event_kind": "account",
            "account": {"account_id": "BINANCE-001",
                        "balances": [{"currency": "USDT", "total": 1000.5, "locked": 6.75, "free": 993.75}]},
        }),
        json!({"level": "INFO", "component": "HedgeGrid", "message": "Heartbeat mid=67480.1 open_orders=12"}),
    ];
    let endpoint = "/fapi/v1/openOrders";
    let fills = json!({"instrument": BTC, "side": "BUY"});
    let balance = |kind: &str, v: f64| {
        update(
            "trading_account_balance",
            "gauge",
            v,
            json!({"account": "BINANCE-001", "currency": "USDT", "kind": kind}),
        )
    };
    let limit = json!({"limit_type": "REQUEST_WEIGHT"});
    assert_eq!(
        run(&mut plugin, batch),
        sorted(vec![
            update(
                "trading_order_latency_seconds",
                "histogram",
                0.0213,
                json!({"venue": "BINANCE", "instrument": BTC, "order_type": "LIMIT"})
            ),
            update(
                "trading_orders_total",
                "counter",
                1.0,
                json!({"status": "accepted", "instrument": BTC})
            ),
            // Two fills of one series in one batch: one update each, summed.
            update(
                "trading_orders_total",
                "counter",
                2.0,
                json!({"status": "filled", "instrument": BTC})
            ),
            update(
                "trading_order_fills_total",
                "counter",
                2.0,
                json!({"instrument": BTC, "side": "BUY", "liquidity": "MAKER"})
            ),
            update(
                "trading_order_filled_quantity_total",
                "counter",
                0.002 + 0.003,
                fills.clone()
            ),
            update(
                "trading_order_filled_notional_total",
                "counter",
                0.002 * 67480.0 + 0.003 * 67480.0,
                json!({"instrument": BTC, "side": "BUY", "currency": "USDT"})
            ),
            update(
                "trading_exchange_api_requests_total",
                "counter",
                1.0,
                json!({"method": "GET", "endpoint": endpoint, "status": "429"})
            ),
            update(
                "trading_exchange_api_failures_total",
                "counter",
                1.0,
                json!({"endpoint": endpoint, "status": "429"})
            ),
            update(
                "trading_exchange_api_error_codes_total",
                "counter",
                1.0,
                json!({"endpoint": endpoint, "code": "-1003"})
            ),
            update(
                "trading_exchange_api_latency_seconds",
                "histogram",
                0.0087,
                json!({"method": "GET", "endpoint": endpoint})
            ),
            update(
                "trading_exchange_rate_limit_used_ratio",
                "gauge",
                0.75,
                limit.clone()
            ),
            update(
                "trading_exchange_rate_limit_used",
                "gauge",
                1800.0,
                limit.clone()
            ),
            update("trading_exchange_rate_limit_max", "gauge", 2400.0, limit),
            update(
                "trading_log_errors_total",
                "counter",
                1.0,
                json!({"level": "WARN", "component": "BinanceFuturesHttpClient"})
            ),
            balance("total", 1000.5),
            balance("free", 993.75),
            balance("locked", 6.75),
        ])
    );

    // Counters are per-batch deltas: the next batch starts from zero.
    assert_eq!(
        run(&mut plugin, vec![fill("SELL", 0.001, "TAKER")]),
        sorted(vec![
            update(
                "trading_orders_total",
                "counter",
                1.0,
                json!({"status": "filled", "instrument": BTC})
            ),
            update(
                "trading_order_fills_total",
                "counter",
                1.0,
                json!({"instrument": BTC, "side": "SELL", "liquidity": "TAKER"})
            ),
            update(
                "trading_order_filled_quantity_total",
                "counter",
                0.001,
                json!({"instrument": BTC, "side": "SELL"})
            ),
            update(
                "trading_order_filled_notional_total",
                "counter",
                0.001 * 67480.0,
                json!({"instrument": BTC, "side": "SELL", "currency": "USDT"})
            ),
        ])
    );
}

#[test]
fn custom_rules_from_the_docs_example() {
    // The `config:` block of docs/plugins/metrics.md, as JSON.
    let mut plugin = load(json!({
        "include_default_rules": true,
        "max_series_per_metric": 1000,
        "max_label_length": 128,
        "refresh_gauges_seconds": 60,
        "rules": [
            {"metric": "grid_levels_filled_total", "kind": "counter",
             "help": "Grid levels whose order filled completely.",
             "when": {"event": "OrderFilled", "order.status": "filled", "component": "HedgeGrid"},
             "labels": {"instrument": "order.instrument_id", "side": "order.side"}},
            {"metric": "slow_rest_calls_total", "kind": "counter",
             "when": {"event": "rest_call", "rest.latency_seconds": {"gt": 0.5}},
             "labels": {"endpoint": "rest.endpoint"}},
            {"metric": "order_commission_total", "kind": "counter",
             "when": {"event": "OrderFilled", "order.commission": {"gte": 0}},
             "value": "order.commission",
             "labels": {"instrument": "order.instrument_id", "asset": "=USDT"}},
        ],
    }));
    let mut filled = fill("BUY", 0.002, "MAKER");
    filled["order"]["commission"] = json!(0.027);
    let updates = run(
        &mut plugin,
        vec![
            filled,
            json!({"event": "rest_call", "rest": {"endpoint": "/fapi/v1/order", "latency_seconds": 0.75}}),
            json!({"event": "rest_call", "rest": {"endpoint": "/fapi/v1/time", "latency_seconds": 0.01}}),
        ],
    );
    let mine: Vec<&Value> = updates
        .iter()
        .filter(|u| !u["name"].as_str().unwrap().starts_with("trading_"))
        .collect();
    assert_eq!(
        mine,
        sorted(vec![
            update(
                "grid_levels_filled_total",
                "counter",
                1.0,
                json!({"instrument": BTC, "side": "BUY"})
            ),
            update(
                "order_commission_total",
                "counter",
                0.027,
                json!({"instrument": BTC, "asset": "USDT"})
            ),
            update(
                "slow_rest_calls_total",
                "counter",
                1.0,
                json!({"endpoint": "/fapi/v1/order"})
            ),
        ])
        .iter()
        .collect::<Vec<_>>()
    );
    assert!(
        updates
            .iter()
            .any(|u| u["name"] == "trading_order_fills_total"),
        "the default rules still apply: {updates:?}"
    );
}

#[test]
fn state_gauges_are_refreshed_on_tick() {
    let mut plugin = load(Value::Null);
    let s = 1_000_000_000i64;
    let t0 = 1_800_000_000 * s;
    plugin.tick(t0).unwrap();
    let url = "wss://fstream.binance.com/ws/btcusdt@depth20@100ms";
    run(
        &mut plugin,
        vec![
            json!({"timestamp": "2026-11-28T00:23:21.5Z", "event": "ws_connected", "ws": {"state": "connected", "url": url}}),
            json!({"event": "rate_limit", "rate_limit": {"ORDERS_10S": {"used": 9, "limit": 300, "ratio": 0.03}}}),
        ],
    );
    assert!(plugin.tick(t0 + 30 * s).unwrap().metrics.is_empty());
    let response = plugin.tick(t0 + 60 * s).unwrap();
    let mut refreshed: Vec<Value> = response
        .metrics
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect();
    refreshed.sort_by_key(|u| u.to_string());
    // The connection state and time are re-sent; the rate-limit sample is left to expire.
    assert_eq!(
        refreshed,
        sorted(vec![
            update("trading_ws_connected", "gauge", 1.0, json!({"url": url})),
            update(
                "trading_ws_last_connect_timestamp_seconds",
                "gauge",
                1_795_825_401.5,
                json!({"url": url})
            ),
        ])
    );
}

#[test]
fn series_cap_counts_overflow() {
    let mut plugin = load(json!({
        "max_series_per_metric": 2,
        "rules": [{"metric": "rejections_total", "kind": "counter", "labels": {"reason": "reason"}}],
    }));
    let batch = (0..5)
        .map(|i| json!({"reason": format!("reason {i}")}))
        .collect();
    let updates = run(&mut plugin, batch);
    assert_eq!(
        updates,
        sorted(vec![
            update(
                "rejections_total",
                "counter",
                1.0,
                json!({"reason": "reason 0"})
            ),
            update(
                "rejections_total",
                "counter",
                1.0,
                json!({"reason": "reason 1"})
            ),
            update(
                "metrics_series_overflow_total",
                "counter",
                3.0,
                json!({"metric": "rejections_total"})
            ),
        ])
    );
}

#[test]
fn invalid_rules_are_refused_with_index_and_key() {
    let e = load_error(json!({"rules": [
        {"metric": "ws_connected", "kind": "gauge", "value": 1, "labels": {"url": "ws.url"}},
        {"metric": "ws_connected", "kind": "gauge_add", "value": -1, "labels": {"url": "ws.url"}},
    ]}));
    assert!(e.contains("rules[1].kind"), "{e}");
    assert!(e.contains("a metric has one kind"), "{e}");

    let e = load_error(json!({"rules": [
        {"metric": "ok_total", "kind": "counter"},
        {"metric": "ok_total", "kind": "counter"},
        {"metric": "bad_total", "kind": "counter", "when": {"rest.status": {"gtt": 400}}},
    ]}));
    assert!(
        e.contains("rules[2].when.rest.status.gtt: unknown test `gtt`"),
        "{e}"
    );

    let e = load_error(json!({"rules": [{"metric": "orders", "kind": "counter"}]}));
    assert!(
        e.contains("rules[0].metric: counter `orders` must end in `_total`"),
        "{e}"
    );

    let e = load_error(
        json!({"rules": [{"metric": "x", "kind": "gauge", "value": 1, "labels": {"__name": "a"}}]}),
    );
    assert!(e.contains("rules[0].labels.__name"), "{e}");
}

/// `cargo test --release -p sluice-tests --test e2e plugin_metrics -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn wasm_throughput() {
    let mut plugin = load(Value::Null);
    let mix = [
        fill("BUY", 0.002, "MAKER"),
        json!({"level": "DEBUG", "component": "BinanceFuturesHttpClient", "event": "rest_call",
               "rest": {"method": "GET", "endpoint": "/fapi/v1/openOrders", "status": 200,
                        "latency_seconds": 0.01, "used_weight": 40, "weight_limit": 2400}}),
        json!({"level": "INFO", "component": "HedgeGrid", "event": "PositionChanged",
               "position": {"instrument_id": BTC, "position_id": "P", "signed_qty": 0.1,
                            "avg_px_open": 1.0, "realized_pnl": 0.0, "unrealized_pnl": 0.1}}),
        json!({"level": "INFO", "component": "Portfolio", "message": "BTCUSDT-PERP.BINANCE net_position=0.003"}),
    ];
    let batch = records(mix.iter().cycle().take(1000).cloned().collect());
    let rounds = 200;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        plugin.process(&batch).unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / (rounds * batch.len()) as f64;
    println!("{ns:.0} ns wall per record through Wasm, MessagePack both ways included");
}
