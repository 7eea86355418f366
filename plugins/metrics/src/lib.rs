//! Turns structured records into Prometheus metric updates, by rules declared in the
//! config, and passes every record on unchanged. `docs/plugins/metrics.md` describes the
//! rule language and the default trading rule set.
//!
//! Rules compile at init into an index keyed by the record's `event` field, so a record is
//! checked only against rules that can match it. Updates are aggregated per batch: one
//! counter or gauge update per series, however many records hit it; histogram
//! observations stay one per record, since buckets need each value.

mod defaults;
mod fields;
mod rules;
mod series;
mod time;

use fields::Fields;
use rules::{Item, ItemKey, LabelSource, LabelSpec, Limits, Rule, RuleSet};
use serde::{Deserialize, Serialize};
use series::Series;
use sluice_sdk::prelude::*;
use sluice_sdk::MetricKind;
use std::io::Write as _;

pub use rules::{OVERFLOW_METRIC, SKIPPED_METRIC};

/// The transform's `config:` block. Values are read by hand after serde has checked the
/// keys, so a wrong type is reported with its key (serde_json's own messages name none).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The rules, in order (a list). Absent: the default trading rule set. `[]`: no metrics.
    #[serde(default)]
    pub rules: Option<Value>,
    /// Also apply the default trading rules, before `rules`. Default: true when `rules` is
    /// absent, false otherwise.
    #[serde(default)]
    pub include_default_rules: Option<Value>,
    /// Distinct label sets kept per metric (default 1000); later new ones are dropped and
    /// counted in `metrics_series_overflow_total{metric}`. A rule's `max_series` overrides it.
    #[serde(default)]
    pub max_series_per_metric: Option<Value>,
    /// Longest label value in bytes (default 128), cut at a character boundary; a label's
    /// `max_len` overrides it.
    #[serde(default)]
    pub max_label_length: Option<Value>,
    /// Seconds between re-sends of every gauge's last value (default 60; 0 = never), so
    /// the Prometheus sink's idle-gauge expiry does not drop a state that rarely changes.
    #[serde(default)]
    pub refresh_gauges_seconds: Option<Value>,
}

/// Reads one config value as `T`; absent or null gives `None`.
fn typed<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Option<Value>,
) -> Result<Option<T>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Error(format!("{key}: {e}"))),
    }
}

fn at_least_one(key: &str, value: Option<Value>, default: usize) -> Result<usize, Error> {
    match typed::<usize>(key, value)? {
        None => Ok(default),
        Some(0) => Err(Error(format!("{key}: must be at least 1"))),
        Some(n) => Ok(n),
    }
}

pub struct Metrics {
    rules: RuleSet,
    /// One per `rules.metrics`, same index.
    series: Vec<Series>,
    /// Reused for every series key, so matching allocates only for new series.
    key: Vec<u8>,
    /// `refresh_gauges_seconds` in nanoseconds; 0 = never.
    refresh_ns: i64,
    /// Host time of the last refresh (0 until the first tick).
    refreshed_at: i64,
}

