//! The trading rule set used when the config has no `rules`: what a team running
//! NautilusTrader on Binance futures wants on its first dashboard (MISSION.md, "Metrics"),
//! built on the fields `enrich` writes (docs/plugins/fields.md).
//!
//! Every metric is prefixed `trading_` so it cannot collide with the bot's own
//! prometheus-client metrics or with Sluice's `sluice_*` health metrics in one Prometheus.
//! Written in the same rule language users write, so the defaults are also the example.

use serde_json::{json, Value};

/// Every NautilusTrader order event `enrich` gives an `order.status`.
const ORDER_EVENTS: [&str; 16] = [
    "OrderInitialized",
    "OrderDenied",
    "OrderEmulated",
    "OrderReleased",
    "OrderSubmitted",
    "OrderAccepted",
    "OrderRejected",
    "OrderCanceled",
    "OrderExpired",
    "OrderTriggered",
    "OrderPendingUpdate",
    "OrderPendingCancel",
    "OrderModifyRejected",
    "OrderCancelRejected",
    "OrderUpdated",
    "OrderFilled",
];
const POSITION_EVENTS: [&str; 3] = ["PositionOpened", "PositionChanged", "PositionClosed"];
const CONNECT_EVENTS: [&str; 2] = ["ws_connected", "ws_reconnected"];

