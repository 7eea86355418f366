//! The Loki sink's encoder: records built from the input go through `Encoder::encode`
//! (stream labels from templates, the stream cap, structured metadata, lines, timestamps)
//! and `body` in both wire forms the sink sends. The protobuf body is decoded back with
//! prost and the JSON body with serde_json, and both must carry exactly the entries the
//! encoder built; label texts must parse back (as Loki does) to the stream's labels.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use serde_json::{json, Map, Number, Value};
use sluice::fuzzing::{body, Encoder, Pending};
use sluice::sinks::loki::wire::{self, PushRequest, Stream};
use sluice::sinks::loki::{Compression, Format, LokiSinkConfig};
use std::time::{Duration, Instant};

/// Field names the templates below read, so generated records hit them often.
const KEYS: &[&str] = &[
    "timestamp",
    "message",
    "level",
    "env",
    "service",
    "component",
    "correlation_id",
    "order",
    "client_order_id",
    "side",
];

#[derive(Debug)]
struct Key(String);

impl<'a> Arbitrary<'a> for Key {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Key(if u.ratio(3, 4)? {
            (*u.choose(KEYS)?).to_owned()
        } else {
            String::arbitrary(u)?
        }))
    }
}

/// A JSON value of bounded depth.
#[derive(Debug)]
struct Json(Value);

fn value(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Value> {
    let max = if depth == 0 { 6 } else { 8 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => Value::Number(i64::arbitrary(u)?.into()),
        3 => Value::Number(u64::arbitrary(u)?.into()),
        4 => Number::from_f64(f64::arbitrary(u)?).map_or(Value::Null, Value::Number),
        5 => Value::String(String::arbitrary(u)?),
        // Timestamps as sources write them, or close to it.
        6 => Value::String(timestamp(u)?),
        7 => {
            let n = u.int_in_range(0..=3)?;
            Value::Array(
                (0..n)
                    .map(|_| value(u, depth - 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => Value::Object(object(u, depth - 1)?),
    })
}

fn timestamp(u: &mut Unstructured) -> arbitrary::Result<String> {
    let year = u.int_in_range(0..=9999)?;
    let (mo, d, h, mi, s) = (
        u.int_in_range(0..=13)?,
        u.int_in_range(0..=32)?,
        u.int_in_range(0..=24)?,
        u.int_in_range(0..=60)?,
        u.int_in_range(0..=60)?,
    );
    let frac: u32 = u.arbitrary()?;
    let zone = *u.choose(&["Z", "+02:00", "-23:59", "+23:59", "z", ""])?;
    Ok(format!(
        "{year:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac}{zone}"
    ))
}

fn object(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Map<String, Value>> {
    let n = u.int_in_range(0..=6)?;
    let mut map = Map::new();
    for _ in 0..n {
        let Key(k) = Key::arbitrary(u)?;
        map.insert(k, value(u, depth)?);
    }
    Ok(map)
}

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Json(Value::Object(object(u, 3)?)))
    }
}

/// The input: a 10-byte header (flags, `max_streams`, receive time), then either JSON
/// lines (every non-empty line a JSON object: one record each, encoded 61 s apart) or, when
/// the rest is not that, bytes that `arbitrary` turns into records and their times.
#[derive(Debug)]
struct Input {
    text_lines: bool,
    remove_label_fields: bool,
    /// 1..=8 after mapping, so the overflow stream is reached.
    max_streams: u8,
    received_ns: i64,
    /// Seconds after the start each record is encoded at (reaches the idle expiry).
    records: Vec<(u64, Map<String, Value>)>,
}

impl Input {
    fn parse(data: &[u8]) -> Option<Self> {
        let (header, rest) = data.split_at_checked(10)?;
        let records = match json_lines(rest) {
            Some(records) => records,
            None => {
                let mut u = Unstructured::new(rest);
                let mut records = Vec::new();
                while !u.is_empty() && records.len() < 256 {
                    let at = u64::from(u16::arbitrary(&mut u).ok()?);
                    records.push((at, Json::arbitrary(&mut u).ok()?.0));
                }
                records
                    .into_iter()
                    .map(|(at, v)| match v {
                        Value::Object(map) => (at, map),
                        _ => unreachable!("Json is an object"),
                    })
                    .collect()
            }
        };
        Some(Self {
            text_lines: header[0] & 1 != 0,
            remove_label_fields: header[0] & 2 != 0,
            max_streams: header[1],
            received_ns: i64::from_le_bytes(header[2..10].try_into().unwrap()),
            records,
        })
    }
}

fn json_lines(rest: &[u8]) -> Option<Vec<(u64, Map<String, Value>)>> {
    let mut records = Vec::new();
    for line in rest
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
    {
        match serde_json::from_slice(line).ok()? {
            Value::Object(map) => records.push((61 * records.len() as u64, map)),
            _ => return None,
        }
    }
    (!records.is_empty()).then_some(records)
}

fn config(input: &Input) -> LokiSinkConfig {
    serde_json::from_value(json!({
        "inputs": ["in"],
        "url": "http://loki:3100",
        "encoding": if input.text_lines { "text" } else { "json" },
        "remove_label_fields": input.remove_label_fields,
        "max_streams": 1 + usize::from(input.max_streams % 8),
        "labels": {
            "job": "sluice",
            "env": "{{env}}",
            "service": "{{service}}-{{env}}",
            "level": "{{level}}",
            "component": "{{component}}",
            "side": "{{order.side}}",
        },
        "structured_metadata": {
            "correlation_id": "{{correlation_id}}",
            "client_order_id": "{{order.client_order_id}}",
        },
    }))
    .expect("the fixed config deserializes")
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let config = config(&input);
    let mut encoder = Encoder::new(&config).expect("the fixed templates parse");
    let mut pending = Pending::default();
    let start = Instant::now();
    let records: Vec<&Map<String, Value>> = input.records.iter().map(|(_, r)| r).collect();
    for (at, record) in &input.records {
        let now = start + Duration::from_secs(*at);
        encoder.encode(record, input.received_ns, now, &mut pending);
    }
    assert_eq!(pending.count, records.len());
    let streams = pending.into_streams();
    check_streams(&streams, &records, &input);

    // protobuf + snappy, decoded back the way Loki does.
    let b = body(streams.clone(), Format::Protobuf, Compression::Snappy);
    assert_eq!(b.content_encoding, Some("snappy"));
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&b.bytes)
        .expect("snappy block decodes");
    let decoded = PushRequest::decode(&raw[..]).expect("protobuf decodes");
    assert_eq!(decoded, wire::protobuf(streams.clone()));
    for (sa, s) in decoded.streams.iter().zip(&streams) {
        assert_eq!(
            parse_labels(&sa.labels),
            s.labels,
            "label text {:?}",
            sa.labels
        );
        for (ea, e) in sa.entries.iter().zip(&s.entries) {
            assert_eq!(
                ea.timestamp.expect("a timestamp").as_nanos(),
                e.timestamp_ns
            );
            let nanos = ea.timestamp.unwrap().nanos;
            assert!((0..1_000_000_000).contains(&nanos));
        }
    }

    // JSON (its gzip form is flate2 over these bytes, left out: it only cost speed).
    let b = body(streams.clone(), Format::Json, Compression::None);
    check_json(&b.bytes, &streams);
});

