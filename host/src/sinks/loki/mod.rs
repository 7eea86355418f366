//! The `loki` sink: pushes records to Grafana Loki's `/loki/api/v1/push`, as
//! snappy-compressed protobuf (the default, what Promtail and Alloy send) or JSON
//! (optionally gzipped).
//!
//! Records are grouped into streams by a few low-cardinality labels rendered from their
//! fields, with a cap on distinct streams; high-cardinality ids go to structured metadata.
//! A batch is acknowledged only after Loki answered 2xx. Connection errors, timeouts, 429
//! and 5xx are retried with backoff (honouring `Retry-After`); other 4xx mean Loki refused
//! the data itself, so it is dead-lettered (or dropped) and counted instead of retried.
//!
//! `config.rs` is the YAML and its validation; `template.rs` the `{{field}}` templates;
//! `encoder.rs` turns records into streams and request bodies; `wire.rs` the wire types;
//! `service.rs` one HTTP attempt and the retry policy; `sink.rs` batching, concurrency and
//! acknowledgements.

mod config;
pub(crate) mod encoder;
mod service;
mod sink;
mod template;
pub mod wire;

pub use config::{Auth, BatchConfig, Compression, Format, LineEncoding, LokiSinkConfig};
