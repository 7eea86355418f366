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

/// Compiling a module leaves tens of MiB of freed compiler memory that the allocator keeps;
/// handing it back after plugins load makes an idle agent's RSS what it runs, not what it
/// once compiled (measured with glibc: 92 MiB idle after a cold start without this, 43 MiB
/// with a warm cache; `docs/performance.md`). Both allocators are asked: jemalloc (the
/// `sluice` binary's) and glibc's (any other program embedding this crate).
pub fn release_freed_memory() {
    // SAFETY: `arena.<MALLCTL_ARENAS_ALL>.purge` takes and returns nothing; it only returns
    // unused dirty pages of every arena to the kernel.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
