//! The default rule set: each rule fires on its failure and stays quiet on its near miss,
//! and ten thousand records of an ordinary trading session raise nothing at all.

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_sdk::{AlertEvent, Record};

const TRADER: &str = "TRADER-001";
const BTC: &str = "BTCUSDT-PERP.BINANCE";
const ETH: &str = "ETHUSDT-PERP.BINANCE";

/// A record as `enrich` leaves it: decoder fields plus `extra`.
fn line(sec: f64, level: &str, component: &str, message: &str, extra: Value) -> Record {
    let mut fields = json!({
        "level": level, "trader_id": TRADER, "component": component, "message": message,
        "env": "prod", "host": "bot-1", "service": "hedge-grid",
    });
    let obj = fields.as_object_mut().unwrap();
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        obj.insert(k, v);
    }
    rec(sec, fields)
}

fn heartbeat(sec: f64) -> Record {
    line(
        sec,
        "INFO",
        "HedgeGrid",
        "Heartbeat BTCUSDT-PERP.BINANCE mid=67_450.1 open_orders=8",
        json!({}),
    )
}

fn event(sec: f64, level: &str, component: &str, event: &str, extra: Value) -> Record {
    let mut extra = extra;
    extra["event"] = json!(event);
    line(
        sec,
        level,
        component,
        &format!("<--[EVT] {event}(...)"),
        extra,
    )
}

fn fill(sec: f64, inst: &str) -> Record {
    event(
        sec,
        "INFO",
        "HedgeGrid",
        "OrderFilled",
        json!({"event_kind": "order",
        "order": {"instrument_id": inst, "client_order_id": "O-1", "side": "BUY", "last_qty": 0.01,
                  "last_px": 67_450.1, "commission": 0.27, "status": "filled"}}),
    )
}

fn position(sec: f64, kind: &str, inst: &str) -> Record {
    event(
        sec,
        "INFO",
        "HedgeGrid",
        kind,
        json!({"event_kind": "position",
        "position": {"instrument_id": inst, "position_id": format!("{inst}-LONG"), "side": "LONG",
                     "signed_qty": 0.02, "quantity": 0.02, "realized_pnl": 0.0}}),
    )
}

fn account(sec: f64, total: f64) -> Record {
    line(
        sec,
        "INFO",
        "Portfolio",
        "Updated AccountState(...)",
        json!({"event": "AccountState",
        "event_kind": "account", "account": {"account_id": "BINANCE-001",
        "balances": [{"currency": "USDT", "total": total, "locked": 100.0, "free": total - 100.0}]}}),
    )
}

fn accepted(sec: f64, latency: f64) -> Record {
    event(
        sec,
        "INFO",
        "HedgeGrid",
        "OrderAccepted",
        json!({"event_kind": "order",
        "order": {"instrument_id": BTC, "status": "accepted"},
        "latency": {"submit_to_accept_seconds": latency}}),
    )
}

fn rejected(sec: f64) -> Record {
    event(
        sec,
        "WARN",
        "HedgeGrid",
        "OrderRejected",
        json!({"event_kind": "order",
        "order": {"instrument_id": BTC, "side": "BUY", "status": "rejected",
                  "reason": "Due to the order could not be executed as maker, the Post Only order will be rejected."}}),
    )
}

fn rest(sec: f64, status: i64, used: i64) -> Record {
    let level = if status >= 500 {
        "ERROR"
    } else if status >= 400 {
        "WARN"
    } else {
        "DEBUG"
    };
    line(
        sec,
        level,
        "BinanceFuturesHttpClient",
        &format!("GET /fapi/v2/account {status} (12.4ms) x-mbx-used-weight-1m={used}/2400"),
        json!({"event": "rest_call", "event_kind": "rest", "rest": {"method": "GET",
        "endpoint": "/fapi/v2/account", "status": status, "latency_seconds": 0.0124,
        "used_weight": used, "weight_limit": 2400}}),
    )
}

