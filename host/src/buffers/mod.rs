//! The buffer in front of each sink (`buffer:` in a sink's YAML): how many batches may wait
//! for it, where they wait, and what happens when it is full.
//!
//! - `memory` (the default): a bounded channel of `max_batches`. Lost if the process dies,
//!   but nothing waiting in it was acknowledged to its source, so a restart reads it again.
//! - `disk`: batches are written to checksummed segment files under
//!   `<data_dir>/buffers/<sink>/` and acknowledged to their source once synced, so a file
//!   source checkpoints past them and an http client gets its answer. The sink is fed from
//!   disk; what it has not acknowledged when the process stops (or crashes) is sent again
//!   after a restart.
//!
//! `when_full: block` (the default) makes the sources wait; `drop_newest` drops the batch
//! that does not fit and counts it in `sluice_component_dropped_events_total{reason=
//! "buffer_full"}`.

mod disk;

pub use disk::DiskBufferGuard;

use crate::event::Batch;
use crate::telemetry::ComponentTelemetry;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BufferConfig {
    Memory {
        #[serde(default = "default_max_batches")]
        max_batches: usize,
        #[serde(default)]
        when_full: WhenFull,
    },
    Disk {
        max_bytes: ByteSize,
        #[serde(default)]
        when_full: WhenFull,
    },
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig::Memory {
            max_batches: default_max_batches(),
            when_full: WhenFull::Block,
        }
    }
}

fn default_max_batches() -> usize {
    crate::topology::CHANNEL_CAPACITY
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    #[default]
    Block,
    DropNewest,
}

/// The smallest disk buffer: one segment plus room to move on to the next.
pub const MIN_DISK_BYTES: u64 = 1 << 20;

/// A size in bytes, written as a number or with a unit: `268435456`, `256MiB`, `1GB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Bytes, or a number with KiB, MiB, GiB, KB, MB or GB: `268435456`, `256MiB`, `1GB`.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^\\s*[0-9]+\\s*(B|KiB|MiB|GiB|KB|MB|GB)?\\s*$"}
            ]
        })
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => parse_bytes(&t).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a size: write bytes or a number with KiB, MiB, GiB, KB, MB or GB"
                ))
            }),
        }
    }
}

fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

impl BufferConfig {
    /// Problems only the buffer can see, as (key under `buffer`, message).
    pub fn check(&self) -> Vec<(&'static str, String)> {
        match self {
            BufferConfig::Memory { max_batches, .. } if *max_batches == 0 => {
                vec![("max_batches", "must be at least 1".into())]
            }
            BufferConfig::Disk { max_bytes, .. } if max_bytes.0 < MIN_DISK_BYTES => vec![(
                "max_bytes",
                format!("must be at least {MIN_DISK_BYTES} bytes (1MiB)"),
            )],
            _ => Vec::new(),
        }
    }
}

/// A sink's buffer, built: where its inputs send, and what the sink reads.
pub struct Buffer {
    pub sender: mpsc::Sender<Batch>,
    pub receiver: mpsc::Receiver<Batch>,
    /// For a disk buffer: keep it until the sink has finished, then drop it to save how far
    /// the sink got.
    pub guard: Option<DiskBufferGuard>,
    /// For a disk buffer: the sink's own abort token, which gives up on the sink shortly
    /// after its inputs closed (what is left is on disk).
    pub sink_abort: Option<CancellationToken>,
}

