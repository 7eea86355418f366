//! A plugin that misbehaves when a record asks it to, so tests can prove the host
//! contains every kind of plugin failure. `chaos: trap | loop | alloc | error` in a record
//! makes the whole batch fail that way; other records pass through tagged with `version`.
//! Not for production pipelines.

use sluice_sdk::prelude::*;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Written into every record as `plugin_version`, so tests can tell versions apart.
    pub version: String,
    /// Refuse to start, with this message.
    pub fail_init: Option<String>,
    /// Trap on every record: a build that starts but cannot process anything.
    pub trap: bool,
}

pub struct Chaos {
    config: Config,
}

impl Plugin for Chaos {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        if let Some(message) = &config.fail_init {
            return Err(Error(message.clone()));
        }
        Ok(Self { config })
    }

    fn process(&mut self, mut record: Record, out: &mut Output) -> Result<(), Error> {
        if self.config.trap {
            panic!("this build traps on every record");
        }
        match record.get_str("chaos") {
            Some("trap") => panic!("chaos asked for a trap"),
            Some("loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("alloc") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("error") => return Err(Error("chaos asked for an error".into())),
            _ => {}
        }
        record.set("plugin_version", self.config.version.as_str());
        out.push(record);
        Ok(())
    }
}

export_plugin!(Chaos);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{run, Harness};

    #[test]
    fn passes_records_tagged_and_reports_errors() {
        let out = run::<Chaos>(json!({"version": "v1"}), [record!({"n": 1})]);
        assert_eq!(out.records[0].get_str("plugin_version"), Some("v1"));
        let out = run::<Chaos>((), [record!({"n": 1}), record!({"chaos": "error"})]);
        assert_eq!(out.error.as_deref(), Some("chaos asked for an error"));
        assert!(out.records.is_empty());
    }

    #[test]
    fn init_can_be_told_to_fail() {
        let err = Harness::<Chaos>::new(json!({"fail_init": "no"})).err();
        assert_eq!(err.as_deref(), Some("no"));
    }
}
