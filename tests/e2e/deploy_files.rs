//! The files in `deploy/` that this machine can check without Docker or Kubernetes: the
//! shipper's Prometheus rules (`promtool check rules` and `promtool test rules`), the
//! Compose Prometheus config, every PromQL expression of the Grafana dashboards, and the
//! pipelines the Compose and Kubernetes setups run (`sluice validate`).

use serde_json::Value;
use sluice_tests::{sluice_bin, workspace_root};
use std::path::Path;
use std::process::Command;

fn promtool(args: &[&str]) -> String {
    let promtool = Path::new("/usr/bin/promtool");
    assert!(
        promtool.is_file(),
        "promtool is missing: `apt-get install prometheus` (.ci/run does it)"
    );
    let out = Command::new(promtool)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn shipper_alert_rules_pass_promtool_check_and_unit_tests() {
    let checked = promtool(&["check", "rules", "deploy/prometheus/sluice-rules.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "deploy/prometheus/sluice-rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn compose_prometheus_config_is_valid() {
    // The config loads rules from /etc/prometheus/rules (the container's mount); check it
    // with that path pointed at the repository's rules file.
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("deploy/compose/prometheus/prometheus.yml"))
        .unwrap()
        .replace(
            "/etc/prometheus/rules/*.yml",
            &root
                .join("deploy/prometheus/sluice-rules.yml")
                .display()
                .to_string(),
        );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, text).unwrap();
    let out = promtool(&["check", "config", config.to_str().unwrap()]);
    assert!(out.contains("is valid prometheus config file"), "{out}");
    assert!(
        out.contains("rules found"),
        "the rules were not loaded: {out}"
    );
}

/// Every `expr` in a dashboard, with Grafana's `$__rate_interval` style variables made
/// concrete so promtool can parse them.
fn dashboard_exprs(dashboard: &Value, out: &mut Vec<String>) {
    match dashboard {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) if !expr.trim().is_empty() => out.push(
                        expr.replace("$__rate_interval", "1m")
                            .replace("$__interval", "1m")
                            .replace("$__range", "1h"),
                    ),
                    _ => dashboard_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn every_dashboard_query_parses() {
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    for name in ["trading", "sluice"] {
        let path = root.join(format!("deploy/grafana/dashboards/{name}.json"));
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut exprs = Vec::new();
        dashboard_exprs(&dashboard, &mut exprs);
        // Loki panels use LogQL, which promtool cannot read.
        exprs.retain(|e| !e.trim_start().starts_with('{') && !e.contains("|="));
        assert!(exprs.len() >= 10, "{name}: only {} queries", exprs.len());
        // Each query as a recording rule: `promtool check rules` parses its PromQL. Template
        // variables such as $instrument become a plain label value.
        let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
        for (i, expr) in exprs.iter().enumerate() {
            let expr = regex_lite_vars(expr);
            rules.push_str(&format!(
                "      - record: dashboard:query{i}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            ));
        }
        let file = dir.path().join(format!("{name}.rules.yml"));
        std::fs::write(&file, rules).unwrap();
        let out = promtool(&["check", "rules", file.to_str().unwrap()]);
        assert!(out.contains("SUCCESS"), "{name}: {out}");
    }
}

/// `$name` and `${name}` → `name`: inside a label matcher that is a valid value.
fn regex_lite_vars(expr: &str) -> String {
    let mut out = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                out.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.peek() == Some(&'}') {
            chars.next();
        }
    }
    out
}

#[test]
fn compose_and_kubernetes_pipelines_validate() {
    let root = workspace_root();
    let plugins = root.join("target/wasm32-wasip1/release");
    for file in [
        "deploy/compose/sluice/pipeline.yaml",
        "deploy/kubernetes/pipeline.yaml",
    ] {
        let out = Command::new(sluice_bin())
            .args(["validate", "-c", file])
            .current_dir(&root)
            .env("SLUICE_PLUGIN_DIR", &plugins)
            .env("NODE_NAME", "node-1")
            .env("LOKI_URL", "http://127.0.0.1:3100")
            .env("LOKI_USERNAME", "tenant")
            .env("LOKI_PASSWORD", "not-a-real-password")
            .env("ALERTMANAGER_URL", "http://127.0.0.1:9093")
            .env(
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T0/B0/x",
            )
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{file}: {text}");
        assert!(text.contains("ok ("), "{file}: {text}");
    }
}
