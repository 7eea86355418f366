//! Lines that are already structured records: one JSON object per line.

use serde_json::{Map, Value};

use crate::decode::timestamp::normalize_timestamp;
use crate::decode::{json_error_reason, undecodable, DECODE_ERROR_FIELD};

/// Only objects become records, because a record is a set of named fields; a bare array or
/// scalar has no field names to put anywhere, so it is kept as text instead.
///
/// Nesting depth needs no guard of our own: serde_json stops at 128 levels with an error,
/// well before the stack is at risk, and that error becomes an ordinary `decode_error`.
pub(crate) fn decode(line: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut fields)) => {
            // A bad timestamp spoils one field, not the record: keep everything the
            // producer sent and flag it, so nothing is lost and the problem is visible.
            if let Err(reason) = normalize_timestamp(&mut fields) {
                fields.insert(
                    DECODE_ERROR_FIELD.to_owned(),
                    Value::String(format!("bad timestamp: {reason}")),
                );
            }
            fields
        }
        Ok(_) => undecodable(line, "JSON value is not an object".to_owned()),
        Err(e) => undecodable(line, json_error_reason(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoding, MESSAGE_FIELD};
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn object_fields_are_kept() {
        let line = r#"{"message":"hi","n":1,"nested":{"a":[1,2]},"timestamp":"2024-03-01T01:04:03.5+01:00"}"#;
        assert_eq!(
            Decoding::Json.decode(line.as_bytes()),
            object(json!({
                "message": "hi",
                "n": 1,
                "nested": {"a": [1, 2]},
                "timestamp": "2024-03-01T00:04:03.500000000Z",
            }))
        );
    }

    #[test]
    fn epoch_timestamp_is_normalized() {
        let fields = Decoding::Json.decode(br#"{"timestamp":1709251443474513664}"#);
        assert_eq!(
            fields,
            object(json!({"timestamp": "2024-03-01T00:04:03.474513664Z"}))
        );
    }

    #[test]
    fn bad_timestamp_keeps_fields_and_flags() {
        let fields = Decoding::Json.decode(br#"{"timestamp":"soon","level":"info"}"#);
        assert_eq!(fields["timestamp"], json!("soon"));
        assert_eq!(fields["level"], json!("info"));
        let reason = fields[DECODE_ERROR_FIELD].as_str().unwrap();
        assert!(
            reason.starts_with("bad timestamp: \"soon\" is not an RFC 3339 timestamp"),
            "{reason}"
        );
        assert!(!fields.contains_key(MESSAGE_FIELD));
    }

    #[test]
    fn non_object_is_kept_as_text() {
        for line in ["[1,2]", "\"str\"", "42", "null"] {
            let fields = Decoding::Json.decode(line.as_bytes());
            assert_eq!(
                fields,
                object(json!({"message": line, "decode_error": "JSON value is not an object"}))
            );
        }
    }

    #[test]
    fn parse_error_reports_column_once() {
        let fields = Decoding::Json.decode(br#"{"a": tru}"#);
        assert_eq!(
            fields,
            object(json!({
                "message": r#"{"a": tru}"#,
                "decode_error": "invalid JSON at column 10: expected ident",
            }))
        );
        let fields = Decoding::Json.decode(b"");
        assert_eq!(
            fields[DECODE_ERROR_FIELD],
            json!("invalid JSON at column 0: EOF while parsing a value")
        );
        let fields = Decoding::Json.decode(br#"{"a":1} trailing"#);
        assert_eq!(
            fields[DECODE_ERROR_FIELD],
            json!("invalid JSON at column 9: trailing characters")
        );
    }

    /// Runs on a deliberately small stack so that unbounded recursion would crash the test
    /// rather than pass by luck on a big main-thread stack.
    #[test]
    fn nesting_ten_thousand_deep_is_an_error_not_a_stack_overflow() {
        const DEPTH: usize = 10_000;
        let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
        let unclosed = r#"{"a":["#.repeat(DEPTH);
        let results = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                [arrays, objects, unclosed]
                    .map(|line| (Decoding::Json.decode(line.as_bytes()), line))
            })
            .unwrap()
            .join()
            .expect("decoding deep JSON must not overflow the stack");
        for (fields, line) in results {
            assert_eq!(fields.len(), 2);
            assert_eq!(fields[MESSAGE_FIELD], json!(line));
            let reason = fields[DECODE_ERROR_FIELD].as_str().unwrap();
            assert!(reason.starts_with("invalid JSON at column "), "{reason}");
            assert!(reason.ends_with(": recursion limit exceeded"), "{reason}");
        }
    }
}
