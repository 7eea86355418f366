//! Per-metric series: which label sets are admitted (the cardinality cap) and what a batch
//! has accumulated for each, so one batch sends one update per series instead of one per
//! record.
//!
//! A series is identified by its label values encoded into one byte string (each value
//! length-prefixed, so no choice of values can collide). The hot path builds that key in a
//! reused buffer and allocates only when a new series is admitted.

use crate::fields::FastMap;
use crate::rules::MetricDef;
use sluice_sdk::MetricKind;

pub struct Series {
    pub def: MetricDef,
    ids: FastMap<Box<[u8]>, u32>,
    keys: Vec<Box<[u8]>>,
    /// Per series: this batch's sum (counters, gauge_add) or last value (gauges).
    acc: Vec<f64>,
    touched: Vec<bool>,
    /// Per series: the last value sent, for gauges that are refreshed.
    last: Vec<Option<f64>>,
    /// Series touched this batch, in first-touch order so output is deterministic.
    order: Vec<u32>,
    /// Observations of a histogram this batch: (series, value), in record order.
    observations: Vec<(u32, f64)>,
    /// Label sets refused by the cap this batch.
    pub overflowed: u64,
    /// Matches whose value was missing, not a number, or negative for a counter.
    pub skipped: u64,
    /// Whether the operator has been told this metric reached its cap (once per instance).
    pub warned: bool,
}

