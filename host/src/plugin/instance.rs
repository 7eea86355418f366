//! One live plugin instance and the calls of ABI v1 on it. Every call runs under the
//! instance's deadline and memory cap; any failure is returned as a typed [`CallError`].

use super::engine::{PluginEngine, PluginModule, EPOCH_TICK};
use super::error::{CallError, LoadError};
use super::stdio::TailBuffer;
use serde::{Deserialize, Serialize};
use sluice_sdk::abi::{unpack, Response, ABI_VERSION};
use std::time::Duration;
use wasmtime::{Instance, Memory, ResourceLimiter, Store, Trap, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// Per-plugin resource limits (`limits:` in the pipeline YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Deadline of one `process` or `tick` call, in milliseconds. `init` gets ten times it.
    pub timeout_ms: u64,
    /// Cap on the plugin's linear memory, in MiB.
    pub memory_mb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: 1000,
            memory_mb: 128,
        }
    }
}

impl Limits {
    fn memory_bytes(&self) -> usize {
        (self.memory_mb as usize).saturating_mul(1 << 20)
    }

    fn ticks(&self, factor: u64) -> u64 {
        (self.timeout_ms.saturating_mul(factor)).div_ceil(EPOCH_TICK.as_millis() as u64) + 1
    }
}

/// What the pipeline grants a plugin beyond pure computation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Let the plugin read the real clock; without it the clock reads as the Unix epoch,
    /// so plugins stay deterministic and use the record timestamps or `tick(now)`.
    pub clock: bool,
    /// Environment variables the plugin may read, by name.
    pub env: Vec<String>,
}

pub(crate) struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
}

struct MemoryLimiter {
    max: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

pub struct PluginInstance {
    name: String,
    limits: Limits,
    store: Store<HostState>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    free: TypedFunc<(i32, i32), ()>,
    process: TypedFunc<(i32, i32), i64>,
    tick: Option<TypedFunc<i64, i64>>,
    snapshot: Option<TypedFunc<(), i64>>,
    restore: Option<TypedFunc<(i32, i32), i64>>,
    stderr: TailBuffer,
    /// Multiple of `timeout_ms` the current call runs under (init, snapshot: 10).
    deadline_factor: u64,
}

impl PluginInstance {
    /// Instantiates `module`, checks its ABI version and runs `init` with `config`
    /// (MessagePack; empty for "no config block").
    pub fn new(
        engine: &PluginEngine,
        module: &PluginModule,
        limits: Limits,
        grants: &Grants,
        config: &[u8],
    ) -> Result<Self, LoadError> {
        let name = module.name.clone();
        let fail = |reason: String| LoadError::Instantiate {
            plugin: name.clone(),
            reason,
        };
        let stderr = TailBuffer::default();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        if !grants.clock {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        for key in &grants.env {
            if let Ok(value) = std::env::var(key) {
                wasi.env(key, value);
            }
        }
        let state = HostState {
            wasi: wasi.build_p1(),
            limiter: MemoryLimiter {
                max: limits.memory_bytes(),
                hit: false,
            },
        };
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(limits.ticks(10));
        let instance: Instance = engine
            .linker()
            .instantiate(&mut store, &module.module)
            .map_err(|e| fail(root_cause(&e)))?;
        if let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            initialize
                .call(&mut store, ())
                .map_err(|e| fail(root_cause(&e)))?;
        }
        let func_err = |e: wasmtime::Error| fail(e.to_string());
        let version = instance
            .get_typed_func::<(), i32>(&mut store, "sluice_abi_version")
            .map_err(func_err)?
            .call(&mut store, ())
            .map_err(|e| fail(root_cause(&e)))?;
        if version != ABI_VERSION {
            return Err(LoadError::Abi {
                plugin: name,
                reason: format!(
                    "declares ABI version {version}, but this host speaks version {ABI_VERSION}"
                ),
            });
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| fail("no exported memory".into()))?;
        let mut this = Self {
            alloc: instance
                .get_typed_func(&mut store, "sluice_alloc")
                .map_err(func_err)?,
            free: instance
                .get_typed_func(&mut store, "sluice_free")
                .map_err(func_err)?,
            process: instance
                .get_typed_func(&mut store, "sluice_process")
                .map_err(func_err)?,
            tick: instance.get_typed_func(&mut store, "sluice_tick").ok(),
            snapshot: instance.get_typed_func(&mut store, "sluice_snapshot").ok(),
            restore: instance.get_typed_func(&mut store, "sluice_restore").ok(),
            name: name.clone(),
            limits,
            store,
            memory,
            stderr,
            deadline_factor: 10,
        };
        let init = instance
            .get_typed_func::<(i32, i32), i64>(&mut this.store, "sluice_init")
            .map_err(func_err)?;
        let response = this
            .call_with_input(init, config, 10)
            .map_err(|e| LoadError::Init {
                plugin: name.clone(),
                reason: e.to_string(),
            })?;
        if let Some(reason) = response.error {
            return Err(LoadError::Init {
                plugin: name,
                reason,
            });
        }
        Ok(this)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one batch (a MessagePack array of maps). A guest-reported failure comes back
    /// as `Ok` with `error` set, so its logs and metrics are not lost.
    pub fn process(&mut self, batch: &[u8]) -> Result<Response, CallError> {
        self.call_with_input(self.process.clone(), batch, 1)
    }

    pub fn has_tick(&self) -> bool {
        self.tick.is_some()
    }

    pub fn tick(&mut self, now_ns: i64) -> Result<Response, CallError> {
        let Some(tick) = self.tick.clone() else {
            return Ok(Response::default());
        };
        self.arm(1);
        let packed = tick
            .call(&mut self.store, now_ns)
            .map_err(|e| self.classify(e))?;
        self.take_response(packed)
    }

    /// The plugin's state for its next version, if it keeps any.
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        let Some(snapshot) = self.snapshot.clone() else {
            return Ok(None);
        };
        self.arm(10);
        let packed = snapshot
            .call(&mut self.store, ())
            .map_err(|e| self.classify(e))?;
        if packed == 0 {
            return Ok(None);
        }
        self.take_buffer(packed).map(Some)
    }