/// The line a record must become: its `message` for `text` lines that have one, else the
/// record as JSON, without the fields the labels read when `remove_label_fields` is set.
fn expected_line(record: &Map<String, Value>, input: &Input) -> String {
    if input.text_lines {
        if let Some(Value::String(m)) = record.get("message") {
            return m.clone();
        }
        return serde_json::to_string(record).unwrap();
    }
    if !input.remove_label_fields {
        return serde_json::to_string(record).unwrap();
    }
    let mut r = record.clone();
    for k in ["env", "service", "level", "component"] {
        r.remove(k);
    }
    if let Some(Value::Object(order)) = r.get_mut("order") {
        order.remove("side");
    }
    serde_json::to_string(&r).unwrap()
}

fn check_streams(streams: &[Stream], records: &[&Map<String, Value>], input: &Input) {
    let mut lines: Vec<&str> = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.line.as_str()))
        .collect();
    let mut expected: Vec<String> = records.iter().map(|r| expected_line(r, input)).collect();
    lines.sort_unstable();
    expected.sort_unstable();
    assert_eq!(lines, expected, "lines differ from the records");
    let mut seen = std::collections::HashSet::new();
    for s in streams {
        assert!(!s.entries.is_empty());
        assert!(
            seen.insert(wire::labels_text(&s.labels)),
            "two streams with one label set"
        );
        assert!(
            s.labels.windows(2).all(|w| w[0].0 < w[1].0),
            "labels not sorted by name: {:?}",
            s.labels
        );
        for (_, v) in &s.labels {
            assert!(!v.is_empty() && v.len() <= 2048, "label value {v:?}");
        }
        assert!(
            s.entries
                .windows(2)
                .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns),
            "entries out of order"
        );
    }
}

fn check_json(bytes: &[u8], streams: &[Stream]) {
    let v: Value = serde_json::from_slice(bytes).expect("JSON body parses");
    let list = v["streams"].as_array().expect("streams");
    assert_eq!(list.len(), streams.len());
    for (js, s) in list.iter().zip(streams) {
        let labels = js["stream"].as_object().expect("stream labels");
        assert_eq!(labels.len(), s.labels.len());
        for (k, val) in &s.labels {
            assert_eq!(labels[k], Value::String(val.clone()));
        }
        let values = js["values"].as_array().expect("values");
        assert_eq!(values.len(), s.entries.len());
        for (jv, e) in values.iter().zip(&s.entries) {
            assert_eq!(jv[0], Value::String(e.timestamp_ns.to_string()));
            assert_eq!(jv[1], Value::String(e.line.clone()));
            let n = jv.as_array().unwrap().len();
            assert_eq!(
                n,
                if e.structured_metadata.is_empty() {
                    2
                } else {
                    3
                }
            );
        }
    }
}

/// Parses `{a="x", b="y"}` with Go string-literal escapes, as Loki's LogQL parser reads it.
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not braced: {text:?}"));
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        if !out.is_empty() {
            assert_eq!(chars.next(), Some(','), "in {text:?}");
            assert_eq!(chars.next(), Some(' '), "in {text:?}");
        }
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "in {text:?}");
        let mut value = String::new();
        loop {
            match chars
                .next()
                .unwrap_or_else(|| panic!("unterminated value in {text:?}"))
            {
                '"' => break,
                '\\' => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).expect("hex escape");
                        value.push(char::from_u32(code).expect("a scalar value"));
                    }
                    other => panic!("bad escape {other:?} in {text:?}"),
                },
                c => {
                    assert!(!c.is_control(), "raw control character in {text:?}");
                    value.push(c);
                }
            }
        }
        out.push((name, value));
    }
    out
}