fn rate_limit(sec: f64, weight: f64) -> Record {
    line(
        sec,
        "INFO",
        "BinanceFuturesHttpClient",
        "Rate limit usage: REQUEST_WEIGHT=...",
        json!({
        "event": "rate_limit", "event_kind": "rate_limit", "rate_limit": {
            "REQUEST_WEIGHT": {"used": weight * 2400.0, "limit": 2400, "ratio": weight},
            "ORDERS_10S": {"used": 9, "limit": 300, "ratio": 0.03},
            "ORDERS_1M": {"used": 40, "limit": 1200, "ratio": 0.0333}}}),
    )
}

fn ws(sec: f64, ev: &str, url: &str) -> Record {
    let (level, state) = match ev {
        "ws_disconnected" => ("WARN", "disconnected"),
        "ws_reconnected" => ("INFO", "reconnected"),
        _ => ("INFO", "connected"),
    };
    line(
        sec,
        level,
        "BinanceWebSocketClient",
        &format!("{state} {url}"),
        json!({"event": ev,
        "event_kind": "websocket", "ws": {"state": state, "url": url, "code": 1006, "reason": "abnormal closure"}}),
    )
}

fn exchange_error(sec: f64) -> Record {
    line(sec, "ERROR", "ExecClient-BINANCE", "Error connecting to exchange: ClientConnectorError: Cannot connect to host fapi.binance.com:443",
        json!({"event": "exchange_error", "event_kind": "error"}))
}

fn host_metric(sec: f64, metric: &str, fields: Value) -> Record {
    let mut r = Record::from_value(fields).unwrap();
    r.set("event", "host_metrics");
    r.set("metric", metric);
    r.set("host", "bot-1");
    r.set("timestamp", ts(sec));
    r
}

fn disk(sec: f64, free: f64) -> Record {
    host_metric(
        sec,
        "filesystem",
        json!({"mount": "/var/lib/sluice", "fs_type": "ext4",
        "total_bytes": 100_000_000_000i64, "available_bytes": (free * 1e11) as i64,
        "free_ratio": free, "used_ratio": 1.0 - free}),
    )
}

fn memory(sec: f64, used: f64) -> Record {
    host_metric(
        sec,
        "memory",
        json!({"total_bytes": 16_000_000_000i64,
        "available_bytes": ((1.0 - used) * 16e9) as i64, "free_ratio": 1.0 - used, "used_ratio": used}),
    )
}

enum Step {
    R(Record),
    /// A tick at this second; a heartbeat from the bot comes with it, since a real bot
    /// is never silent for long and `bot_silent` must not muddy other rules' tests.
    T(f64),
}
use Step::{R, T};

/// Runs the default config over `steps`; returns every alert.
fn run(steps: Vec<Step>) -> Vec<AlertEvent> {
    let mut h = H::new(Value::Null);
    let mut all = Vec::new();
    for step in steps {
        match step {
            R(r) => all.extend(h.one(r)),
            T(s) => {
                all.extend(h.one(heartbeat(s)));
                all.extend(h.tick(s));
            }
        }
    }
    all
}

fn ticks(from: f64, to: f64) -> impl Iterator<Item = Step> {
    (from as i64..=to as i64).map(|s| T(s as f64))
}

/// Exactly one firing of `name` and, when `resolves`, one resolve after it, and nothing
/// else; returns the firing event.
fn fires(name: &str, alerts: &[AlertEvent], resolves: bool) -> AlertEvent {
    let expected: Vec<_> = if resolves {
        vec![(name.to_owned(), "firing"), (name.to_owned(), "resolved")]
    } else {
        firing(name)
    };
    assert_eq!(brief(alerts), expected, "{alerts:#?}");
    let a = alerts[0].clone();
    assert!(!a.annotations["summary"].is_empty());
    assert!(!a.annotations["description"].is_empty());
    assert_eq!(
        a.annotations["runbook_url"],
        format!(
            "https://github.com/sluice/sluice/blob/main/docs/runbooks.md#{}",
            name.replace('_', "-")
        )
    );
    assert!(
        !a.annotations.values().any(|v| v.contains("{{")),
        "unrendered: {a:#?}"
    );
    if resolves {
        assert_eq!(alerts[1].fingerprint, a.fingerprint);
    }
    a
}