    pub fn restore(&mut self, state: &[u8]) -> Result<Response, CallError> {
        match self.restore.clone() {
            Some(restore) => self.call_with_input(restore, state, 10),
            None => Ok(Response::default()),
        }
    }

    fn arm(&mut self, factor: u64) {
        self.deadline_factor = factor;
        self.store.set_epoch_deadline(self.limits.ticks(factor));
        self.store.data_mut().limiter.hit = false;
    }

    fn call_with_input(
        &mut self,
        func: TypedFunc<(i32, i32), i64>,
        input: &[u8],
        factor: u64,
    ) -> Result<Response, CallError> {
        self.arm(factor);
        let len = i32::try_from(input.len())
            .map_err(|_| CallError::OutOfMemory(self.limits.memory_bytes()))?;
        let ptr = self
            .alloc
            .call(&mut self.store, len)
            .map_err(|e| self.classify(e))?;
        if ptr == 0 && len > 0 {
            return Err(if self.store.data().limiter.hit {
                CallError::OutOfMemory(self.limits.memory_bytes())
            } else {
                CallError::Malformed("sluice_alloc returned 0".into())
            });
        }
        self.memory
            .write(&mut self.store, ptr as u32 as usize, input)
            .map_err(|_| {
                CallError::Malformed(format!(
                    "sluice_alloc returned {ptr:#x}, outside linear memory"
                ))
            })?;
        let packed = func
            .call(&mut self.store, (ptr, len))
            .map_err(|e| self.classify(e))?;
        // Output first: a plugin may hand back (part of) its input buffer as its output.
        let response = self.take_response(packed);
        self.free
            .call(&mut self.store, (ptr, len))
            .map_err(|e| self.classify(e))?;
        response
    }

    fn take_response(&mut self, packed: i64) -> Result<Response, CallError> {
        if packed == 0 {
            return Ok(Response::default());
        }
        let bytes = self.take_buffer(packed)?;
        decode_response(&bytes)
    }

    /// Copies a guest buffer out and hands it back to the guest's allocator.
    fn take_buffer(&mut self, packed: i64) -> Result<Vec<u8>, CallError> {
        let (ptr, len) = unpack(packed);
        let data = self.memory.data(&self.store);
        let range = (ptr as usize)..(ptr as usize).saturating_add(len as usize);
        let bytes = data
            .get(range)
            .ok_or_else(|| {
                CallError::Malformed(format!(
                    "returned buffer {ptr:#x}+{len} lies outside linear memory ({} bytes)",
                    data.len()
                ))
            })?
            .to_vec();
        self.free
            .call(&mut self.store, (ptr as i32, len as i32))
            .map_err(|e| self.classify(e))?;
        Ok(bytes)
    }

    fn classify(&mut self, error: wasmtime::Error) -> CallError {
        if self.store.data().limiter.hit {
            return CallError::OutOfMemory(self.limits.memory_bytes());
        }
        if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            return CallError::Timeout(self.limits.timeout_ms * self.deadline_factor);
        }
        let mut reason = root_cause(&error);
        let stderr = self.stderr.take();
        if !stderr.is_empty() {
            reason = format!("{reason}; plugin stderr: {stderr}");
        }
        CallError::Trap(reason)
    }
}

/// Turns the bytes a guest returned into a [`Response`]; anything else is `Malformed`.
pub(crate) fn decode_response(bytes: &[u8]) -> Result<Response, CallError> {
    rmp_serde::from_slice(bytes).map_err(|e| {
        CallError::Malformed(format!("response is not an ABI v1 MessagePack map: {e}"))
    })
}

fn root_cause(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(), // wasmtime writes "wasm trap: …" itself
        None => error.root_cause().to_string(),
    }
}
