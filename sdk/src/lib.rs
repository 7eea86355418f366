//! Write a Sluice plugin as one function.
//!
//! A plugin receives records (maps of JSON-like fields), returns the records it keeps or
//! makes, and may emit metric updates, alert events and log lines on the side. The same
//! code runs in a plain `cargo test` (see [`testing`]) and, compiled for `wasm32-wasip1`,
//! inside the Sluice host, which speaks the ABI described in `docs/plugin-abi.md`.
//!
//! ```
//! use sluice_sdk::prelude::*;
//!
//! #[transform]
//! fn tag_venue(mut record: Record) -> Option<Record> {
//!     if record.get_str("level") == Some("DEBUG") {
//!         return None; // drop it
//!     }
//!     record.set("venue", "BINANCE");
//!     counter("records_tagged_total", &[("venue", "BINANCE")], 1.0);
//!     Some(record)
//! }
//! # fn main() {
//! let out = sluice_sdk::testing::run::<TagVenue>((), [record!({"message": "hi", "level": "INFO"})]);
//! assert_eq!(out.records[0].get_str("venue"), Some("BINANCE"));
//! # }
//! ```
//!
//! Stateful plugins implement [`Plugin`] and export it with [`export_plugin!`].

pub mod abi;
mod emit;
mod output;
mod plugin;
mod record;
#[doc(hidden)]
pub mod rt;
pub mod testing;

pub use abi::{AlertEvent, AlertStatus, LogLevel, LogLine, MetricKind, MetricUpdate};
pub use emit::{alert, counter, gauge, gauge_add, log, observe};
pub use output::{IntoRecords, Output};
pub use plugin::{Error, Plugin};
pub use record::Record;
pub use serde_json::{json, Map, Value};
pub use sluice_sdk_macros::transform;

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{
        alert, counter, export_plugin, gauge, gauge_add, log, observe, record, transform,
        AlertEvent, AlertStatus, Error, IntoRecords, LogLevel, Output, Plugin, Record,
    };
    pub use serde::Deserialize;
    pub use serde_json::{json, Map, Value};
}

/// Builds a [`Record`] from JSON syntax: `record!({"message": "hi", "order": {"id": 1}})`.
#[macro_export]
macro_rules! record {
    ($($json:tt)+) => {
        $crate::Record::from_value($crate::json!($($json)+)).expect("record! needs a JSON object")
    };
}
