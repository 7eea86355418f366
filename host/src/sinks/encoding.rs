use crate::event::Record;
use serde::Deserialize;

/// How a sink writes a record on one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The whole record as one JSON object.
    #[default]
    Json,
    /// The `message` field alone (the whole record as JSON when it has none).
    Text,
}

impl Encoding {
    pub fn write(self, record: &Record, out: &mut Vec<u8>) {
        match (self, record.get("message").and_then(|m| m.as_str())) {
            (Encoding::Text, Some(message)) => out.extend_from_slice(message.as_bytes()),
            _ => serde_json::to_writer(&mut *out, record).expect("JSON maps always serialize"),
        }
        out.push(b'\n');
    }
}
