//! Records into Loki entries: the stream a record belongs to (label templates, the cap on
//! distinct streams), its structured metadata, its line and its timestamp; and a finished
//! request into a body in the configured wire format.

use super::config::{Compression, Format, LineEncoding, LokiSinkConfig, OVERFLOW_LABEL};
use super::template::Template;
use super::wire::{self, Entry, Stream};
use crate::event::Record;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Loki refuses label values longer than this by default (`max_label_value_length`), which
/// would fail the whole request; longer values are cut (at a character boundary).
pub const MAX_LABEL_VALUE_BYTES: usize = 2048;

/// A stream not seen for this long no longer counts against `max_streams`; Loki itself
/// flushes idle streams after 30 minutes by default.
pub const STREAM_IDLE: Duration = Duration::from_secs(3600);

pub struct Encoder {
    labels: Vec<(String, Template)>,
    metadata: Vec<(String, Template)>,
    encoding: LineEncoding,
    /// Fields to leave out of `json` lines (`remove_label_fields`).
    remove: Option<PathTree>,
    max_streams: usize,
    /// Label text → when a record last went to it.
    known: HashMap<String, Instant>,
    last_expiry: Instant,
    overflow_labels: Vec<(String, String)>,
    overflow_key: String,
    /// Rendered label values of the current record (one per label; reused).
    values: Vec<Option<String>>,
    key: String,
}

