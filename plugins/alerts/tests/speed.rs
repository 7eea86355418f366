//! Per-record cost of the default rules on a realistic mix. Ignored by default (timing on
//! a shared machine is no pass/fail signal); run with `--ignored --nocapture` to measure.

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_plugin_alerts::Alerts;
use sluice_sdk::{Output, Plugin, Record};
use std::time::Instant;

fn mix(n: usize) -> Vec<Record> {
    let msgs = [
        json!({"level": "INFO", "component": "HedgeGrid", "message": "Heartbeat BTCUSDT-PERP.BINANCE mid=67_450.1 open_orders=8 long=0.020 short=0.010"}),
        json!({"level": "INFO", "component": "Portfolio", "message": "BTCUSDT-PERP.BINANCE margin_init=12.34 USDT"}),
        json!({"level": "DEBUG", "component": "BinanceFuturesHttpClient", "message": "GET /fapi/v1/premiumIndex 200 (12.4ms) x-mbx-used-weight-1m=37/2400",
               "event": "rest_call", "rest": {"status": 200, "used_weight": 37, "weight_limit": 2400}}),
        json!({"level": "INFO", "component": "HedgeGrid", "message": "<--[EVT] OrderFilled(...)", "event": "OrderFilled",
               "order": {"instrument_id": "BTCUSDT-PERP.BINANCE", "last_qty": 0.01, "last_px": 67450.1}}),
        json!({"level": "INFO", "component": "HedgeGrid", "message": "<--[EVT] PositionChanged(...)", "event": "PositionChanged",
               "position": {"instrument_id": "BTCUSDT-PERP.BINANCE", "quantity": 0.02}}),
        json!({"level": "INFO", "component": "HedgeGrid", "message": "<--[EVT] OrderAccepted(...)", "event": "OrderAccepted",
               "latency": {"submit_to_accept_seconds": 0.08}}),
        json!({"level": "INFO", "component": "Portfolio", "message": "Updated AccountState(...)", "event": "AccountState",
               "account": {"balances": [{"currency": "USDT", "total": 10000.0}]}}),
        json!({"level": "DEBUG", "component": "BinanceWebSocketClient", "message": "Received ping from fstream.binance.com, sent pong"}),
    ];
    (0..n)
        .map(|i| {
            let mut v: Value = msgs[[0, 1, 0, 1, 2, 0, 3, 4, 5, 6, 7, 1][i % 12]].clone();
            v["trader_id"] = json!("TRADER-001");
            v["env"] = json!("prod");
            rec(i as f64 * 0.005, v)
        })
        .collect()
}

#[test]
#[ignore]
fn per_record_cost_of_the_default_rules() {
    const N: usize = 50_000;
    let records = mix(N);
    let mut plugin = Alerts::new(serde_json::from_value(json!({})).unwrap()).unwrap();
    let mut best = f64::MAX;
    for round in 0..5 {
        // Cloned before timing: only the plugin's work is measured.
        let chunks: Vec<Vec<Record>> = records.chunks(1000).map(<[Record]>::to_vec).collect();
        let mut outs = Vec::new();
        let start = Instant::now();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut out = Output::default();
            plugin.process_batch(chunk, &mut out).unwrap();
            let t = (round * N + (i + 1) * 1000) as f64 * 0.005;
            plugin.tick(ns(t), &mut out).unwrap();
            outs.push(out);
        }
        let per = start.elapsed().as_nanos() as f64 / N as f64;
        drop(outs);
        best = best.min(per);
    }
    // The same loop with records only moved to the output: what any plugin pays.
    let mut base = f64::MAX;
    for _ in 0..5 {
        let chunks: Vec<Vec<Record>> = records.chunks(1000).map(<[Record]>::to_vec).collect();
        let mut outs = Vec::new();
        let start = Instant::now();
        for chunk in chunks {
            let mut out = Output::default();
            for r in chunk {
                out.push(r);
            }
            outs.push(out);
        }
        base = base.min(start.elapsed().as_nanos() as f64 / N as f64);
        drop(outs);
    }
    // And reading each record's top-level keys once: the cache misses any reader pays on
    // records scattered over the heap, which the plugin's own work is not.
    let mut touch = f64::MAX;
    for _ in 0..5 {
        let chunks: Vec<Vec<Record>> = records.chunks(1000).map(<[Record]>::to_vec).collect();
        let mut outs = Vec::new();
        let start = Instant::now();
        let mut sum = 0usize;
        for chunk in chunks {
            let mut out = Output::default();
            for r in chunk {
                sum += r.fields().iter().map(|(k, _)| k.len()).sum::<usize>();
                sum += r.get_str("timestamp").map_or(0, str::len);
                out.push(r);
            }
            outs.push(out);
        }
        std::hint::black_box(sum);
        touch = touch.min(start.elapsed().as_nanos() as f64 / N as f64);
        drop(outs);
    }
    println!(
        "default rules: {best:.0} ns/record; moving the record: {base:.0} ns; moving it and \
         reading its keys and timestamp: {touch:.0} ns (best of 5 rounds of {N})"
    );
}
