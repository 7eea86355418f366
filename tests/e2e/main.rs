//! End-to-end tests: real `sluice` processes running real pipelines on loopback and
//! temporary directories. `scripts/test` builds the binary and plugins first.

mod alert_sink;
mod all_sinks;
mod authoring;
mod bad_input;
mod bench;
mod c_plugin;
mod canary;
mod chaos;
mod cli;
mod deploy_files;
mod hostile;
mod hot_reload;
mod http_source;
mod loki_receiver;
mod loki_sink;
mod pipeline;
mod plugin_alerts;
mod plugin_enrich;
mod plugin_metrics;
mod plugin_redact;
mod prometheus_sink;
mod recorder;
mod reference_chain;
mod support;
mod tap_top;
mod topology_reload;
