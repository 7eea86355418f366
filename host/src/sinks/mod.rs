//! Sinks write records out and acknowledge them. Each has a config struct (`type:` picks
//! the variant) and a `run` that consumes its input channel until every upstream is done.
//! A batch is acknowledged by dropping it after a successful write; a batch given up on is
//! marked failed first, so its source does not checkpoint past it.

pub mod alerts;
pub mod console;
mod encoding;
pub mod file;
pub mod loki;
pub mod prometheus;

pub use encoding::Encoding;

use crate::config::{with_path, PathResult, Typed};
use crate::event::Batch;
use crate::telemetry::ComponentTelemetry;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The sink kinds, chosen by `type:` in the YAML.
#[derive(Debug, schemars::JsonSchema)]
#[schemars(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    Console(console::ConsoleSinkConfig),
    File(file::FileSinkConfig),
    Prometheus(prometheus::PrometheusSinkConfig),
    Loki(loki::LokiSinkConfig),
    Alerts(alerts::AlertSinkConfig),
}

pub struct SinkContext {
    pub name: String,
    pub input: mpsc::Receiver<Batch>,
    pub telemetry: ComponentTelemetry,
    /// Fires when the pipeline is being torn down hard: stop retrying.
    pub abort: CancellationToken,
}

/// A sink that returns early (aborted at shutdown, or failed) leaves batches in its input;
/// dropping one would acknowledge it as delivered, so each is marked failed instead and its
/// source sends it again.
impl Drop for SinkContext {
    fn drop(&mut self) {
        self.input.close();
        while let Ok(batch) = self.input.try_recv() {
            batch.fail();
        }
    }
}

impl Typed for SinkConfig {
    const TYPES: &'static [&'static str] = &["console", "file", "prometheus", "loki", "alerts"];

    fn from_type(kind: &str, value: Value) -> Option<PathResult<Self>> {
        Some(match kind {
            "console" => with_path(value).map(SinkConfig::Console),
            "file" => with_path(value).map(SinkConfig::File),
            "prometheus" => with_path(value).map(SinkConfig::Prometheus),
            "loki" => with_path(value).map(SinkConfig::Loki),
            "alerts" => with_path(value).map(SinkConfig::Alerts),
            _ => return None,
        })
    }
}

impl SinkConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Console(_) => "console",
            SinkConfig::File(_) => "file",
            SinkConfig::Prometheus(_) => "prometheus",
            SinkConfig::Loki(_) => "loki",
            SinkConfig::Alerts(_) => "alerts",
        }
    }

    pub fn inputs(&self) -> &[String] {
        match self {
            SinkConfig::Console(c) => &c.inputs,
            SinkConfig::File(c) => &c.inputs,
            SinkConfig::Prometheus(c) => &c.inputs,
            SinkConfig::Loki(c) => &c.inputs,
            SinkConfig::Alerts(c) => &c.inputs,
        }
    }

    pub fn buffer(&self) -> &crate::buffers::BufferConfig {
        match self {
            SinkConfig::Console(c) => &c.buffer,
            SinkConfig::File(c) => &c.buffer,
            SinkConfig::Prometheus(c) => &c.buffer,
            SinkConfig::Loki(c) => &c.buffer,
            SinkConfig::Alerts(c) => &c.buffer,
        }
    }

    /// Makes relative paths relative to the file that wrote them.
    pub fn resolve_paths(&mut self, resolve: &dyn Fn(&[&str], &Path) -> PathBuf) {
        match self {
            SinkConfig::File(c) => c.path = resolve(&["path"], &c.path),
            SinkConfig::Loki(c) => {
                if let Some(path) = &c.dead_letter_path {
                    c.dead_letter_path = Some(resolve(&["dead_letter_path"], path));
                }
            }
            _ => {}
        }
    }

    /// Problems only this sink can see, as (key path under the sink, message).
    pub fn check(&self) -> Vec<(Vec<String>, String)> {
        let mut problems = match self {
            SinkConfig::Prometheus(c) => c.check(),
            SinkConfig::Loki(c) => c.check(),
            SinkConfig::Alerts(c) => c.check(),
            _ => Vec::new(),
        };
        for (key, message) in self.buffer().check() {
            problems.push((vec!["buffer".to_owned(), key.to_owned()], message));
        }
        problems
    }

    pub async fn run(self, cx: SinkContext) -> anyhow::Result<()> {
        match self {
            SinkConfig::Console(c) => c.run(cx).await,
            SinkConfig::File(c) => c.run(cx).await,
            SinkConfig::Prometheus(c) => c.run(cx).await,
            SinkConfig::Loki(c) => c.run(cx).await,
            SinkConfig::Alerts(c) => c.run(cx).await,
        }
    }
}
