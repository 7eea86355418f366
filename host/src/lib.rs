//! Sluice: a log shipper that streams records through WebAssembly plugins.
//!
//! Records flow `source -> [transform -> ...] -> sink`, wired by `inputs:` in the pipeline
//! YAML, always in batches:
//!
//! - [`config`] loads and validates pipeline files (file:line:col for every problem);
//! - [`sources`] read records ([`decode`] turns lines into records);
//! - [`transforms`] run plugins through [`plugin`], the wasmtime-based runtime of ABI v1;
//! - [`sinks`] write records and acknowledge them ([`ack`]), so file sources checkpoint
//!   only what was delivered;
//! - [`topology`] wires and runs them; [`reload`] swaps plugins in while they run;
//!   [`telemetry`] and [`admin`] report on them, and [`tap`] shows their records live;
//! - [`unit_tests`] runs the YAML unit tests of `sluice test`; [`scaffold`] starts a plugin;
//!   [`bench`] measures the whole pipeline (`sluice bench`).

pub mod ack;
pub mod admin;
pub mod bench;
pub mod buffers;
pub mod config;
pub mod decode;
pub mod event;
pub mod plugin;
pub mod reload;
pub mod scaffold;
pub mod sinks;
pub mod sources;
pub mod tap;
pub mod telemetry;
pub mod top;
pub mod topology;
pub mod transforms;
pub mod unit_tests;

/// Entry points for the cargo-fuzz targets in `fuzz/` (`docs/fuzzing.md`): thin wrappers
/// over crate-private code, not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::sinks::loki::encoder::{body, Body, Encoder, Pending, Placement};

    /// How the host reads what a plugin's `process` (or `init`, `tick`, `restore`) returned.
    pub fn decode_response(
        bytes: &[u8],
    ) -> Result<sluice_sdk::abi::Response, crate::plugin::CallError> {
        crate::plugin::decode_response(bytes)
    }
}
