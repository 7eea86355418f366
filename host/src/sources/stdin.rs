//! The `stdin` source: lines from standard input until it closes, which then ends the
//! pipeline gracefully (so `producer | sluice run` works like any Unix filter).

use super::{LineBatcher, LineSplitter, SourceContext};
use crate::decode::Decoding;
use crate::event::Batch;
use serde::Deserialize;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    #[serde(default)]
    pub decode: Decoding,
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_max_line_bytes() -> usize {
    1 << 20
}

fn default_batch_size() -> usize {
    1024
}

impl StdinSourceConfig {
    pub(crate) async fn run(self, cx: SourceContext) -> anyhow::Result<()> {
        let batcher = LineBatcher {
            decoding: self.decode,
            extra: Vec::new(),
        };
        let origin: Arc<str> = cx.name.as_str().into();
        let mut splitter = LineSplitter::new(self.max_line_bytes);
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 64 * 1024];
        let mut lines = Vec::new();
        cx.telemetry
            .set_status(crate::telemetry::Status::Running, None);
        loop {
            let n = tokio::select! {
                n = stdin.read(&mut buf) => n?,
                _ = cx.shutdown.cancelled() => break,
            };
            if n == 0 {
                lines.extend(splitter.finish());
            } else {
                splitter.push(&buf[..n], &mut lines);
            }
            while !lines.is_empty() {
                let take = lines.len().min(self.batch_size);
                let records = batcher.decode_all(lines.drain(..take), "stdin", &cx.telemetry);
                cx.telemetry.received(records.len());
                cx.telemetry.sent("default", records.len());
                cx.out.send(Batch::new(origin.clone(), records, None)).await;
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }
}
