//! The JSON Schema of a pipeline file (`sluice schema`), generated from the same config
//! types the loader deserializes, so an editor checks exactly what `sluice validate` does
//! (short of the graph checks: dangling `inputs`, cycles, files that must exist).

use super::AdminConfig;
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::transforms::TransformConfig;
use schemars::JsonSchema;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A Sluice pipeline: sources feed transforms (WebAssembly plugins) and sinks, wired by
/// the `inputs` of each component. `${VAR}` and `${VAR:-default}` are replaced from the
/// environment before the file is checked.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, title = "Sluice pipeline")]
#[allow(dead_code)] // only its schema is used
struct Pipeline {
    /// Checkpoints, disk buffers and the compiled-plugin cache live here.
    data_dir: Option<PathBuf>,
    admin: Option<AdminConfig>,
    sources: Option<BTreeMap<String, SourceConfig>>,
    transforms: Option<BTreeMap<String, TransformConfig>>,
    sinks: Option<BTreeMap<String, SinkConfig>>,
}

/// The schema as JSON (draft 2020-12).
pub fn pipeline_schema() -> serde_json::Value {
    schemars::schema_for!(Pipeline).to_value()
}

#[cfg(test)]
mod tests {
    use super::pipeline_schema;
    use serde_json::{json, Value};
    use std::path::Path;

    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&pipeline_schema()).expect("the schema is valid JSON Schema")
    }

    /// YAML text as the loader sees it after `${VAR}` expansion: unset variables take
    /// their defaults, and the few without one get a placeholder of the right shape.
    fn document(text: &str) -> Value {
        let text = crate::config::expand(text, &|name| match name {
            "NODE_NAME" | "LOKI_USERNAME" => Some("test".into()),
            "LOKI_URL" | "ALERTMANAGER_URL" => Some("http://127.0.0.1:3100".into()),
            _ => None,
        })
        .expect("variables expand");
        serde_yaml_ng::from_str(&text).expect("valid YAML")
    }

    fn errors(doc: &Value) -> Vec<String> {
        validator()
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect()
    }

    #[test]
    fn the_shipped_pipelines_satisfy_the_schema() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in [
            "pipelines/demo.yaml",
            "pipelines/base.yaml",
            "deploy/compose/sluice/pipeline.yaml",
            "deploy/kubernetes/pipeline.yaml",
        ] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let doc = document(&text);
            assert_eq!(errors(&doc), Vec::<String>::new(), "{file}");
        }
    }

    #[test]
    fn the_schema_refuses_what_the_loader_refuses() {
        let cases = [
            // unknown key in a component
            json!({"sources": {"a": {"type": "file", "include": ["x"], "frobnicate": 1}}}),
            // unknown component type
            json!({"sources": {"a": {"type": "kafka"}}}),
            // a secret written in the file
            json!({"sinks": {"l": {"type": "loki", "inputs": ["a"], "url": "http://x",
                    "auth": {"bearer": "plain-text"}}}}),
            // a size that is not one
            json!({"sinks": {"c": {"type": "console", "inputs": ["a"],
                    "buffer": {"type": "disk", "max_bytes": "12 parsecs"}}}}),
            // on_error outside its three values
            json!({"transforms": {"t": {"inputs": ["a"], "plugin": "p.wasm", "on_error": "retry"}}}),
            // unknown top-level key
            json!({"sourcez": {}}),
        ];
        for case in cases {
            assert!(!errors(&case).is_empty(), "accepted: {case}");
        }
    }

    #[test]
    fn descriptions_come_from_the_doc_comments() {
        let schema = pipeline_schema().to_string();
        assert!(schema.contains("Refuse the plugin unless its sha256 is this"));
        for kind in [
            "file",
            "stdin",
            "http",
            "demo",
            "host_metrics",
            "console",
            "loki",
            "prometheus",
            "alerts",
        ] {
            assert!(
                schema.contains(&format!("\"const\":\"{kind}\"")),
                "{kind} missing"
            );
        }
    }
}
