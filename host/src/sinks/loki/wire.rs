//! Loki's push API on the wire: the protobuf messages of `pkg/push/push.proto` (package
//! `logproto`), written by hand with `prost` so no `protoc` runs at build time, and the
//! JSON form of the same request.
//!
//! Field numbers and types must match push.proto exactly; the unit tests pin them against
//! bytes produced by Promtail. `PushRequest.format` (field 2) and `EntryAdapter.parsed`
//! (field 4) are left out: Loki fills them itself and clients must not send them.
//! These types are public so the end-to-end tests decode with the very same definitions.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The label set in Prometheus text form, `{job="sluice", level="INFO"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Loki's own; clients leave it 0.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Nanoseconds are always in `0..1e9`, also before 1970, as the well-known type requires.
    pub fn from_nanos(ns: i64) -> Self {
        Self {
            seconds: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as i32,
        }
    }

    /// The inverse of [`Timestamp::from_nanos`]; saturates outside the range of `i64`.
    pub fn as_nanos(&self) -> i64 {
        let nanos = i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos);
        nanos.clamp(i64::MIN.into(), i64::MAX.into()) as i64
    }
}

/// One stream as the sink builds it, before it takes either wire form.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Sorted by name.
    pub labels: Vec<(String, String)>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub timestamp_ns: i64,
    pub line: String,
    pub structured_metadata: Vec<(String, String)>,
}

/// `{a="x", b="y"}`: the label-set text Loki parses (with the LogQL parser, whose strings
/// are Go string literals), so `\`, `"` and control characters are escaped.
pub fn labels_text(labels: &[(String, String)]) -> String {
    let mut out = String::with_capacity(
        2 + labels
            .iter()
            .map(|(n, v)| n.len() + v.len() + 5)
            .sum::<usize>(),
    );
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(value, &mut out);
        out.push('"');
    }
    out.push('}');
    out
}

pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// The protobuf request (uncompressed).
pub fn protobuf(streams: Vec<Stream>) -> PushRequest {
    PushRequest {
        streams: streams
            .into_iter()
            .map(|s| StreamAdapter {
                labels: labels_text(&s.labels),
                entries: s
                    .entries
                    .into_iter()
                    .map(|e| EntryAdapter {
                        timestamp: Some(Timestamp::from_nanos(e.timestamp_ns)),
                        line: e.line,
                        structured_metadata: e
                            .structured_metadata
                            .into_iter()
                            .map(|(name, value)| LabelPairAdapter { name, value })
                            .collect(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    }
}

/// `{"streams":[{"stream":{labels},"values":[["<ns>","<line>",{metadata}]]}]}`; the
/// metadata object is left out of an entry that has none.
pub fn json(streams: &[Stream]) -> Vec<u8> {
    serde_json::to_vec(&JsonRequest(streams)).expect("strings and maps always serialize")
}

struct JsonRequest<'a>(&'a [Stream]);
struct JsonStream<'a>(&'a Stream);
struct JsonPairs<'a>(&'a [(String, String)]);
struct JsonValues<'a>(&'a [Entry]);
struct JsonEntry<'a>(&'a Entry);

impl Serialize for JsonRequest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("streams", &JsonStreams(self.0))?;
        map.end()
    }
}

struct JsonStreams<'a>(&'a [Stream]);

impl Serialize for JsonStreams<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(JsonStream))
    }
}

impl Serialize for JsonStream<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("stream", &JsonPairs(&self.0.labels))?;
        map.serialize_entry("values", &JsonValues(&self.0.entries))?;
        map.end()
    }
}

impl Serialize for JsonPairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl Serialize for JsonValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(JsonEntry))
    }
}

impl Serialize for JsonEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let with_metadata = !e.structured_metadata.is_empty();
        let mut seq = s.serialize_seq(Some(if with_metadata { 3 } else { 2 }))?;
        seq.serialize_element(&e.timestamp_ns.to_string())?;
        seq.serialize_element(&e.line)?;
        if with_metadata {
            seq.serialize_element(&JsonPairs(&e.structured_metadata))?;
        }
        seq.end()
    }
}

