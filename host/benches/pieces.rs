//! The host's own per-record costs, on the demo generator's NautilusTrader lines: decoding
//! a line, MessagePack encoding and decoding of batches of each size (what every plugin
//! call pays on the host side), and the Loki sink's encoder (labels, protobuf, snappy).
//!
//! `cargo bench -p sluice --bench pieces`; `scripts/test` runs each once (`--benches`)
//! so they keep compiling and working.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Map, Value};
use sluice::decode::Decoding;
use sluice::fuzzing::{body, Encoder, Pending};
use sluice::sinks::loki::{Compression, Format, LokiSinkConfig};
use sluice::sources::demo::generator::{DemoConfig, Generator};
use std::time::Instant;

const LINES: usize = 1024;

fn demo_lines() -> Vec<String> {
    let mut generator = Generator::new(&DemoConfig::default());
    let now = chrono::Utc::now();
    (0..LINES).map(|_| generator.next_line(now).line).collect()
}

fn decode(c: &mut Criterion) {
    let lines = demo_lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut group = c.benchmark_group("decode_nautilus");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function(format!("{LINES} lines, {bytes} bytes"), |b| {
        b.iter(|| {
            lines
                .iter()
                .map(|l| Decoding::Nautilus.decode(l.as_bytes()))
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

fn msgpack(c: &mut Criterion) {
    let records: Vec<Map<String, Value>> = demo_lines()
        .iter()
        .map(|l| Decoding::Nautilus.decode(l.as_bytes()))
        .collect();
    for size in [1usize, 16, 128, 1024] {
        let batch = &records[..size];
        let encoded = rmp_serde::to_vec_named(batch).unwrap();
        let mut group = c.benchmark_group("msgpack");
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("encode/{size}"), |b| {
            b.iter(|| rmp_serde::to_vec_named(batch).unwrap())
        });
        group.bench_function(format!("decode/{size}"), |b| {
            b.iter(|| rmp_serde::from_slice::<Vec<Map<String, Value>>>(&encoded).unwrap())
        });
        group.finish();
    }
}

fn loki(c: &mut Criterion) {
    let records: Vec<Map<String, Value>> = demo_lines()
        .iter()
        .map(|l| {
            let mut r = Decoding::Nautilus.decode(l.as_bytes());
            r.insert("env".into(), "prod".into());
            r.insert("service".into(), "hedge-grid".into());
            r
        })
        .collect();
    let config: LokiSinkConfig = serde_json::from_value(json!({
        "inputs": ["in"],
        "url": "http://127.0.0.1:3100",
        "labels": {"job": "sluice", "env": "{{env}}", "service": "{{service}}", "level": "{{level}}"},
        "structured_metadata": {"component": "{{component}}"},
    }))
    .unwrap();
    let mut group = c.benchmark_group("loki_encoder");
    group.throughput(Throughput::Elements(LINES as u64));
    for (name, format, compression) in [
        ("protobuf+snappy", Format::Protobuf, Compression::Snappy),
        ("json+gzip", Format::Json, Compression::Gzip),
    ] {
        group.bench_function(name, |b| {
            let mut encoder = Encoder::new(&config).unwrap();
            let now = Instant::now();
            b.iter(|| {
                let mut pending = Pending::default();
                for r in &records {
                    encoder.encode(r, 0, now, &mut pending);
                }
                body(pending.into_streams(), format, compression)
                    .bytes
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, msgpack, loki);
criterion_main!(benches);
