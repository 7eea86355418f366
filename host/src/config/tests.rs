//! Every configuration mistake is reported with its file, line, column and key.

use super::*;
use std::path::Path;

fn plugin_file() -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".wasm").tempfile().unwrap();
    std::fs::write(f.path(), b"\0asm\x01\0\0\0").unwrap();
    f
}

fn load(files: &[(&str, String)]) -> Result<PipelineConfig, ConfigErrors> {
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(n, t)| (PathBuf::from(n), t.clone()))
        .collect();
    load_sources(&sources, &|name| match name {
        "SINK_FILE" => Some("/tmp/out.jsonl".into()),
        "BATCH" => Some("64".into()),
        _ => None,
    })
}

fn base(plugin: &Path) -> String {
    format!(
        "sources:\n  logs:\n    type: file\n    include: [/var/log/*.log]\n    batch_size: ${{BATCH}}\n\
transforms:\n  redact:\n    inputs: [logs]\n    plugin: {}\n\
sinks:\n  out:\n    type: file\n    inputs: [redact]\n    path: ${{SINK_FILE}}\n",
        plugin.display()
    )
}

fn only_error(result: Result<PipelineConfig, ConfigErrors>) -> ConfigError {
    let errors = result.expect_err("should be refused").0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

fn at(e: &ConfigError) -> (String, usize, usize) {
    let l = e.location.as_ref().expect("a location");
    (l.file.display().to_string(), l.line, l.column)
}

#[test]
fn a_good_pipeline_loads_with_variables_resolved() {
    let p = plugin_file();
    let config = load(&[("base.yaml", base(p.path()))]).unwrap();
    match &config.sources["logs"] {
        crate::sources::SourceConfig::File(f) => assert_eq!(f.batch_size, 64),
        other => panic!("{other:?}"),
    }
    match &config.sinks["out"] {
        crate::sinks::SinkConfig::File(f) => assert_eq!(f.path, PathBuf::from("/tmp/out.jsonl")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_key_points_at_the_key() {
    let p = plugin_file();
    let text = base(p.path()).replace("    include:", "    includ: [x]\n    include:");
    let e = only_error(load(&[("base.yaml", text)]));
    assert_eq!(e.path.to_string(), "sources.logs.includ");
    assert_eq!(at(&e), ("base.yaml".into(), 4, 5));
    assert!(
        e.message.contains("unknown field `includ`"),
        "{}",
        e.message
    );
    assert!(
        e.to_string()
            .starts_with("base.yaml:4:5: sources.logs.includ: unknown field"),
        "{e}"
    );
}

#[test]
fn dangling_input_points_at_the_list_item() {
    let p = plugin_file();
    let text = base(p.path()).replace("inputs: [redact]", "inputs: [redcat]");
    let e = only_error(load(&[("base.yaml", text)]));
    assert_eq!(e.path.to_string(), "sinks.out.inputs[0]");
    assert_eq!(at(&e), ("base.yaml".into(), 13, 14));
    assert!(
        e.message.contains("unknown input `redcat`"),
        "{}",
        e.message
    );
}

#[test]
fn cycles_are_named() {
    let p = plugin_file();
    let text = format!(
        "sources:\n  s:\n    type: stdin\ntransforms:\n  a:\n    inputs: [s, b]\n    plugin: {0}\n  b:\n    inputs: [a]\n    plugin: {0}\nsinks:\n  o:\n    type: console\n    inputs: [b]\n",
        p.path().display()
    );
    let e = only_error(load(&[("c.yaml", text)]));
    assert!(e.message.contains("cycle: a -> b -> a"), "{}", e.message);
    assert_eq!(at(&e).1, 6);
}

#[test]
fn missing_variable_and_wrong_type_are_both_reported() {
    let p = plugin_file();
    let text = base(p.path())
        .replace("${SINK_FILE}", "${NOT_SET_ANYWHERE}")
        .replace("batch_size: ${BATCH}", "batch_size: lots");
    let errors = load(&[("base.yaml", text)]).unwrap_err().0;
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].path.to_string(), "sources.logs.batch_size");
    assert_eq!(at(&errors[0]).1, 5);
    assert!(
        errors[0].message.contains("invalid type"),
        "{}",
        errors[0].message
    );
    assert_eq!(errors[1].path.to_string(), "sinks.out.path");
    assert!(errors[1].message.contains("`NOT_SET_ANYWHERE` is not set"));
}

#[test]
fn broken_yaml_reports_the_parser_position() {
    let e = only_error(load(&[(
        "bad.yaml",
        "sources:\n  s:\n    type: [stdin\n".into(),
    )]));
    let (file, line, _) = at(&e);
    assert_eq!(file, "bad.yaml");
    assert!(line >= 3, "{e}");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
}

/// Found by `fuzz/` (target `config`): the parser reported the end of a file without a
/// final line break as line 2, column 1 of this one-line file.
#[test]
fn yaml_error_at_the_end_of_a_file_points_into_the_file() {
    let e = only_error(load(&[("bad.yaml", "{".into())]));
    assert_eq!(at(&e), ("bad.yaml".into(), 1, 2), "{e}");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
    // With the line break there, the empty line after it is where the file ends.
    let e = only_error(load(&[("bad.yaml", "{\n".into())]));
    assert_eq!(at(&e), ("bad.yaml".into(), 2, 1), "{e}");
    let e = only_error(load(&[("bad.yaml", "a: 1\r\nb: [x\r\n  # c".into())]));
    assert_eq!(at(&e), ("bad.yaml".into(), 3, 6), "{e}");
}

#[test]
fn unknown_component_type_points_at_type() {
    let p = plugin_file();
    let text = base(p.path()).replace("type: file\n    include", "type: flie\n    include");
    let e = only_error(load(&[("base.yaml", text)]));
    assert_eq!(e.path.to_string(), "sources.logs.type");
    assert!(
        e.message
            .contains("unknown type `flie`, expected one of `file`"),
        "{}",
        e.message
    );
}

#[test]
fn overlay_overrides_and_its_errors_point_into_the_overlay() {
    let p = plugin_file();
    let overlay = "sinks:\n  out:\n    path: /tmp/prod.jsonl\n    fsync: sometimes\n".to_owned();
    let e = only_error(load(&[
        ("base.yaml", base(p.path())),
        ("prod.yaml", overlay),
    ]));
    assert_eq!(at(&e), ("prod.yaml".into(), 4, 5));

    let overlay = "sinks:\n  out:\n    path: /tmp/prod.jsonl\n    fsync: true\n".to_owned();
    let config = load(&[("base.yaml", base(p.path())), ("prod.yaml", overlay)]).unwrap();
    match &config.sinks["out"] {
        crate::sinks::SinkConfig::File(f) => {
            assert_eq!(f.path, PathBuf::from("/tmp/prod.jsonl"));
            assert!(f.fsync);
            assert_eq!(f.inputs, vec!["redact".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_plugin_file_and_bad_pin_are_reported() {
    let p = plugin_file();
    let text = base(p.path()).replace(
        &format!("plugin: {}", p.path().display()),
        "plugin: /nonexistent/redact.wasm\n    sha256: abc",
    );
    let errors = load(&[("base.yaml", text)]).unwrap_err().0;
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{messages:#?}");
    assert!(messages[0]
        .contains("transforms.redact.plugin: plugin file /nonexistent/redact.wasm does not exist"));
    assert!(
        messages[1].contains("transforms.redact.sha256: `sha256` must be 64 hexadecimal digits")
    );
}

#[test]
fn secrets_written_inline_are_refused() {
    let text = "sources:\n  h:\n    type: http\n    address: 127.0.0.1:0\n    bearer_token: hunter2\nsinks:\n  o:\n    type: console\n    inputs: [h]\n";
    let e = only_error(load(&[("s.yaml", text.into())]));
    assert_eq!(e.path.to_string(), "sources.h.bearer_token");
    assert!(e.message.contains("cannot be written in the configuration"));
    assert!(!e.to_string().contains("hunter2"));
}

#[test]
fn the_embedded_demo_and_the_shipped_pipelines_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    let plugin_dir = tempfile::tempdir().unwrap();
    for name in ["redact", "enrich", "metrics", "alerts"] {
        let path = plugin_dir.path().join(format!("sluice_plugin_{name}.wasm"));
        std::fs::write(path, b"\0asm").unwrap();
    }
    let dir = plugin_dir.path().display().to_string();
    let env = move |name: &str| (name == "SLUICE_PLUGIN_DIR").then(|| dir.clone());
    let demo = load_sources(&[(root.join("demo.yaml"), DEMO_PIPELINE.to_owned())], &env);
    assert!(demo.is_ok(), "{}", demo.unwrap_err());
    for overlay in ["dev", "staging", "prod"] {
        let files: Vec<(PathBuf, String)> = ["base", overlay]
            .iter()
            .map(|f| {
                let path = root.join(format!("{f}.yaml"));
                let text = std::fs::read_to_string(&path).unwrap();
                (path, text)
            })
            .collect();
        let loaded = load_sources(&files, &env);
        assert!(loaded.is_ok(), "{overlay}: {}", loaded.unwrap_err());
    }
}
