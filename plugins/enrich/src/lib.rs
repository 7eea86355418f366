//! `enrich`: turns NautilusTrader and Binance-adapter log lines into the structured fields
//! of `docs/plugins/fields.md`, which the `metrics` and `alerts` plugins match on.
//!
//! Per record, in order: the deployment fields from the config (`env`, `host`, ...) where
//! the record has none; the message's structure ([`extract`], built on the byte-level
//! reader in [`parse`]); order latency from the submit/accept/fill matching in `latency`;
//! a correlation id; the lookup tables. A record whose message is of no known shape gets
//! only the deployment fields and a correlation id, so nothing is lost by running it here.
//!
//! Correlation ids that cannot be derived from an order are UUID-v4-shaped strings from a
//! SplitMix64 generator seeded once per instance from WASI `random_get` (via `getrandom`):
//! one host call per instance instead of one per record, unique within an instance by
//! construction of the 64-bit counter half, and unguessable enough across instances for
//! tracing (they are not secrets).
//!
//! Side outputs: `enrich_latency_evictions_total{reason="ttl"|"capacity"}`,
//! `enrich_latency_skipped_total{reason="negative"}` (clocks that disagree),
//! `enrich_parse_failures_total` (event lines that did not parse: a format change to look
//! at), and the gauge `enrich_latency_pending` (orders being tracked).

mod config;
pub mod extract;
mod latency;
pub mod parse;
mod time;

use config::Settings;
use extract::{is_error_level, Component, LineInfo};
use latency::{Times, Tracker};
use serde_json::Number;
use sluice_sdk::prelude::*;

pub use config::{Config, LatencyConfig, LookupConfig};

pub struct Enrich {
    settings: Settings,
    tracker: Tracker,
    ids: IdGen,
    parse_failures: u64,
    first_failure: Option<String>,
    negative_latencies: u64,
}

impl Plugin for Enrich {
    /// Parsed by [`config::settings`] so errors name the key (`latency.ttl_seconds: ...`).
    type Config = Value;

    fn new(config: Value) -> Result<Self, Error> {
        let settings = config::settings(config, |name| std::env::var(name).ok())?;
        for warning in &settings.warnings {
            log(LogLevel::Warn, warning.clone());
        }
        Ok(Self {
            tracker: Tracker::new(settings.ttl_ns, settings.max_entries),
            settings,
            ids: IdGen::from_os()?,
            parse_failures: 0,
            first_failure: None,
            negative_latencies: 0,
        })
    }

    fn process(&mut self, mut record: Record, out: &mut Output) -> Result<(), Error> {
        self.enrich(&mut record);
        out.push(record);
        Ok(())
    }

    fn process_batch(&mut self, batch: Vec<Record>, out: &mut Output) -> Result<(), Error> {
        for mut record in batch {
            self.enrich(&mut record);
            out.push(record);
        }
        self.emit_counters();
        Ok(())
    }

    fn tick(&mut self, now_ns: i64, _out: &mut Output) -> Result<(), Error> {
        self.tracker.tick(now_ns);
        self.emit_counters();
        Ok(())
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(self.tracker.snapshot())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), Error> {
        self.tracker.restore(state)?;
        self.emit_counters();
        Ok(())
    }
}

export_plugin!(Enrich);

impl Enrich {
    /// One record, in place; public so benchmarks and embedders can skip the ABI's
    /// MessagePack round trip.
    pub fn enrich(&mut self, record: &mut Record) {
        let fields = record.fields_mut();
        for (key, value) in &self.settings.stamp {
            if !fields.contains_key(*key) {
                fields.insert((*key).to_owned(), value.clone());
            }
        }
        let line = LineInfo {
            error_level: fields
                .get("level")
                .and_then(Value::as_str)
                .is_some_and(is_error_level),
            component: fields
                .get("component")
                .and_then(Value::as_str)
                .map_or(Component::Other, Component::of),
        };
        // The message is moved out while its parts are written beside it, and moved back:
        // no copy of the line.
        if let Some(Value::String(slot)) = fields.get_mut("message") {
            let message = std::mem::take(slot);
            self.structure(&message, line, fields);
            if let Some(Value::String(slot)) = fields.get_mut("message") {
                *slot = message;
            }
        }
        self.correlate(record);
        self.lookup(record);
    }

