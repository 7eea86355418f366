//! The record type plugins work on.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One log or event record: a map of JSON-like fields.
///
/// Paths such as `order.client_id` reach into nested maps, so plugins can work with
/// structured records without matching on [`Value`] by hand. A key that itself contains a
/// dot is reached only by [`Record::fields`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Record(Map<String, Value>);

impl Record {
    pub fn new() -> Self {
        Self::default()
    }

    /// `None` when the value is not a JSON object, because a record is always a map.
    pub fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self(map)),
            _ => None,
        }
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut current = self.0.get(parts.next()?)?;
        for part in parts {
            current = current.as_object()?.get(part)?;
        }
        Some(current)
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut Value> {
        let mut parts = path.split('.');
        let mut current = self.0.get_mut(parts.next()?)?;
        for part in parts {
            current = current.as_object_mut()?.get_mut(part)?;
        }
        Some(current)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path)?.as_str()
    }

    /// Also accepts a string holding an integer, since log lines often carry numbers as text.
    pub fn get_i64(&self, path: &str) -> Option<i64> {
        match self.get(path)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Also accepts a string holding a number, with `_` thousands separators allowed.
    pub fn get_f64(&self, path: &str) -> Option<f64> {
        match self.get(path)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().replace('_', "").parse().ok(),
            _ => None,
        }
    }

    pub fn get_bool(&self, path: &str) -> Option<bool> {
        self.get(path)?.as_bool()
    }

    /// Sets a field, creating intermediate maps; an intermediate value that is not a map is
    /// replaced, because the caller asked for a nested field there.
    pub fn set(&mut self, path: &str, value: impl Into<Value>) {
        let mut parts = path.split('.').peekable();
        let mut map = &mut self.0;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                map.insert(part.to_owned(), value.into());
                return;
            }
            let slot = map
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            map = slot.as_object_mut().expect("just made an object");
        }
    }

    pub fn remove(&mut self, path: &str) -> Option<Value> {
        match path.rsplit_once('.') {
            None => self.0.remove(path),
            Some((parent, last)) => self.get_mut(parent)?.as_object_mut()?.remove(last),
        }
    }

    /// The raw line, when the source could not or did not structure it.
    pub fn message(&self) -> Option<&str> {
        self.get_str("message")
    }

    /// RFC 3339 UTC with nanoseconds, as normalised by the host.
    pub fn timestamp(&self) -> Option<&str> {
        self.get_str("timestamp")
    }
}

impl From<Map<String, Value>> for Record {
    fn from(map: Map<String, Value>) -> Self {
        Self(map)
    }
}

impl From<Record> for Value {
    fn from(record: Record) -> Self {
        Value::Object(record.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Record {
        Record::from_value(json!({
            "message": "OrderFilled",
            "order": {"client_id": "O-1", "qty": "1_000.5", "n": 3},
            "flag": true
        }))
        .unwrap()
    }

    #[test]
    fn paths_reach_nested_fields() {
        let r = sample();
        assert_eq!(r.get_str("order.client_id"), Some("O-1"));
        assert_eq!(r.get_f64("order.qty"), Some(1000.5));
        assert_eq!(r.get_i64("order.n"), Some(3));
        assert_eq!(r.get_bool("flag"), Some(true));
        assert_eq!(r.get("order.client_id.deeper"), None);
        assert_eq!(r.get("missing.x"), None);
    }

    #[test]
    fn set_creates_and_replaces_intermediate_maps() {
        let mut r = sample();
        r.set("a.b.c", 1);
        assert_eq!(r.get_i64("a.b.c"), Some(1));
        r.set("flag.inner", "x");
        assert_eq!(r.get_str("flag.inner"), Some("x"));
        r.set("message", "changed");
        assert_eq!(r.message(), Some("changed"));
    }

    #[test]
    fn remove_nested_and_top_level() {
        let mut r = sample();
        assert_eq!(r.remove("order.client_id"), Some(json!("O-1")));
        assert!(!r.contains("order.client_id"));
        assert!(r.contains("order.qty"));
        assert_eq!(r.remove("flag"), Some(json!(true)));
        assert_eq!(r.remove("nope.nope"), None);
    }

    #[test]
    fn from_value_refuses_non_objects() {
        assert!(Record::from_value(json!([1, 2])).is_none());
    }
}
