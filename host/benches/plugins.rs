//! Per-record cost of each reference plugin as Wasm, on realistic records: the demo
//! generator's NautilusTrader lines, decoded, in batches of 1,024, each plugin fed what
//! the one before it in the chain (redact → enrich → metrics → alerts) produced.
//!
//! Run `scripts/build-plugins` first, then `cargo bench -p sluice --bench plugins`.
//! Criterion reports time per batch; the throughput line gives records per second.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Map, Value};
use sluice::decode::Decoding;
use sluice::plugin::WasmHarness;
use sluice::sources::demo::generator::{DemoConfig, Generator};
use std::path::PathBuf;

const BATCH: usize = 1024;

fn wasm(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../target/wasm32-wasip1/release/sluice_plugin_{name}.wasm"
    ));
    assert!(
        path.is_file(),
        "{} missing: run scripts/build-plugins",
        path.display()
    );
    path
}

fn demo_batch() -> Vec<Map<String, Value>> {
    let mut generator = Generator::new(&DemoConfig::default());
    let now = chrono::Utc::now();
    (0..BATCH)
        .map(|_| Decoding::Nautilus.decode(generator.next_line(now).line.as_bytes()))
        .collect()
}

fn chain(c: &mut Criterion) {
    let plugins = [
        ("redact", json!({})),
        ("enrich", json!({"env": "bench", "service": "hedge-grid"})),
        ("metrics", Value::Null),
        ("alerts", Value::Null),
    ];
    let mut input = demo_batch();
    let mut group = c.benchmark_group("plugin_wasm");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, config) in plugins {
        let mut harness =
            WasmHarness::load(&wasm(name), &config).unwrap_or_else(|e| panic!("{name}: {e}"));
        let output = harness.process(&input).expect("plugin call").records;
        group.bench_function(name, |b| {
            b.iter_batched(
                || (),
                |_| harness.process(&input).expect("plugin call"),
                BatchSize::SmallInput,
            )
        });
        // The next plugin sees what this one produced, as in the pipeline.
        if !output.is_empty() {
            input = output;
        }
    }
    group.finish();
}

criterion_group!(benches, chain);
criterion_main!(benches);
