//! Shadow rollout: a transform's `canary:` plugin sees a copy of a sample of the batches
//! the live version processes; its records are compared with the live version's, the
//! differences are counted and a few are logged, and nothing it produces is shipped.
//! A team sees what a new filter would change before it goes live; promoting it is a
//! config change (`plugin:` ← the canary's) and a reload.

use crate::event::Record;
use crate::plugin::{
    encode_config, Grants, Limits, LoadError, PluginEngine, PluginInstance, PluginModule,
};
use crate::telemetry::ComponentTelemetry;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Path of the candidate `.wasm`, relative to the pipeline file that names it.
    pub plugin: PathBuf,
    #[serde(default)]
    pub sha256: Option<String>,
    /// The candidate's settings; the live version's `config` when absent.
    #[serde(default)]
    pub config: Option<Value>,
    /// Share of batches copied to the canary, 0 < sample ≤ 1: its cost lands on the
    /// transform's thread.
    #[serde(default = "default_sample")]
    pub sample: f64,
}

fn default_sample() -> f64 {
    0.1
}

/// A running canary.
pub struct Canary {
    pub module: PluginModule,
    pub instance: Option<PluginInstance>,
    pub config: Vec<u8>,
    pub limits: Limits,
    pub grants: Grants,
    /// Every `every`-th batch goes to the canary.
    pub every: u64,
    pub seen: u64,
}

/// How many differing records a batch may log (the rest are only counted).
const LOGGED_PER_BATCH: usize = 3;

impl Canary {
    /// Loads and initialises the canary of transform `name`, configured like `live`
    /// unless it has its own `config`.
    pub fn load(
        engine: &PluginEngine,
        name: &str,
        live: &super::TransformConfig,
    ) -> Result<Option<Self>, LoadError> {
        let Some(canary) = &live.canary else {
            return Ok(None);
        };
        let label = format!("{name} (canary)");
        let module = engine.load(&label, &canary.plugin, canary.sha256.as_deref())?;
        let config = encode_config(canary.config.as_ref().unwrap_or(&live.config));
        let instance = PluginInstance::new(engine, &module, live.limits, &live.grants, &config)?;
        tracing::info!(plugin = %name, sha256 = %module.sha256, sample = canary.sample, "canary loaded: it sees a copy of sampled batches; nothing it produces is shipped");
        Ok(Some(Self {
            module,
            instance: Some(instance),
            config,
            limits: live.limits,
            grants: live.grants.clone(),
            every: Self::every(canary.sample),
            seen: 0,
        }))
    }

    pub fn every(sample: f64) -> u64 {
        (1.0 / sample.clamp(f64::MIN_POSITIVE, 1.0))
            .round()
            .max(1.0) as u64
    }

    /// Whether this batch is in the sample.
    pub fn sampled(&mut self) -> bool {
        self.seen += 1;
        (self.seen - 1).is_multiple_of(self.every)
    }

    /// Runs the copy of a batch the live version turned into `live`, and reports how the
    /// canary's records differ. Never fails the live path.
    pub fn compare(
        &mut self,
        engine: &PluginEngine,
        encoded: &[u8],
        live: &[Record],
        telemetry: &ComponentTelemetry,
    ) {
        if self.instance.is_none() {
            match PluginInstance::new(
                engine,
                &self.module,
                self.limits,
                &self.grants,
                &self.config,
            ) {
                Ok(fresh) => self.instance = Some(fresh),
                Err(e) => {
                    telemetry.canary("error", 1);
                    telemetry.warn_limited(
                        "canary",
                        &format!("canary of `{}` cannot start: {e}", telemetry.name),
                    );
                    return;
                }
            }
        }
        let instance = self.instance.as_mut().expect("set above");
        let response = match instance.process(encoded) {
            Ok(response) if response.error.is_none() => response,
            Ok(response) => {
                telemetry.canary("error", 1);
                telemetry.warn_limited(
                    "canary",
                    &format!(
                        "canary of `{}` reported an error: {}",
                        telemetry.name,
                        response.error.unwrap_or_default()
                    ),
                );
                return;
            }
            Err(e) => {
                if e.poisons_instance() {
                    self.instance = None;
                }
                telemetry.canary("error", 1);
                telemetry.warn_limited(
                    "canary",
                    &format!("canary of `{}` failed: {e}", telemetry.name),
                );
                return;
            }
        };
        let (same, different, logged) = diff(live, &response.records);
        telemetry.canary("same", same);
        telemetry.canary("different", different);
        for line in logged {
            telemetry.warn_limited(
                "canary_diff",
                &format!("canary of `{}` differs from live: {line}", telemetry.name),
            );
        }
    }
}

/// Counts records equal and different, position by position (a record only one side
/// has counts as different), and describes a few differences by field path only: values
/// are never logged, since they may be what redaction exists to hide.
fn diff(live: &[Record], canary: &[Record]) -> (usize, usize, Vec<String>) {
    let (mut same, mut different, mut logged) = (0, 0, Vec::new());
    for i in 0..live.len().max(canary.len()) {
        let description = match (live.get(i), canary.get(i)) {
            (Some(a), Some(b)) if a == b => {
                same += 1;
                continue;
            }
            (Some(a), Some(b)) => {
                let mut paths = Vec::new();
                changed_paths(
                    &Value::Object(a.clone()),
                    &Value::Object(b.clone()),
                    "",
                    &mut paths,
                );
                format!("record {i}: fields {}", paths.join(", "))
            }
            (Some(_), None) => format!("record {i}: live kept it, the canary dropped it"),
            (None, Some(_)) => format!("record {i}: only the canary produced it"),
            (None, None) => unreachable!("index below the longer length"),
        };
        different += 1;
        if logged.len() < LOGGED_PER_BATCH {
            logged.push(description);
        }
    }
    (same, different, logged)
}

fn changed_paths(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match (x.get(key), y.get(key)) {
                    (Some(u), Some(v)) if u == v => {}
                    (Some(u), Some(v)) => changed_paths(u, v, &path, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(if prefix.is_empty() {
            "(record)".into()
        } else {
            prefix.into()
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Record {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn diff_counts_and_names_changed_fields_without_values() {
        let live = vec![
            rec(json!({"message": "key [REDACTED:api_key]", "n": 1})),
            rec(json!({"message": "same", "n": 2})),
            rec(json!({"message": "dropped by canary", "n": 3})),
        ];
        let canary = vec![
            rec(json!({"message": "key AKIA1234SECRET", "n": 1, "extra": {"a": 1}})),
            rec(json!({"message": "same", "n": 2})),
        ];
        let (same, different, logged) = diff(&live, &canary);
        assert_eq!((same, different), (1, 2));
        assert_eq!(logged[0], "record 0: fields extra, message");
        assert_eq!(logged[1], "record 2: live kept it, the canary dropped it");
        assert!(logged
            .iter()
            .all(|l| !l.contains("AKIA") && !l.contains("REDACTED")));
    }

    #[test]
    fn nested_changes_are_named_by_path() {
        let (_, _, logged) = diff(
            &[rec(json!({"order": {"id": 1, "side": "BUY"}}))],
            &[rec(json!({"order": {"id": 1, "side": "SELL"}}))],
        );
        assert_eq!(logged, vec!["record 0: fields order.side"]);
    }

    #[test]
    fn sampling_takes_every_nth_batch_starting_with_the_first() {
        let every = Canary::every(0.25);
        assert_eq!(every, 4);
        assert_eq!(Canary::every(1.0), 1);
        assert_eq!(Canary::every(0.1), 10);
    }
}
