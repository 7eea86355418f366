//! What a plugin author runs: `sluice test` on YAML unit tests, `sluice schema` for the
//! editor, and `sluice plugin new` to start a plugin.

use sluice_tests::{plugin_wasm, sluice_bin, workspace_root};
use std::process::{Command, Output};

fn sluice(args: &[&str]) -> Output {
    Command::new(sluice_bin())
        .current_dir(workspace_root())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn sluice_test_passes_the_demo_pipelines_tests() {
    let out = sluice(&["test", "pipelines/demo.test.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  ok    redact masks a Binance API key"),
        "{stdout}"
    );
    assert!(stdout.contains("5 tests: 5 passed, 0 failed"), "{stdout}");
}

/// A test fails unless every expectation matched, and the output shows what differed.
#[test]
fn sluice_test_fails_on_any_unmet_expectation_and_shows_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.test.yaml");
    std::fs::write(
        &file,
        format!(
            r#"plugin: {plugin}
config: {{add: {{env: prod}}, drop_level: DEBUG}}
tests:
  - name: all expectations met
    input: [{{message: a, level: INFO}}, {{message: b, level: DEBUG}}]
    expect:
      records: [{{message: a, env: prod}}]
      metrics: [{{name: example_records_total, labels: {{level: INFO}}, value: 1}}]
  - name: one record of two is wrong
    input: [{{message: a, level: INFO}}, {{message: c, level: WARN}}]
    expect:
      records: [{{message: a, env: prod}}, {{message: c, env: staging}}]
  - name: one metric of two never came
    input: [{{message: a, level: INFO}}]
    expect:
      metrics:
        - {{name: example_records_total, labels: {{level: INFO}}}}
        - {{name: example_records_total, labels: {{level: ERROR}}}}
  - name: a dropped record was expected
    input: [{{message: b, level: DEBUG}}]
    expect:
      records: [{{message: b}}]
"#,
            plugin = plugin_wasm("sluice_plugin_example").display()
        ),
    )
    .unwrap();
    let out = sluice(&["test", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("  ok    all expectations met"), "{stdout}");
    assert!(
        stdout.contains("  FAIL  one record of two is wrong"),
        "{stdout}"
    );
    assert!(
        stdout.contains("record 2:\n          `env`: expected \"staging\", got \"prod\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("  FAIL  one metric of two never came"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            r#"metric 2: not emitted: {"labels":{"level":"ERROR"},"name":"example_records_total"}"#
        ),
        "{stdout}"
    );
    assert!(stdout.contains("records: expected 1, got 0"), "{stdout}");
    assert!(stdout.contains("4 tests: 1 passed, 3 failed"), "{stdout}");
}

#[test]
fn sluice_test_names_the_place_of_a_mistake_in_the_test_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.test.yaml");
    std::fs::write(
        &file,
        "tests:\n  - name: x\n    input: [{}]\n    expect:\n      record: []\n",
    )
    .unwrap();
    let out = sluice(&["test", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains(&format!("{}:5:7: ", file.display()))
            && stdout.contains("unknown field `record`"),
        "{stdout}"
    );
}

#[test]
fn sluice_schema_prints_a_json_schema_of_pipelines() {
    let out = sluice(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], "Sluice pipeline");
    assert_eq!(schema["additionalProperties"], false);
    assert!(
        schema["$defs"]["SourceConfig"]["oneOf"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );
}

/// The scaffold works as generated: its native tests pass, it builds to Wasm, its YAML
/// tests pass against that build, and its pipeline validates and runs it.
#[test]
fn a_new_plugin_passes_its_generated_tests_out_of_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(sluice_bin())
        .args(["plugin", "new", "order-tagger", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crate_dir = dir.path().join("order-tagger");
    let cargo = |args: &[&str]| {
        let out = Command::new(env!("CARGO"))
            .current_dir(&crate_dir)
            .args(args)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo {args:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tests = cargo(&["test", "--quiet"]);
    assert!(tests.contains("2 passed"), "{tests}");
    cargo(&["build", "--release", "--quiet", "--target", "wasm32-wasip1"]);
    assert!(crate_dir
        .join("target/wasm32-wasip1/release/order_tagger.wasm")
        .is_file());

    let run = |args: &[&str]| {
        Command::new(sluice_bin())
            .current_dir(&crate_dir)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["test", "order-tagger.test.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("2 tests: 2 passed, 0 failed"), "{stdout}");
    let out = run(&["validate", "-c", "pipeline.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["plugin", "new", "order-tagger", "--dir", ".."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

/// With `transform:`, a test runs under the pipeline's limits; `expect.error` matches a
/// trap or a deadline as well as an error the plugin returns.
#[test]
fn sluice_test_runs_a_transform_under_the_pipelines_limits() {
    let dir = tempfile::tempdir().unwrap();
    let chaos = plugin_wasm("sluice_plugin_chaos");
    std::fs::write(
        dir.path().join("pipeline.yaml"),
        format!(
            "sources:\n  in: {{type: stdin}}\ntransforms:\n  chaos:\n    inputs: [in]\n    plugin: {}\n    limits: {{timeout_ms: 50}}\nsinks:\n  out: {{type: console, inputs: [chaos]}}\n",
            chaos.display()
        ),
    )
    .unwrap();
    let file = dir.path().join("chaos.test.yaml");
    std::fs::write(
        &file,
        "pipeline: pipeline.yaml\ntests:\n  - name: a loop meets the pipeline's deadline\n    transform: chaos\n    input: [{chaos: loop}]\n    expect: {error: timed out after 50 ms}\n  - name: a trap\n    transform: chaos\n    input: [{chaos: trap}]\n    expect: {error: unreachable}\n  - name: an unexpected trap fails\n    transform: chaos\n    input: [{chaos: trap}]\n    expect: {records: []}\n",
    )
    .unwrap();
    let out = sluice(&["test", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("  ok    a loop meets the pipeline's deadline"),
        "{stdout}"
    );
    assert!(stdout.contains("  ok    a trap"), "{stdout}");
    assert!(
        stdout.contains("  FAIL  an unexpected trap fails"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the plugin failed the batch: trapped: wasm trap: wasm `unreachable`"),
        "{stdout}"
    );
    assert!(stdout.contains("3 tests: 2 passed, 1 failed"), "{stdout}");
}
