//! The transform's `config:` block, validated once at init into [`Settings`].
//!
//! Every problem is collected before init fails, each with the key it is about, so a user
//! fixes a config in one pass; type errors carry their path through `serde_path_to_error`.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The YAML `config:` of an `enrich` transform. Every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Deployment environment written to `env` (e.g. `prod`).
    pub env: Option<String>,
    /// Host name written to `host`. With `host_env` it is the fallback.
    pub host: Option<String>,
    /// Environment variable holding the host name (e.g. `HOSTNAME`), read once at init.
    /// The host passes only variables listed in the transform's `grants.env`.
    pub host_env: Option<String>,
    /// Service name written to `service` (e.g. `hedge-grid`).
    pub service: Option<String>,
    /// Version of the deployed bot written to `version`.
    pub version: Option<String>,
    /// Commit of the deployed bot written to `git_sha`.
    pub git_sha: Option<String>,
    /// Field that carries the correlation id (a path: `trace.id` nests).
    pub correlation_field: String,
    /// Whether to add `event_fields`, the full parsed argument map of an event. It is the
    /// largest part of the output; turn it off when nothing downstream reads it.
    pub event_fields: bool,
    /// Bounds of the submit → accept/fill matching.
    pub latency: LatencyConfig,
    /// Tables joined into `lookup.<name>`.
    pub lookups: Vec<LookupConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            env: None,
            host: None,
            host_env: None,
            service: None,
            version: None,
            git_sha: None,
            correlation_field: "correlation_id".to_owned(),
            event_fields: true,
            latency: LatencyConfig::default(),
            lookups: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// An order not heard of for this long (event time, or host time between ticks) is
    /// forgotten and counted as a `ttl` eviction.
    pub ttl_seconds: u64,
    /// At most this many orders are tracked; beyond it the least recently active is
    /// forgotten and counted as a `capacity` eviction.
    pub max_entries: usize,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: 300,
            max_entries: 100_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// The output field is `lookup.<name>`.
    pub name: String,
    /// Path of the field whose value (as text) is looked up, e.g. `order.instrument_id`.
    pub key: String,
    /// Key → value; values may be any YAML value.
    pub table: Map<String, Value>,
    /// Written when the key field is present but not in the table.
    #[serde(default)]
    pub default: Option<Value>,
}

