//! Helpers shared by the native tests: records stamped at a chosen second, and a harness
//! that returns only the alert events of each call.
#![allow(dead_code)]

use serde_json::{json, Value};
use sluice_plugin_alerts::Alerts;
use sluice_sdk::testing::Harness;
use sluice_sdk::{AlertEvent, AlertStatus, Record};

/// 2024-06-03T00:00:00Z, the day the fixture logs start.
pub const T0_S: i64 = 1_717_372_800;
pub const S: i64 = 1_000_000_000;

pub fn ns(sec: f64) -> i64 {
    T0_S * S + (sec * 1e9).round() as i64
}

/// RFC 3339 UTC with nanoseconds, as the host writes it, for `T0 + sec`.
pub fn ts(sec: f64) -> String {
    let total = ns(sec);
    let (days, rem) = (total.div_euclid(86_400 * S), total.rem_euclid(86_400 * S));
    let (y, m, d) = civil_from_days(days);
    let secs = rem / S;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % S
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A record at `T0 + sec` with the given fields.
pub fn rec(sec: f64, fields: Value) -> Record {
    let mut r = Record::from_value(fields).expect("a JSON object");
    r.set("timestamp", ts(sec));
    r
}

pub struct H {
    pub h: Harness<Alerts>,
}

impl H {
    pub fn new(config: Value) -> Self {
        Self {
            h: Harness::new(config).unwrap_or_else(|e| panic!("init failed: {e}")),
        }
    }

    pub fn rules(rules: Value) -> Self {
        Self::new(json!({ "rules": rules }))
    }

    /// Processes records; checks they pass through unchanged; returns the alerts.
    pub fn send(&mut self, records: Vec<Record>) -> Vec<AlertEvent> {
        let out = self.h.process(records.clone());
        assert_eq!(out.error, None);
        assert_eq!(out.records, records, "records must pass through unchanged");
        out.alerts
    }

    pub fn one(&mut self, record: Record) -> Vec<AlertEvent> {
        self.send(vec![record])
    }

    pub fn tick(&mut self, sec: f64) -> Vec<AlertEvent> {
        let out = self.h.tick(ns(sec));
        assert_eq!(out.error, None);
        out.alerts
    }
}

/// `(name, status)` pairs, for compact assertions.
pub fn brief(alerts: &[AlertEvent]) -> Vec<(String, &'static str)> {
    alerts
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                match a.status {
                    AlertStatus::Firing => "firing",
                    AlertStatus::Resolved => "resolved",
                },
            )
        })
        .collect()
}

pub fn firing(name: &str) -> Vec<(String, &'static str)> {
    vec![(name.to_owned(), "firing")]
}

pub fn resolved(name: &str) -> Vec<(String, &'static str)> {
    vec![(name.to_owned(), "resolved")]
}

pub fn none() -> Vec<(String, &'static str)> {
    Vec::new()
}