#[test]
fn bot_restarted() {
    let banner = line(
        0.0,
        "INFO",
        "TradingNode",
        " NAUTILUS TRADER - Automated Algorithmic Trading Platform",
        json!({}),
    );
    let mut steps = vec![R(banner)];
    steps.extend(ticks(1.0, 605.0));
    let a = fires("bot_restarted", &run(steps), true);
    assert_eq!(a.labels["trader_id"], TRADER);
    assert_eq!(a.severity, "warning");
    assert!(a.annotations["description"].starts_with("TradingNode logged"));
    // the lines of a running node never match
    let steps = vec![
        R(line(0.0, "INFO", "TradingNode", "RUNNING", json!({}))),
        R(heartbeat(1.0)),
    ];
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn bot_stopped() {
    let mut steps = vec![R(line(0.0, "INFO", "ExecEngine", "STOPPED", json!({})))];
    steps.extend(ticks(1.0, 31.0));
    steps.push(R(line(40.0, "INFO", "ExecEngine", "RUNNING", json!({}))));
    let a = fires("bot_stopped", &run(steps), true);
    assert_eq!(a.severity, "critical");
    assert_eq!(a.labels["trader_id"], TRADER);
    assert!(a.annotations["description"].contains("ExecEngine reported STOPPED"));
    // a restart within for_seconds stays quiet, and so does one strategy stopping
    let mut steps = vec![
        R(line(0.0, "INFO", "ExecEngine", "STOPPED", json!({}))),
        R(line(0.0, "INFO", "EMACross", "STOPPED", json!({}))),
    ];
    steps.extend(ticks(1.0, 10.0));
    steps.push(R(line(11.0, "INFO", "ExecEngine", "RUNNING", json!({}))));
    steps.push(R(line(20.0, "INFO", "HedgeGrid", "STOPPED", json!({}))));
    steps.extend(ticks(21.0, 100.0));
    assert_eq!(brief(&run(steps)), none());
    // FAULTED anywhere is a stop
    let mut steps = vec![R(line(0.0, "ERROR", "HedgeGrid", "FAULTED", json!({})))];
    steps.extend(ticks(1.0, 31.0));
    fires("bot_stopped", &run(steps), false);
}

#[test]
fn bot_silent() {
    let mut h = H::new(Value::Null);
    h.tick(0.0);
    h.one(heartbeat(0.5));
    for s in 1..60 {
        assert_eq!(brief(&h.tick(s as f64)), none());
    }
    let alerts = h.tick(61.0);
    let a = fires("bot_silent", &alerts, false);
    assert_eq!(a.labels["trader_id"], TRADER);
    assert_eq!(a.severity, "critical");
    let res = h.one(heartbeat(62.0));
    assert_eq!(brief(&res), resolved("bot_silent"));
    // host metrics alone do not count as the bot speaking
    let mut h = H::new(Value::Null);
    h.one(heartbeat(0.0));
    for s in 1..=61 {
        h.one(memory(s as f64, 0.3));
        let alerts = h.tick(s as f64);
        assert_eq!(
            brief(&alerts),
            if s == 60 {
                firing("bot_silent")
            } else {
                none()
            },
            "at {s}"
        );
    }
}

#[test]
fn exchange_connection_failures() {
    let mut steps = vec![R(exchange_error(0.0)), R(rest(20.0, 503, 100))];
    steps.push(R(event(
        30.0,
        "ERROR",
        "BinanceWebSocketClient",
        "ws_error",
        json!({}),
    )));
    steps.extend(ticks(31.0, 95.0));
    let a = fires("exchange_connection_failures", &run(steps), true);
    assert_eq!(a.severity, "critical");
    assert!(a.annotations["summary"].contains("3 failures in 60 s"));
    // two in a minute, or three spread over three minutes, are retried blips
    let steps = vec![
        R(exchange_error(0.0)),
        R(rest(10.0, 502, 100)),
        T(30.0),
        T(60.0),
        R(exchange_error(70.0)),
        T(90.0),
        R(rest(140.0, 504, 100)),
        T(150.0),
    ];
    assert_eq!(brief(&run(steps)), none());
    // client errors that enrich files as exchange_error (the cancel-after-fill race) are
    // not connection failures
    let race = |s| {
        let mut r = exchange_error(s);
        r.set("message", "Cannot cancel order O-1 (venue_order_id=4): BinanceClientError(status=400, message={'code': -2011, 'msg': 'Unknown order sent.'})");
        r.set("rest.status", 400);
        r.set("rest.error_code", -2011);
        R(r)
    };
    assert_eq!(
        brief(&run(vec![race(0.0), race(1.0), race(2.0), race(3.0)])),
        none()
    );
}

#[test]
fn exchange_rate_limited() {
    let mut steps = vec![R(rest(0.0, 418, 500))];
    steps.extend(ticks(1.0, 301.0));
    let a = fires("exchange_rate_limited", &run(steps), true);
    assert!(a.annotations["summary"].contains("HTTP 418"));
    let steps = vec![R(rest(0.0, 400, 100)), R(rest(1.0, 200, 100)), T(2.0)];
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn websocket_down() {
    let url = "wss://fstream.binance.com/stream?streams=btcusdt@bookTicker";
    let mut steps = vec![R(ws(0.0, "ws_disconnected", url))];
    steps.extend(ticks(1.0, 35.0));
    steps.push(R(ws(36.0, "ws_reconnected", url)));
    let a = fires("websocket_down", &run(steps), true);
    assert_eq!(a.labels["url"], url);
    let mut steps = vec![R(ws(0.0, "ws_disconnected", url))];
    steps.extend(ticks(1.0, 4.0));
    steps.push(R(ws(5.0, "ws_reconnected", url)));
    steps.extend(ticks(6.0, 60.0));
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn order_rejection_burst() {
    let mut steps: Vec<Step> = (0..5).map(|i| R(rejected(i as f64 * 10.0))).collect();
    steps.extend(ticks(41.0, 101.0));
    let a = fires("order_rejection_burst", &run(steps), true);
    assert!(a.annotations["summary"].starts_with("5 orders rejected within 60 s"));
    assert!(a.annotations["description"].contains("Post Only"));
    let steps: Vec<Step> = (0..4).map(|i| R(rejected(i as f64 * 10.0))).collect();
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn order_execution_failure() {
    let denied = event(
        0.0,
        "WARN",
        "RiskEngine",
        "OrderDenied",
        json!({"order": {"reason": "CUM_NOTIONAL_EXCEEDS_FREE_BALANCE"}}),
    );
    fires("order_execution_failure", &run(vec![R(denied)]), false);
    let engine = line(
        0.0,
        "ERROR",
        "ExecEngine",
        "Error reconciling open orders: request GET /fapi/v1/openOrders timed out after 10.0s",
        json!({}),
    );
    let mut steps = vec![R(engine)];
    steps.extend(ticks(1.0, 301.0));
    fires("order_execution_failure", &run(steps), true);
    let client = line(
        0.0,
        "ERROR",
        "ExecClient-BINANCE",
        "Order execution failed: BinanceServerError(status=503)",
        json!({}),
    );
    fires("order_execution_failure", &run(vec![R(client)]), false);
    // the cancel-after-fill race, a connect error (exchange_connection_failures' job) and
    // warnings are not execution failures
    let steps = vec![
        R(line(0.0, "ERROR", "ExecClient-BINANCE", "Cannot cancel order O-1 (venue_order_id=4): BinanceClientError(status=400, message={'code': -2011, 'msg': 'Unknown order sent.'})", json!({}))),
        R(exchange_error(1.0)),
        R(line(2.0, "WARN", "ExecEngine", "Order O-2 already closed", json!({}))),
    ];
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn order_latency_high() {
    let mut steps: Vec<Step> = (0..18).map(|i| R(accepted(i as f64, 0.12))).collect();
    steps.push(R(accepted(18.0, 0.9)));
    steps.push(R(accepted(19.0, 1.4)));
    steps.extend(ticks(20.0, 330.0));
    let a = fires("order_latency_high", &run(steps), true);
    // with 19 samples the 99th percentile is the largest: it fires on the first slow one
    assert_eq!(
        a.annotations["summary"],
        format!("Order latency p99 0.9 s over 0.5 s on {TRADER}")
    );
    let steps: Vec<Step> = (0..200)
        .map(|i| R(accepted(i as f64, 0.05 + (i % 25) as f64 * 0.01)))
        .collect();
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn rate_limit_high() {
    let steps = vec![
        R(rate_limit(0.0, 0.85)),
        R(rate_limit(10.0, 0.75)),
        R(rate_limit(20.0, 0.5)),
    ];
    let alerts = run(steps);
    let a = fires("rate_limit_high", &alerts, true);
    assert_eq!(a.labels["limit"], "REQUEST_WEIGHT");
    assert_eq!(
        a.annotations["summary"],
        format!("REQUEST_WEIGHT rate limit 0.85 used on {TRADER}")
    );
    let steps = vec![R(rate_limit(0.0, 0.8)), R(rate_limit(10.0, 0.3))];
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn rest_weight_high() {
    let steps = vec![
        R(rest(0.0, 200, 2000)),
        R(rest(1.0, 200, 1900)),
        R(rest(2.0, 200, 1600)),
    ];
    let a = fires("rest_weight_high", &run(steps), true);
    assert!(a.annotations["description"].contains("2000/2400"));
    let steps = vec![R(rest(0.0, 200, 1900)), R(rest(1.0, 200, 100))];
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn unexpected_position_change() {
    let steps = vec![
        R(fill(0.0, BTC)),
        R(position(0.0, "PositionOpened", BTC)),
        R(position(60.0, "PositionChanged", ETH)),
    ];
    let a = fires("unexpected_position_change", &run(steps), false);
    assert_eq!(a.labels["instrument_id"], ETH);
    assert!(a.annotations["summary"].contains(ETH));
    let steps = vec![
        R(fill(0.0, BTC)),
        R(position(0.0, "PositionOpened", BTC)),
        R(fill(5.0, ETH)),
        R(position(5.0, "PositionChanged", ETH)),
        R(fill(30.0, BTC)),
        R(position(30.001, "PositionClosed", BTC)),
    ];
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn balance_discrepancy() {
    let steps = vec![
        R(account(0.0, 10_000.0)),
        R(fill(5.0, BTC)),
        R(account(5.0, 9_990.0)),
        R(account(60.0, 9_500.0)),
    ];
    let a = fires("balance_discrepancy", &run(steps), false);
    assert_eq!(a.labels["currency"], "USDT");
    // fills explain moves, and small drifts (funding) are tolerated
    let steps = vec![
        R(account(0.0, 10_000.0)),
        R(fill(5.0, BTC)),
        R(account(5.0, 9_000.0)),
        R(account(60.0, 8_990.0)),
        R(fill(70.0, BTC)),
        R(account(70.0, 11_000.0)),
    ];
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn error_rate_spike() {
    let mut steps = Vec::new();
    for i in 0..200 {
        let s = i as f64 * 0.5;
        steps.push(if i % 10 == 0 {
            R(line(
                s,
                "ERROR",
                "HedgeGrid",
                "Failed to compute grid level",
                json!({}),
            ))
        } else {
            R(line(s, "INFO", "HedgeGrid", "ok", json!({})))
        });
    }
    let a = fires("error_rate_spike", &run(steps), false);
    assert_eq!(a.labels["trader_id"], TRADER);
    // 10 errors in 1000 lines is 1%
    let steps: Vec<Step> = (0..1000)
        .map(|i| {
            let level = if i % 100 == 0 { "ERROR" } else { "INFO" };
            R(line(i as f64 * 0.1, level, "HedgeGrid", "m", json!({})))
        })
        .collect();
    assert_eq!(brief(&run(steps)), none());
}

#[test]
fn disk_space_low() {
    let steps = vec![R(disk(0.0, 0.05)), R(disk(10.0, 0.11)), R(disk(20.0, 0.2))];
    let a = fires("disk_space_low", &run(steps), true);
    assert_eq!(a.labels["mount"], "/var/lib/sluice");
    assert_eq!(a.labels["host"], "bot-1");
    assert_eq!(
        brief(&run(vec![R(disk(0.0, 0.1)), R(disk(10.0, 0.5))])),
        none()
    );
}

#[test]
fn memory_high() {
    let mut steps = vec![R(memory(0.0, 0.95))];
    for s in 1..=65 {
        steps.push(R(memory(s as f64, 0.93)));
        steps.push(T(s as f64));
    }
    steps.push(R(memory(66.0, 0.5)));
    let a = fires("memory_high", &run(steps), true);
    assert_eq!(a.labels["host"], "bot-1");
    let mut steps = vec![R(memory(0.0, 0.95))];
    steps.extend(ticks(1.0, 30.0));
    steps.push(R(memory(31.0, 0.6)));
    steps.extend(ticks(32.0, 120.0));
    assert_eq!(brief(&run(steps)), none());
}

/// A small deterministic generator (xorshift), so the session is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An ordinary session: orders placed, accepted, filled or canceled, positions and the
/// balance following fills, REST polling well under the limits, a WebSocket reconnecting
/// quickly now and then, a rare rejection, a rare error, host metrics every 10 s.
fn normal_session(n: usize) -> Vec<Step> {
    let mut rng = Rng(0x5eed);
    let mut steps = Vec::with_capacity(n + n / 5);
    let mut sec = 0.0f64;
    let mut next_tick = 1.0;
    let mut balance = 10_000.0;
    let mut records = 0;
    let push = |steps: &mut Vec<Step>, r: Record, records: &mut usize| {
        steps.push(R(r));
        *records += 1;
    };
    while records < n {
        sec += 0.05 + rng.next() * 0.1;
        while sec >= next_tick {
            steps.push(T(next_tick));
            next_tick += 1.0;
        }
        let inst = if rng.next() < 0.6 { BTC } else { ETH };
        let roll = rng.next();
        if roll < 0.25 {
            // one order's life
            push(
                &mut steps,
                event(
                    sec,
                    "INFO",
                    "HedgeGrid",
                    "OrderSubmitted",
                    json!({"order": {"instrument_id": inst}}),
                ),
                &mut records,
            );
            push(
                &mut steps,
                accepted(sec + 0.1, 0.03 + rng.next() * 0.25),
                &mut records,
            );
            if rng.next() < 0.7 {
                push(&mut steps, fill(sec + 0.2, inst), &mut records);
                push(
                    &mut steps,
                    position(sec + 0.2, "PositionChanged", inst),
                    &mut records,
                );
                balance -= 0.27 + (rng.next() - 0.5) * 5.0;
                push(&mut steps, account(sec + 0.2, balance), &mut records);
            } else {
                push(
                    &mut steps,
                    event(
                        sec + 0.2,
                        "INFO",
                        "HedgeGrid",
                        "OrderCanceled",
                        json!({"order": {"instrument_id": inst}}),
                    ),
                    &mut records,
                );
            }
            sec += 0.2;
        } else if roll < 0.40 {
            push(
                &mut steps,
                rest(sec, 200, (50.0 + rng.next() * 1200.0) as i64),
                &mut records,
            );
        } else if roll < 0.43 {
            push(
                &mut steps,
                rate_limit(sec, 0.05 + rng.next() * 0.5),
                &mut records,
            );
        } else if roll < 0.4315 {
            let url = "wss://fstream.binance.com/stream?streams=ethusdt@aggTrade";
            push(&mut steps, ws(sec, "ws_disconnected", url), &mut records);
            push(
                &mut steps,
                ws(sec + 2.0, "ws_reconnected", url),
                &mut records,
            );
        } else if roll < 0.4330 {
            push(&mut steps, rejected(sec), &mut records);
        } else if roll < 0.4345 {
            push(
                &mut steps,
                line(
                    sec,
                    "ERROR",
                    "DataClient-BINANCE",
                    "Error handling message: ConnectionClosedError",
                    json!({}),
                ),
                &mut records,
            );
        } else if roll < 0.4355 {
            push(&mut steps, rest(sec, 503, 300), &mut records);
        } else if roll < 0.46 {
            push(
                &mut steps,
                line(
                    sec,
                    "WARN",
                    "HedgeGrid",
                    "Grid level skipped: price moved",
                    json!({}),
                ),
                &mut records,
            );
        } else if roll < 0.48 {
            push(
                &mut steps,
                line(
                    sec,
                    "DEBUG",
                    "BinanceWebSocketClient",
                    "Received ping from fstream.binance.com, sent pong",
                    json!({}),
                ),
                &mut records,
            );
        } else if roll < 0.485 {
            push(&mut steps, disk(sec, 0.45), &mut records);
            push(
                &mut steps,
                memory(sec, 0.55 + rng.next() * 0.2),
                &mut records,
            );
        } else {
            push(&mut steps, heartbeat(sec), &mut records);
        }
    }
    steps
}

#[test]
fn ten_thousand_normal_records_fire_nothing() {
    let steps = normal_session(10_000);
    let n = steps.iter().filter(|s| matches!(s, R(_))).count();
    assert!(n >= 10_000);
    // the mix holds what the rules look at, so "nothing fired" means something
    let events = |e: &str| {
        steps
            .iter()
            .filter(|s| matches!(s, R(r) if r.get_str("event") == Some(e)))
            .count()
    };
    for e in [
        "OrderAccepted",
        "OrderFilled",
        "PositionChanged",
        "AccountState",
        "rest_call",
        "rate_limit",
        "ws_disconnected",
        "OrderRejected",
        "host_metrics",
    ] {
        assert!(events(e) > 0, "{e} missing from the mix");
    }
    let alerts = run(steps);
    assert_eq!(brief(&alerts), none(), "{alerts:#?}");
}

#[test]
fn the_same_session_with_a_real_incident_fires_only_the_incident() {
    let mut steps = normal_session(3_000);
    let last_tick = steps
        .iter()
        .filter_map(|s| if let T(t) = s { Some(*t) } else { None })
        .fold(0.0, f64::max);
    for i in 0..6 {
        steps.push(R(rejected(last_tick + 0.5 + i as f64)));
    }
    let alerts = run(steps);
    assert_eq!(brief(&alerts), firing("order_rejection_burst"));
}

#[test]
fn default_config_is_the_documented_rule_set() {
    let mut h = H::new(Value::Null);
    let names: Vec<String> = h.h.plugin().stats().into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "bot_restarted",
            "bot_stopped",
            "bot_silent",
            "exchange_connection_failures",
            "exchange_rate_limited",
            "websocket_down",
            "order_rejection_burst",
            "order_execution_failure",
            "order_latency_high",
            "rate_limit_high",
            "rest_weight_high",
            "unexpected_position_change",
            "balance_discrepancy",
            "error_rate_spike",
            "disk_space_low",
            "memory_high"
        ]
    );
}

#[test]
fn defaults_can_be_kept_disabled_replaced_and_relinked() {
    let config = json!({
        "include_default_rules": true,
        "disable": ["bot_silent"],
        "runbook_base_url": "https://wiki.example/runbooks",
        "labels": {"env": "{{env}}"},
        "rules": [{"name": "order_rejection_burst", "kind": "count", "when": {"event": "OrderRejected"},
                   "at_least": 2, "window_seconds": 60, "severity": "critical"}]
    });
    let mut h = H::new(config);
    let names: Vec<String> = h.h.plugin().stats().into_iter().map(|s| s.name).collect();
    assert!(!names.contains(&"bot_silent".to_owned()));
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "order_rejection_burst")
            .count(),
        1
    );
    let alerts = h.send(vec![rejected(0.0), rejected(1.0)]);
    assert_eq!(
        brief(&alerts),
        firing("order_rejection_burst"),
        "the replacement fires at 2"
    );
    assert_eq!(alerts[0].severity, "critical");
    assert_eq!(alerts[0].labels["env"], "prod");
    let alerts = h.one(rest(2.0, 418, 100));
    assert_eq!(
        alerts[0].annotations["runbook_url"],
        "https://wiki.example/runbooks#exchange-rate-limited"
    );
    assert_eq!(alerts[0].labels["env"], "prod");
    // user rules alone: no defaults
    let mut h = H::rules(json!([{"name": "x", "kind": "absent", "window_seconds": 5}]));
    assert_eq!(h.h.plugin().stats().len(), 1);
}

#[test]
fn config_mistakes_are_refused_with_the_rule_and_key() {
    let err =
        |config: Value| match sluice_sdk::testing::Harness::<sluice_plugin_alerts::Alerts>::new(
            config,
        ) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        };
    let rule = |extra: Value| {
        let mut r =
            json!({"name": "r", "kind": "count", "when": {"event": "x"}, "window_seconds": 60});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"rules": [{"name": "ok", "kind": "absent", "window_seconds": 1}, r]})
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!({"rulez": []}), "unknown field `rulez`"),
        (
            rule(json!({"windw_seconds": 1})),
            "rules[1] `r`: unknown field `windw_seconds`",
        ),
        (
            rule(json!({"kind": "treshold"})),
            "rules[1] `r`: `kind`: unknown kind `treshold`",
        ),
        (
            rule(json!({"above": 1})),
            "`above` does not apply to kind `count`",
        ),
        (
            rule(json!({"window_seconds": 0})),
            "`window_seconds` must be a number of seconds, more than 0",
        ),
        (
            rule(json!({"at_least": 5000})),
            "more than `max_window_entries`",
        ),
        (
            rule(json!({"when": {"level": {"regex": "E.*"}}})),
            "`when`: `level`: `regex` is not supported",
        ),
        (
            rule(json!({"severity": "sev1"})),
            "`severity`: `sev1` is not one of",
        ),
        (
            rule(json!({"name": "bad-name"})),
            "`name`: `bad-name` is not a valid name",
        ),
        (rule(json!({"name": "ok"})), "the name `ok` is used twice"),
        (
            rule(json!({"summary": "{{$oops}}"})),
            "unknown template variable `$oops`",
        ),
        (
            rule(json!({"labels": {"a.b": "x"}})),
            "`labels`: `a.b` is not a valid name",
        ),
        (rule(json!({"group_by": ["a.*"]})), "`group_by`"),
        (
            json!({"rules": [{"name": "t", "kind": "threshold", "when": {"e": 1}, "field": "v"}]}),
            "needs `above` or `below`",
        ),
        (
            json!({"rules": [{"name": "t", "kind": "threshold", "when": {"e": 1}, "field": "v", "above": 1, "clear": 2}]}),
            "`clear` (2) must be on the healthy side",
        ),
        (
            json!({"rules": [{"name": "t", "kind": "threshold", "field": "v", "above": 1}]}),
            "`when` is required",
        ),
        (
            json!({"rules": [{"name": "s", "kind": "state", "when": {"e": 1}}]}),
            "`resolve_when` is required",
        ),
        (
            json!({"rules": [{"name": "q", "kind": "quantile", "when": {"e": 1}, "field": "v", "above": 1, "window_seconds": 1}]}),
            "`quantile` is required",
        ),
        (
            json!({"disable": ["nope"]}),
            "`disable`: `nope` is not a default rule",
        ),
        (
            json!({"max_groups_per_rule": 0}),
            "`max_groups_per_rule` must be at least 1",
        ),
        (
            json!({"rules": [{"name": "x", "kind": "count", "when": {"event": "x"}, "window_seconds": 9,
                           "unless_after": {"when": {"event": "y"}}}]}),
            "missing field `within_seconds`",
        ),
    ];
    for (config, want) in cases {
        let e = err(config.clone());
        assert!(e.contains(want), "for {config}:\n  got  {e}\n  want {want}");
    }
}
