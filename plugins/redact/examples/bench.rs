//! Rough native cost per record, for the numbers in `docs/plugins/redact.md`; not a
//! test. `cargo run --release -p sluice-plugin-redact --example bench`.
//!
//! Measures demo-generator records (about 265 bytes as JSON) without secrets and with
//! one planted secret, twice: the plugin's walk alone, and the whole ABI call as the
//! host makes it (MessagePack decode, redact, MessagePack encode of the response).

#[allow(dead_code)]
#[path = "../tests/common/corpus.rs"]
mod corpus;

use serde_json::{Map, Value};
use sluice_plugin_redact::bench::with_key;
use sluice_plugin_redact::{Config, Redact};
use sluice_sdk::{rt, Error, Output, Plugin, Record};
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

/// Passes records through untouched: the cost of the ABI call's MessagePack alone.
struct Noop;

impl Plugin for Noop {
    type Config = ();
    fn new(_: ()) -> Result<Self, Error> {
        Ok(Noop)
    }
    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        out.push(record);
        Ok(())
    }
}

fn demo_records() -> Vec<Map<String, Value>> {
    corpus::demo_lines(include_str!("../tests/fixtures/demo-clean.jsonl"))
        .into_iter()
        .map(|c| c.record)
        .collect()
}

/// The demo generator's five secret shapes, with fresh synthetic secrets.
fn secret_records() -> Vec<Map<String, Value>> {
    let mut rng = corpus::Rng::new(7);
    let base = demo_records().remove(0);
    (0..BATCH)
        .map(|i| {
            let key = rng.mixed(corpus::ALNUM, 64);
            let message = match i % 5 {
                0 => format!("API key {key} has trading permissions"),
                1 => format!("Listen key {}", &key[..60]),
                2 => format!("Connected to wss://fstream.binance.com/ws/{}", &key[..62]),
                3 => format!(
                    "Request GET /fapi/v2/account?recvWindow=5000&timestamp=1717372800123&signature={}",
                    rng.string(corpus::HEX, 64)
                ),
                _ => format!("Request header X-MBX-APIKEY: {key}"),
            };
            let mut r = base.clone();
            r.insert("message".into(), Value::String(message));
            r
        })
        .collect()
}

fn batch_of(records: &[Map<String, Value>]) -> Vec<Map<String, Value>> {
    records.iter().cycle().take(BATCH).cloned().collect()
}

/// CPU time of this thread in ns (Linux), so other work on a shared machine does not
/// inflate the figures the way wall time would.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn time(mut f: impl FnMut() -> usize) -> f64 {
    for _ in 0..20 {
        f();
    }
    let start = Instant::now();
    let cpu = cpu_ns();
    let mut records = 0;
    while start.elapsed() < Duration::from_secs(2) {
        records += f();
    }
    let spent = match cpu_ns() - cpu {
        0 => start.elapsed().as_nanos() as u64,
        ns => ns,
    };
    spent as f64 / records as f64
}

fn measure(name: &str, records: &[Map<String, Value>], hashed: bool) {
    let batch = batch_of(records);
    let json_bytes: usize = batch
        .iter()
        .map(|r| serde_json::to_string(r).unwrap().len())
        .sum();
    let key = hashed.then_some(&b"bench-key"[..]);
    let mut plugin = with_key(Config::default(), key).unwrap();
    let copies: Vec<Vec<Record>> = (0..8)
        .map(|_| batch.iter().cloned().map(Record::from).collect())
        .collect();
    let mut round = 0;
    let walk = time(|| {
        let mut records = copies[round % copies.len()].clone();
        round += 1;
        for r in records.iter_mut() {
            plugin.redact(r);
        }
        records.len()
    });
    let clone_only = time(|| {
        let records = copies[round % copies.len()].clone();
        round += 1;
        std::hint::black_box(&records);
        records.len()
    });

    let packed = rmp_serde::to_vec_named(&batch).unwrap();
    let mut slot: Option<Redact> = Some(with_key(Config::default(), key).unwrap());
    let abi = time(|| {
        let response = rt::process_response(&mut slot, &packed);
        let bytes = rmp_serde::to_vec_named(&response).unwrap();
        std::hint::black_box(bytes);
        BATCH
    });
    let mut noop = Some(Noop);
    let codec = time(|| {
        let response = rt::process_response(&mut noop, &packed);
        let bytes = rmp_serde::to_vec_named(&response).unwrap();
        std::hint::black_box(bytes);
        BATCH
    });
    println!(
        "{name:<32} {:>4} B/record | redact walk {:>5.0} ns | ABI call {:>5.0} ns (MessagePack alone {:>5.0} ns)",
        json_bytes / BATCH,
        walk - clone_only,
        abi,
        codec
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("profile") {
        // Clean records stay unchanged, so redacting the same ones again is the same work.
        let mut plugin = with_key(Config::default(), None).unwrap();
        let mut records: Vec<Record> = batch_of(&demo_records())
            .into_iter()
            .map(Record::from)
            .collect();
        let ns = time(|| {
            for r in records.iter_mut() {
                plugin.redact(r);
            }
            BATCH
        });
        println!("clean walk without clones: {ns:.0} ns/record");
        return;
    }
    let clean = demo_records();
    let secrets = secret_records();
    measure("demo lines, no secret", &clean, false);
    measure("demo secret shapes", &secrets, false);
    measure("demo secret shapes, keyed hash", &secrets, true);
}
