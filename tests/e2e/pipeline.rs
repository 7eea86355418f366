//! Whole pipelines: file source → Wasm plugin → file sink, checkpoints, rotation.

use crate::support::{append, pipeline, Sluice};
use sluice_tests::{free_port, plugin_wasm, read_jsonl, wait_for, workspace_root};
use std::path::Path;
use std::time::Duration;

fn file_pipeline(dir: &Path, extra_source: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
data_dir: {dir}/data
admin: {{address: "127.0.0.1:{port}"}}
sources:
  logs:
    type: file
    include: ["{dir}/in/*.log"]
    decode: nautilus
    poll_interval_ms: 50
{extra_source}
transforms:
  tag:
    inputs: [logs]
    plugin: {plugin}
    config: {{add: {{env: test}}}}
sinks:
  out:
    type: file
    inputs: [tag]
    path: {dir}/out.jsonl
"#,
        dir = dir.display(),
        port = free_port(),
        plugin = plugin_wasm("sluice_plugin_example").display(),
    );
    pipeline(dir, &text)
}

fn numbered(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(|n| format!("2024-06-03T00:00:00.{n:09}Z [INFO] TRADER-001.Strategy: line {n}"))
}

fn numbers(dir: &Path) -> Vec<usize> {
    read_jsonl(&dir.join("out.jsonl"))
        .iter()
        .map(|r| {
            r["message"]
                .as_str()
                .unwrap()
                .strip_prefix("line ")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn wait_for_count(dir: &Path, n: usize) -> Vec<usize> {
    wait_for(Duration::from_secs(30), || {
        let got = numbers(dir);
        (got.len() >= n).then_some(got)
    })
    .unwrap_or_else(|| panic!("expected {n} records, have {}", numbers(dir).len()))
}

#[test]
fn nautilus_fixture_flows_through_a_wasm_plugin_exactly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let fixture = workspace_root().join("tests/fixtures/nautilus/sample.log");
    let text = std::fs::read_to_string(&fixture).unwrap();
    std::fs::write(dir.path().join("in/bot.log"), &text).unwrap();
    let expected: Vec<&str> = text.lines().collect();

    let sluice = Sluice::start(dir.path(), &file_pipeline(dir.path(), ""));
    let out = wait_for(Duration::from_secs(30), || {
        let records = read_jsonl(&dir.path().join("out.jsonl"));
        (records.len() >= expected.len()).then_some(records)
    })
    .unwrap_or_else(|| panic!("not all records arrived; log:\n{}", sluice.log_text()));
    assert_eq!(sluice.stop(), 0);
    let out_again = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(
        out_again.len(),
        expected.len(),
        "no duplicates after stopping"
    );

    for (record, line) in out.iter().zip(&expected) {
        assert_eq!(record["env"], "test");
        assert_eq!(
            record["file"],
            dir.path().join("in/bot.log").display().to_string()
        );
        assert!(!record.contains_key("decode_error"), "{line}: {record:?}");
        let (ts, rest) = line.split_once(' ').unwrap();
        assert_eq!(record["timestamp"].as_str().unwrap(), ts);
        assert_eq!(
            record["level"].as_str().unwrap(),
            &rest[1..rest.find(']').unwrap()]
        );
        assert!(
            line.ends_with(record["message"].as_str().unwrap()),
            "{line} vs {record:?}"
        );
    }
}

#[test]
fn restart_resumes_from_the_checkpoint_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let input = dir.path().join("in/bot.log");
    let config = file_pipeline(dir.path(), "");
    append(&input, numbered(0..500));

    let sluice = Sluice::start(dir.path(), &config);
    wait_for_count(dir.path(), 500);
    assert_eq!(sluice.stop(), 0);

    // Written while Sluice was down; a partial last line too.
    append(&input, numbered(500..800));
    let sluice = Sluice::start(dir.path(), &config);
    wait_for_count(dir.path(), 800);
    append(&input, numbered(800..1000));
    let got = wait_for_count(dir.path(), 1000);
    assert_eq!(sluice.stop(), 0);
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(numbers(dir.path()).len(), 1000);
}

#[test]
fn rotation_by_rename_and_by_truncation_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    let input = dir.path().join("in/bot.log");
    let sluice = Sluice::start(dir.path(), &file_pipeline(dir.path(), ""));
    append(&input, numbered(0..100));
    wait_for_count(dir.path(), 100);

    // Rename rotation: lines written to the old file after the rename still arrive.
    let rotated = dir.path().join("in/bot.log.1");
    std::fs::rename(&input, &rotated).unwrap();
    append(&rotated, numbered(100..150));
    append(&input, numbered(150..250));
    wait_for_count(dir.path(), 250);

    // Truncation (copytruncate): the file starts over and is read from the start.
    std::fs::write(&input, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&input, numbered(250..300));
    let mut got = wait_for_count(dir.path(), 300);
    assert_eq!(sluice.stop(), 0);
    got.sort();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
}

#[test]
fn a_stdin_pipeline_drains_and_exits_when_stdin_closes() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let config = pipeline(
        dir.path(),
        &format!(
            "data_dir: {d}/data\nadmin: {{address: null}}\nsources:\n  in: {{type: stdin, decode: json}}\nsinks:\n  out: {{type: file, inputs: [in], path: \"{d}/out.jsonl\"}}\n"
        ),
    );
    let mut child = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["run", "-c"])
        .arg(&config)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for n in 0..5000 {
        writeln!(stdin, "{{\"n\": {n}}}").unwrap();
    }
    stdin.write_all(b"{\"last\": true}").unwrap(); // no trailing newline
    drop(stdin);
    let status =
        wait_for(Duration::from_secs(30), || child.try_wait().unwrap()).expect("exits after EOF");
    assert!(status.success());
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), 5001);
    assert!(out.iter().take(5000).enumerate().all(|(i, r)| r["n"] == i));
    assert_eq!(out[5000]["last"], true);
}
