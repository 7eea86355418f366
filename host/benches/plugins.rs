//! Per-record cost of each reference plugin as Wasm and as native code, on realistic
//! records: the demo generator's NautilusTrader lines, decoded, in batches of 1,024, each
//! plugin fed what the one before it in the chain (redact → enrich → metrics → alerts)
//! produced.
//!
//! `plugin_native` runs the same plugin code linked into this binary and does the same
//! work as the Wasm call minus the boundary: the host encodes the batch, the SDK runtime
//! decodes it, runs the plugin and encodes the response, and the host decodes that. So
//! `plugin_wasm / plugin_native` is what running a plugin as Wasm costs.
//!
//! Run `scripts/build-plugins` first, then `cargo bench -p sluice --bench plugins`.
//! Criterion reports time per batch; the throughput line gives records per second.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Map, Value};
use sluice::decode::Decoding;
use sluice::plugin::WasmHarness;
use sluice::sources::demo::generator::{DemoConfig, Generator};
use sluice_sdk::abi::Response;
use sluice_sdk::{rt, Plugin};
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

fn configs() -> [(&'static str, Value); 4] {
    [
        ("redact", json!({})),
        ("enrich", json!({"env": "bench", "service": "hedge-grid"})),
        ("metrics", Value::Null),
        ("alerts", Value::Null),
    ]
}

fn chain(c: &mut Criterion) {
    let mut input = demo_batch();
    let mut group = c.benchmark_group("plugin_wasm");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, config) in configs() {
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

type Call = dyn FnMut(&[Map<String, Value>]) -> Response;

/// One plugin compiled into this binary, called the way the Wasm export is.
struct Native<P: Plugin>(Option<P>);

impl<P: Plugin> Native<P> {
    fn new(config: &Value) -> Self {
        let mut slot = None;
        let config = sluice::plugin::encode_config(config);
        let response = rt::init_response::<P>(&mut slot, &config);
        assert_eq!(response.error, None);
        Self(slot)
    }

    fn process(&mut self, records: &[Map<String, Value>]) -> Response {
        let batch = rmp_serde::to_vec_named(records).expect("records encode");
        let response = rt::process_response(&mut self.0, &batch);
        let bytes = rmp_serde::to_vec_named(&response).expect("responses encode");
        rmp_serde::from_slice(&bytes).expect("responses decode")
    }
}

fn native(c: &mut Criterion) {
    let mut input = demo_batch();
    let mut group = c.benchmark_group("plugin_native");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, config) in configs() {
        let mut call: Box<Call> = match name {
            "redact" => {
                let mut p = Native::<sluice_plugin_redact::Redact>::new(&config);
                Box::new(move |r| p.process(r))
            }
            "enrich" => {
                let mut p = Native::<sluice_plugin_enrich::Enrich>::new(&config);
                Box::new(move |r| p.process(r))
            }
            "metrics" => {
                let mut p = Native::<sluice_plugin_metrics::Metrics>::new(&config);
                Box::new(move |r| p.process(r))
            }
            _ => {
                let mut p = Native::<sluice_plugin_alerts::Alerts>::new(&config);
                Box::new(move |r| p.process(r))
            }
        };
        let output = call(&input).records;
        group.bench_function(name, |b| b.iter(|| call(&input)));
        if !output.is_empty() {
            input = output;
        }
    }
    group.finish();
}

criterion_group!(benches, chain, native);
criterion_main!(benches);
