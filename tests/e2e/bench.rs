//! `sluice bench --short` as CI runs it: the whole chain end to end on a small log, so the
//! benchmark command cannot rot. No timing is asserted; the numbers go to
//! docs/performance.md from full runs.

use sluice_tests::{sluice_bin, workspace_root};
use std::process::Command;

#[test]
fn sluice_bench_short_runs_the_chain_end_to_end_and_reports_every_figure() {
    let out = Command::new(sluice_bin())
        .current_dir(workspace_root())
        .args(["bench", "--short"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Progress goes to stderr while it runs.
    assert!(stderr.contains("generated 20000 lines"), "{stderr}");
    let figure = |label: &str, unit: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line:\n{stdout}"));
        let before_unit = &line[..line.find(unit).unwrap_or_else(|| panic!("{line}"))];
        before_unit
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(figure("throughput", "events/s") > 0.0, "{stdout}");
    assert!(figure("CPU", "s per million") > 0.0, "{stdout}");
    assert!(figure("memory", "MiB peak RSS") > 0.0, "{stdout}");
    assert!(stdout.contains("(20000 lines,"), "{stdout}");
    let latency = stdout.lines().find(|l| l.contains("latency")).unwrap();
    assert!(
        latency.contains("p99") && !latency.contains("NaN"),
        "{latency}"
    );
}

#[test]
fn sluice_bench_names_a_missing_plugin() {
    let out = Command::new(sluice_bin())
        .args(["bench", "--short", "--plugins", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/sluice_plugin_redact.wasm is missing"),
        "{stderr}"
    );
}
