use super::*;

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.test.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn an_unknown_key_is_reported_at_its_line_and_column() {
    let (_dir, path) = write("tests:\n  - name: a\n    inputs: []\n    expect: {records: []}\n");
    let err = run_file(&path).unwrap_err().to_string();
    assert!(err.contains("t.test.yaml:3:5: "), "{err}");
    assert!(err.contains("unknown field `inputs`"), "{err}");
}

#[test]
fn a_test_that_checks_nothing_fails() {
    let (_dir, path) =
        write("plugin: x.wasm\ntests:\n  - name: a\n    input: [{}]\n    expect: {}\n");
    let outcomes = run_file(&path).unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(
        outcomes[0].failures[0].contains("checks nothing"),
        "{outcomes:?}"
    );
}

#[test]
fn a_missing_plugin_or_transform_fails_the_test_by_name() {
    let (_dir, path) = write(
        "tests:\n  - name: a\n    transform: redact\n    input: [{}]\n    expect: {records: []}\n  - name: b\n    plugin: nope.wasm\n    input: [{}]\n    expect: {records: []}\n",
    );
    let outcomes = run_file(&path).unwrap();
    assert!(
        outcomes[0].failures[0].contains("needs a `pipeline:`"),
        "{outcomes:?}"
    );
    assert!(
        outcomes[1].failures[0].contains("nope.wasm"),
        "{outcomes:?}"
    );
}
