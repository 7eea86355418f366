//! The plugin runtime: loading, checking and calling WebAssembly plugins under ABI v1
//! (`docs/plugin-abi.md`).
//!
//! [`PluginEngine`] owns the one wasmtime engine and the compiled-module cache;
//! [`PluginInstance`] is one instance with its deadline and memory cap; failures come back
//! as [`LoadError`] (the plugin is refused) or [`CallError`] (one batch failed).
//! [`WasmHarness`] runs a compiled plugin outside any pipeline, for tests and
//! `sluice plugin run`.

mod engine;
mod error;
mod harness;
mod instance;
mod stdio;

pub use engine::{PluginEngine, PluginModule, EPOCH_TICK};
pub use error::{CallError, LoadError};
pub use harness::{encode_config, WasmHarness};
pub(crate) use instance::decode_response;
pub use instance::{Grants, Limits, PluginInstance};
