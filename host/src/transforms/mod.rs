//! Plugin transforms: a `.wasm` plugin named in the pipeline, run on its own worker thread
//! (Wasm calls are CPU work that must not stall the async runtime). The worker feeds each
//! batch through the plugin and routes what comes back: records to the transform's main
//! output, metric updates to `NAME.metrics`, alert events to `NAME.alerts`, and failed
//! batches per `on_error`, to `NAME.dead_letter` among others.

mod canary;
mod config;
mod worker;

pub use canary::{Canary, CanaryConfig};

pub use config::{OnError, TransformConfig};
pub use worker::{Outputs, Swap, Swapped, TransformWorker, Version};
