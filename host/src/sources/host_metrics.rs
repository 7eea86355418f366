//! The `host_metrics` source: samples the machine Sluice runs on (free disk per mount,
//! memory) so alert rules can fire on "disk under 10% free" or "memory over 90%" without
//! another agent. One record per resource per sample; fields in docs/plugins/fields.md.

use super::SourceContext;
use crate::event::{Batch, Record};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostMetricsSourceConfig {
    /// Sampling interval in milliseconds.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Mount points whose free space to report.
    #[serde(default = "default_mounts")]
    pub mounts: Vec<PathBuf>,
    /// Report memory from `/proc/meminfo`.
    #[serde(default = "default_true")]
    pub memory: bool,
}

fn default_interval_ms() -> u64 {
    10_000
}

fn default_mounts() -> Vec<PathBuf> {
    vec![PathBuf::from("/")]
}

fn default_true() -> bool {
    true
}

impl HostMetricsSourceConfig {
    pub(crate) async fn run(self, cx: SourceContext) -> anyhow::Result<()> {
        let origin: Arc<str> = cx.name.as_str().into();
        let host = hostname();
        let mut interval = tokio::time::interval(Duration::from_millis(self.interval_ms.max(100)));
        cx.telemetry
            .set_status(crate::telemetry::Status::Running, None);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = cx.shutdown.cancelled() => return Ok(()),
            }
            let now = crate::decode::format_timestamp(chrono::Utc::now());
            let mut records = Vec::new();
            for mount in &self.mounts {
                match filesystem(mount) {
                    Ok(fields) => records.push(record(&now, &host, "filesystem", fields)),
                    Err(e) => {
                        cx.telemetry.error("sample");
                        cx.telemetry.warn_limited(
                            "filesystem",
                            &format!("cannot sample {}: {e}", mount.display()),
                        );
                    }
                }
            }
            if self.memory {
                match std::fs::read_to_string("/proc/meminfo").map(|text| memory(&text)) {
                    Ok(Some(fields)) => records.push(record(&now, &host, "memory", fields)),
                    Ok(None) => cx
                        .telemetry
                        .warn_limited("memory", "cannot parse /proc/meminfo"),
                    Err(e) => cx
                        .telemetry
                        .warn_limited("memory", &format!("cannot read /proc/meminfo: {e}")),
                }
            }
            if !records.is_empty() {
                cx.telemetry.received(records.len());
                cx.telemetry.sent("default", records.len());
                cx.out.send(Batch::new(origin.clone(), records, None)).await;
            }
        }
    }
}

fn record(timestamp: &str, host: &str, metric: &str, fields: Vec<(&'static str, Value)>) -> Record {
    let mut record = Record::new();
    record.insert("timestamp".into(), timestamp.into());
    record.insert("event".into(), "host_metrics".into());
    record.insert("metric".into(), metric.into());
    record.insert("host".into(), host.into());
    for (k, v) in fields {
        record.insert(k.into(), v);
    }
    record
}

fn ratios(total: u64, available: u64) -> [(&'static str, Value); 2] {
    let free = if total == 0 {
        0.0
    } else {
        available as f64 / total as f64
    };
    [
        ("free_ratio", free.into()),
        ("used_ratio", (1.0 - free).into()),
    ]
}

fn filesystem(mount: &Path) -> std::io::Result<Vec<(&'static str, Value)>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(mount.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = stat.f_frsize as u64;
    let total = stat.f_blocks as u64 * block;
    let free = stat.f_bfree as u64 * block;
    let available = stat.f_bavail as u64 * block;
    let mut fields = vec![
        ("mount", Value::from(mount.display().to_string())),
        ("total_bytes", total.into()),
        ("free_bytes", free.into()),
        ("available_bytes", available.into()),
        ("used_bytes", total.saturating_sub(free).into()),
    ];
    fields.extend(ratios(total, available));
    Ok(fields)
}

/// Parses `/proc/meminfo` (values in kB).
fn memory(meminfo: &str) -> Option<Vec<(&'static str, Value)>> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let total = field("MemTotal")?;
    let free = field("MemFree")?;
    let available = field("MemAvailable").unwrap_or(free);
    let mut fields = vec![
        ("total_bytes", Value::from(total)),
        ("free_bytes", free.into()),
        ("available_bytes", available.into()),
        ("used_bytes", total.saturating_sub(available).into()),
    ];
    fields.extend(ratios(total, available));
    Some(fields)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_into_bytes_and_ratios() {
        let text = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n";
        let fields: serde_json::Map<String, Value> = memory(text)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(fields["total_bytes"], 1_024_000);
        assert_eq!(fields["available_bytes"], 256_000);
        assert_eq!(fields["free_ratio"], 0.25);
        assert_eq!(fields["used_ratio"], 0.75);
        assert!(memory("garbage").is_none());
    }

    #[test]
    fn the_root_filesystem_can_be_sampled() {
        let fields: serde_json::Map<String, Value> = filesystem(Path::new("/"))
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let total = fields["total_bytes"].as_u64().unwrap();
        let available = fields["available_bytes"].as_u64().unwrap();
        assert!(total > 0 && available <= total);
        let ratio = fields["free_ratio"].as_f64().unwrap();
        assert!((ratio - available as f64 / total as f64).abs() < 1e-9);
        assert!(filesystem(Path::new("/definitely/not/a/mount")).is_err());
    }
}
