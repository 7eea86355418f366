//! `sluice top`: a live table of every component's throughput, drops, errors, plugin
//! latency and buffer use, computed from two scrapes of the admin API (`/health` for the
//! components, `/metrics` for the numbers), so it works against any running Sluice and
//! shows what a dashboard would.

use std::collections::BTreeMap;
use std::fmt::Write;

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the Prometheus text exposition format; lines it cannot read are skipped.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            body = body.trim_start_matches([',', ' ']);
            if let Some(tail) = body.strip_prefix('}') {
                rest = tail;
                break;
            }
            let eq = body.find('=')?;
            let key = body[..eq].trim().to_owned();
            let quoted = body[eq + 1..].strip_prefix('"')?;
            let (mut value, mut escaped, mut end) = (String::new(), false, None);
            for (i, c) in quoted.char_indices() {
                match (escaped, c) {
                    (true, 'n') => value.push('\n'),
                    (true, c) => value.push(c),
                    (false, '\\') => {
                        escaped = true;
                        continue;
                    }
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    (false, c) => value.push(c),
                }
                escaped = false;
            }
            labels.insert(key, value);
            body = &quoted[end? + 1..];
        }
    }
    Some(Sample {
        name: line[..name_end].to_owned(),
        labels,
        value: parse_value(rest)?,
    })
}

fn parse_value(rest: &str) -> Option<f64> {
    let v = rest.split_whitespace().next()?;
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => v.parse().ok(),
    }
}

/// One component's counters at one scrape.
#[derive(Debug, Default, Clone)]
struct Counters {
    received: f64,
    sent: f64,
    dropped: f64,
    errors: f64,
    calls: f64,
    call_seconds: f64,
    /// Cumulative `process` call counts by upper bound (seconds).
    buckets: BTreeMap<u64, f64>,
    buffer: Option<(f64, f64)>,
    disk: Option<(f64, f64)>,
}

/// Every component's counters at one scrape.
#[derive(Debug, Default)]
pub struct Snapshot(BTreeMap<String, Counters>);

impl Snapshot {
    pub fn new(samples: &[Sample]) -> Self {
        let mut all: BTreeMap<String, Counters> = BTreeMap::new();
        for s in samples {
            let label = |k: &str| s.labels.get(k).map_or("", String::as_str);
            let plugin_call = label("call") == "process";
            let owner = if s.name.starts_with("sluice_plugin_call_duration_seconds") {
                label("plugin")
            } else {
                label("component")
            };
            let watched = [
                "sluice_component_",
                "sluice_buffer_",
                "sluice_plugin_call_duration",
            ];
            if !watched.iter().any(|p| s.name.starts_with(p)) {
                continue;
            }
            let c = all.entry(owner.to_owned()).or_default();
            let v = s.value;
            match s.name.as_str() {
                "sluice_component_received_events_total" => c.received += v,
                "sluice_component_sent_events_total" => c.sent += v,
                "sluice_component_dropped_events_total" => c.dropped += v,
                "sluice_component_errors_total" => c.errors += v,
                "sluice_buffer_batches" => c.buffer.get_or_insert((0.0, 0.0)).0 = v,
                "sluice_buffer_capacity_batches" => c.buffer.get_or_insert((0.0, 0.0)).1 = v,
                "sluice_buffer_disk_bytes" => c.disk.get_or_insert((0.0, 0.0)).0 = v,
                "sluice_buffer_disk_max_bytes" => c.disk.get_or_insert((0.0, 0.0)).1 = v,
                "sluice_plugin_call_duration_seconds_count" if plugin_call => c.calls = v,
                "sluice_plugin_call_duration_seconds_sum" if plugin_call => c.call_seconds = v,
                "sluice_plugin_call_duration_seconds_bucket" if plugin_call => {
                    if let Ok(le) = label("le").parse::<f64>() {
                        c.buckets.insert((le * 1e9) as u64, v);
                    }
                }
                _ => {}
            }
        }
        Snapshot(all)
    }
}

/// A component as `/health` lists it.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub kind: String,
    pub status: String,
}

