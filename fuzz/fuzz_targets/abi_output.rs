//! What a plugin's `sluice_process` hands back, read the way the host reads it
//! (`PluginInstance::take_response` -> `decode_response`): arbitrary bytes must give a
//! `Response` or `CallError::Malformed`, never a panic, a hang or a huge allocation.
//!
//! The decode runs on a thread with the 2 MiB stack every transform worker thread gets
//! (`std::thread::Builder` default), so deep nesting that would only fit the 8 MiB main
//! thread of libFuzzer is still caught. The thread is kept for the whole run (spawning
//! one per input costs more than the decode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::fuzzing::decode_response;
use sluice::plugin::CallError;
use std::panic::{catch_unwind, resume_unwind};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};
use std::thread::Result as Outcome;

const WORKER_STACK: usize = 2 * 1024 * 1024;

type Worker = (SyncSender<Vec<u8>>, Receiver<Outcome<()>>);

fn worker() -> &'static Mutex<Worker> {
    static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (input_tx, input_rx) = sync_channel::<Vec<u8>>(0);
        let (done_tx, done_rx) = sync_channel(0);
        std::thread::Builder::new()
            .name("transform-fuzz".into())
            .stack_size(WORKER_STACK)
            .spawn(move || {
                for data in input_rx {
                    let _ = done_tx.send(catch_unwind(|| check(&data)));
                }
            })
            .expect("spawn the worker thread");
        Mutex::new((input_tx, done_rx))
    })
}

fuzz_target!(|data: &[u8]| {
    let worker = worker().lock().unwrap_or_else(|e| e.into_inner());
    worker.0.send(data.to_vec()).expect("worker alive");
    if let Err(panic) = worker.1.recv().expect("worker answers") {
        resume_unwind(panic);
    }
});

fn check(data: &[u8]) {
    match decode_response(data) {
        Ok(response) => {
            // What the worker does next: the records go on to the next component, which
            // for another plugin transform means MessagePack again (`expect`ed there), and
            // for sinks JSON; metrics and alerts become records through serde_json.
            rmp_serde::to_vec_named(&response.records).expect("records re-encode");
            for record in &response.records {
                serde_json::to_string(record).expect("records serialize as JSON");
            }
            for m in &response.metrics {
                serde_json::to_value(m).expect("metric updates serialize");
            }
            for a in &response.alerts {
                serde_json::to_value(a).expect("alerts serialize");
            }
        }
        Err(CallError::Malformed(reason)) => assert!(!reason.is_empty()),
        Err(other) => panic!("decoding can only fail as Malformed, got {other:?}"),
    }
}
