//! Turning one raw input line into a record.
//!
//! Decoding never fails: a shipper that dropped lines it could not parse would lose exactly
//! the lines someone is most likely to go looking for. A line that does not decode as asked
//! keeps its text in `message` and says why in `decode_error`, so it can still be shipped,
//! searched and alerted on.

mod json;
mod nautilus;
mod text;
mod timestamp;

use serde_json::{Map, Value};

pub use timestamp::{format_timestamp, normalize_timestamp};

/// Which decoder a source applies to each line. Used in pipeline YAML as `decode: json|text|nautilus`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    Json,
    /// The default because it cannot fail, so an unconfigured source loses nothing.
    #[default]
    Text,
    Nautilus,
}

/// Field that carries why a line could not be decoded as asked. The raw line is then kept in `message`.
pub const DECODE_ERROR_FIELD: &str = "decode_error";

/// Where the line's text goes, both for `text` and for lines that failed to decode.
pub(crate) const MESSAGE_FIELD: &str = "message";

impl Decoding {
    /// Decode one line (without its trailing '\n'; a trailing '\r' must also be stripped). Never fails: a line that does
    /// not decode becomes {"message": <lossy UTF-8 of the line>, "decode_error": "<reason>"}.
    ///
    /// The '\r' goes because files written on Windows would otherwise carry it into every
    /// message; a stray '\n' is also tolerated so a caller that forgot to trim does not.
    pub fn decode(self, line: &[u8]) -> Map<String, Value> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = match std::str::from_utf8(line) {
            Ok(line) => line,
            // Structured decoding of a damaged line would report a misleading cause (or, for
            // text, silently change bytes); the UTF-8 error is the real one.
            Err(e) => {
                return undecodable(
                    &String::from_utf8_lossy(line),
                    format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                )
            }
        };
        match self {
            Decoding::Json => json::decode(line),
            Decoding::Text => text::decode(line),
            Decoding::Nautilus => nautilus::decode(line),
        }
    }
}

/// The record for a line that could not be decoded as asked.
pub(crate) fn undecodable(raw: &str, reason: String) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(MESSAGE_FIELD.to_owned(), Value::String(raw.to_owned()));
    fields.insert(DECODE_ERROR_FIELD.to_owned(), Value::String(reason));
    fields
}

/// serde_json's messages end in " at line L column C"; a line is always line 1, so only the
/// column is worth reporting, and only once.
pub(crate) fn json_error_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let detail = match text.rfind(" at line ") {
        Some(at) if e.line() != 0 => &text[..at],
        _ => text.as_str(),
    };
    format!("invalid JSON at column {}: {detail}", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_names_are_lowercase() {
        for (name, decoding) in [
            ("json", Decoding::Json),
            ("text", Decoding::Text),
            ("nautilus", Decoding::Nautilus),
        ] {
            let parsed: Decoding = serde_json::from_value(json!(name)).unwrap();
            assert_eq!(parsed, decoding);
            assert_eq!(serde_json::to_value(decoding).unwrap(), json!(name));
        }
        assert!(serde_json::from_value::<Decoding>(json!("Json")).is_err());
        assert_eq!(Decoding::default(), Decoding::Text);
    }

    #[test]
    fn invalid_utf8_is_reported_for_every_decoding() {
        let line = b"ok \xff\xfe then more";
        for decoding in [Decoding::Json, Decoding::Text, Decoding::Nautilus] {
            let fields = decoding.decode(line);
            assert_eq!(fields.len(), 2, "{decoding:?}");
            assert_eq!(
                fields[MESSAGE_FIELD],
                json!("ok \u{fffd}\u{fffd} then more")
            );
            assert_eq!(fields[DECODE_ERROR_FIELD], json!("invalid UTF-8 at byte 3"));
        }
    }

    #[test]
    fn invalid_utf8_is_not_parsed_even_if_it_would_be_json() {
        let fields = Decoding::Json.decode(b"{\"a\":\"\xc3\"}");
        assert_eq!(fields[DECODE_ERROR_FIELD], json!("invalid UTF-8 at byte 6"));
        assert_eq!(fields[MESSAGE_FIELD], json!("{\"a\":\"\u{fffd}\"}"));
    }

    #[test]
    fn line_endings_are_stripped() {
        for line in [&b"hello\r"[..], b"hello\r\n", b"hello\n", b"hello"] {
            assert_eq!(Decoding::Text.decode(line), text::decode("hello"));
        }
        // Only one line ending is removed; an inner or doubled '\r' is content.
        assert_eq!(
            Decoding::Text.decode(b"a\rb\r\r")[MESSAGE_FIELD],
            json!("a\rb\r")
        );
        let fields = Decoding::Json.decode(b"{\"a\":1}\r");
        assert_eq!(fields, json!({"a": 1}).as_object().unwrap().clone());
    }
}
