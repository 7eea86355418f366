//! `sluice test FILE…`: unit tests for transforms, written in YAML next to the pipeline.
//! Each test feeds input records (or raw lines, decoded as a source would) to one plugin
//! and checks the records, metric updates, alerts and log lines it returns. A test passes
//! only when every expectation matched: each expected record in order and in number, and
//! each expected metric, alert and log line by a distinct one the plugin emitted.
//!
//! ```yaml
//! pipeline: ../pipelines/demo.yaml   # optional: tests may then name a `transform:`
//! tests:
//!   - name: API keys are masked
//!     transform: redact              # or `plugin: path.wasm` (+ `config:`)
//!     input:
//!       - {message: "apiKey=abcd1234abcd1234abcd"}
//!     expect:
//!       records:
//!         - {message: "apiKey=[REDACTED]"}
//! ```

mod matching;

use crate::config;
use crate::decode::Decoding;
use crate::plugin::{Grants, Limits, PluginEngine, PluginModule, WasmHarness};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}:{line}:{column}: {reason}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{file}: the pipeline {pipeline} is invalid:\n{errors}")]
    Pipeline {
        file: String,
        pipeline: String,
        errors: config::ConfigErrors,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// A pipeline (relative to the test file) whose transforms tests may name.
    #[serde(default)]
    pipeline: Option<PathBuf>,
    /// The plugin for tests that name neither `transform` nor `plugin`.
    #[serde(default)]
    plugin: Option<PathBuf>,
    #[serde(default)]
    config: Option<Value>,
    /// How string inputs are turned into records (`text`, `json`, `nautilus`).
    #[serde(default)]
    decode: Decoding,
    tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    #[serde(default)]
    transform: Option<String>,
    #[serde(default)]
    plugin: Option<PathBuf>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    decode: Option<Decoding>,
    /// Records (maps) and raw lines (strings), in one batch.
    input: Vec<Value>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Exactly these records, in this order (fields left out are not checked).
    #[serde(default)]
    records: Option<Vec<Value>>,
    /// Each of these updates was emitted (`[]`: none at all).
    #[serde(default)]
    metrics: Option<Vec<Value>>,
    #[serde(default)]
    alerts: Option<Vec<Value>>,
    #[serde(default)]
    logs: Option<Vec<Value>>,
    /// The plugin fails the batch with an error containing this text.
    #[serde(default)]
    error: Option<String>,
}

impl Expect {
    fn is_empty(&self) -> bool {
        self.records.is_none()
            && self.metrics.is_none()
            && self.alerts.is_none()
            && self.logs.is_none()
            && self.error.is_none()
    }
}

/// One test's result: no failures means it passed.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub failures: Vec<String>,
}

/// Runs every test in `file`. An error means the file itself could not be used.
pub fn run_file(file: &Path) -> Result<Vec<Outcome>, TestFileError> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| TestFileError::Read {
        file: shown.clone(),
        reason: e.to_string(),
    })?;
    let spec: TestFile = serde_yaml_ng::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        TestFileError::Invalid {
            file: shown.clone(),
            line,
            column,
            reason: e.to_string(),
        }
    })?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let pipeline =
        match &spec.pipeline {
            Some(p) => Some(config::load_files(&[dir.join(p)]).map_err(|errors| {
                TestFileError::Pipeline {
                    file: shown.clone(),
                    pipeline: p.display().to_string(),
                    errors,
                }
            })?),
            None => None,
        };
    let mut modules = Modules::default();
    Ok(spec
        .tests
        .iter()
        .map(|case| {
            let failures = match resolve(&spec, case, dir, pipeline.as_ref()) {
                Ok(target) => run_case(&mut modules, case, &target, &spec),
                Err(reason) => vec![reason],
            };
            Outcome {
                name: case.name.clone(),
                failures,
            }
        })
        .collect())
}

/// What a test runs: with `transform:`, exactly what the pipeline would (its plugin, sha256
/// pin, limits and grants; its config unless the test gives one).
struct Target {
    plugin: PathBuf,
    config: Value,
    sha256: Option<String>,
    limits: Limits,
    grants: Grants,
}

/// The plugin and config a test runs: its transform's, its own, or the file's.
fn resolve(
    spec: &TestFile,
    case: &TestCase,
    dir: &Path,
    pipeline: Option<&config::PipelineConfig>,
) -> Result<Target, String> {
    if let Some(name) = &case.transform {
        let Some(pipeline) = pipeline else {
            return Err(format!(
                "`transform: {name}` needs a `pipeline:` at the top of the file"
            ));
        };
        let Some(t) = pipeline.transforms.get(name) else {
            let names: Vec<&str> = pipeline.transforms.keys().map(String::as_str).collect();
            return Err(format!(
                "the pipeline has no transform `{name}` (it has: {})",
                names.join(", ")
            ));
        };
        return Ok(Target {
            plugin: t.plugin.clone(),
            config: case.config.clone().unwrap_or_else(|| t.config.clone()),
            sha256: t.sha256.clone(),
            limits: t.limits,
            grants: t.grants.clone(),
        });
    }
    let plugin = case
        .plugin
        .as_ref()
        .or(spec.plugin.as_ref())
        .ok_or("the test names no `transform` or `plugin`, and the file sets no `plugin`")?;
    let config = case
        .config
        .clone()
        .or_else(|| spec.config.clone())
        .unwrap_or(Value::Null);
    Ok(Target {
        plugin: dir.join(plugin),
        config,
        sha256: None,
        limits: Limits::default(),
        grants: Grants::default(),
    })
}

