//! The `file` sink: appends records to a file, one per line, and acknowledges a batch
//! only after it is written (and synced to disk with `fsync: true`).

use super::{Encoding, SinkContext};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    pub inputs: Vec<String>,
    /// Where batches wait for this sink (see [`crate::buffers`]).
    #[serde(default)]
    pub buffer: crate::buffers::BufferConfig,
    pub path: PathBuf,
    #[serde(default)]
    pub encoding: Encoding,
    /// Sync every batch to disk before acknowledging it.
    #[serde(default)]
    pub fsync: bool,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl FileSinkConfig {
    pub(crate) async fn run(self, mut cx: SinkContext) -> anyhow::Result<()> {
        let mut file: Option<tokio::fs::File> = None;
        let mut buf = Vec::new();
        cx.telemetry
            .set_status(crate::telemetry::Status::Running, None);
        while let Some(batch) = cx.input.recv().await {
            cx.telemetry.received(batch.len());
            buf.clear();
            for record in &batch.records {
                self.encoding.write(record, &mut buf);
            }
            let mut backoff = Duration::from_millis(100);
            loop {
                match self.write(&mut file, &buf).await {
                    Ok(()) => {
                        cx.telemetry.sent("default", batch.len());
                        cx.telemetry
                            .set_status(crate::telemetry::Status::Running, None);
                        break;
                    }
                    Err(e) => {
                        file = None;
                        cx.telemetry.error("write");
                        let message =
                            format!("cannot write to {}: {e}; retrying", self.path.display());
                        cx.telemetry
                            .set_status(crate::telemetry::Status::Degraded, Some(message.clone()));
                        cx.telemetry.warn_limited("write", &message);
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = cx.abort.cancelled() => {
                                batch.fail();
                                return Ok(());
                            }
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
        Ok(())
    }

    async fn write(&self, file: &mut Option<tokio::fs::File>, bytes: &[u8]) -> std::io::Result<()> {
        if file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir).await?;
            }
            *file = Some(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .await?,
            );
        }
        let f = file.as_mut().expect("opened above");
        f.write_all(bytes).await?;
        f.flush().await?;
        if self.fsync {
            f.sync_data().await?;
        }
        Ok(())
    }
}