pub fn rules() -> Vec<Value> {
    let order_labels = json!({
        "venue": "order.venue",
        "instrument": "order.instrument_id",
        "order_type": "order.type",
    });
    // Free text with prices and quantities in it ("... stop px of 67516.0 was in the
    // market"): masking digits keeps one series per kind of reason.
    let reason = json!({"field": "order.reason", "mask_digits": true, "max_len": 100});
    let position_labels = json!({
        "instrument": "position.instrument_id",
        "position_id": "position.position_id",
    });
    let mut rules = vec![
        // Orders.
        json!({
            "metric": "trading_order_latency_seconds", "kind": "histogram",
            "help": "Time from OrderSubmitted to OrderAccepted.",
            "when": {"event": "OrderAccepted", "latency.submit_to_accept_seconds": {"exists": true}},
            "value": "latency.submit_to_accept_seconds",
            "labels": order_labels,
        }),
        json!({
            "metric": "trading_order_fill_latency_seconds", "kind": "histogram",
            "help": "Time from OrderSubmitted to the order's first OrderFilled.",
            "when": {"event": "OrderFilled", "latency.submit_to_fill_seconds": {"exists": true}},
            "value": "latency.submit_to_fill_seconds",
            "labels": order_labels,
        }),
        json!({
            "metric": "trading_orders_total", "kind": "counter",
            "help": "Order events by the status they put the order in.",
            "when": {"event": {"in": ORDER_EVENTS}, "order.status": {"exists": true}},
            "labels": {"status": "order.status", "instrument": "order.instrument_id"},
        }),
        json!({
            "metric": "trading_order_fills_total", "kind": "counter",
            "help": "Fills (OrderFilled events), partial ones included.",
            "when": {"event": "OrderFilled"},
            "labels": {
                "instrument": "order.instrument_id",
                "side": "order.side",
                "liquidity": "event_fields.liquidity_side",
            },
        }),
        json!({
            "metric": "trading_order_filled_quantity_total", "kind": "counter",
            "help": "Filled quantity, in the instrument's base units.",
            "when": {"event": "OrderFilled"},
            "value": "order.last_qty",
            "labels": {"instrument": "order.instrument_id", "side": "order.side"},
        }),
        json!({
            "metric": "trading_order_filled_notional_total", "kind": "counter",
            "help": "Filled notional (last_qty x last_px), in the quote currency.",
            "when": {"event": "OrderFilled"},
            "value": {"mul": ["order.last_qty", "order.last_px"]},
            "labels": {
                "instrument": "order.instrument_id",
                "side": "order.side",
                "currency": "order.currency",
            },
        }),
        json!({
            "metric": "trading_order_rejections_total", "kind": "counter",
            "help": "Orders the venue rejected, by reason (digits masked).",
            "when": {"event": "OrderRejected"},
            "labels": {"instrument": "order.instrument_id", "reason": reason},
            "max_series": 200,
        }),
        json!({
            "metric": "trading_order_denials_total", "kind": "counter",
            "help": "Orders NautilusTrader's risk engine denied before they left, by reason.",
            "when": {"event": "OrderDenied"},
            "labels": {"instrument": "order.instrument_id", "reason": reason},
            "max_series": 200,
        }),
        // Exchange REST API.
        json!({
            "metric": "trading_exchange_api_requests_total", "kind": "counter",
            "help": "Exchange REST requests by endpoint and HTTP status.",
            "when": {"event": "rest_call"},
            "labels": {"method": "rest.method", "endpoint": "rest.endpoint", "status": "rest.status"},
        }),
        json!({
            "metric": "trading_exchange_api_failures_total", "kind": "counter",
            "help": "Exchange REST requests answered with HTTP status 400 or above.",
            "when": {"event": "rest_call", "rest.status": {"gte": 400}},
            "labels": {"endpoint": "rest.endpoint", "status": "rest.status"},
        }),
        json!({
            "metric": "trading_exchange_api_error_codes_total", "kind": "counter",
            "help": "Binance error codes (code=) in REST responses.",
            "when": {"event": "rest_call", "rest.error_code": {"exists": true}},
            "labels": {"endpoint": "rest.endpoint", "code": "rest.error_code"},
        }),
        json!({
            "metric": "trading_exchange_api_latency_seconds", "kind": "histogram",
            "help": "Exchange REST request round-trip time.",
            "when": {"event": "rest_call", "rest.latency_seconds": {"exists": true}},
            "value": "rest.latency_seconds",
            "labels": {"method": "rest.method", "endpoint": "rest.endpoint"},
        }),
    ];

    // Rate limits: the adapter's usage lines carry every limit type as a map key; REST
    // responses carry the request weight and order counts in headers. Both feed the same
    // gauges. They are samples of a moving window, not a state: not refreshed, so a stale
    // reading expires from Prometheus instead of claiming the window is still full.
    let rest_limits = [
        ("REQUEST_WEIGHT", "rest.used_weight", "rest.weight_limit"),
        ("ORDERS_10S", "rest.order_count_10s", "rest.order_limit_10s"),
        ("ORDERS_1M", "rest.order_count_1m", "rest.order_limit_1m"),
    ];
    for (metric, help, item_value) in [
        (
            "trading_exchange_rate_limit_used_ratio",
            "Share of the exchange rate limit consumed (used / limit).",
            "ratio",
        ),
        (
            "trading_exchange_rate_limit_used",
            "Rate limit consumed in the current window.",
            "used",
        ),
        (
            "trading_exchange_rate_limit_max",
            "Rate limit of the current window.",
            "limit",
        ),
    ] {
        rules.push(json!({
            "metric": metric, "kind": "gauge", "help": help,
            "when": {"event": "rate_limit"},
            "for_each": "rate_limit",
            "value": item_value,
            "labels": {"limit_type": "@key"},
            "refresh": false,
        }));
        for (limit_type, used, limit) in rest_limits {
            let value = match item_value {
                "ratio" => json!({"div": [used, limit]}),
                "used" => json!(used),
                _ => json!(limit),
            };
            rules.push(json!({
                "metric": metric, "kind": "gauge", "help": help, "refresh": false,
                "when": {"event": "rest_call", used: {"exists": true}, limit: {"exists": true}},
                "value": value,
                "labels": {"limit_type": format!("={limit_type}")},
            }));
        }
    }

    rules.extend([
        // WebSocket connections. Uptime is `time() - trading_ws_last_connect_timestamp_seconds`
        // while `trading_ws_connected == 1`: plugins have no clock to count seconds with.
        json!({
            "metric": "trading_ws_connected", "kind": "gauge",
            "help": "1 while the WebSocket stream is connected, 0 after it disconnected.",
            "when": {"event": {"in": CONNECT_EVENTS}},
            "value": 1,
            "labels": {"url": "ws.url"},
        }),
        json!({
            "metric": "trading_ws_connected", "kind": "gauge",
            "when": {"event": "ws_disconnected"},
            "value": 0,
            "labels": {"url": "ws.url"},
        }),
        json!({
            "metric": "trading_ws_last_connect_timestamp_seconds", "kind": "gauge",
            "help": "Unix time (from the log record) of the stream's last connect or reconnect.",
            "when": {"event": {"in": CONNECT_EVENTS}},
            "value": {"time": "timestamp"},
            "labels": {"url": "ws.url"},
        }),
        json!({
            "metric": "trading_ws_reconnects_total", "kind": "counter",
            "help": "WebSocket reconnects.",
            "when": {"event": "ws_reconnected"},
            "labels": {"url": "ws.url"},
        }),
        json!({
            "metric": "trading_ws_disconnects_total", "kind": "counter",
            "help": "WebSocket disconnects, by close code.",
            "when": {"event": "ws_disconnected"},
            "labels": {"url": "ws.url", "code": "ws.code"},
        }),
        // Errors.
        json!({
            "metric": "trading_log_errors_total", "kind": "counter",
            "help": "Log lines at WARN or above, by level and component.",
            "when": {"level": {"in": ["WARN", "WARNING", "ERROR", "CRITICAL"]}},
            "labels": {"level": "level", "component": "component"},
        }),
        json!({
            "metric": "trading_errors_total", "kind": "counter",
            "help": "Errors enrich recognised: by event (exchange_error, ws_error, error), exception class and component.",
            "when": {"event": {"in": ["exchange_error", "ws_error", "error"]}},
            "labels": {"event": "event", "error_type": "error.type", "component": "component"},
        }),
        // Liveness of the strategy itself: `time() - gauge` is the silence.
        json!({
            "metric": "trading_last_heartbeat_timestamp_seconds", "kind": "gauge",
            "help": "Unix time (from the log record) of the strategy's last heartbeat line.",
            "when": {"event": "heartbeat"},
            "value": {"time": "timestamp"},
            "labels": {"component": "component"},
        }),
        json!({
            "metric": "trading_open_orders", "kind": "gauge",
            "help": "Open orders the strategy reports in its heartbeat.",
            "when": {"event": "heartbeat", "heartbeat.open_orders": {"exists": true}},
            "value": "heartbeat.open_orders",
            "labels": {"instrument": "heartbeat.instrument_id"},
        }),
    ]);

    // Positions: by position id as well as instrument, because a hedge-mode account holds
    // a LONG and a SHORT position on one instrument at once.
    for (metric, help, value) in [
        (
            "trading_position_quantity",
            "Signed position size (negative when short).",
            json!("position.signed_qty"),
        ),
        (
            "trading_position_realized_pnl",
            "Realized PnL of the position, in its settlement currency.",
            json!("position.realized_pnl"),
        ),
        (
            "trading_position_unrealized_pnl",
            "Unrealized PnL of the position, in its settlement currency.",
            json!("position.unrealized_pnl"),
        ),
        (
            "trading_position_entry_notional",
            "Signed exposure at entry price (signed_qty x avg_px_open).",
            json!({"mul": ["position.signed_qty", "position.avg_px_open"]}),
        ),
    ] {
        rules.push(json!({
            "metric": metric, "kind": "gauge", "help": help,
            "when": {"event": {"in": POSITION_EVENTS}},
            "value": value,
            "labels": position_labels,
        }));
    }

    rules.push(json!({
        "metric": "trading_position_net_quantity", "kind": "gauge",
        "help": "Net position per instrument, as the Portfolio reports it (negative when short).",
        "when": {"event": "net_position", "position.net_qty": {"exists": true}},
        "value": "position.net_qty",
        "labels": {"instrument": "position.instrument_id"},
    }));

    // Margins: listed in AccountState, and logged one at a time by the Portfolio.
    for kind in ["initial", "maintenance"] {
        let help = "Margin held per instrument: initial and maintenance.";
        rules.push(json!({
            "metric": "trading_margin", "kind": "gauge", "help": help,
            // A cash account has no margins: nothing to skip.
            "when": {"event": "AccountState", "account.margins": {"exists": true}},
            "for_each": "account.margins",
            "value": kind,
            "labels": {"instrument": "instrument_id", "currency": "currency", "kind": format!("={kind}")},
        }));
        let field = format!("margin.{kind}");
        rules.push(json!({
            "metric": "trading_margin", "kind": "gauge", "help": help,
            "when": {"event": "margin", field.as_str(): {"exists": true}},
            "value": field,
            "labels": {"instrument": "margin.instrument_id", "currency": "margin.currency", "kind": format!("={kind}")},
        }));
    }

    // Balances: one AccountState lists one balance per currency.
    for kind in ["total", "free", "locked"] {
        rules.push(json!({
            "metric": "trading_account_balance", "kind": "gauge",
            "help": "Account balance per currency: total, free and locked.",
            "when": {"event": "AccountState"},
            "for_each": "account.balances",
            "value": kind,
            "labels": {
                "account": "$.account.account_id",
                "currency": "currency",
                "kind": format!("={kind}"),
            },
        }));
    }
    rules
}