/// Snappy in the block ("raw") format, which is what Loki decodes (`util.RawSnappy`);
/// the framed stream format would be refused.
pub fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .expect("snappy accepts any input below 4 GiB")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn encoding_matches_bytes_promtail_produces() {
        // Two entries of one stream `{source="protobuf-test"}` at 1640244790 s and
        // 1640244791 s, as encoded by Promtail's own client.
        let expected: &[u8] = &[
            10, 60, 10, 24, 123, 115, 111, 117, 114, 99, 101, 61, 34, 112, 114, 111, 116, 111, 98,
            117, 102, 45, 116, 101, 115, 116, 34, 125, 18, 15, 10, 6, 8, 182, 204, 144, 142, 6, 18,
            5, 104, 101, 108, 108, 111, 18, 15, 10, 6, 8, 183, 204, 144, 142, 6, 18, 5, 119, 111,
            114, 108, 100,
        ];
        let entry = |secs: i64, line: &str| Entry {
            timestamp_ns: secs * 1_000_000_000,
            line: s(line),
            structured_metadata: vec![],
        };
        let request = protobuf(vec![Stream {
            labels: vec![(s("source"), s("protobuf-test"))],
            entries: vec![entry(1640244790, "hello"), entry(1640244791, "world")],
        }]);
        assert_eq!(request.encode_to_vec(), expected);
        assert_eq!(PushRequest::decode(expected).unwrap(), request);
    }

    #[test]
    fn structured_metadata_is_field_3_of_the_entry() {
        let entry = EntryAdapter {
            timestamp: Some(Timestamp::from_nanos(1_500_000_001)),
            line: s("x"),
            structured_metadata: vec![LabelPairAdapter {
                name: s("k"),
                value: s("v"),
            }],
        };
        // timestamp: field 1 (8 bytes: seconds=1 as field 1, nanos=500000001 as field 2)
        let mut expected = vec![0x0a, 0x08, 0x08, 0x01, 0x10];
        expected.extend_from_slice(&[0x81, 0xca, 0xb5, 0xee, 0x01]); // 500_000_001 varint
        expected.extend_from_slice(&[0x12, 0x01, b'x']); // line: field 2
        expected.extend_from_slice(&[0x1a, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v']); // field 3
        assert_eq!(entry.encode_to_vec(), expected);
        assert_eq!(EntryAdapter::decode(&expected[..]).unwrap(), entry);
    }

    #[test]
    fn timestamps_before_1970_keep_nanos_positive() {
        let t = Timestamp::from_nanos(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_999_999));
        assert_eq!(t.as_nanos(), -1);
        let t = Timestamp::from_nanos(1_717_372_800_123_456_789);
        assert_eq!((t.seconds, t.nanos), (1_717_372_800, 123_456_789));
        assert_eq!(t.as_nanos(), 1_717_372_800_123_456_789);
    }

    /// Found by `fuzz/` (target `loki_encoder`): an entry stamped less than 0.86 s above
    /// `i64::MIN` ns has a `seconds` whose product with 1e9 alone overflows, so saturating
    /// that product first read the timestamp back 145 ms late.
    #[test]
    fn timestamps_near_the_ends_of_i64_read_back_exactly() {
        for ns in [-9_223_372_036_846_387_200, i64::MIN, i64::MIN + 1, i64::MAX] {
            let request = protobuf(vec![Stream {
                labels: vec![(s("job"), s("sluice"))],
                entries: vec![Entry {
                    timestamp_ns: ns,
                    line: s("x"),
                    structured_metadata: vec![],
                }],
            }]);
            let decoded = PushRequest::decode(&request.encode_to_vec()[..]).unwrap();
            let t = decoded.streams[0].entries[0].timestamp.unwrap();
            assert!((0..1_000_000_000).contains(&t.nanos), "{t:?}");
            assert_eq!(t.as_nanos(), ns);
        }
        // Beyond i64 (only another client could send it) it still saturates.
        let far = Timestamp {
            seconds: i64::MIN,
            nanos: 0,
        };
        assert_eq!(far.as_nanos(), i64::MIN);
        let far = Timestamp {
            seconds: i64::MAX,
            nanos: 999_999_999,
        };
        assert_eq!(far.as_nanos(), i64::MAX);
    }

    #[test]
    fn label_text_is_sorted_input_with_go_escapes() {
        let labels = vec![
            (s("a"), s("plain")),
            (s("b"), s("quote\" back\\slash\nnew\u{1}")),
        ];
        assert_eq!(
            labels_text(&labels),
            r#"{a="plain", b="quote\" back\\slash\nnew\u0001"}"#
        );
        assert_eq!(labels_text(&[]), "{}");
    }

    #[test]
    fn json_form_has_nanosecond_strings_and_optional_metadata() {
        let streams = vec![Stream {
            labels: vec![(s("job"), s("sluice")), (s("level"), s("INFO"))],
            entries: vec![
                Entry {
                    timestamp_ns: 1_717_372_800_000_000_001,
                    line: s("a \"line\""),
                    structured_metadata: vec![(s("correlation_id"), s("c-1"))],
                },
                Entry {
                    timestamp_ns: 5,
                    line: s("b"),
                    structured_metadata: vec![],
                },
            ],
        }];
        let text = String::from_utf8(json(&streams)).unwrap();
        assert_eq!(
            text,
            r#"{"streams":[{"stream":{"job":"sluice","level":"INFO"},"values":[["1717372800000000001","a \"line\"",{"correlation_id":"c-1"}],["5","b"]]}]}"#
        );
    }

    #[test]
    fn snappy_is_the_block_format_and_round_trips() {
        let data = b"{job=\"sluice\"} some log line, some log line, some log line".repeat(50);
        let packed = snappy(&data);
        assert!(packed.len() < data.len() / 4);
        // The framed format starts with a stream identifier chunk; the block format
        // starts with the uncompressed length as a varint.
        assert!(!packed.starts_with(&[0xff, 0x06, 0x00, 0x00]));
        assert_eq!(snap::raw::decompress_len(&packed).unwrap(), data.len());
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&packed).unwrap(),
            data
        );
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let data = b"hello loki ".repeat(100);
        let packed = gzip(&data);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
