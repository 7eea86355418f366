//! Input a user or a producer gets wrong: each bad line becomes a flagged record, counted
//! and logged with where it is, and nothing around it is lost; a broken pipeline file is
//! refused with file:line:col before anything starts.

use crate::support::{pipeline, Sluice};
use sluice_tests::{free_port, http, peak_rss_kib, read_jsonl, sluice_bin, wait_for};
use std::io::Write;
use std::time::Duration;

#[test]
fn bad_lines_are_flagged_counted_located_and_their_neighbours_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.log");
    let huge = 100_000_000usize;
    let binary: Vec<u8> = (0..=255u8)
        .filter(|&b| b != b'\n')
        .cycle()
        .take(4096)
        .collect();
    let nested = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    // (line, the decode_error it must get; None for a good line)
    let mut bad_offsets = Vec::new();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let mut at = 0u64;
        let mut write = |bytes: &[u8], bad: Option<&'static str>, f: &mut std::io::BufWriter<_>| {
            if let Some(reason) = bad {
                bad_offsets.push((at, reason));
            }
            f.write_all(bytes).unwrap();
            f.write_all(b"\n").unwrap();
            at += bytes.len() as u64 + 1;
        };
        write(br#"{"n":0}"#, None, &mut f);
        write(
            b"{\"n\":\"\xff\xfe\"}",
            Some("invalid UTF-8 at byte 6"),
            &mut f,
        );
        write(br#"{"n":1}"#, None, &mut f);
        write(&binary, Some("invalid UTF-8 at byte 127"), &mut f);
        write(br#"{"n":2}"#, None, &mut f);
        let mut long = br#"{"n":"#.to_vec();
        long.resize(huge, b'7');
        write(
            &long,
            Some("line too long: kept the first 1048576 bytes, dropped 98951424 more"),
            &mut f,
        );
        write(br#"{"n":3}"#, None, &mut f);
        write(nested.as_bytes(), Some("recursion limit exceeded"), &mut f);
        write(br#"{"n":4}"#, None, &mut f);
        write(br#"{"n": "#, Some("EOF while parsing"), &mut f);
        write(br#"{"n":5}"#, None, &mut f);
    }
    let admin = free_port();
    let d = dir.path().display();
    let config = pipeline(
        dir.path(),
        &format!(
            r#"
data_dir: {d}/data
admin: {{address: "127.0.0.1:{admin}"}}
sources:
  logs: {{type: file, include: ["{d}/in.log"], decode: json, poll_interval_ms: 20}}
sinks:
  out: {{type: file, inputs: [logs], path: "{d}/out.jsonl"}}
"#
        ),
    );
    let sluice = Sluice::start(dir.path(), &config);
    let out = dir.path().join("out.jsonl");
    let records = wait_for(Duration::from_secs(60), || {
        let r = read_jsonl(&out);
        (r.len() >= 11).then_some(r)
    })
    .unwrap_or_else(|| panic!("not every line arrived\n{}", sluice.log_text()));
    let peak = peak_rss_kib(sluice.pid()).unwrap() / 1024;

    let good: Vec<u64> = records
        .iter()
        .filter(|r| !r.contains_key("decode_error"))
        .map(|r| {
            r.get("n").and_then(|n| n.as_u64()).unwrap_or_else(|| {
                panic!(
                    "unflagged record without n: {:.300}",
                    serde_json::Value::Object(r.clone())
                )
            })
        })
        .collect();
    assert_eq!(good, vec![0, 1, 2, 3, 4, 5], "every good line, in order");
    let flagged: Vec<&str> = records
        .iter()
        .filter_map(|r| r.get("decode_error").and_then(|e| e.as_str()))
        .collect();
    assert_eq!(flagged.len(), bad_offsets.len(), "{flagged:?}");
    for ((_, reason), got) in bad_offsets.iter().zip(&flagged) {
        assert!(got.contains(reason), "expected `{reason}` in `{got}`");
    }
    let kept = records
        .iter()
        .find(|r| {
            r.get("decode_error")
                .and_then(|e| e.as_str())
                .is_some_and(|e| e.contains("too long"))
        })
        .unwrap();
    assert_eq!(kept["message"].as_str().unwrap().len(), 1 << 20);
    assert!(
        peak < 150,
        "a 100 MB line must not be held whole: peak RSS {peak} MiB"
    );

    let (_, metrics) = http("GET", &format!("127.0.0.1:{admin}"), "/metrics", &[], b"");
    assert!(
        metrics
            .contains(r#"sluice_component_errors_total{component="logs",error_kind="decode"} 5"#),
        "{metrics}"
    );
    // The log says where: the first bad line of each kind within the rate limit.
    let log = sluice.log_text();
    let (offset, reason) = bad_offsets[0];
    assert!(
        log.contains(&format!(
            "{}: line at byte {offset}: {reason}",
            input.display()
        )),
        "{log}"
    );
    assert_eq!(sluice.stop(), 0);
}

#[test]
fn a_pipeline_naming_a_missing_or_truncated_plugin_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("half.wasm");
    let real = std::fs::read(sluice_tests::plugin_wasm("sluice_plugin_example")).unwrap();
    std::fs::write(&truncated, &real[..real.len() / 3]).unwrap();
    let path = pipeline(
        dir.path(),
        &format!(
            "sources:\n  in: {{type: stdin}}\ntransforms:\n  gone:\n    inputs: [in]\n    plugin: {d}/gone.wasm\n  half:\n    inputs: [gone]\n    plugin: {t}\nsinks:\n  out: {{type: console, inputs: [half]}}\n",
            d = dir.path().display(),
            t = truncated.display(),
        ),
    );
    let out = std::process::Command::new(sluice_bin())
        .args(["validate", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:6:5: transforms.gone.plugin: plugin file {}/gone.wasm does not exist",
            path.display(),
            dir.path().display()
        )),
        "{err}"
    );

    // Validation checks that the file is there; loading it is what finds it truncated.
    std::fs::write(
        &path,
        format!(
            "sources:\n  in: {{type: stdin}}\ntransforms:\n  half:\n    inputs: [in]\n    plugin: {}\nsinks:\n  out: {{type: console, inputs: [half]}}\n",
            truncated.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(sluice_bin())
        .args(["run", "-c"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plugin `half`") && err.contains("is not a valid WebAssembly module"),
        "{err}"
    );
}