/// The entries of one request under construction.
#[derive(Default)]
pub struct Pending {
    streams: Vec<Stream>,
    index: HashMap<String, usize>,
    /// Bytes of lines and metadata values: what `batch.max_bytes` bounds.
    pub bytes: usize,
    pub count: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The streams, each sorted by timestamp (stable, so equal stamps keep their order):
    /// Loki wants a stream's entries in order within a push.
    pub fn into_streams(self) -> Vec<Stream> {
        let mut streams = self.streams;
        for s in &mut streams {
            s.entries.sort_by_key(|e| e.timestamp_ns);
        }
        streams
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Stream,
    /// Went to the fallback stream because `max_streams` was reached.
    Overflow,
}

impl Encoder {
    pub fn new(config: &LokiSinkConfig) -> Result<Self, String> {
        let parse = |map: &BTreeMap<String, String>| -> Result<Vec<(String, Template)>, String> {
            map.iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        Template::parse(v).map_err(|e| format!("{k}: {e}"))?,
                    ))
                })
                .collect()
        };
        let labels = parse(&config.labels)?;
        let metadata = parse(&config.structured_metadata)?;
        let empty = Record::new();
        let mut overflow_labels: Vec<(String, String)> = labels
            .iter()
            .filter(|(_, t)| t.is_literal())
            .map(|(name, t)| {
                let mut value = String::new();
                t.render(&empty, &mut value);
                (name.clone(), value)
            })
            .collect();
        overflow_labels.push((OVERFLOW_LABEL.to_owned(), "true".to_owned()));
        overflow_labels.sort();
        let remove =
            (config.remove_label_fields && config.encoding == LineEncoding::Json).then(|| {
                let mut tree = PathTree::default();
                for (_, t) in &labels {
                    for path in t.fields() {
                        tree.insert(path);
                    }
                }
                tree
            });
        Ok(Self {
            values: vec![None; labels.len()],
            overflow_key: wire::labels_text(&overflow_labels),
            overflow_labels,
            labels,
            metadata,
            encoding: config.encoding,
            remove,
            max_streams: config.max_streams,
            known: HashMap::new(),
            last_expiry: Instant::now(),
            key: String::new(),
        })
    }

    /// Adds one record to `pending`. `received_ns` stands in for a missing or unreadable
    /// `timestamp`.
    pub fn encode(
        &mut self,
        record: &Record,
        received_ns: i64,
        now: Instant,
        pending: &mut Pending,
    ) -> Placement {
        let placement = self.stream_key(record, now);
        let (key, pairs) = match placement {
            Placement::Stream => (&self.key, None),
            Placement::Overflow => (&self.overflow_key, Some(&self.overflow_labels)),
        };
        let stream = match pending.index.get(key.as_str()) {
            Some(&i) => i,
            None => {
                let labels = match pairs {
                    Some(pairs) => pairs.clone(),
                    None => self
                        .labels
                        .iter()
                        .zip(&self.values)
                        .filter_map(|((name, _), v)| Some((name.clone(), v.clone()?)))
                        .collect(),
                };
                pending.streams.push(Stream {
                    labels,
                    entries: Vec::new(),
                });
                pending.index.insert(key.clone(), pending.streams.len() - 1);
                pending.streams.len() - 1
            }
        };

        let mut structured_metadata = Vec::new();
        let mut value = String::new();
        for (name, template) in &self.metadata {
            value.clear();
            if template.render(record, &mut value) && !value.is_empty() {
                structured_metadata.push((name.clone(), std::mem::take(&mut value)));
            }
        }
        let line = self.line(record);
        pending.bytes += line.len()
            + structured_metadata
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        pending.count += 1;
        pending.streams[stream].entries.push(Entry {
            timestamp_ns: timestamp_ns(record).unwrap_or(received_ns),
            line,
            structured_metadata,
        });
        placement
    }

    /// Renders the record's label set into `self.key` (and `self.values`), or says it goes
    /// to the overflow stream.
    fn stream_key(&mut self, record: &Record, now: Instant) -> Placement {
        for ((_, template), slot) in self.labels.iter().zip(self.values.iter_mut()) {
            let mut value = slot.take().unwrap_or_default();
            value.clear();
            if template.render(record, &mut value) && !value.is_empty() {
                truncate_at_char(&mut value, MAX_LABEL_VALUE_BYTES);
                *slot = Some(value);
            }
        }
        self.key.clear();
        self.key.push('{');
        let mut first = true;
        for ((name, _), value) in self.labels.iter().zip(&self.values) {
            let Some(value) = value else { continue };
            if !first {
                self.key.push_str(", ");
            }
            first = false;
            // The same text as `wire::labels_text`, built without a vector of pairs.
            self.key.push_str(name);
            self.key.push_str("=\"");
            wire::escape_label_value(value, &mut self.key);
            self.key.push('"');
        }
        self.key.push('}');

        if let Some(seen) = self.known.get_mut(self.key.as_str()) {
            *seen = now;
            return Placement::Stream;
        }
        if self.known.len() >= self.max_streams
            && now.duration_since(self.last_expiry) >= Duration::from_secs(60)
        {
            self.last_expiry = now;
            self.known
                .retain(|_, seen| now.duration_since(*seen) < STREAM_IDLE);
        }
        if self.known.len() < self.max_streams {
            self.known.insert(self.key.clone(), now);
            Placement::Stream
        } else {
            Placement::Overflow
        }
    }

    fn line(&self, record: &Record) -> String {
        if self.encoding == LineEncoding::Text {
            if let Some(Value::String(message)) = record.get("message") {
                return message.clone();
            }
        }
        match &self.remove {
            Some(tree) => serde_json::to_string(&Without { map: record, tree }),
            None => serde_json::to_string(record),
        }
        .expect("JSON maps always serialize")
    }

    #[cfg(test)]
    fn known_streams(&self) -> usize {
        self.known.len()
    }
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// `timestamp` as nanoseconds since the epoch: RFC 3339 text (what sources write) or an
/// integer count of nanoseconds.
pub fn timestamp_ns(record: &Record) -> Option<i64> {
    match record.get("timestamp")? {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()?
            .timestamp_nanos_opt(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Which content type and encoding a body goes with.
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub content_encoding: Option<&'static str>,
}

pub fn body(streams: Vec<Stream>, format: Format, compression: Compression) -> Body {
    match format {
        Format::Protobuf => {
            use prost::Message;
            let raw = wire::protobuf(streams).encode_to_vec();
            Body {
                bytes: wire::snappy(&raw),
                content_type: "application/x-protobuf",
                content_encoding: Some("snappy"),
            }
        }
        Format::Json => {
            let raw = wire::json(&streams);
            match compression {
                Compression::Gzip => Body {
                    bytes: wire::gzip(&raw),
                    content_type: "application/json",
                    content_encoding: Some("gzip"),
                },
                _ => Body {
                    bytes: raw,
                    content_type: "application/json",
                    content_encoding: None,
                },
            }
        }
    }
}

/// Field paths to leave out, as a tree: a leaf removes the field, an inner node reaches
/// into a nested map.
#[derive(Default, Debug)]
struct PathTree(BTreeMap<String, Option<PathTree>>);

impl PathTree {
    fn insert(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.0.insert(first.clone(), None);
        } else {
            // `None` there: the whole field goes already.
            if let Some(inner) = self
                .0
                .entry(first.clone())
                .or_insert_with(|| Some(PathTree::default()))
            {
                inner.insert(rest);
            }
        }
    }
}

/// Serializes a map without the fields a [`PathTree`] names, without copying it.
struct Without<'a> {
    map: &'a Map<String, Value>,
    tree: &'a PathTree,
}

