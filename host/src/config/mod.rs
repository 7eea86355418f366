//! Pipeline configuration: load YAML files (a base plus overlays), resolve `${VAR}`,
//! deserialize each component, and validate the graph, collecting every problem with its
//! file, line and column before anything starts. `sluice validate` runs exactly this, and
//! so does every later reload.

mod error;
mod interpolate;
mod locate;
mod schema;
mod secret;
mod validate;

pub use error::{ConfigError, ConfigErrors, KeyPath, Location, Segment};
pub use interpolate::expand;
pub use schema::pipeline_schema;
pub use secret::SecretString;

use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::transforms::TransformConfig;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The pipeline every `sluice run` without `-c` starts: the built-in demo.
pub const DEMO_PIPELINE: &str = include_str!("../../../pipelines/demo.yaml");

/// The admin HTTP server: `/health`, `/ready` and `/metrics`.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `null` turns the admin server off.
    pub address: Option<SocketAddr>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: Some(SocketAddr::from(([127, 0, 0, 1], 8686))),
        }
    }
}

/// The top level of a pipeline file, before each component is deserialized on its own
/// (so one bad component does not hide the problems of the others).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default)]
    admin: Option<Value>,
    #[serde(default)]
    sources: BTreeMap<String, Value>,
    #[serde(default)]
    transforms: BTreeMap<String, Value>,
    #[serde(default)]
    sinks: BTreeMap<String, Value>,
}

#[derive(Debug)]
pub struct PipelineConfig {
    /// Checkpoints and the compiled-plugin cache live here.
    pub data_dir: PathBuf,
    pub admin: AdminConfig,
    pub sources: BTreeMap<String, SourceConfig>,
    pub transforms: BTreeMap<String, TransformConfig>,
    pub sinks: BTreeMap<String, SinkConfig>,
    /// The files this configuration came from, in merge order.
    pub files: Vec<PathBuf>,
    /// The merged document after `${VAR}` interpolation: what a reload compares.
    pub merged: Value,
}

/// One YAML document and where its keys are.
struct Document {
    name: PathBuf,
    value: Value,
    positions: locate::Positions,
}

/// Where the merged configuration's values came from, to report positions and to resolve
/// relative paths against the file that wrote them.
pub struct Origins {
    docs: Vec<(PathBuf, locate::Positions)>,
}

impl Origins {
    /// The position of `path`, or of its nearest ancestor that some file writes; later
    /// files (overlays) win, as they do when merging.
    pub fn locate(&self, path: &KeyPath) -> Option<Location> {
        let mut probe = path.clone();
        loop {
            for (file, positions) in self.docs.iter().rev() {
                if let Some(&(line, column)) = positions.get(&probe) {
                    return Some(Location {
                        file: file.clone(),
                        line,
                        column,
                    });
                }
            }
            probe.0.pop()?;
        }
    }