/// Each plugin file is compiled once per test file; every test gets a fresh instance, so
/// no state leaks from one test into the next.
#[derive(Default)]
struct Modules {
    engine: Option<PluginEngine>,
    loaded: HashMap<(PathBuf, Option<String>), Result<PluginModule, String>>,
}

impl Modules {
    fn harness(&mut self, target: &Target) -> Result<WasmHarness, String> {
        let plugin = &target.plugin;
        let engine = match &self.engine {
            Some(engine) => engine,
            None => self
                .engine
                .insert(PluginEngine::new(None).map_err(|e| e.to_string())?),
        };
        let key = (plugin.to_owned(), target.sha256.clone());
        let module = self.loaded.entry(key).or_insert_with(|| {
            let name = plugin
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            engine
                .load(&name, plugin, target.sha256.as_deref())
                .map_err(|e| e.to_string())
        });
        let module = module.as_ref().map_err(Clone::clone)?;
        WasmHarness::from_module(
            engine,
            module,
            target.limits,
            &target.grants,
            &target.config,
        )
        .map_err(|e| e.to_string())
    }
}

fn run_case(
    modules: &mut Modules,
    case: &TestCase,
    target: &Target,
    spec: &TestFile,
) -> Vec<String> {
    if case.expect.is_empty() {
        return vec![
            "`expect` checks nothing: give records, metrics, alerts, logs or error".into(),
        ];
    }
    let decoding = case.decode.unwrap_or(spec.decode);
    let mut batch = Vec::with_capacity(case.input.len());
    for (i, item) in case.input.iter().enumerate() {
        match item {
            Value::String(line) => batch.push(decoding.decode(line.as_bytes())),
            Value::Object(record) => batch.push(record.clone()),
            other => {
                return vec![format!(
                    "input {}: expected a record (a mapping) or a line (a string), got {other}",
                    i + 1
                )]
            }
        }
    }
    let mut harness = match modules.harness(target) {
        Ok(h) => h,
        Err(e) => return vec![format!("cannot load {}: {e}", target.plugin.display())],
    };
    let expect = &case.expect;
    // A trap or a deadline is a failed batch too; `expect.error` may name it.
    let response = match harness.process(&batch) {
        Ok(r) => r,
        Err(e) => sluice_sdk::abi::Response {
            error: Some(e.to_string()),
            ..Default::default()
        },
    };
    let mut failures = Vec::new();
    match (&expect.error, &response.error) {
        (Some(want), Some(got)) if !got.contains(want.as_str()) => failures.push(format!(
            "error: expected one containing {want:?}, got {got:?}"
        )),
        (Some(want), None) => failures.push(format!(
            "error: expected one containing {want:?}, the batch succeeded"
        )),
        (None, Some(got)) => failures.push(format!("the plugin failed the batch: {got}")),
        _ => {}
    }
    if let Some(want) = &expect.records {
        check_records(want, &response.records, &mut failures);
    }
    check_emitted(
        "metric",
        &expect.metrics,
        &as_values(&response.metrics),
        &mut failures,
    );
    check_emitted(
        "alert",
        &expect.alerts,
        &as_values(&response.alerts),
        &mut failures,
    );
    check_emitted(
        "log line",
        &expect.logs,
        &as_values(&response.logs),
        &mut failures,
    );
    failures
}

fn as_values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .map(|item| serde_json::to_value(item).unwrap_or(Value::Null))
        .collect()
}

fn check_records(want: &[Value], got: &[Map<String, Value>], failures: &mut Vec<String>) {
    if want.len() != got.len() {
        failures.push(format!(
            "records: expected {}, got {}",
            want.len(),
            got.len()
        ));
    }
    for (i, (want, got)) in want.iter().zip(got).enumerate() {
        let got = Value::Object(got.clone());
        let diff = matching::differences(want, &got);
        if !diff.is_empty() {
            let mut f = format!("record {}:", i + 1);
            for d in diff {
                let _ = write!(f, "\n  {d}");
            }
            let _ = write!(f, "\n  got: {got}");
            failures.push(f);
        }
    }
    for (i, extra) in got.iter().enumerate().skip(want.len()) {
        failures.push(format!(
            "record {}: not expected: {}",
            i + 1,
            Value::Object(extra.clone())
        ));
    }
}

fn check_emitted(what: &str, want: &Option<Vec<Value>>, got: &[Value], failures: &mut Vec<String>) {
    let Some(want) = want else { return };
    if want.is_empty() {
        for g in got {
            failures.push(format!("{what}: expected none, got {g}"));
        }
        return;
    }
    for (i, missing) in matching::unmatched(want, got) {
        let mut f = format!("{what} {}: not emitted: {missing}", i + 1);
        if got.is_empty() {
            let _ = write!(f, "\n  (the plugin emitted no {what}s)");
        }
        for g in got {
            let _ = write!(f, "\n  emitted: {g}");
        }
        failures.push(f);
    }
}

#[cfg(test)]
mod tests;