impl Serialize for Without<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(None)?;
        for (key, value) in self.map {
            match (self.tree.0.get(key), value) {
                (Some(None), _) => {}
                (Some(Some(inner)), Value::Object(nested)) => out.serialize_entry(
                    key,
                    &Without {
                        map: nested,
                        tree: inner,
                    },
                )?,
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: Value) -> LokiSinkConfig {
        let mut base = json!({"inputs": ["a"], "url": "http://h"});
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn record(v: Value) -> Record {
        v.as_object().unwrap().clone()
    }

    fn trading_config() -> LokiSinkConfig {
        config(json!({
            "labels": {"env": "{{env}}", "service": "{{service}}", "level": "{{level}}", "component": "{{component}}", "job": "sluice"},
            "structured_metadata": {"correlation_id": "{{correlation_id}}", "client_order_id": "{{order.client_order_id}}"},
        }))
    }

    #[test]
    fn records_become_streams_metadata_lines_and_timestamps() {
        let mut enc = Encoder::new(&trading_config()).unwrap();
        let mut p = Pending::default();
        let now = Instant::now();
        let a = record(json!({
            "timestamp": "2024-06-03T00:00:01.000000002Z", "env": "prod", "service": "bot", "level": "INFO",
            "component": "RiskEngine", "message": "ok", "correlation_id": "c-1",
            "order": {"client_order_id": "O-1"}
        }));
        let b = record(
            json!({"timestamp": "not a time", "env": "prod", "level": "ERROR", "message": "boom"}),
        );
        let c = record(
            json!({"timestamp": "2024-06-03T02:00:00+02:00", "env": "prod", "service": "bot", "level": "INFO",
            "component": "RiskEngine", "message": "earlier", "correlation_id": "c-2"}),
        );
        assert_eq!(enc.encode(&a, 7, now, &mut p), Placement::Stream);
        assert_eq!(enc.encode(&b, 7, now, &mut p), Placement::Stream);
        assert_eq!(enc.encode(&c, 7, now, &mut p), Placement::Stream);
        assert_eq!(p.count, 3);
        let streams = p.into_streams();
        assert_eq!(streams.len(), 2);
        let s = |v: &str| v.to_owned();
        assert_eq!(
            streams[0].labels,
            vec![
                (s("component"), s("RiskEngine")),
                (s("env"), s("prod")),
                (s("job"), s("sluice")),
                (s("level"), s("INFO")),
                (s("service"), s("bot"))
            ]
        );
        // Sorted by time: c (00:00:00Z) before a (00:00:01.000000002Z).
        let stamps: Vec<i64> = streams[0].entries.iter().map(|e| e.timestamp_ns).collect();
        assert_eq!(
            stamps,
            [1_717_372_800_000_000_000, 1_717_372_801_000_000_002]
        );
        assert_eq!(
            streams[0].entries[0].structured_metadata,
            vec![(s("correlation_id"), s("c-2"))]
        );
        assert_eq!(
            streams[0].entries[1].structured_metadata,
            vec![
                (s("client_order_id"), s("O-1")),
                (s("correlation_id"), s("c-1"))
            ]
        );
        let line: Value = serde_json::from_str(&streams[0].entries[1].line).unwrap();
        assert_eq!(line, Value::Object(a.clone()));
        // Missing fields leave their labels out; a bad timestamp falls back to receive time.
        assert_eq!(
            streams[1].labels,
            vec![
                (s("env"), s("prod")),
                (s("job"), s("sluice")),
                (s("level"), s("ERROR"))
            ]
        );
        assert_eq!(streams[1].entries[0].timestamp_ns, 7);
        assert!(streams[1].entries[0].structured_metadata.is_empty());
    }

    #[test]
    fn stream_cap_sends_new_label_sets_to_the_fallback_stream() {
        let mut enc = Encoder::new(&config(json!({
            "labels": {"job": "sluice", "component": "{{component}}"}, "max_streams": 2
        })))
        .unwrap();
        let mut p = Pending::default();
        let now = Instant::now();
        let placements: Vec<Placement> = ["A", "B", "C", "A", "D", "B"]
            .iter()
            .map(|c| {
                enc.encode(
                    &record(json!({"component": c, "message": c})),
                    0,
                    now,
                    &mut p,
                )
            })
            .collect();
        use Placement::*;
        assert_eq!(
            placements,
            [Stream, Stream, Overflow, Stream, Overflow, Stream]
        );
        let streams = p.into_streams();
        let by_labels: Vec<(String, usize)> = streams
            .iter()
            .map(|s| (wire::labels_text(&s.labels), s.entries.len()))
            .collect();
        assert_eq!(
            by_labels,
            [
                (r#"{component="A", job="sluice"}"#.to_owned(), 2),
                (r#"{component="B", job="sluice"}"#.to_owned(), 2),
                (r#"{job="sluice", overflow="true"}"#.to_owned(), 2),
            ]
        );
        assert_eq!(enc.known_streams(), 2);
        // Idle streams are forgotten, which makes room again.
        let later = now + STREAM_IDLE + Duration::from_secs(61);
        let mut p = Pending::default();
        assert_eq!(
            enc.encode(&record(json!({"component": "E"})), 0, later, &mut p),
            Stream
        );
        assert_eq!(enc.known_streams(), 1);
    }

    #[test]
    fn label_keys_match_the_wire_text_including_escapes_and_truncation() {
        let mut enc =
            Encoder::new(&config(json!({"labels": {"job": "sluice", "c": "{{c}}"}}))).unwrap();
        let long = "é".repeat(MAX_LABEL_VALUE_BYTES); // 2 bytes each
        for value in ["plain", "q\"uo\\te\nx\u{7f}", long.as_str()] {
            let mut p = Pending::default();
            enc.encode(&record(json!({"c": value})), 0, Instant::now(), &mut p);
            let key = p.index.keys().next().unwrap().clone();
            let streams = p.into_streams();
            assert_eq!(key, wire::labels_text(&streams[0].labels));
            let c = &streams[0].labels[0].1;
            assert!(c.len() <= MAX_LABEL_VALUE_BYTES);
            assert!(value.starts_with(c.as_str()));
        }
    }

    #[test]
    fn text_lines_and_removed_label_fields() {
        let r = record(
            json!({"message": "hello", "level": "INFO", "order": {"side": "BUY", "id": 1}, "x": 1}),
        );
        let enc = Encoder::new(&config(json!({"encoding": "text"}))).unwrap();
        assert_eq!(enc.line(&r), "hello");
        assert_eq!(enc.line(&record(json!({"n": 1}))), r#"{"n":1}"#);
        let mut enc = Encoder::new(&config(json!({
            "labels": {"job": "sluice", "level": "{{level}}", "side": "{{order.side}}"}, "remove_label_fields": true
        })))
        .unwrap();
        assert_eq!(
            enc.line(&r),
            r#"{"message":"hello","order":{"id":1},"x":1}"#
        );
        let mut p = Pending::default();
        enc.encode(&r, 0, Instant::now(), &mut p);
        let streams = p.into_streams();
        assert_eq!(
            wire::labels_text(&streams[0].labels),
            r#"{job="sluice", level="INFO", side="BUY"}"#
        );
    }

    #[test]
    fn timestamps_parse_rfc3339_and_integers() {
        let t = |v: Value| timestamp_ns(&record(json!({"timestamp": v})));
        assert_eq!(t(json!("1970-01-01T00:00:01.5Z")), Some(1_500_000_000));
        assert_eq!(
            t(json!("2024-06-03T00:00:00.123456789Z")),
            Some(1_717_372_800_123_456_789)
        );
        assert_eq!(t(json!(42)), Some(42));
        assert_eq!(t(json!("yesterday")), None);
        assert_eq!(t(json!(null)), None);
        assert_eq!(timestamp_ns(&Record::new()), None);
    }

    #[test]
    fn bodies_carry_their_content_type_and_decode_back() {
        use prost::Message;
        let streams = vec![Stream {
            labels: vec![("job".into(), "sluice".into())],
            entries: vec![Entry {
                timestamp_ns: 3,
                line: "l".into(),
                structured_metadata: vec![("k".into(), "v".into())],
            }],
        }];
        let b = body(streams.clone(), Format::Protobuf, Compression::Snappy);
        assert_eq!(
            (b.content_type, b.content_encoding),
            ("application/x-protobuf", Some("snappy"))
        );
        let raw = snap::raw::Decoder::new().decompress_vec(&b.bytes).unwrap();
        assert_eq!(
            wire::PushRequest::decode(&raw[..]).unwrap(),
            wire::protobuf(streams.clone())
        );
        let b = body(streams.clone(), Format::Json, Compression::None);
        assert_eq!(
            (b.content_type, b.content_encoding),
            ("application/json", None)
        );
        assert_eq!(b.bytes, wire::json(&streams));
        let b = body(streams.clone(), Format::Json, Compression::Gzip);
        assert_eq!(b.content_encoding, Some("gzip"));
    }
}
