//! The decoder that cannot fail, for sources whose lines have no structure worth trusting.

use serde_json::{Map, Value};

use crate::decode::MESSAGE_FIELD;

/// Keeps the line verbatim (ANSI codes and all): `text` promises the line as written, and
/// any cleanup belongs in a plugin where it is visible and configurable.
pub(crate) fn decode(line: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(MESSAGE_FIELD.to_owned(), Value::String(line.to_owned()));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoding, DECODE_ERROR_FIELD};
    use serde_json::json;

    #[test]
    fn line_becomes_message() {
        let fields = Decoding::Text.decode("plain ✓ line: with colon".as_bytes());
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[MESSAGE_FIELD], json!("plain ✓ line: with colon"));
    }

    #[test]
    fn empty_line_is_an_empty_message() {
        let fields = Decoding::Text.decode(b"");
        assert_eq!(fields[MESSAGE_FIELD], json!(""));
        assert!(!fields.contains_key(DECODE_ERROR_FIELD));
    }

    #[test]
    fn json_and_ansi_are_not_interpreted() {
        let line = "\x1b[1m{\"timestamp\": 5}\x1b[0m";
        let fields = Decoding::Text.decode(line.as_bytes());
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[MESSAGE_FIELD], json!(line));
    }
}