impl Plugin for Metrics {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        let limits = Limits {
            max_series_per_metric: at_least_one(
                "max_series_per_metric",
                config.max_series_per_metric,
                1000,
            )?,
            max_label_length: at_least_one("max_label_length", config.max_label_length, 128)?,
        };
        let refresh_seconds: u64 =
            typed("refresh_gauges_seconds", config.refresh_gauges_seconds)?.unwrap_or(60);
        let user_rules: Option<Vec<Value>> = typed("rules", config.rules)?;
        let include_defaults = typed("include_default_rules", config.include_default_rules)?
            .unwrap_or(user_rules.is_none());
        let mut all = if include_defaults {
            defaults::rules()
        } else {
            Vec::new()
        };
        let defaults_len = all.len();
        all.extend(user_rules.unwrap_or_default());
        let rules = rules::compile(&all, &limits).map_err(|e| {
            // Users number their own rules; the defaults precede them.
            Error(renumber(&e, defaults_len))
        })?;
        let series = rules.metrics.iter().cloned().map(Series::new).collect();
        Ok(Self {
            rules,
            series,
            key: Vec::with_capacity(256),
            refresh_ns: i64::try_from(refresh_seconds.saturating_mul(1_000_000_000))
                .unwrap_or(i64::MAX),
            refreshed_at: 0,
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        self.process_batch(vec![record], out)
    }

    fn process_batch(&mut self, batch: Vec<Record>, out: &mut Output) -> Result<(), Error> {
        let mut fields = Fields::new(&self.rules.paths);
        for record in &batch {
            fields.start(record.fields());
            match_record(&self.rules, &mut self.series, &mut self.key, &mut fields);
        }
        for record in batch {
            out.push(record);
        }
        self.flush();
        Ok(())
    }

    /// Gauges such as `trading_ws_connected` or a position change only on events, hours
    /// apart; re-sending them keeps them alive in a sink that expires idle gauges.
    fn tick(&mut self, now_ns: i64, _out: &mut Output) -> Result<(), Error> {
        if self.refresh_ns == 0 {
            return Ok(());
        }
        if self.refreshed_at == 0 {
            self.refreshed_at = now_ns;
        }
        if now_ns.saturating_sub(self.refreshed_at) < self.refresh_ns {
            return Ok(());
        }
        self.refreshed_at = now_ns;
        for series in &self.series {
            series.refresh(&mut emit);
        }
        Ok(())
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        let state = Snapshot {
            version: SNAPSHOT_VERSION,
            metrics: self
                .series
                .iter()
                .filter(|s| s.len() > 0)
                .map(|s| SnapshotMetric {
                    name: s.def.name.clone(),
                    labels: s.def.label_names.clone(),
                    series: s.label_sets(),
                    values: s.last_values(),
                })
                .collect(),
        };
        serde_json::to_vec(&state).ok()
    }

    /// Keeps the cardinality cap across hot reloads: without this, every reload would let
    /// up to `max_series` new label sets into Prometheus.
    fn restore(&mut self, state: &[u8]) -> Result<(), Error> {
        let state: Snapshot = serde_json::from_slice(state)
            .map_err(|e| Error(format!("cannot read the previous instance's series: {e}")))?;
        if state.version != SNAPSHOT_VERSION {
            return Ok(());
        }
        for metric in state.metrics {
            let Some(series) = self
                .series
                .iter_mut()
                .find(|s| s.def.name == metric.name && s.def.label_names == metric.labels)
            else {
                continue;
            };
            for (i, set) in metric.series.iter().enumerate() {
                if set.len() == metric.labels.len() {
                    series.restore(set, metric.values.get(i).copied().flatten());
                }
            }
        }
        Ok(())
    }
}

export_plugin!(Metrics);

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    metrics: Vec<SnapshotMetric>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotMetric {
    name: String,
    labels: Vec<String>,
    series: Vec<Vec<String>>,
    /// The last value sent per series (gauges), in the order of `series`.
    #[serde(default)]
    values: Vec<Option<f64>>,
}

/// `rules[N]` in a compile error counts the default rules too: rewrite each reference so
/// it points into the list the user wrote, or names the default rule.
fn renumber(message: &str, defaults_len: usize) -> String {
    if defaults_len == 0 {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("rules[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "rules[".len()..];
        match after
            .split_once(']')
            .and_then(|(n, tail)| Some((n.parse::<usize>().ok()?, tail)))
        {
            Some((n, tail)) if n >= defaults_len => {
                out.push_str(&format!("rules[{}]", n - defaults_len));
                rest = tail;
            }
            Some((n, tail)) => {
                out.push_str(&format!("default_rules[{n}]"));
                rest = tail;
            }
            None => {
                out.push_str("rules[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Applies every rule that can match the current record of `fields`. A free function
/// rather than a method so the rules (and the path cache borrowing them) stay borrowed
/// while the series change.
fn match_record<'a>(
    rules: &'a RuleSet,
    all: &mut [Series],
    key: &mut Vec<u8>,
    fields: &mut Fields<'a>,
) {
    let event = fields.record().get("event").and_then(Value::as_str);
    for &index in rules.candidates(event) {
        let rule = &rules.rules[index];
        if !rule.conds.iter().all(|c| c.holds(fields)) {
            continue;
        }
        let series = &mut all[rule.metric];
        let Some(path) = &rule.for_each else {
            apply(rule, series, key, fields, None);
            continue;
        };
        match path.resolve(fields, None) {
            Some(Value::Array(items)) => {
                for (i, value) in items.iter().enumerate() {
                    let item = Item {
                        value,
                        key: ItemKey::Index(i),
                    };
                    apply(rule, series, key, fields, Some(item));
                }
            }
            Some(Value::Object(map)) => {
                for (k, value) in map {
                    let item = Item {
                        value,
                        key: ItemKey::Key(k),
                    };
                    apply(rule, series, key, fields, Some(item));
                }
            }
            _ => series.skipped += 1,
        }
    }
}

impl Metrics {
    fn flush(&mut self) {
        for series in &mut self.series {
            series.flush(&mut emit);
        }
        for series in &mut self.series {
            let name = series.def.name.as_str();
            if series.overflowed > 0 {
                counter(
                    OVERFLOW_METRIC,
                    &[("metric", name)],
                    series.overflowed as f64,
                );
                if !series.warned {
                    series.warned = true;
                    log(
                        LogLevel::Warn,
                        format!(
                            "metric `{name}` reached its limit of {} label sets; new ones are dropped and counted in {OVERFLOW_METRIC}",
                            series.def.max_series
                        ),
                    );
                }
                series.overflowed = 0;
            }
            if series.skipped > 0 {
                counter(SKIPPED_METRIC, &[("metric", name)], series.skipped as f64);
                series.skipped = 0;
            }
        }
    }
}

/// Hands one update to the SDK, which sends it with the call's response.
fn emit(kind: MetricKind, name: &str, labels: &[(&str, &str)], value: f64) {
    match kind {
        MetricKind::Counter => counter(name, labels, value),
        MetricKind::Gauge => gauge(name, labels, value),
        MetricKind::GaugeAdd => gauge_add(name, labels, value),
        MetricKind::Histogram => observe(name, labels, value),
    }
}

/// Applies a rule that matched to one record (or one `for_each` item of it).
fn apply<'a>(
    rule: &Rule,
    series: &mut Series,
    key: &mut Vec<u8>,
    fields: &mut Fields<'a>,
    item: Option<Item<'a>>,
) {
    let value = match rule.value.eval(fields, item) {
        Some(v) if !(series.def.kind == MetricKind::Counter && v < 0.0) => v,
        _ => {
            series.skipped += 1;
            return;
        }
    };
    key.clear();
    for label in &rule.labels {
        series::push_value(key, |buf| write_label(buf, label, fields, item));
    }
    series.update(key, value);
}

/// A missing field, or one holding a map or list, gives an empty value: every series of a
/// metric keeps the same label names, which Prometheus queries rely on.
fn write_label<'a>(
    buf: &mut Vec<u8>,
    spec: &LabelSpec,
    fields: &mut Fields<'a>,
    item: Option<Item<'a>>,
) {
    match &spec.source {
        LabelSource::Literal(text) => buf.extend_from_slice(text.as_bytes()),
        LabelSource::Key => match item.map(|i| i.key) {
            Some(ItemKey::Key(k)) => write_text(buf, k, spec),
            Some(ItemKey::Index(i)) => {
                let _ = write!(buf, "{i}");
            }
            None => {}
        },
        LabelSource::Field(path) => match path.resolve(fields, item) {
            Some(Value::String(s)) => write_text(buf, s, spec),
            Some(Value::Number(n)) => {
                let _ = write!(buf, "{n}");
            }
            Some(Value::Bool(b)) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
            _ => {}
        },
    }
}

fn write_text(buf: &mut Vec<u8>, text: &str, spec: &LabelSpec) {
    let start = buf.len();
    if spec.mask_digits {
        mask_digits(buf, text.as_bytes());
    } else {
        buf.extend_from_slice(&text.as_bytes()[..text.len().min(spec.max_len + 4)]);
    }
    if buf.len() - start > spec.max_len {
        let mut end = start + spec.max_len;
        // Back up to the start of the character that straddles the limit.
        while end > start && buf[end] & 0xC0 == 0x80 {
            end -= 1;
        }
        buf.truncate(end);
    }
}

/// Replaces each number (digits, with `.`, `,`, `_` or `:` between digits) by `#`:
/// `stop px of 67516.0 was in the market` becomes `stop px of # was in the market`.
fn mask_digits(buf: &mut Vec<u8>, text: &[u8]) {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            buf.push(text[i]);
            i += 1;
            continue;
        }
        i += 1;
        loop {
            match text.get(i) {
                Some(b) if b.is_ascii_digit() => i += 1,
                Some(b'.' | b',' | b'_' | b':')
                    if text.get(i + 1).is_some_and(u8::is_ascii_digit) =>
                {
                    i += 2
                }
                _ => break,
            }
        }
        buf.push(b'#');
    }
}

#[cfg(test)]
mod tests;