/// Appends one label value to a series key.
pub fn push_value(key: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = key.len();
    key.extend_from_slice(&[0; 4]);
    write(key);
    let len = (key.len() - start - 4) as u32;
    key[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// The label values of a series key, in the order they were pushed.
pub fn values(key: &[u8]) -> impl Iterator<Item = &str> {
    let mut rest = key;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let (value, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
        rest = tail;
        // Keys are built from `&str` pieces cut at character boundaries.
        Some(std::str::from_utf8(value).unwrap_or_default())
    })
}

impl Series {
    pub fn new(def: MetricDef) -> Self {
        Self {
            def,
            ids: FastMap::default(),
            keys: Vec::new(),
            acc: Vec::new(),
            touched: Vec::new(),
            last: Vec::new(),
            order: Vec::new(),
            observations: Vec::new(),
            overflowed: 0,
            skipped: 0,
            warned: false,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The id of the series with this key, admitting it if the cap allows.
    pub fn admit(&mut self, key: &[u8]) -> Option<u32> {
        if let Some(&id) = self.ids.get(key) {
            return Some(id);
        }
        if self.keys.len() >= self.def.max_series {
            return None;
        }
        let id = self.keys.len() as u32;
        self.ids.insert(key.into(), id);
        self.keys.push(key.into());
        self.acc.push(0.0);
        self.touched.push(false);
        self.last.push(None);
        Some(id)
    }

    /// Adds one matched value to the batch; `key` must have been built for this metric.
    pub fn update(&mut self, key: &[u8], value: f64) {
        let Some(id) = self.admit(key) else {
            self.overflowed += 1;
            return;
        };
        if self.def.kind == MetricKind::Histogram {
            self.observations.push((id, value));
            return;
        }
        let i = id as usize;
        if !self.touched[i] {
            self.touched[i] = true;
            self.order.push(id);
            self.acc[i] = 0.0;
        }
        match self.def.kind {
            MetricKind::Gauge => self.acc[i] = value,
            _ => self.acc[i] += value,
        }
    }

    /// Emits this batch's updates through `emit(kind, name, labels, value)` and resets.
    pub fn flush(&mut self, emit: &mut impl FnMut(MetricKind, &str, &[(&str, &str)], f64)) {
        let (def, keys) = (&self.def, &self.keys);
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(def.label_names.len());
        let updates = self
            .observations
            .iter()
            .copied()
            .chain(self.order.iter().map(|&id| (id, self.acc[id as usize])));
        for (id, value) in updates {
            labels.clear();
            labels.extend(
                def.label_names
                    .iter()
                    .map(String::as_str)
                    .zip(values(&keys[id as usize])),
            );
            emit(def.kind, &def.name, &labels, value);
        }
        for &id in &self.order {
            self.touched[id as usize] = false;
            if self.def.refresh {
                self.last[id as usize] = Some(self.acc[id as usize]);
            }
        }
        self.observations.clear();
        self.order.clear();
    }

    /// Re-sends the last value of every series of a refreshed gauge.
    pub fn refresh(&self, emit: &mut impl FnMut(MetricKind, &str, &[(&str, &str)], f64)) {
        if !self.def.refresh {
            return;
        }
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(self.def.label_names.len());
        for (key, last) in self.keys.iter().zip(&self.last) {
            let Some(value) = *last else { continue };
            labels.clear();
            labels.extend(
                self.def
                    .label_names
                    .iter()
                    .map(String::as_str)
                    .zip(values(key)),
            );
            emit(self.def.kind, &self.def.name, &labels, value);
        }
    }

    /// The last values sent, for a snapshot (`None` where unknown or not refreshed).
    pub fn last_values(&self) -> Vec<Option<f64>> {
        self.last.clone()
    }

    /// Every admitted label set, for a snapshot.
    pub fn label_sets(&self) -> Vec<Vec<String>> {
        self.keys
            .iter()
            .map(|k| values(k).map(str::to_owned).collect())
            .collect()
    }

    /// Re-admits a label set carried over from a previous instance, with its last value.
    pub fn restore(&mut self, label_values: &[String], last: Option<f64>) {
        let mut key = Vec::new();
        for v in label_values {
            push_value(&mut key, |k| k.extend_from_slice(v.as_bytes()));
        }
        if let Some(id) = self.admit(&key) {
            if self.def.refresh {
                self.last[id as usize] = last.filter(|v| v.is_finite());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(kind: MetricKind, max: usize) -> Series {
        Series::new(MetricDef {
            name: "m".into(),
            kind,
            label_names: vec!["a".into(), "b".into()],
            max_series: max,
            help: None,
            refresh: kind == MetricKind::Gauge,
        })
    }

    fn key(a: &str, b: &str) -> Vec<u8> {
        let mut k = Vec::new();
        push_value(&mut k, |k| k.extend_from_slice(a.as_bytes()));
        push_value(&mut k, |k| k.extend_from_slice(b.as_bytes()));
        k
    }

    fn flushed(s: &mut Series) -> Vec<(String, String, f64)> {
        let mut out = Vec::new();
        s.flush(&mut |_, _, labels, v| {
            out.push((labels[0].1.to_owned(), labels[1].1.to_owned(), v));
        });
        out
    }

    #[test]
    fn keys_never_collide() {
        assert_ne!(key("a\0", "b"), key("a", "\0b"));
        assert_ne!(key("ab", ""), key("a", "b"));
        assert_eq!(values(&key("x", "")).collect::<Vec<_>>(), ["x", ""]);
    }

    #[test]
    fn counters_sum_and_gauges_keep_the_last_value_per_batch() {
        let mut c = series(MetricKind::Counter, 10);
        c.update(&key("x", "1"), 1.0);
        c.update(&key("y", "1"), 5.0);
        c.update(&key("x", "1"), 2.0);
        assert_eq!(
            flushed(&mut c),
            [("x".into(), "1".into(), 3.0), ("y".into(), "1".into(), 5.0)]
        );
        assert!(flushed(&mut c).is_empty(), "a flush resets the batch");
        c.update(&key("y", "1"), 1.0);
        assert_eq!(flushed(&mut c), [("y".into(), "1".into(), 1.0)]);

        let mut g = series(MetricKind::Gauge, 10);
        g.update(&key("x", ""), 1.0);
        g.update(&key("x", ""), 0.0);
        assert_eq!(flushed(&mut g), [("x".into(), "".into(), 0.0)]);
    }

    #[test]
    fn refresh_resends_the_last_value_of_gauges_only() {
        let refreshed = |s: &Series| {
            let mut out = Vec::new();
            s.refresh(&mut |_, _, labels, v| out.push((labels[0].1.to_owned(), v)));
            out
        };
        let mut g = series(MetricKind::Gauge, 10);
        g.update(&key("x", ""), 1.0);
        assert!(refreshed(&g).is_empty(), "nothing sent yet");
        flushed(&mut g);
        g.update(&key("y", ""), 2.0);
        g.update(&key("x", ""), 0.0);
        flushed(&mut g);
        assert_eq!(refreshed(&g), [("x".into(), 0.0), ("y".into(), 2.0)]);

        let mut c = series(MetricKind::Counter, 10);
        c.update(&key("x", ""), 1.0);
        flushed(&mut c);
        assert!(refreshed(&c).is_empty());
    }

    #[test]
    fn histograms_keep_every_observation() {
        let mut h = series(MetricKind::Histogram, 10);
        h.update(&key("x", ""), 0.5);
        h.update(&key("x", ""), 0.25);
        assert_eq!(
            flushed(&mut h),
            [("x".into(), "".into(), 0.5), ("x".into(), "".into(), 0.25)]
        );
    }

    #[test]
    fn the_cap_admits_known_series_and_counts_new_ones() {
        let mut c = series(MetricKind::Counter, 2);
        c.update(&key("a", ""), 1.0);
        c.update(&key("b", ""), 1.0);
        c.update(&key("c", ""), 1.0);
        c.update(&key("d", ""), 1.0);
        c.update(&key("a", ""), 1.0);
        assert_eq!(c.overflowed, 2);
        assert_eq!(c.len(), 2);
        assert_eq!(flushed(&mut c).len(), 2);
    }

    #[test]
    fn restore_readmits_label_sets() {
        let mut a = series(MetricKind::Counter, 5);
        a.update(&key("x", "1"), 1.0);
        a.update(&key("y", ""), 1.0);
        let mut b = series(MetricKind::Counter, 5);
        for set in a.label_sets() {
            b.restore(&set, None);
        }
        assert_eq!(b.label_sets(), a.label_sets());
        assert_eq!(b.admit(&key("y", "")), Some(1));
    }
}
