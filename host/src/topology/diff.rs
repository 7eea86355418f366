//! What a reload changes: the components added, removed, changed and rewired between the
//! running pipeline and the new one, compared on the merged YAML document.

use serde_json::{Map, Value};

/// One kind of component (sources, transforms or sinks), by name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Settings other than `inputs` differ.
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Kept (changed or not) with different `inputs`.
    pub rewired: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub sources: Changes,
    pub transforms: Changes,
    pub sinks: Changes,
    /// Top-level settings a running process cannot change (`data_dir`, `admin`).
    pub needs_restart: Vec<&'static str>,
}

impl Diff {
    pub fn between(old: &Value, new: &Value) -> Self {
        Diff {
            sources: changes(old.get("sources"), new.get("sources")),
            transforms: changes(old.get("transforms"), new.get("transforms")),
            sinks: changes(old.get("sinks"), new.get("sinks")),
            needs_restart: ["data_dir", "admin"]
                .into_iter()
                .filter(|key| old.get(key) != new.get(key))
                .collect(),
        }
    }
}

fn changes(old: Option<&Value>, new: Option<&Value>) -> Changes {
    let empty = Map::new();
    let old = old.and_then(Value::as_object).unwrap_or(&empty);
    let new = new.and_then(Value::as_object).unwrap_or(&empty);
    let mut changes = Changes {
        removed: old
            .keys()
            .filter(|name| !new.contains_key(*name))
            .cloned()
            .collect(),
        ..Changes::default()
    };
    for (name, now) in new {
        let Some(before) = old.get(name) else {
            changes.added.push(name.clone());
            continue;
        };
        if before.get("inputs") != now.get("inputs") {
            changes.rewired.push(name.clone());
        }
        if without_inputs(before) == without_inputs(now) {
            changes.unchanged.push(name.clone());
        } else {
            changes.changed.push(name.clone());
        }
    }
    changes
}

fn without_inputs(component: &Value) -> Value {
    let mut component = component.clone();
    if let Some(map) = component.as_object_mut() {
        map.remove("inputs");
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_each_component_by_what_happened_to_it() {
        let old = json!({
            "data_dir": "/var/lib/sluice",
            "sources": {"a": {"type": "stdin"}, "b": {"type": "file", "include": ["x"]}},
            "transforms": {
                "t": {"plugin": "t.wasm", "inputs": ["a"]},
                "u": {"plugin": "u.wasm", "inputs": ["a"]},
            },
            "sinks": {"out": {"type": "console", "inputs": ["t"]}, "gone": {"type": "console", "inputs": ["u"]}},
        });
        let new = json!({
            "data_dir": "/var/lib/sluice",
            "admin": {"address": "127.0.0.1:9000"},
            "sources": {"a": {"type": "stdin"}, "b": {"type": "file", "include": ["y"]}},
            "transforms": {
                "t": {"plugin": "t.wasm", "inputs": ["a", "b"]},
                "u": {"plugin": "u2.wasm", "inputs": ["a"]},
                "v": {"plugin": "v.wasm", "inputs": ["t"]},
            },
            "sinks": {"out": {"type": "console", "inputs": ["v"]}},
        });
        let diff = Diff::between(&old, &new);
        assert_eq!(diff.needs_restart, vec!["admin"]);
        assert_eq!(
            diff.sources,
            Changes {
                changed: vec!["b".into()],
                unchanged: vec!["a".into()],
                ..Changes::default()
            }
        );
        assert_eq!(
            diff.transforms,
            Changes {
                added: vec!["v".into()],
                changed: vec!["u".into()],
                unchanged: vec!["t".into()],
                rewired: vec!["t".into()],
                ..Changes::default()
            }
        );
        assert_eq!(
            diff.sinks,
            Changes {
                removed: vec!["gone".into()],
                unchanged: vec!["out".into()],
                rewired: vec!["out".into()],
                ..Changes::default()
            }
        );
        assert_eq!(
            Diff::between(&new, &new.clone()).sinks.unchanged,
            vec!["out"]
        );
    }
}