/// The validated, ready-to-use form of [`Config`].
#[derive(Debug)]
pub struct Settings {
    /// Top-level fields written on every record that does not have them yet.
    pub stamp: Vec<(&'static str, Value)>,
    pub correlation_field: String,
    pub event_fields: bool,
    pub ttl_ns: i64,
    pub max_entries: usize,
    pub lookups: Vec<Lookup>,
    /// Said once at init through the host's log.
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub struct Lookup {
    pub name: String,
    pub key: String,
    pub table: HashMap<String, Value>,
    pub default: Option<Value>,
}

/// Parses and validates the raw `config:` block (`Value::Object` when absent).
pub fn settings(raw: Value, env_var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let config: Config = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("invalid config: {}", e.inner())
        } else {
            format!("invalid config: {path}: {}", e.inner())
        }
    })?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut stamp = Vec::new();

    let mut text = |key: &'static str, value: &Option<String>, errors: &mut Vec<String>| match value
        .as_deref()
    {
        Some("") => errors.push(format!(
            "{key}: must not be empty (leave the key out to add no `{key}` field)"
        )),
        Some(v) => stamp.push((key, Value::String(v.to_owned()))),
        None => {}
    };
    text("env", &config.env, &mut errors);
    text("service", &config.service, &mut errors);
    text("version", &config.version, &mut errors);
    text("git_sha", &config.git_sha, &mut errors);
    let host = match config.host_env.as_deref() {
        Some("") => {
            errors.push("host_env: must name an environment variable".to_owned());
            None
        }
        Some(var) => match env_var(var).filter(|v| !v.is_empty()) {
            Some(value) => Some(value),
            None if config.host.is_some() => {
                warnings.push(format!(
                    "host_env: environment variable {var} is not set or not granted; using `host`"
                ));
                config.host.clone()
            }
            None => {
                errors.push(format!(
                    "host_env: environment variable {var} is not set or not granted (list it \
                     in the transform's `grants: {{env: [{var}]}}`, or set `host` as a fallback)"
                ));
                None
            }
        },
        None => config.host.clone(),
    };
    text("host", &host, &mut errors);

    if config.correlation_field.is_empty() || config.correlation_field.split('.').any(str::is_empty)
    {
        errors.push(format!(
            "correlation_field: {:?} is not a field path",
            config.correlation_field
        ));
    }
    if config.latency.ttl_seconds == 0 {
        errors.push("latency.ttl_seconds: must be at least 1".to_owned());
    }
    // Beyond ~292 years the nanoseconds overflow; nobody means that.
    if config.latency.ttl_seconds > 10 * 365 * 86_400 {
        errors.push("latency.ttl_seconds: must be at most ten years".to_owned());
    }
    if config.latency.max_entries == 0 {
        errors.push("latency.max_entries: must be at least 1".to_owned());
    }

    let mut names = HashSet::new();
    let mut lookups = Vec::new();
    for (i, l) in config.lookups.into_iter().enumerate() {
        if l.name.is_empty() || l.name.contains('.') {
            errors.push(format!(
                "lookups[{i}].name: {:?} must be non-empty and contain no '.'",
                l.name
            ));
        } else if !names.insert(l.name.clone()) {
            errors.push(format!(
                "lookups[{i}].name: {:?} is used by an earlier lookup",
                l.name
            ));
        }
        if l.key.is_empty() || l.key.split('.').any(str::is_empty) {
            errors.push(format!("lookups[{i}].key: {:?} is not a field path", l.key));
        }
        lookups.push(Lookup {
            name: l.name,
            key: l.key,
            table: l.table.into_iter().collect(),
            default: l.default,
        });
    }

    if !errors.is_empty() {
        return Err(format!("invalid config: {}", errors.join("; ")));
    }
    Ok(Settings {
        stamp,
        correlation_field: config.correlation_field,
        event_fields: config.event_fields,
        ttl_ns: config.latency.ttl_seconds as i64 * 1_000_000_000,
        max_entries: config.latency.max_entries,
        lookups,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults() {
        let s = settings(json!({}), no_env).unwrap();
        assert!(s.stamp.is_empty());
        assert_eq!(s.correlation_field, "correlation_id");
        assert!(s.event_fields);
        assert_eq!(s.ttl_ns, 300_000_000_000);
        assert_eq!(s.max_entries, 100_000);
        assert!(s.lookups.is_empty());
    }

    #[test]
    fn type_errors_name_their_key() {
        let e = settings(json!({"latency": {"ttl_seconds": "5m"}}), no_env).unwrap_err();
        assert!(
            e.starts_with("invalid config: latency.ttl_seconds: invalid type"),
            "{e}"
        );
        let e = settings(json!({"lookups": [{"name": "a", "key": "b"}]}), no_env).unwrap_err();
        assert!(
            e.contains("lookups[0]") && e.contains("missing field `table`"),
            "{e}"
        );
        let e = settings(
            json!({"lookups": [{"name": "a", "key": "b", "table": {}, "dflt": 1}]}),
            no_env,
        )
        .unwrap_err();
        assert!(e.contains("unknown field `dflt`"), "{e}");
        let e = settings(json!({"enviroment": "prod"}), no_env).unwrap_err();
        assert!(e.contains("unknown field `enviroment`"), "{e}");
        let e = settings(json!({"latency": {"ttl": 5}}), no_env).unwrap_err();
        assert!(
            e.contains("latency") && e.contains("unknown field `ttl`"),
            "{e}"
        );
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let e = settings(
            json!({
                "env": "",
                "correlation_field": "a..b",
                "latency": {"ttl_seconds": 0, "max_entries": 0},
                "lookups": [
                    {"name": "x.y", "key": "k", "table": {}},
                    {"name": "t", "key": "", "table": {}},
                    {"name": "t", "key": "k", "table": {}}
                ]
            }),
            no_env,
        )
        .unwrap_err();
        for part in [
            "env: must not be empty",
            "correlation_field: \"a..b\"",
            "latency.ttl_seconds: must be at least 1",
            "latency.max_entries: must be at least 1",
            "lookups[0].name",
            "lookups[1].key",
            "lookups[2].name: \"t\" is used by an earlier lookup",
        ] {
            assert!(e.contains(part), "missing {part:?} in {e}");
        }
    }

    #[test]
    fn host_from_a_granted_env_var_with_fallback_and_error() {
        let env = |k: &str| (k == "HOSTNAME").then(|| "node-7".to_owned());
        let s = settings(json!({"host_env": "HOSTNAME", "host": "fallback"}), env).unwrap();
        assert_eq!(s.stamp, vec![("host", json!("node-7"))]);
        assert!(s.warnings.is_empty());

        let s = settings(json!({"host_env": "NOPE", "host": "fallback"}), env).unwrap();
        assert_eq!(s.stamp, vec![("host", json!("fallback"))]);
        assert!(s.warnings[0].contains("NOPE"));

        let e = settings(json!({"host_env": "NOPE"}), env).unwrap_err();
        assert!(
            e.contains("host_env: environment variable NOPE") && e.contains("grants"),
            "{e}"
        );
        let empty = |_: &str| Some(String::new());
        assert!(settings(json!({"host_env": "HOSTNAME"}), empty).is_err());
    }

    #[test]
    fn stamp_fields_in_order() {
        let s = settings(
            json!({"env": "prod", "host": "h", "service": "grid", "version": "1.2", "git_sha": "abc"}),
            no_env,
        )
        .unwrap();
        let keys: Vec<_> = s.stamp.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["env", "service", "version", "git_sha", "host"]);
    }
}
