//! Sources read records into the pipeline. Each has a config struct (its YAML, `type:`
//! picks the variant) and a `run` that streams batches into its [`Fanout`] until the
//! shutdown token fires.

pub mod demo;
pub mod file;
pub mod host_metrics;
pub mod http;
mod lines;
pub mod stdin;

pub use lines::{LineBatcher, LineSplitter};

use crate::config::{with_path, PathResult, Typed};
use crate::telemetry::ComponentTelemetry;
use crate::topology::Fanout;
use serde_json::Value;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// The source kinds, chosen by `type:` in the YAML.
#[derive(Debug, schemars::JsonSchema)]
#[schemars(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    File(file::FileSourceConfig),
    Stdin(stdin::StdinSourceConfig),
    Http(http::HttpSourceConfig),
    Demo(demo::DemoSourceConfig),
    HostMetrics(host_metrics::HostMetricsSourceConfig),
}

/// What a running source is given.
pub struct SourceContext {
    pub name: String,
    pub out: Fanout,
    pub shutdown: CancellationToken,
    pub telemetry: ComponentTelemetry,
    pub data_dir: PathBuf,
}

impl Typed for SourceConfig {
    const TYPES: &'static [&'static str] = &["file", "stdin", "http", "demo", "host_metrics"];

    fn from_type(kind: &str, value: Value) -> Option<PathResult<Self>> {
        Some(match kind {
            "file" => with_path(value).map(SourceConfig::File),
            "stdin" => with_path(value).map(SourceConfig::Stdin),
            "http" => with_path(value).map(SourceConfig::Http),
            "demo" => with_path(value).map(SourceConfig::Demo),
            "host_metrics" => with_path(value).map(SourceConfig::HostMetrics),
            _ => return None,
        })
    }
}

impl SourceConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::File(_) => "file",
            SourceConfig::Stdin(_) => "stdin",
            SourceConfig::Http(_) => "http",
            SourceConfig::Demo(_) => "demo",
            SourceConfig::HostMetrics(_) => "host_metrics",
        }
    }

    /// Problems only this source can see, as (key under the source, message).
    pub fn check(&self) -> Vec<(&'static [&'static str], String)> {
        match self {
            SourceConfig::File(c) => c.check(),
            _ => Vec::new(),
        }
    }

    pub async fn run(self, cx: SourceContext) -> anyhow::Result<()> {
        match self {
            SourceConfig::File(c) => c.run(cx).await,
            SourceConfig::Stdin(c) => c.run(cx).await,
            SourceConfig::Http(c) => c.run(cx).await,
            SourceConfig::Demo(c) => demo::run(c, cx).await,
            SourceConfig::HostMetrics(c) => c.run(cx).await,
        }
    }
}
