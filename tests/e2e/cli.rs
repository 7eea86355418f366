//! The command line as a user runs it: `validate`, `plugin run`, and the demo.

use sluice_tests::{plugin_wasm, sluice_bin, workspace_root};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn validate_reports_every_problem_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "sources:\n  in:\n    type: stdin\n    decode: xml\nsinks:\n  out:\n    type: console\n    inputs: [nowhere]\n    colour: red\n",
    )
    .unwrap();
    let out = Command::new(sluice_bin())
        .args(["validate", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(
        err.contains(&format!(
            "{p}:4:5: sources.in.decode: unknown variant `xml`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{p}:9:5: sinks.out.colour: unknown field `colour`"
        )),
        "{err}"
    );
}

#[test]
fn validate_accepts_the_shipped_environments() {
    let root = workspace_root();
    for env in ["dev", "staging", "prod"] {
        let out = Command::new(sluice_bin())
            .current_dir(&root)
            .args(["validate", "--env", env])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{env}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("pipelines/base.yaml + pipelines/{env}.yaml: ok")),
            "{stdout}"
        );
    }
}

#[test]
fn plugin_run_is_a_unix_filter() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "add: {env: cli}\ndrop_level: DEBUG\n").unwrap();
    let mut child = Command::new(sluice_bin())
        .args(["plugin", "run"])
        .arg(plugin_wasm("sluice_plugin_example"))
        .args(["--decode", "nautilus", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"2024-06-03T00:00:01.000000000Z [INFO] TRADER-001.Strategy: hello\n\
              2024-06-03T00:00:02.000000000Z [DEBUG] TRADER-001.Strategy: noise\n\
              garbage line\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["message"], "hello");
    assert_eq!(records[0]["env"], "cli");
    assert_eq!(records[0]["component"], "Strategy");
    assert_eq!(records[1]["message"], "garbage line");
    assert!(records[1]["decode_error"]
        .as_str()
        .unwrap()
        .contains("not a NautilusTrader log line"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#"metric {"name":"example_records_total","kind":"counter","value":1.0,"labels":{"level":"INFO"}}"#), "{stderr}");
}

#[test]
fn the_built_in_demo_runs_with_no_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin_wasm("sluice_plugin_example")
        .parent()
        .unwrap()
        .to_owned();
    let mut child = Command::new(sluice_bin())
        .current_dir(dir.path())
        .env("SLUICE_PLUGIN_DIR", &plugin_dir)
        .env("SLUICE_DATA_DIR", dir.path().join("data"))
        .env(
            "SLUICE_ADMIN_ADDRESS",
            format!("127.0.0.1:{}", sluice_tests::free_port()),
        )
        .env(
            "SLUICE_METRICS_ADDRESS",
            format!("127.0.0.1:{}", sluice_tests::free_port()),
        )
        .env("SLUICE_DEMO_RATE", "500")
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<String> = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .take(200)
        .map(|l| l.unwrap())
        .collect();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(lines.len(), 200);
    let bot: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] != "host_metrics")
        .collect();
    assert!(bot.len() >= 190, "host metrics are a handful of records");
    for record in &bot {
        // Through all four reference plugins: enriched, and nothing left undecoded.
        assert_eq!(record["env"], "demo", "{record}");
        assert!(record["correlation_id"].is_string(), "{record}");
        assert!(record.get("decode_error").is_none(), "{record}");
    }
}
