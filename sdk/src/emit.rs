//! Side outputs a plugin emits while it processes: metric updates, alert events, log
//! lines. They are buffered per call and returned with the call's records, so emitting is a
//! plain function call with no context to thread through the plugin's code.

use crate::abi::{AlertEvent, LogLevel, LogLine, MetricKind, MetricUpdate};
use std::cell::RefCell;

#[derive(Default)]
pub(crate) struct Emitted {
    pub metrics: Vec<MetricUpdate>,
    pub alerts: Vec<AlertEvent>,
    pub logs: Vec<LogLine>,
}

thread_local! {
    static EMITTED: RefCell<Emitted> = RefCell::new(Emitted::default());
}

pub(crate) fn take() -> Emitted {
    EMITTED.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

fn metric(name: &str, kind: MetricKind, labels: &[(&str, &str)], value: f64) {
    let update = MetricUpdate {
        name: name.to_owned(),
        kind,
        value,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    EMITTED.with(|e| e.borrow_mut().metrics.push(update));
}

/// Adds `value` to a counter.
pub fn counter(name: &str, labels: &[(&str, &str)], value: f64) {
    metric(name, MetricKind::Counter, labels, value);
}

/// Sets a gauge.
pub fn gauge(name: &str, labels: &[(&str, &str)], value: f64) {
    metric(name, MetricKind::Gauge, labels, value);
}

/// Adds `delta` (which may be negative) to a gauge.
pub fn gauge_add(name: &str, labels: &[(&str, &str)], delta: f64) {
    metric(name, MetricKind::GaugeAdd, labels, delta);
}

/// Records one observation in a histogram; the buckets are configured in the host.
pub fn observe(name: &str, labels: &[(&str, &str)], value: f64) {
    metric(name, MetricKind::Histogram, labels, value);
}

/// Raises or resolves an alert: `alert(AlertEvent::firing("bot_silent").severity("critical"))`.
pub fn alert(event: AlertEvent) {
    EMITTED.with(|e| e.borrow_mut().alerts.push(event));
}

/// Writes a line to the host's log, tagged with the plugin's name. The host rate-limits
/// plugin logs, so a plugin cannot flood it.
pub fn log(level: LogLevel, message: impl Into<String>) {
    let line = LogLine {
        level,
        message: message.into(),
    };
    EMITTED.with(|e| e.borrow_mut().logs.push(line));
}