    /// Resolves a relative path written at `key` against the directory of the file that
    /// wrote it, so a pipeline works from any working directory.
    pub fn resolve(&self, key: &KeyPath, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_owned();
        }
        match self
            .locate(key)
            .and_then(|l| l.file.parent().map(Path::to_owned))
        {
            Some(dir) if dir.exists() && !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    pub fn error(&self, path: KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError {
            location: self.locate(&path),
            path,
            message: message.into(),
        }
    }
}

/// Loads and validates the given files, merged in order.
pub fn load_files(files: &[PathBuf]) -> Result<PipelineConfig, ConfigErrors> {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => sources.push((file.clone(), text)),
            Err(e) => errors.push(ConfigError {
                location: None,
                path: KeyPath::default(),
                message: format!("cannot read {}: {e}", file.display()),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    load_sources(&sources, &|name| std::env::var(name).ok())
}

/// Loads from texts already in memory (the embedded demo, tests); `env` resolves `${VAR}`.
pub fn load_sources(
    sources: &[(PathBuf, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut docs = Vec::new();
    for (name, text) in sources {
        match serde_yaml_ng::from_str::<Value>(text) {
            Ok(value) => docs.push(Document {
                name: name.clone(),
                value,
                positions: locate::index(text),
            }),
            Err(e) => errors.push(ConfigError {
                location: e.location().map(|l| {
                    let (line, column) = within_text(text, l.line(), l.column());
                    Location {
                        file: name.clone(),
                        line,
                        column,
                    }
                }),
                path: KeyPath::default(),
                message: format!("invalid YAML: {}", strip_location(&e.to_string())),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let mut merged = Value::Object(Map::new());
    for (i, doc) in docs.iter().enumerate() {
        match &doc.value {
            Value::Null => {}
            Value::Object(_) if i == 0 => merged = doc.value.clone(),
            Value::Object(_) => merge(&mut merged, doc.value.clone()),
            _ => errors.push(ConfigError {
                location: Some(Location {
                    file: doc.name.clone(),
                    line: 1,
                    column: 1,
                }),
                path: KeyPath::default(),
                message: "a pipeline file must be a YAML mapping".into(),
            }),
        }
    }
    let origins = Origins {
        docs: docs.into_iter().map(|d| (d.name, d.positions)).collect(),
    };

    let mut env_errors = Vec::new();
    interpolate::interpolate(&mut merged, &KeyPath::default(), env, &mut env_errors);
    errors.extend(
        env_errors
            .into_iter()
            .map(|(path, message)| origins.error(path, message)),
    );

    let merged_copy = merged.clone();
    let raw: RawConfig = match deserialize_at(&origins, KeyPath::default(), merged) {
        Ok(raw) => raw,
        Err(e) => {
            errors.push(e);
            return Err(sorted(errors));
        }
    };
    let admin = match raw.admin {
        None => AdminConfig::default(),
        Some(v) => deserialize_at(&origins, KeyPath::parse(&["admin"]), v)
            .map_err(|e| errors.push(e))
            .unwrap_or_default(),
    };
    let mut config = PipelineConfig {
        data_dir: raw
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".sluice")),
        admin,
        sources: BTreeMap::new(),
        transforms: BTreeMap::new(),
        sinks: BTreeMap::new(),
        files: sources.iter().map(|(p, _)| p.clone()).collect(),
        merged: merged_copy,
    };
    if raw.data_dir.is_some() {
        config.data_dir = origins.resolve(&KeyPath::parse(&["data_dir"]), &config.data_dir);
    }
    if raw.sources.is_empty() {
        errors.push(origins.error(KeyPath::default(), "the pipeline has no sources"));
    }
    if raw.sinks.is_empty() {
        errors.push(origins.error(KeyPath::default(), "the pipeline has no sinks"));
    }
    // Components that failed to deserialize are reported already; inputs naming them
    // are not errors of their own.
    let declared: std::collections::BTreeSet<String> = raw
        .sources
        .keys()
        .chain(raw.transforms.keys())
        .cloned()
        .collect();
    deserialize_section(
        &origins,
        "sources",
        raw.sources,
        &mut config.sources,
        &mut errors,
        deserialize_typed,
    );
    deserialize_section(
        &origins,
        "transforms",
        raw.transforms,
        &mut config.transforms,
        &mut errors,
        deserialize_at,
    );
    deserialize_section(
        &origins,
        "sinks",
        raw.sinks,
        &mut config.sinks,
        &mut errors,
        deserialize_typed,
    );

    validate::validate(&mut config, &declared, &origins, &mut errors);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(sorted(errors))
    }
}

fn sorted(mut errors: Vec<ConfigError>) -> ConfigErrors {
    errors.sort_by(|a, b| {
        let key = |e: &ConfigError| {
            e.location
                .as_ref()
                .map(|l| (l.file.clone(), l.line, l.column))
        };
        key(a).cmp(&key(b))
    });
    errors.dedup();
    ConfigErrors(errors)
}

/// A component kind chosen by its `type:` key. Deserializing the variant's struct
/// directly (instead of through serde's internally tagged enums, which buffer the value
/// and lose the path) keeps every error pointing at its key.
pub trait Typed: Sized {
    const TYPES: &'static [&'static str];
    /// `None` when `kind` is not one of `TYPES`.
    fn from_type(kind: &str, value: Value) -> Option<PathResult<Self>>;
}

pub type PathResult<T> = Result<T, serde_path_to_error::Error<serde_json::Error>>;

/// Deserializes with the path of any error kept.
pub fn with_path<T: DeserializeOwned>(value: Value) -> PathResult<T> {
    serde_path_to_error::deserialize(value)
}

fn deserialize_section<T>(
    origins: &Origins,
    section: &str,
    raw: BTreeMap<String, Value>,
    out: &mut BTreeMap<String, T>,
    errors: &mut Vec<ConfigError>,
    build: impl Fn(&Origins, KeyPath, Value) -> Result<T, ConfigError>,
) {
    for (name, value) in raw {
        match build(origins, KeyPath::parse(&[section, &name]), value) {
            Ok(component) => {
                out.insert(name, component);
            }
            Err(e) => errors.push(e),
        }
    }
}

fn deserialize_typed<T: Typed>(
    origins: &Origins,
    base: KeyPath,
    value: Value,
) -> Result<T, ConfigError> {
    let Value::Object(mut map) = value else {
        return Err(origins.error(base, "expected a mapping with a `type` key"));
    };
    let kind = match map.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(origins.error(base.key("type"), "`type` must be a string")),
        None => {
            return Err(origins.error(
                base,
                format!("missing field `type` (one of {})", quoted(T::TYPES)),
            ))
        }
    };
    match T::from_type(&kind, Value::Object(map)) {
        None => Err(origins.error(
            base.key("type"),
            format!(
                "unknown type `{kind}`, expected one of {}",
                quoted(T::TYPES)
            ),
        )),
        Some(result) => result.map_err(|e| path_error(origins, base, e)),
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deserializes `value`, turning serde's error into one that points at the offending key.
fn deserialize_at<T: DeserializeOwned>(
    origins: &Origins,
    base: KeyPath,
    value: Value,
) -> Result<T, ConfigError> {
    with_path(value).map_err(|e| path_error(origins, base, e))
}

fn path_error(
    origins: &Origins,
    base: KeyPath,
    e: serde_path_to_error::Error<serde_json::Error>,
) -> ConfigError {
    let mut path = base;
    for segment in e.path().iter() {
        match segment {
            serde_path_to_error::Segment::Map { key } => path.0.push(Segment::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => path.0.push(Segment::Index(*index)),
            _ => {}
        }
    }
    let message = e.into_inner().to_string();
    // serde names an unknown key only in its message; point at the key itself.
    if let Some(key) = backticked_after(&message, "unknown field `") {
        if path.0.last() != Some(&Segment::Key(key.clone())) {
            path.0.push(Segment::Key(key));
        }
    }
    origins.error(path, message)
}

fn backticked_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_owned())
}

/// The YAML parser puts the end of a file that lacks a final line break on the line after
/// the last one, which an editor cannot go to; that position becomes the end of the last
/// line. Line breaks are YAML's: `\n`, `\r`, `\r\n`, NEL, LS and PS.
fn within_text(text: &str, line: usize, column: usize) -> (usize, usize) {
    let is_break = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let lines = 1 + text.chars().filter(|&c| is_break(c)).count() - text.matches("\r\n").count();
    if line <= lines {
        return (line, column);
    }
    let last_line = text.rsplit(is_break).next().unwrap_or_default();
    (lines, last_line.chars().count() + 1)
}

fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Overlay semantics: maps merge key by key, anything else (lists included) is replaced,
/// and `null` in place of a mapping removes it, so an overlay can delete a component of
/// the base (`sinks: {debug: null}`).
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                if value.is_null() && base.get(&key).is_some_and(Value::is_object) {
                    base.remove(&key);
                } else {
                    match base.get_mut(&key) {
                        Some(existing) if existing.is_object() && value.is_object() => {
                            merge(existing, value)
                        }
                        _ => {
                            base.insert(key, value);
                        }
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests;
