//! The `console` sink: records on stdout (or stderr), one per line.

use super::{Encoding, SinkContext};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSinkConfig {
    pub inputs: Vec<String>,
    /// Where batches wait for this sink (see [`crate::buffers`]).
    #[serde(default)]
    pub buffer: crate::buffers::BufferConfig,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub target: Target,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[default]
    Stdout,
    Stderr,
}

impl ConsoleSinkConfig {
    pub(crate) async fn run(self, mut cx: SinkContext) -> anyhow::Result<()> {
        let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match self.target {
            Target::Stdout => Box::new(tokio::io::stdout()),
            Target::Stderr => Box::new(tokio::io::stderr()),
        };
        cx.telemetry
            .set_status(crate::telemetry::Status::Running, None);
        let mut buf = Vec::new();
        while let Some(batch) = cx.input.recv().await {
            cx.telemetry.received(batch.len());
            buf.clear();
            for record in &batch.records {
                self.encoding.write(record, &mut buf);
            }
            let written = async {
                out.write_all(&buf).await?;
                out.flush().await
            }
            .await;
            match written {
                Ok(()) => cx.telemetry.sent("default", batch.len()),
                Err(e) => {
                    // A closed stdout (a pipe whose reader left) will not come back.
                    cx.telemetry.error("write");
                    cx.telemetry
                        .warn_limited("write", &format!("cannot write to {:?}: {e}", self.target));
                    batch.fail();
                }
            }
        }
        Ok(())
    }
}
