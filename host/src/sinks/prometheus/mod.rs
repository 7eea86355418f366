//! The `prometheus` sink: serves the metric updates plugins emit (records on a
//! transform's `NAME.metrics` output) on its own `/metrics`, beside Sluice's own telemetry.
//!
//! `config.rs` is the YAML; `store.rs` turns updates into `prometheus` crate families
//! with the cardinality cap and gauge expiry; `server.rs` serves them.

mod config;
mod server;
mod store;

pub use config::{valid_label_name, valid_metric_name, PrometheusSinkConfig};
pub use store::MetricStore;
