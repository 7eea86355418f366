//! Each rule kind: fires exactly once, stays quiet while firing, resolves once, waits out
//! `for_seconds`, keeps groups apart, expires windows.

mod common;

use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_sdk::AlertStatus;
use std::collections::BTreeMap;

fn fingerprint(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(name);
    for (k, v) in labels {
        h.update(b"\0");
        h.update(k);
        h.update(b"\xff");
        h.update(v);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mem(sec: f64, host: &str, used: f64) -> sluice_sdk::Record {
    rec(
        sec,
        json!({"event": "host_metrics", "metric": "memory", "host": host, "used_ratio": used}),
    )
}

#[test]
fn threshold_fires_once_dedups_and_resolves_once_with_hysteresis() {
    let mut h = H::rules(json!([{
        "name": "mem", "kind": "threshold", "severity": "critical",
        "when": {"event": "host_metrics", "metric": "memory"},
        "field": "used_ratio", "above": 0.9, "clear": 0.8, "group_by": ["host"],
        "summary": "memory {{$value}} on {{host}}", "runbook_url": "https://x/rb#mem"
    }]));
    assert_eq!(brief(&h.one(mem(0.0, "a", 0.5))), none());
    let fired = h.one(mem(1.0, "a", 0.95));
    assert_eq!(brief(&fired), firing("mem"));
    let a = &fired[0];
    assert_eq!(a.severity, "critical");
    assert_eq!(a.labels.get("host").map(String::as_str), Some("a"));
    assert_eq!(a.annotations["summary"], "memory 0.95 on a");
    assert_eq!(a.annotations["runbook_url"], "https://x/rb#mem");
    assert_eq!(a.fingerprint, fingerprint("mem", &a.labels));
    // still breaching, and in the hysteresis band: nothing new
    assert_eq!(brief(&h.one(mem(2.0, "a", 0.97))), none());
    assert_eq!(brief(&h.one(mem(3.0, "a", 0.85))), none());
    assert_eq!(brief(&h.tick(4.0)), none());
    let res = h.one(mem(5.0, "a", 0.5));
    assert_eq!(brief(&res), resolved("mem"));
    assert_eq!(res[0].fingerprint, a.fingerprint);
    assert_eq!(res[0].labels, a.labels);
    assert_eq!(
        res[0].annotations, a.annotations,
        "the resolve repeats what fired"
    );
    assert_eq!(brief(&h.one(mem(6.0, "a", 0.4))), none());
    // and it can fire again later
    assert_eq!(brief(&h.one(mem(7.0, "a", 0.99))), firing("mem"));
}

#[test]
fn threshold_without_clear_resolves_as_soon_as_back_under() {
    let mut h = H::rules(json!([{"name": "disk", "kind": "threshold",
        "when": {"metric": "filesystem"}, "field": "free_ratio", "below": 0.1}]));
    let r = |s, v| rec(s, json!({"metric": "filesystem", "free_ratio": v}));
    assert_eq!(brief(&h.one(r(0.0, 0.05))), firing("disk"));
    assert_eq!(brief(&h.one(r(1.0, 0.1))), resolved("disk"));
}

#[test]
fn for_seconds_keeps_an_alert_pending_until_it_held_that_long() {
    let mut h = H::rules(json!([{"name": "mem", "kind": "threshold",
        "when": {"metric": "memory"}, "field": "used_ratio", "above": 0.9, "for_seconds": 10}]));
    let r = |s, v| rec(s, json!({"metric": "memory", "used_ratio": v}));
    assert_eq!(brief(&h.one(r(0.0, 0.95))), none());
    assert_eq!(brief(&h.one(r(5.0, 0.96))), none());
    assert_eq!(brief(&h.tick(9.0)), none());
    assert_eq!(
        brief(&h.tick(10.5)),
        firing("mem"),
        "fires on the tick once held 10 s"
    );
    assert_eq!(brief(&h.tick(11.5)), none());
    assert_eq!(brief(&h.one(r(12.0, 0.5))), resolved("mem"));

    // A breach that clears within for_seconds never fires, and nothing resolves.
    assert_eq!(brief(&h.one(r(20.0, 0.95))), none());
    assert_eq!(brief(&h.one(r(25.0, 0.5))), none());
    assert_eq!(brief(&h.tick(40.0)), none());

    // It also fires from a record once the time has passed.
    assert_eq!(brief(&h.one(r(50.0, 0.95))), none());
    assert_eq!(brief(&h.one(r(61.0, 0.95))), firing("mem"));
}

#[test]
fn a_pending_alert_fires_on_any_record_that_moves_time_past_for_seconds() {
    let mut h = H::rules(json!([{"name": "ws", "kind": "state",
        "when": {"event": "ws_disconnected"}, "resolve_when": {"event": "ws_connected"},
        "for_seconds": 30}]));
    let ev = |s, e: &str| rec(s, json!({"event": e}));
    assert_eq!(brief(&h.one(ev(0.0, "ws_disconnected"))), none());
    assert_eq!(brief(&h.one(ev(20.0, "OrderFilled"))), none());
    // No tick and no record of the rule's own: a record the rule does not match moves
    // now past the 30 s, and that fires it (a replayed log must not depend on ticks).
    assert_eq!(
        brief(&h.one(ev(31.0, "OrderFilled"))),
        firing("ws"),
        "fires from an unrelated record once held 30 s"
    );
    assert_eq!(brief(&h.one(ev(40.0, "OrderFilled"))), none());
    assert_eq!(brief(&h.one(ev(45.0, "ws_connected"))), resolved("ws"));
    // A disconnection that ends within 30 s stays quiet, whatever follows.
    assert_eq!(brief(&h.one(ev(50.0, "ws_disconnected"))), none());
    assert_eq!(brief(&h.one(ev(60.0, "ws_connected"))), none());
    assert_eq!(brief(&h.one(ev(100.0, "OrderFilled"))), none());
}

#[test]
fn group_by_keeps_groups_apart() {
    let mut h = H::rules(json!([{"name": "mem", "kind": "threshold",
        "when": {"metric": "memory"}, "field": "used_ratio", "above": 0.9, "group_by": ["host"]}]));
    let a = h.one(mem(0.0, "a", 0.95));
    let b = h.one(mem(1.0, "b", 0.95));
    assert_eq!(brief(&a), firing("mem"));
    assert_eq!(brief(&b), firing("mem"));
    assert_ne!(a[0].fingerprint, b[0].fingerprint);
    assert_eq!(brief(&h.one(mem(2.0, "a", 0.96))), none());
    let res = h.one(mem(3.0, "b", 0.1));
    assert_eq!(brief(&res), resolved("mem"));
    assert_eq!(res[0].labels["host"], "b");
    assert_eq!(
        brief(&h.one(mem(4.0, "a", 0.97))),
        none(),
        "a is still firing"
    );
    assert_eq!(h.h.plugin().stats()[0].firing, 1);
}

#[test]
fn threshold_wildcard_makes_one_alert_per_key_and_divide_by_works() {
    let mut h = H::rules(json!([
        {"name": "rl", "kind": "threshold", "when": {"event": "rate_limit"},
         "field": "rate_limit.*.ratio", "wildcard_label": "limit", "above": 0.8,
         "summary": "{{$key}} at {{$value}}"},
        {"name": "w", "kind": "threshold", "when": {"event": "rest_call"},
         "field": "rest.used_weight", "divide_by": "rest.weight_limit", "above": 0.8}
    ]));
    let rl = |s, w: f64, o: f64| {
        rec(
            s,
            json!({"event": "rate_limit", "rate_limit": {
            "REQUEST_WEIGHT": {"used": w * 2400.0, "limit": 2400, "ratio": w},
            "ORDERS_10S": {"used": o * 300.0, "limit": 300, "ratio": o}}}),
        )
    };
    let fired = h.one(rl(0.0, 0.85, 0.1));
    assert_eq!(brief(&fired), firing("rl"));
    assert_eq!(fired[0].labels["limit"], "REQUEST_WEIGHT");
    assert_eq!(fired[0].annotations["summary"], "REQUEST_WEIGHT at 0.85");
    let both = h.one(rl(1.0, 0.9, 0.95));
    assert_eq!(brief(&both), firing("rl"), "only ORDERS_10S is new");
    assert_eq!(both[0].labels["limit"], "ORDERS_10S");
    let res = h.one(rl(2.0, 0.1, 0.96));
    assert_eq!(brief(&res), resolved("rl"));
    assert_eq!(res[0].labels["limit"], "REQUEST_WEIGHT");

    let w = |s, used| {
        rec(
            s,
            json!({"event": "rest_call", "rest": {"used_weight": used, "weight_limit": 2400}}),
        )
    };
    assert_eq!(brief(&h.one(w(3.0, 1900))), none(), "1900/2400 = 0.79");
    assert_eq!(brief(&h.one(w(4.0, 1950))), firing("w"));
    // no divisor: not evaluated, so no resolve either
    assert_eq!(
        brief(&h.one(rec(
            5.0,
            json!({"event": "rest_call", "rest": {"used_weight": 1}})
        ))),
        none()
    );
    assert_eq!(brief(&h.one(w(6.0, 100))), resolved("w"));
}

fn rejected(sec: f64) -> sluice_sdk::Record {
    rec(
        sec,
        json!({"event": "OrderRejected", "trader_id": "T-1", "order": {"reason": "x"}}),
    )
}

#[test]
fn count_fires_at_n_within_the_window_and_resolves_when_it_drops() {
    let mut h = H::rules(
        json!([{"name": "rej", "kind": "count", "when": {"event": "OrderRejected"},
        "at_least": 5, "window_seconds": 60, "summary": "{{$value}} in {{$window}} s"}]),
    );
    for i in 0..4 {
        assert_eq!(brief(&h.one(rejected(i as f64 * 10.0))), none());
    }
    let fired = h.one(rejected(40.0));
    assert_eq!(brief(&fired), firing("rej"));
    assert_eq!(fired[0].annotations["summary"], "5 in 60 s");
    assert_eq!(
        brief(&h.send(vec![rejected(41.0), rejected(42.0)])),
        none(),
        "de-duplicated"
    );
    // window: the records at 0..=30 leave by 91 s; at 95 s only 40, 41, 42 remain
    assert_eq!(brief(&h.tick(59.0)), none());
    assert_eq!(brief(&h.tick(95.0)), resolved("rej"));
    assert_eq!(brief(&h.tick(96.0)), none(), "resolved once");
    assert_eq!(brief(&h.tick(200.0)), none());
}

#[test]
fn count_window_expiry_means_slow_trickles_never_fire() {
    let mut h = H::rules(
        json!([{"name": "rej", "kind": "count", "when": {"event": "OrderRejected"},
        "at_least": 5, "window_seconds": 60}]),
    );
    for i in 0..50 {
        // one every 16 s: at most 4 in any 60 s
        assert_eq!(
            brief(&h.one(rejected(i as f64 * 16.0))),
            none(),
            "record {i}"
        );
        h.tick(i as f64 * 16.0 + 1.0);
    }
}

#[test]
fn old_records_cannot_raise_alerts_about_the_past() {
    let mut h = H::rules(
        json!([{"name": "rej", "kind": "count", "when": {"event": "OrderRejected"},
        "at_least": 5, "window_seconds": 60}]),
    );
    h.tick(10_000.0);
    let backlog: Vec<_> = (0..20).map(|i| rejected(i as f64)).collect();
    assert_eq!(brief(&h.send(backlog)), none());
}

#[test]
fn count_with_unless_after_fires_only_for_unexpected_records() {
    let mut h = H::rules(json!([{"name": "pos", "kind": "count",
        "when": {"event": ["PositionOpened", "PositionChanged"]},
        "unless_after": {"when": {"event": "OrderFilled"}, "within_seconds": 10},
        "group_by": ["position.instrument_id|order.instrument_id"],
        "window_seconds": 60, "summary": "{{event}} on {{position.instrument_id|order.instrument_id}}"}]));
    let fill = |s, i: &str| {
        rec(
            s,
            json!({"event": "OrderFilled", "order": {"instrument_id": i}}),
        )
    };
    let pos = |s, i: &str| {
        rec(
            s,
            json!({"event": "PositionChanged", "position": {"instrument_id": i}}),
        )
    };
    assert_eq!(
        brief(&h.send(vec![fill(0.0, "BTC"), pos(0.0, "BTC")])),
        none()
    );
    assert_eq!(brief(&h.one(pos(5.0, "BTC"))), none(), "fill 5 s before");
    // a fill on another instrument does not explain this one
    let fired = h.send(vec![fill(20.0, "ETH"), pos(20.0, "BTC")]);
    assert_eq!(brief(&fired), firing("pos"));
    assert_eq!(fired[0].labels["instrument_id"], "BTC");
    assert_eq!(fired[0].annotations["summary"], "PositionChanged on BTC");
    assert_eq!(brief(&h.one(pos(20.0, "ETH"))), none(), "ETH had its fill");
    assert_eq!(
        brief(&h.one(pos(40.0, "ETH"))),
        firing("pos"),
        "20 s after the fill"
    );
    let res = h.tick(100.0);
    assert_eq!(res.len(), 2);
    assert!(res.iter().all(|a| a.status == AlertStatus::Resolved));
}

#[test]
fn rate_ratio_fires_over_the_share_and_min_count_and_resolves() {
    let mut h = H::rules(
        json!([{"name": "err", "kind": "rate", "when": {"level": "ERROR"},
        "of": {"level": {"exists": true}}, "above": 0.05, "min_count": 10, "window_seconds": 60,
        "summary": "{{$value}} errors"}]),
    );
    let line = |s, level: &str| rec(s, json!({"level": level, "message": "m"}));
    // 4 errors in 20 records: 20% but fewer than 10 errors
    let mut batch: Vec<_> = (0..16).map(|i| line(i as f64 * 0.1, "INFO")).collect();
    batch.extend((0..4).map(|i| line(2.0 + i as f64 * 0.1, "ERROR")));
    assert_eq!(brief(&h.send(batch)), none());
    // 600 INFO and 9 more errors: 13 errors of 629 = 2%
    let mut batch: Vec<_> = (0..600)
        .map(|i| line(3.0 + i as f64 * 0.01, "INFO"))
        .collect();
    batch.extend((0..9).map(|_| line(9.5, "ERROR")));
    assert_eq!(brief(&h.send(batch)), none());
    // 30 more errors: 43 of 659 = 6.5%
    let batch: Vec<_> = (0..30).map(|_| line(10.0, "ERROR")).collect();
    let fired = h.send(batch);
    assert_eq!(brief(&fired), firing("err"));
    assert_eq!(
        fired[0].annotations["summary"], "0.0508 errors",
        "fires on the 20th: 33/649"
    );
    assert_eq!(brief(&h.one(line(11.0, "ERROR"))), none());
    // diluted by normal traffic
    let batch: Vec<_> = (0..300).map(|_| line(12.0, "INFO")).collect();
    assert_eq!(brief(&h.send(batch)), resolved("err"));
}

#[test]
fn rate_per_second_and_expiry_on_tick() {
    let mut h = H::rules(
        json!([{"name": "fast", "kind": "rate", "when": {"event": "rest_call"},
        "above": 2.0, "window_seconds": 10}]),
    );
    let call = |s| rec(s, json!({"event": "rest_call"}));
    let batch: Vec<_> = (0..20).map(|i| call(i as f64 * 0.5)).collect();
    assert_eq!(
        brief(&h.send(batch)),
        none(),
        "20 in 10 s is 2/s, not above"
    );
    assert_eq!(brief(&h.one(call(9.9))), firing("fast"));
    assert_eq!(
        brief(&h.tick(12.0)),
        resolved("fast"),
        "the window moved on"
    );
}

#[test]
fn quantile_fires_exactly_at_the_nearest_rank() {
    let mut h = H::rules(
        json!([{"name": "lat", "kind": "quantile", "when": {"event": "OrderAccepted"},
        "field": "latency.submit_to_accept_seconds", "quantile": 0.99, "above": 0.5,
        "min_samples": 10, "window_seconds": 300, "summary": "p99 {{$value}} s"}]),
    );
    let acc = |s, v: f64| {
        rec(
            s,
            json!({"event": "OrderAccepted", "latency": {"submit_to_accept_seconds": v}}),
        )
    };
    // min_samples: 5 slow ones alone do not fire
    assert_eq!(
        brief(&h.send((0..5).map(|i| acc(i as f64, 2.0)).collect())),
        none()
    );
    h.tick(400.0); // they expire
                   // 99 fast and 1 slow: the 99th of 100 is fast
    let mut batch: Vec<_> = (0..99).map(|i| acc(400.0 + i as f64, 0.1)).collect();
    batch.push(acc(499.0, 3.0));
    assert_eq!(brief(&h.send(batch)), none());
    // a second slow one: the 99th of 101 (rank ceil(99.99) = 100) is now slow
    let fired = h.one(acc(500.0, 0.9));
    assert_eq!(brief(&fired), firing("lat"));
    assert_eq!(fired[0].annotations["summary"], "p99 0.9 s");
    assert_eq!(brief(&h.one(acc(501.0, 4.0))), none());
    // the slow ones leave the window (300 s) while fast ones keep arriving (with ticks:
    // records stamped more than 300 s past the last tick would be clamped to it)
    h.tick(700.0);
    let batch: Vec<_> = (0..120).map(|i| acc(700.0 + i as f64, 0.1)).collect();
    assert_eq!(brief(&h.send(batch)), resolved("lat"));
}

#[test]
fn absent_fires_on_tick_and_resolves_when_data_returns() {
    let mut h = H::rules(json!([{"name": "silent", "kind": "absent",
        "when": {"trader_id": {"exists": true}}, "window_seconds": 60,
        "summary": "nothing from {{trader_id}} for {{$value}} s"}]));
    let line = |s| rec(s, json!({"trader_id": "T-1", "message": "hi"}));
    h.one(line(0.0));
    assert_eq!(brief(&h.tick(59.0)), none());
    // records without trader_id do not count as the bot speaking
    h.one(rec(59.5, json!({"event": "host_metrics"})));
    let fired = h.tick(60.0);
    assert_eq!(brief(&fired), firing("silent"));
    assert_eq!(fired[0].annotations["summary"], "nothing from T-1 for 60 s");
    assert_eq!(brief(&h.tick(61.0)), none());
    assert_eq!(brief(&h.tick(500.0)), none());
    let res = h.one(line(501.0));
    assert_eq!(brief(&res), resolved("silent"));
    assert_eq!(res[0].fingerprint, fired[0].fingerprint);
    assert_eq!(brief(&h.tick(550.0)), none());
    assert_eq!(brief(&h.tick(561.5)), firing("silent"));
}

#[test]
fn absent_counts_silence_from_the_first_tick_when_nothing_ever_came() {
    let mut h = H::rules(json!([{"name": "silent", "kind": "absent", "window_seconds": 60}]));
    assert_eq!(brief(&h.tick(0.0)), none());
    assert_eq!(brief(&h.tick(30.0)), none());
    assert_eq!(brief(&h.tick(60.0)), firing("silent"));
    assert_eq!(
        brief(&h.one(rec(61.0, json!({"message": "x"})))),
        resolved("silent")
    );
}

#[test]
fn grouped_absent_tracks_each_group_and_the_none_seen_case() {
    let mut h = H::rules(json!([{"name": "silent", "kind": "absent",
        "when": {"trader_id": {"exists": true}}, "group_by": ["trader_id"], "window_seconds": 60}]));
    h.tick(0.0);
    let none_seen = h.tick(60.0);
    assert_eq!(brief(&none_seen), firing("silent"));
    assert!(
        none_seen[0].labels.is_empty(),
        "no bot seen yet: no trader label"
    );
    let line = |s, t: &str| rec(s, json!({"trader_id": t}));
    let res = h.send(vec![line(61.0, "A"), line(61.0, "B")]);
    assert_eq!(brief(&res), resolved("silent"));
    assert_eq!(res[0].fingerprint, none_seen[0].fingerprint);
    for s in 62..130 {
        h.one(line(s as f64, "B"));
        let alerts = h.tick(s as f64 + 0.5);
        if s == 121 {
            assert_eq!(brief(&alerts), firing("silent"));
            assert_eq!(alerts[0].labels["trader_id"], "A");
        } else {
            assert_eq!(brief(&alerts), none(), "at {s}");
        }
    }
}

#[test]
fn state_fires_after_for_seconds_and_resolves_on_the_other_condition() {
    let mut h = H::rules(json!([{"name": "ws", "kind": "state",
        "when": {"event": "ws_disconnected"}, "resolve_when": {"event": ["ws_connected", "ws_reconnected"]},
        "group_by": ["ws.url"], "for_seconds": 30, "summary": "{{ws.url}} down {{$for}} s"}]));
    let ev = |s, e: &str, url: &str| rec(s, json!({"event": e, "ws": {"url": url}}));
    // a quick reconnect never alerts
    assert_eq!(brief(&h.one(ev(0.0, "ws_disconnected", "wss://a"))), none());
    assert_eq!(brief(&h.one(ev(3.0, "ws_reconnected", "wss://a"))), none());
    assert_eq!(brief(&h.tick(40.0)), none());
    // a long outage does, once
    assert_eq!(
        brief(&h.one(ev(50.0, "ws_disconnected", "wss://a"))),
        none()
    );
    assert_eq!(
        brief(&h.one(ev(51.0, "ws_disconnected", "wss://b"))),
        none()
    );
    assert_eq!(brief(&h.tick(79.0)), none());
    let fired = h.tick(80.0);
    assert_eq!(brief(&fired), firing("ws"));
    assert_eq!(fired[0].annotations["summary"], "wss://a down 30 s");
    assert_eq!(
        brief(&h.one(ev(80.5, "ws_disconnected", "wss://a"))),
        none()
    );
    let fired_b = h.tick(81.0);
    assert_eq!(fired_b[0].labels["url"], "wss://b");
    // b coming back does not resolve a
    let res = h.one(ev(90.0, "ws_connected", "wss://b"));
    assert_eq!(brief(&res), resolved("ws"));
    assert_eq!(res[0].labels["url"], "wss://b");
    assert_eq!(
        brief(&h.one(ev(91.0, "ws_connected", "wss://a"))),
        resolved("ws")
    );
    assert_eq!(brief(&h.one(ev(92.0, "ws_connected", "wss://a"))), none());
}

#[test]
fn change_fires_on_a_move_without_a_reset_in_between() {
    let mut h = H::rules(
        json!([{"name": "bal", "kind": "change", "when": {"event": "AccountState"},
        "field": "account.balances.*.total", "wildcard_key_field": "currency", "wildcard_label": "currency",
        "change_above": 0.02, "reset_by": {"event": "OrderFilled"}, "window_seconds": 600,
        "summary": "{{$key}} moved {{$value}}"}]),
    );
    let acct = |s, total: f64| {
        rec(
            s,
            json!({"event": "AccountState",
        "account": {"balances": [{"currency": "USDT", "total": total, "free": total, "locked": 0}]}}),
        )
    };
    let fill = |s| rec(s, json!({"event": "OrderFilled"}));
    assert_eq!(brief(&h.one(acct(0.0, 10_000.0))), none());
    assert_eq!(brief(&h.one(acct(1.0, 10_100.0))), none(), "1%");
    // a fill explains any move, however large
    assert_eq!(brief(&h.send(vec![fill(2.0), acct(2.0, 5_000.0)])), none());
    assert_eq!(brief(&h.one(acct(3.0, 5_010.0))), none());
    let fired = h.one(acct(4.0, 6_000.0));
    assert_eq!(brief(&fired), firing("bal"));
    assert_eq!(fired[0].labels["currency"], "USDT");
    assert_eq!(fired[0].annotations["summary"], "USDT moved 0.1976");
    assert_eq!(brief(&h.one(acct(5.0, 7_000.0))), none(), "de-duplicated");
    assert_eq!(brief(&h.tick(500.0)), none());
    assert_eq!(brief(&h.tick(606.0)), resolved("bal"));
}

#[test]
fn now_is_the_max_of_tick_and_record_time_and_bogus_future_stamps_are_clamped() {
    let mut h = H::rules(json!([{"name": "silent", "kind": "absent", "window_seconds": 60}]));
    h.tick(0.0);
    h.one(rec(10.0, json!({"m": 1})));
    assert_eq!(h.h.plugin().now(), ns(10.0));
    h.tick(5.0);
    assert_eq!(h.h.plugin().now(), ns(10.0), "never goes back");
    // A record stamped a year ahead must not move the clock there.
    let out = h.h.process([rec(365.0 * 86_400.0, json!({"m": 1}))]);
    assert_eq!(h.h.plugin().now(), ns(10.0));
    assert!(out
        .metrics
        .iter()
        .any(|m| m.name == "alerts_clock_skew_records_total"));
    // so silence is still measured against the ticks
    assert_eq!(brief(&h.tick(69.0)), none());
    assert_eq!(brief(&h.tick(71.0)), firing("silent"));
}

#[test]
fn firing_gauge_follows_transitions() {
    let mut h = H::rules(
        json!([{"name": "mem", "kind": "threshold", "when": {"metric": "memory"},
        "field": "used_ratio", "above": 0.9}]),
    );
    let out = h.h.process([mem(0.0, "a", 0.95)]);
    let g: Vec<_> = out
        .metrics
        .iter()
        .filter(|m| m.name == "alerts_firing")
        .collect();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].value, 1.0);
    assert_eq!(g[0].labels["rule"], "mem");
    let out = h.h.process([mem(1.0, "a", 0.96)]);
    assert!(
        out.metrics.iter().all(|m| m.name != "alerts_firing"),
        "unchanged: not re-sent"
    );
    let out = h.h.process([mem(2.0, "a", 0.1)]);
    assert_eq!(out.metrics[0].value, 0.0);
}