    fn structure(&mut self, message: &str, line: LineInfo, fields: &mut Map<String, Value>) {
        let parsed = extract::extract(message, line, fields, self.settings.event_fields);
        if let Some(e) = parsed.parse_error {
            self.parse_failures += 1;
            if self.first_failure.is_none() {
                let head: String = message.chars().take(80).collect();
                self.first_failure = Some(format!("cannot parse event line ({e}): {head}"));
            }
        }
        let tracked = parsed
            .order
            .as_ref()
            .is_some_and(|o| o.client_order_id.is_some())
            || !parsed.list_orders.is_empty();
        // Event time first, for the TTL clock and the latencies; the record's own time is
        // kept for latencies whose two ends do not both have `ts_event`.
        let times = Times {
            event_ns: parsed.ts_event,
            record_ns: if tracked {
                fields.get("timestamp").and_then(time::timestamp_ns)
            } else {
                None
            },
        };
        let now = times.best().filter(|_| tracked);
        if let Some(t) = now {
            self.tracker.observe(t);
            for (id, quantity) in &parsed.list_orders {
                self.tracker.order(id, *quantity, t);
            }
        }
        let Some(mut order) = parsed.order else {
            return;
        };
        if let (Some(id), Some(event)) = (order.client_order_id, parsed.event) {
            if let Some(t) = now {
                let quantity = order.quantity.as_ref().and_then(Number::as_f64);
                match event {
                    "SubmitOrder" | "OrderInitialized" => self.tracker.order(id, quantity, t),
                    "OrderSubmitted" => self.tracker.submitted(id, times, t),
                    "OrderAccepted" => {
                        let ns = self.tracker.accepted(id, times, t);
                        self.put_latency(fields, "submit_to_accept_seconds", ns);
                    }
                    "OrderFilled" => {
                        let last = order.last_qty.as_ref().and_then(Number::as_f64);
                        let fill = self.tracker.filled(id, last, times, t);
                        self.put_latency(fields, "submit_to_fill_seconds", fill.first_fill_ns);
                        if fill.complete == Some(false) {
                            order.status = Some("partially_filled");
                        }
                    }
                    "OrderUpdated" => self.tracker.updated(id, quantity, t),
                    "OrderRejected" | "OrderCanceled" | "OrderExpired" | "OrderDenied" => {
                        self.tracker.closed(id)
                    }
                    _ => {}
                }
            }
        }
        order.write(fields);
    }

    fn put_latency(&mut self, fields: &mut Map<String, Value>, key: &str, ns: Option<i64>) {
        match ns {
            Some(ns) if ns >= 0 => {
                let map = match fields
                    .entry("latency")
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    Value::Object(map) => map,
                    other => {
                        *other = Value::Object(Map::new());
                        other.as_object_mut().expect("just made a map")
                    }
                };
                map.insert(key.to_owned(), Value::from(ns as f64 / 1e9));
            }
            Some(_) => self.negative_latencies += 1,
            None => {}
        }
    }

    fn correlate(&mut self, record: &mut Record) {
        let field = self.settings.correlation_field.as_str();
        let present = record
            .get(field)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
        if present {
            return;
        }
        let client_order_id = match record.fields().get("order") {
            Some(Value::Object(order)) => order.get("client_order_id").and_then(Value::as_str),
            _ => None,
        };
        let id = match client_order_id {
            Some(client_order_id) => format!("order:{client_order_id}"),
            None => self.ids.next_uuid(),
        };
        record.set(field, id);
    }

    fn lookup(&mut self, record: &mut Record) {
        if self.settings.lookups.is_empty() {
            return;
        }
        let mut found = Vec::new();
        for l in &self.settings.lookups {
            let Some(key) = record.get(&l.key) else {
                continue;
            };
            let hit = match key {
                Value::String(s) => l.table.get(s.as_str()),
                Value::Number(n) => l.table.get(n.to_string().as_str()),
                Value::Bool(b) => l.table.get(if *b { "true" } else { "false" }),
                _ => None,
            };
            if let Some(value) = hit.or(l.default.as_ref()) {
                found.push((l.name.clone(), value.clone()));
            }
        }
        if found.is_empty() {
            return;
        }
        let fields = record.fields_mut();
        if !fields.get("lookup").is_some_and(Value::is_object) {
            fields.insert("lookup".to_owned(), Value::Object(Map::new()));
        }
        if let Some(Value::Object(map)) = fields.get_mut("lookup") {
            map.extend(found);
        }
    }

    fn emit_counters(&mut self) {
        let evictions = self.tracker.take_evictions();
        if evictions.ttl > 0 {
            counter(
                "enrich_latency_evictions_total",
                &[("reason", "ttl")],
                evictions.ttl as f64,
            );
        }
        if evictions.capacity > 0 {
            counter(
                "enrich_latency_evictions_total",
                &[("reason", "capacity")],
                evictions.capacity as f64,
            );
        }
        if self.negative_latencies > 0 {
            counter(
                "enrich_latency_skipped_total",
                &[("reason", "negative")],
                self.negative_latencies as f64,
            );
            self.negative_latencies = 0;
        }
        if self.parse_failures > 0 {
            counter(
                "enrich_parse_failures_total",
                &[],
                self.parse_failures as f64,
            );
            self.parse_failures = 0;
        }
        if let Some(first) = self.first_failure.take() {
            log(LogLevel::Warn, first);
        }
        gauge("enrich_latency_pending", &[], self.tracker.len() as f64);
    }
}

/// UUID-v4-shaped ids from two SplitMix64 streams seeded from WASI randomness.
struct IdGen {
    counter: u64,
    salt: u64,
}

impl IdGen {
    fn from_os() -> Result<Self, String> {
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed)
            .map_err(|e| format!("no randomness for correlation ids: {e}"))?;
        let (a, b) = seed.split_at(8);
        Ok(Self {
            counter: u64::from_le_bytes(a.try_into().expect("8 bytes")),
            salt: u64::from_le_bytes(b.try_into().expect("8 bytes")),
        })
    }

    fn next_uuid(&mut self) -> String {
        // SplitMix64 is a bijection of its counter, so `hi` never repeats within an
        // instance (until 2^64 ids).
        self.counter = self.counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let hi = splitmix(self.counter);
        let lo = splitmix(hi ^ self.salt);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi.to_be_bytes());
        bytes[8..].copy_from_slice(&lo.to_be_bytes());
        // Version 4, variant RFC 4122, as a UUID v4 reader expects; the 4 version bits
        // come out of `lo`'s half so `hi`'s uniqueness is kept.
        bytes.swap(6, 15);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(36);
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 0x0f)] as char);
        }
        s
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
