//! Run a plugin natively in `cargo test`, through the same MessagePack encoding and the
//! same init/process steps the Wasm host uses, so a test that passes here means the same
//! thing inside Sluice. To run the compiled `.wasm` instead, use the host's harness
//! (`sluice::plugin::WasmHarness`) or `sluice plugin run`.

use crate::abi::{AlertEvent, LogLine, MetricUpdate, Response};
use crate::{rt, Plugin, Record};
use serde::Serialize;

/// Everything one call produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub records: Vec<Record>,
    pub metrics: Vec<MetricUpdate>,
    pub alerts: Vec<AlertEvent>,
    pub logs: Vec<LogLine>,
    pub error: Option<String>,
}

impl From<Response> for Outcome {
    fn from(r: Response) -> Self {
        Self {
            records: r.records.into_iter().map(Record::from).collect(),
            metrics: r.metrics,
            alerts: r.alerts,
            logs: r.logs,
            error: r.error,
        }
    }
}

pub struct Harness<P: Plugin> {
    slot: Option<P>,
}

impl<P: Plugin> Harness<P> {
    /// Initialises the plugin with `config` (anything serde can serialize, e.g. `json!`;
    /// `()` for no config block). Returns the plugin's refusal message on error.
    pub fn new(config: impl Serialize) -> Result<Self, String> {
        let value = serde_json::to_value(config).map_err(|e| e.to_string())?;
        let bytes = rmp_serde::to_vec_named(&value).map_err(|e| e.to_string())?;
        let mut slot = None;
        match rt::init_response::<P>(&mut slot, &bytes).error {
            Some(e) => Err(e),
            None => Ok(Self { slot }),
        }
    }

    pub fn process(&mut self, records: impl IntoIterator<Item = Record>) -> Outcome {
        let batch: Vec<Record> = records.into_iter().collect();
        let bytes = rmp_serde::to_vec_named(&batch).expect("records encode");
        rt::process_response(&mut self.slot, &bytes).into()
    }

    pub fn tick(&mut self, now_ns: i64) -> Outcome {
        rt::tick_response(&mut self.slot, now_ns).into()
    }

    pub fn plugin(&mut self) -> &mut P {
        self.slot.as_mut().expect("initialised")
    }
}

/// Initialises `P` with `config` and processes one batch; panics if init fails.
pub fn run<P: Plugin>(
    config: impl Serialize,
    records: impl IntoIterator<Item = Record>,
) -> Outcome {
    let mut harness = Harness::<P>::new(config).unwrap_or_else(|e| panic!("init failed: {e}"));
    harness.process(records)
}