impl Buffer {
    pub fn build(
        config: &BufferConfig,
        sink: &str,
        data_dir: &Path,
        telemetry: &ComponentTelemetry,
        abort: &CancellationToken,
    ) -> std::io::Result<Self> {
        match *config {
            BufferConfig::Memory {
                max_batches,
                when_full: WhenFull::Block,
            } => {
                let (sender, receiver) = mpsc::channel(max_batches.max(1));
                Ok(Buffer {
                    sender,
                    receiver,
                    guard: None,
                    sink_abort: None,
                })
            }
            BufferConfig::Memory {
                max_batches,
                when_full: WhenFull::DropNewest,
            } => {
                let (sender, mut intake) = mpsc::channel::<Batch>(1);
                let (inner, receiver) = mpsc::channel(max_batches.max(1));
                let telemetry = telemetry.clone();
                tokio::spawn(async move {
                    while let Some(batch) = intake.recv().await {
                        match inner.try_send(batch) {
                            Ok(()) => {}
                            // Dropped on purpose: its acknowledgement says delivered.
                            Err(mpsc::error::TrySendError::Full(batch)) => {
                                telemetry.dropped("buffer_full", batch.len())
                            }
                            Err(mpsc::error::TrySendError::Closed(batch)) => batch.fail(),
                        }
                    }
                });
                Ok(Buffer {
                    sender,
                    receiver,
                    guard: None,
                    sink_abort: None,
                })
            }
            BufferConfig::Disk {
                max_bytes,
                when_full,
            } => disk::build(
                &data_dir.join("buffers").join(sink),
                max_bytes.0,
                when_full,
                Arc::from(sink),
                telemetry.clone(),
                abort.clone(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_memory_buffer_drops_the_newest_and_counts_it() {
        let telemetry = crate::telemetry::Telemetry::new();
        let config = BufferConfig::Memory {
            max_batches: 2,
            when_full: WhenFull::DropNewest,
        };
        let mut buffer = Buffer::build(
            &config,
            "s",
            Path::new("/nonexistent"),
            &telemetry.component("s", "console"),
            &CancellationToken::new(),
        )
        .unwrap();
        for n in 0..5 {
            let record = serde_json::json!({ "n": n }).as_object().unwrap().clone();
            let batch = Batch::new("src".into(), vec![record], None);
            buffer.sender.send(batch).await.unwrap();
        }
        drop(buffer.sender);
        // Let the intake task move the last batch before the sink starts reading.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut kept = Vec::new();
        while let Some(batch) = buffer.receiver.recv().await {
            kept.push(batch.records[0]["n"].as_u64().unwrap());
        }
        assert_eq!(kept, vec![0, 1], "the oldest stay, the newest are dropped");
        let metrics = telemetry.encode();
        assert!(
            metrics.contains(
                r#"sluice_component_dropped_events_total{component="s",reason="buffer_full"} 3"#
            ),
            "{metrics}"
        );
    }

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("256MiB"), Some(256 << 20));
        assert_eq!(parse_bytes("2 GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("10MB"), Some(10_000_000));
        assert_eq!(parse_bytes("10 parsecs"), None);
        assert_eq!(parse_bytes("MiB"), None);
        assert_eq!(parse_bytes("99999999999999GiB"), None);
    }

    #[test]
    fn config_is_tagged_by_type_and_refuses_unknown_keys() {
        let disk: BufferConfig = serde_json::from_str(
            r#"{"type":"disk","max_bytes":"64MiB","when_full":"drop_newest"}"#,
        )
        .unwrap();
        assert_eq!(
            disk,
            BufferConfig::Disk {
                max_bytes: ByteSize(64 << 20),
                when_full: WhenFull::DropNewest
            }
        );
        let memory: BufferConfig = serde_json::from_str(r#"{"type":"memory"}"#).unwrap();
        assert_eq!(memory, BufferConfig::default());
        let err = serde_json::from_str::<BufferConfig>(r#"{"type":"disk","max_bytes":1,"size":2}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `size`"), "{err}");
        let err = serde_json::from_str::<BufferConfig>(r#"{"type":"tape"}"#).unwrap_err();
        assert!(err.to_string().contains("tape"), "{err}");
        assert_eq!(
            BufferConfig::Disk {
                max_bytes: ByteSize(10),
                when_full: WhenFull::Block
            }
            .check()[0]
                .0,
            "max_bytes"
        );
    }
}
