//! Runs a compiled plugin against records outside any pipeline: the Wasm counterpart of
//! `sluice_sdk::testing`, used by plugin tests and by `sluice plugin run`.

use super::{CallError, Grants, Limits, LoadError, PluginEngine, PluginInstance, PluginModule};
use serde_json::{Map, Value};
use sluice_sdk::abi::Response;
use std::path::Path;

pub struct WasmHarness {
    instance: PluginInstance,
}

impl WasmHarness {
    /// Loads `path` (compiled without a cache) and initialises it with `config`
    /// (`Value::Null` for no config block).
    pub fn load(path: &Path, config: &Value) -> Result<Self, LoadError> {
        let engine = PluginEngine::new(None).map_err(|e| LoadError::Instantiate {
            plugin: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let module = engine.load(&name, path, None)?;
        Self::from_module(
            &engine,
            &module,
            Limits::default(),
            &Grants::default(),
            config,
        )
    }

    pub fn from_module(
        engine: &PluginEngine,
        module: &PluginModule,
        limits: Limits,
        grants: &Grants,
        config: &Value,
    ) -> Result<Self, LoadError> {
        let config = encode_config(config);
        let instance = PluginInstance::new(engine, module, limits, grants, &config)?;
        Ok(Self { instance })
    }

    pub fn process(&mut self, records: &[Map<String, Value>]) -> Result<Response, CallError> {
        let batch = rmp_serde::to_vec_named(records).expect("JSON maps always encode");
        self.instance.process(&batch)
    }

    pub fn tick(&mut self, now_ns: i64) -> Result<Response, CallError> {
        self.instance.tick(now_ns)
    }
}

/// The config block as the ABI passes it: MessagePack, or nothing when absent.
pub fn encode_config(config: &Value) -> Vec<u8> {
    if config.is_null() {
        Vec::new()
    } else {
        rmp_serde::to_vec_named(config).expect("JSON values always encode")
    }
}
