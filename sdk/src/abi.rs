//! The wire types of plugin ABI v1, shared by the SDK and the host so both sides agree
//! on every field. `docs/plugin-abi.md` is the normative description.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The value `sluice_abi_version` returns. The host refuses any other.
pub const ABI_VERSION: i32 = 1;

/// What `sluice_init`, `sluice_process`, `sluice_tick` and `sluice_restore` return, as a
/// MessagePack map. Every key is optional; unknown keys are ignored so later minor
/// versions can add some.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricUpdate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// Set when the call failed as a whole: init refused its config, or process could not
    /// handle the batch. The host applies the transform's `on_error` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// `value` is added; it must not be negative.
    Counter,
    /// `value` replaces the current value.
    Gauge,
    /// `value` is added to the current value (may be negative).
    GaugeAdd,
    /// `value` is one observation.
    Histogram,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricUpdate {
    pub name: String,
    pub kind: MetricKind,
    pub value: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub name: String,
    pub status: AlertStatus,
    #[serde(default = "default_severity")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `runbook_url` and any others, as Alertmanager has them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Stable identity of the alert across firing and resolved; derived from name and
    /// labels when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
}

fn default_severity() -> String {
    "warning".to_owned()
}

impl AlertEvent {
    pub fn firing(name: impl Into<String>) -> Self {
        Self::new(name, AlertStatus::Firing)
    }

    pub fn resolved(name: impl Into<String>) -> Self {
        Self::new(name, AlertStatus::Resolved)
    }

    fn new(name: impl Into<String>, status: AlertStatus) -> Self {
        Self {
            name: name.into(),
            status,
            severity: default_severity(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            fingerprint: String::new(),
        }
    }

    pub fn severity(mut self, severity: impl Into<String>) -> Self {
        self.severity = severity.into();
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    pub fn summary(self, text: impl Into<String>) -> Self {
        self.annotation("summary", text)
    }

    pub fn runbook(self, url: impl Into<String>) -> Self {
        self.annotation("runbook_url", url)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// Packs a guest buffer into the `i64` the ABI's functions return: pointer in the high 32
/// bits, length in the low 32 bits; 0 means "nothing to say".
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

pub fn unpack(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_roundtrips_high_addresses() {
        for (p, l) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x8000_0000, 7)] {
            assert_eq!(unpack(pack(p, l)), (p, l));
        }
    }

    #[test]
    fn response_ignores_unknown_keys_and_defaults_missing_ones() {
        #[derive(Serialize)]
        struct Future {
            error: &'static str,
            shiny_new_key: u8,
        }
        let bytes = rmp_serde::to_vec_named(&Future {
            error: "bad",
            shiny_new_key: 1,
        })
        .unwrap();
        let r: Response = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(r.error.as_deref(), Some("bad"));
        assert!(r.records.is_empty());
    }
}