/// The table for the interval between two scrapes `seconds` apart.
pub fn render(
    components: &[Component],
    before: &Snapshot,
    after: &Snapshot,
    seconds: f64,
) -> String {
    let mut out = format!(
        "{:<22} {:<13} {:<9} {:>10} {:>10} {:>12} {:>12} {:>10} {:>10} {:>14}\n",
        "COMPONENT",
        "KIND",
        "STATUS",
        "IN/s",
        "OUT/s",
        "DROPPED",
        "ERRORS",
        "CALL avg",
        "CALL p99",
        "BUFFER"
    );
    let empty = Counters::default();
    for c in components {
        let a = before.0.get(&c.name).unwrap_or(&empty);
        let b = after.0.get(&c.name).unwrap_or(&empty);
        let rate = |x: f64, y: f64| (y - x).max(0.0) / seconds.max(1e-9);
        let total = |x: f64, y: f64| {
            if y > x {
                format!("{y:.0} +{:.0}", y - x)
            } else {
                format!("{y:.0}")
            }
        };
        let calls = b.calls - a.calls;
        let (avg, p99) = if calls > 0.0 {
            (
                millis((b.call_seconds - a.call_seconds) / calls),
                p99(&a.buckets, &b.buckets, calls),
            )
        } else {
            (String::new(), String::new())
        };
        let buffer = match (b.disk, b.buffer) {
            (Some((used, max)), _) => format!("{}/{} MiB", mib(used), mib(max)),
            (None, Some((used, max))) => format!("{used:.0}/{max:.0}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<22} {:<13} {:<9} {:>10.1} {:>10.1} {:>12} {:>12} {:>10} {:>10} {:>14}",
            c.name,
            c.kind,
            c.status,
            rate(a.received, b.received),
            rate(a.sent, b.sent),
            total(a.dropped, b.dropped),
            total(a.errors, b.errors),
            avg,
            p99,
            buffer
        );
    }
    out
}

/// The bucket bound under which 99% of the interval's calls finished.
fn p99(before: &BTreeMap<u64, f64>, after: &BTreeMap<u64, f64>, calls: f64) -> String {
    for (le, count) in after {
        let done = count - before.get(le).copied().unwrap_or(0.0);
        if done >= 0.99 * calls {
            return format!("≤{}", millis(*le as f64 / 1e9));
        }
    }
    format!(
        ">{}",
        millis(after.keys().last().map_or(0.0, |le| *le as f64 / 1e9))
    )
}

fn millis(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# HELP sluice_component_received_events_total Records a component received.
# TYPE sluice_component_received_events_total counter
sluice_component_received_events_total{component="redact",component_kind="transform"} 100
sluice_component_sent_events_total{component="redact",output="records"} 90
sluice_component_sent_events_total{component="redact",output="metrics"} 5
sluice_component_errors_total{component="redact",error_kind="trap"} 1
sluice_plugin_call_duration_seconds_bucket{call="process",plugin="redact",le="0.001"} 8
sluice_plugin_call_duration_seconds_bucket{call="process",plugin="redact",le="0.01"} 10
sluice_plugin_call_duration_seconds_bucket{call="process",plugin="redact",le="+Inf"} 10
sluice_plugin_call_duration_seconds_sum{call="process",plugin="redact"} 0.01
sluice_plugin_call_duration_seconds_count{call="process",plugin="redact"} 10
sluice_buffer_batches{component="redact"} 0
sluice_buffer_capacity_batches{component="redact"} 8
weird{a="x\"y,z}",b="1"} 2
"#;

    #[test]
    fn the_text_format_is_read_with_escapes_and_odd_label_values() {
        let samples = parse_exposition(BEFORE);
        assert_eq!(samples.len(), 12);
        let weird = samples.iter().find(|s| s.name == "weird").unwrap();
        assert_eq!(weird.labels["a"], "x\"y,z}");
        assert_eq!(weird.labels["b"], "1");
        assert_eq!(weird.value, 2.0);
        let inf = samples
            .iter()
            .find(|s| s.labels.get("le").map(String::as_str) == Some("+Inf"));
        assert_eq!(inf.unwrap().value, 10.0);
    }

    #[test]
    fn rates_latency_and_buffers_come_from_the_difference_of_two_scrapes() {
        let after = BEFORE
            .replace(
                "component_kind=\"transform\"} 100",
                "component_kind=\"transform\"} 300",
            )
            .replace("output=\"records\"} 90", "output=\"records\"} 280")
            .replace("le=\"0.001\"} 8", "le=\"0.001\"} 10")
            .replace("le=\"0.01\"} 10", "le=\"0.01\"} 20")
            .replace("le=\"+Inf\"} 10", "le=\"+Inf\"} 20")
            .replace("plugin=\"redact\"} 0.01", "plugin=\"redact\"} 0.05")
            .replace(
                "_count{call=\"process\",plugin=\"redact\"} 10",
                "_count{call=\"process\",plugin=\"redact\"} 20",
            )
            .replace(
                "sluice_buffer_batches{component=\"redact\"} 0",
                "sluice_buffer_batches{component=\"redact\"} 3",
            );
        let components = [Component {
            name: "redact".into(),
            kind: "transform".into(),
            status: "running".into(),
        }];
        let table = render(
            &components,
            &Snapshot::new(&parse_exposition(BEFORE)),
            &Snapshot::new(&parse_exposition(&after)),
            2.0,
        );
        let row = table.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        // IN 200 in 2 s, OUT 190 in 2 s, errors unchanged, 10 calls took 40 ms, 8 of the
        // 10 over 1 ms, so p99 ≤ 10 ms; 3 of 8 batches queued.
        assert_eq!(
            cells,
            [
                "redact",
                "transform",
                "running",
                "100.0",
                "95.0",
                "0",
                "1",
                "4.0ms",
                "≤10.0ms",
                "3/8"
            ],
            "{table}"
        );
    }
}
