//! The smallest useful plugin: it stamps every record with fields from its config and
//! counts records by level. `README.md` shows it; `sluice plugin new` starts from it.

use sluice_sdk::prelude::*;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Fields added to every record, e.g. `{env: prod}`.
    pub add: Map<String, Value>,
    /// Records at this level are dropped (e.g. `DEBUG`).
    pub drop_level: Option<String>,
}

#[transform]
pub fn tag(mut record: Record, config: &Config) -> Option<Record> {
    let level = record.get_str("level").unwrap_or("NONE").to_owned();
    if config.drop_level.as_deref() == Some(level.as_str()) {
        return None;
    }
    counter("example_records_total", &[("level", &level)], 1.0);
    for (key, value) in &config.add {
        record.set(key, value.clone());
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::{testing, MetricKind};

    #[test]
    fn tags_counts_and_drops() {
        let config = json!({"add": {"env": "prod", "team.owner": "grid"}, "drop_level": "DEBUG"});
        let out = testing::run::<Tag>(
            config,
            [
                record!({"message": "a", "level": "INFO"}),
                record!({"message": "b", "level": "DEBUG"}),
            ],
        );
        assert_eq!(out.error, None);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].get_str("env"), Some("prod"));
        assert_eq!(out.records[0].get_str("team.owner"), Some("grid"));
        assert_eq!(out.metrics.len(), 1);
        assert_eq!(out.metrics[0].kind, MetricKind::Counter);
        assert_eq!(out.metrics[0].labels["level"], "INFO");
    }

    #[test]
    fn unknown_config_key_is_refused_with_its_name() {
        let err = testing::Harness::<Tag>::new(json!({"ad": {}}))
            .err()
            .unwrap();
        assert!(err.contains("unknown field `ad`"), "{err}");
    }

    #[test]
    fn no_config_block_means_defaults() {
        let out = testing::run::<Tag>((), [record!({"message": "x"})]);
        assert_eq!(out.records, vec![record!({"message": "x"})]);
    }
}
