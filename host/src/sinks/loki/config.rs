use super::template::Template;
use crate::config::SecretString;
use crate::sinks::SinkContext;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Loki refuses series with more label names than this by default
/// (`limits_config.max_label_names_per_series`).
pub const MAX_LABELS: usize = 15;

/// The label the fallback stream carries when `max_streams` is reached.
pub const OVERFLOW_LABEL: &str = "overflow";

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LokiSinkConfig {
    pub inputs: Vec<String>,
    /// Where batches wait for this sink (see [`crate::buffers`]).
    #[serde(default)]
    pub buffer: crate::buffers::BufferConfig,
    /// Loki's address, `http://loki:3100`; the push path `/loki/api/v1/push` is added when
    /// the URL has no path of its own (a gateway may want another one).
    pub url: String,
    /// `protobuf` (snappy-compressed, what Promtail and Alloy send) or `json`.
    #[serde(default)]
    pub format: Format,
    /// `snappy` for protobuf (the only form Loki reads); `none` or `gzip` for JSON.
    #[serde(default)]
    pub compression: Option<Compression>,
    /// How a record becomes the log line: `json` (the whole record) or `text` (its
    /// `message`, the whole record as JSON when it has none).
    #[serde(default)]
    pub encoding: LineEncoding,
    /// Stream labels: name → literal value or template (`"{{level}}"`). Keep them few and
    /// low in cardinality; every distinct set is a stream in Loki.
    #[serde(default = "default_labels")]
    pub labels: BTreeMap<String, String>,
    /// Per-line metadata that must not become labels (ids, order numbers): name → template;
    /// a pair whose field is missing is left out.
    #[serde(default)]
    pub structured_metadata: BTreeMap<String, String>,
    /// Leave the fields used by label templates out of a `json` line (they are on the
    /// stream already).
    #[serde(default)]
    pub remove_label_fields: bool,
    /// Distinct label sets kept at once; a record that would open another one goes to a
    /// fallback stream (the literal labels plus `overflow="true"`) and is counted.
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
    /// Sent as `X-Scope-OrgID` (multi-tenant Loki).
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub auth: Option<Auth>,
    #[serde(default)]
    pub batch: BatchConfig,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// One attempt (connect, send, answer) may take this long before it is retried.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// First retry delay; it doubles per attempt (with jitter) up to the maximum.
    #[serde(default = "default_retry_initial_backoff_ms")]
    pub retry_initial_backoff_ms: u64,
    #[serde(default = "default_retry_max_backoff_ms")]
    pub retry_max_backoff_ms: u64,
    /// JSON-lines file for records Loki refused (4xx other than 429), each as
    /// `{"loki_error": ..., "loki_status": ..., "record": {...}}`; without it they are
    /// dropped (counted and logged either way).
    #[serde(default)]
    pub dead_letter_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Protobuf,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Snappy,
    Gzip,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineEncoding {
    #[default]
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Auth {
    /// `{basic: {user: name, password: {env: VAR}}}`
    Basic {
        user: String,
        password: SecretString,
    },
    /// `{bearer: {env: VAR}}` or `{bearer: {file: /run/secrets/loki}}`
    Bearer(SecretString),
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// A request is sent once its lines (and metadata) reach this many bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// … or once its oldest record waited this long.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_bytes: default_max_bytes(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

fn default_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("job".to_owned(), "sluice".to_owned())])
}
fn default_max_streams() -> usize {
    1000
}
fn default_concurrency() -> usize {
    4
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_retry_initial_backoff_ms() -> u64 {
    500
}
fn default_retry_max_backoff_ms() -> u64 {
    30_000
}
fn default_max_bytes() -> usize {
    1 << 20
}
fn default_timeout_ms() -> u64 {
    1000
}

/// `[a-zA-Z_][a-zA-Z0-9_]*` without the reserved `__` prefix: the Prometheus label rule,
/// which Loki applies to stream labels.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

impl LokiSinkConfig {
    /// The compression actually used: the format's natural one unless set.
    pub fn compression(&self) -> Compression {
        self.compression.unwrap_or(match self.format {
            Format::Protobuf => Compression::Snappy,
            Format::Json => Compression::None,
        })
    }

    /// The push URL, with the default path when none was given.
    pub fn push_url(&self) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&self.url).map_err(|e| format!("not a URL: {e}"))?;
        if url.path().is_empty() || url.path() == "/" {
            url.set_path("/loki/api/v1/push");
        }
        Ok(url)
    }

    pub(crate) fn check(&self) -> Vec<(Vec<String>, String)> {
        let mut problems = Vec::new();
        let mut problem = |key: &[&str], message: String| {
            problems.push((key.iter().map(|k| (*k).to_owned()).collect(), message));
        };
        match self.push_url() {
            Err(e) => problem(&["url"], e),
            Ok(url) => {
                if !matches!(url.scheme(), "http" | "https") {
                    problem(
                        &["url"],
                        format!("the scheme must be http or https, not `{}`", url.scheme()),
                    );
                }
                if url.host_str().is_none_or(str::is_empty) {
                    problem(&["url"], "the URL has no host".to_owned());
                }
                if !url.username().is_empty() || url.password().is_some() {
                    problem(
                        &["url"],
                        "credentials do not belong in the URL (it is logged); use `auth` with a secret".to_owned(),
                    );
                }
            }
        }
        if let (Format::Protobuf, c) = (self.format, self.compression()) {
            if c != Compression::Snappy {
                problem(
                    &["compression"],
                    "protobuf pushes are always snappy-compressed (Loki reads them no other way); use `format: json` for none or gzip".to_owned(),
                );
            }
        }
        if self.format == Format::Json && self.compression() == Compression::Snappy {
            problem(
                &["compression"],
                "Loki does not read snappy-compressed JSON; use `none` or `gzip`".to_owned(),
            );
        }

        if self.labels.is_empty() {
            problem(
                &["labels"],
                "at least one label is needed, e.g. `job: sluice`".to_owned(),
            );
        }
        if self.labels.len() > MAX_LABELS {
            problem(
                &["labels"],
                format!(
                    "{} labels; Loki accepts at most {MAX_LABELS} per stream: move the rest to `structured_metadata`",
                    self.labels.len()
                ),
            );
        }
        let mut literal = 0;
        for (name, value) in &self.labels {
            if !valid_label_name(name) {
                problem(
                    &["labels", name],
                    format!("`{name}` is not a valid label name (letters, digits and `_`, not starting with a digit or `__`)"),
                );
            }
            if name == OVERFLOW_LABEL {
                problem(
                    &["labels", name],
                    format!(
                        "`{OVERFLOW_LABEL}` is reserved for the fallback stream of `max_streams`"
                    ),
                );
            }
            match Template::parse(value) {
                Err(e) => problem(&["labels", name], e),
                Ok(t) if t.is_literal() => {
                    if value.is_empty() {
                        problem(
                            &["labels", name],
                            "a label value cannot be empty".to_owned(),
                        );
                    } else {
                        literal += 1;
                    }
                }
                Ok(_) => {}
            }
        }
        if !self.labels.is_empty() && literal == 0 {
            problem(
                &["labels"],
                "at least one label needs a fixed value (e.g. `job: sluice`), so records whose fields are missing still have a stream".to_owned(),
            );
        }
        for (name, value) in &self.structured_metadata {
            if !valid_label_name(name) {
                problem(
                    &["structured_metadata", name],
                    format!("`{name}` is not a valid name (letters, digits and `_`, not starting with a digit or `__`)"),
                );
            }
            if self.labels.contains_key(name) {
                problem(
                    &["structured_metadata", name],
                    format!("`{name}` is a label already"),
                );
            }
            if let Err(e) = Template::parse(value) {
                problem(&["structured_metadata", name], e);
            }
        }

        if self.max_streams == 0 {
            problem(&["max_streams"], "must be at least 1".to_owned());
        }
        if let Some(tenant) = &self.tenant_id {
            // Loki's tenant ID rule: at most 150 of `[a-zA-Z0-9!-_.*'()]`.
            let ok = !tenant.is_empty()
                && tenant.len() <= 150
                && tenant != "."
                && tenant != ".."
                && tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c));
            if !ok {
                problem(
                    &["tenant_id"],
                    "a tenant ID is 1 to 150 of letters, digits and `!-_.*'()`".to_owned(),
                );
            }
        }
        if let Some(Auth::Basic { user, .. }) = &self.auth {
            if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                problem(
                    &["auth", "basic", "user"],
                    "a user name is non-empty, without `:` or control characters".to_owned(),
                );
            }
        }
        if self.batch.max_bytes == 0 || self.batch.max_bytes > 64 << 20 {
            problem(
                &["batch", "max_bytes"],
                "must be between 1 and 67108864 (64 MiB)".to_owned(),
            );
        }
        if self.batch.timeout_ms == 0 {
            problem(&["batch", "timeout_ms"], "must be at least 1".to_owned());
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            problem(&["concurrency"], "must be between 1 and 64".to_owned());
        }
        if self.request_timeout_ms == 0 {
            problem(&["request_timeout_ms"], "must be at least 1".to_owned());
        }
        if self.retry_initial_backoff_ms == 0 {
            problem(
                &["retry_initial_backoff_ms"],
                "must be at least 1".to_owned(),
            );
        }
        if self.retry_max_backoff_ms < self.retry_initial_backoff_ms {
            problem(
                &["retry_max_backoff_ms"],
                "must not be below `retry_initial_backoff_ms`".to_owned(),
            );
        }
        if let Some(path) = &self.dead_letter_path {
            if path.as_os_str().is_empty() || path.is_dir() {
                problem(&["dead_letter_path"], "must name a file".to_owned());
            }
        }
        problems
    }

    pub(crate) async fn run(self, cx: SinkContext) -> anyhow::Result<()> {
        super::sink::run(self, cx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> LokiSinkConfig {
        serde_json::from_value(v).unwrap()
    }

    fn problems(v: serde_json::Value) -> Vec<(String, String)> {
        parse(v)
            .check()
            .into_iter()
            .map(|(k, m)| (k.join("."), m))
            .collect()
    }

    #[test]
    fn defaults_are_a_valid_protobuf_sink() {
        let c = parse(json!({"inputs": ["a"], "url": "http://127.0.0.1:3100"}));
        assert!(c.check().is_empty(), "{:?}", c.check());
        assert_eq!(c.format, Format::Protobuf);
        assert_eq!(c.compression(), Compression::Snappy);
        assert_eq!(
            c.push_url().unwrap().as_str(),
            "http://127.0.0.1:3100/loki/api/v1/push"
        );
        assert_eq!(c.labels["job"], "sluice");
        assert_eq!((c.batch.max_bytes, c.batch.timeout_ms), (1 << 20, 1000));
        assert_eq!(
            (c.concurrency, c.request_timeout_ms, c.max_streams),
            (4, 10_000, 1000)
        );
        let c = parse(
            json!({"inputs": ["a"], "url": "https://gw.example/custom/push", "format": "json"}),
        );
        assert_eq!(c.push_url().unwrap().path(), "/custom/push");
        assert_eq!(c.compression(), Compression::None);
    }

    #[test]
    fn every_problem_names_its_key() {
        let mut labels = serde_json::Map::new();
        for i in 0..16 {
            labels.insert(format!("l{i}"), json!(format!("{{{{f{i}}}}}")));
        }
        let found =
            problems(json!({"inputs": ["a"], "url": "ftp://user:pw@host/x", "labels": labels}));
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"url"), "{found:?}");
        assert!(
            found.iter().any(|(k, m)| k == "url" && m.contains("ftp")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(k, m)| k == "url" && m.contains("credentials")),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|(_, m)| m.contains("pw")),
            "the password is never echoed: {found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(k, m)| k == "labels" && m.contains("at most 15")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(k, m)| k == "labels" && m.contains("fixed value")),
            "{found:?}"
        );

        let found = problems(json!({
            "inputs": ["a"], "url": "not a url",
            "labels": {"job": "sluice", "bad-name": "x", "__reserved": "x", "overflow": "x", "lvl": "{{level", "empty": ""},
            "structured_metadata": {"9x": "{{a}}", "job": "{{a}}", "ok": "{{}}"},
            "compression": "gzip",
            "tenant_id": "a/b",
            "max_streams": 0, "concurrency": 0,
            "batch": {"max_bytes": 0, "timeout_ms": 0},
            "retry_initial_backoff_ms": 100, "retry_max_backoff_ms": 10,
        }));
        for key in [
            "url",
            "labels.bad-name",
            "labels.__reserved",
            "labels.overflow",
            "labels.lvl",
            "labels.empty",
            "structured_metadata.9x",
            "structured_metadata.job",
            "structured_metadata.ok",
            "compression",
            "tenant_id",
            "max_streams",
            "concurrency",
            "batch.max_bytes",
            "batch.timeout_ms",
            "retry_max_backoff_ms",
        ] {
            assert!(
                found.iter().any(|(k, _)| k == key),
                "no problem for {key}: {found:?}"
            );
        }
        let found = problems(
            json!({"inputs": ["a"], "url": "http://h", "format": "json", "compression": "snappy"}),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found.iter().all(|(k, _)| k == "compression"));
    }

    #[test]
    fn unknown_keys_and_literal_secrets_are_refused() {
        assert!(serde_json::from_value::<LokiSinkConfig>(
            json!({"inputs": [], "url": "http://h", "lables": {}})
        )
        .is_err());
        let err = serde_json::from_value::<LokiSinkConfig>(
            json!({"inputs": [], "url": "http://h", "auth": {"bearer": "tok3n-literal"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot be written"), "{err}");
        assert!(!err.contains("tok3n-literal"), "{err}");
    }

    #[test]
    fn auth_reads_secrets_and_never_prints_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "p4ssw0rd-value\n").unwrap();
        let c = parse(json!({
            "inputs": ["a"], "url": "http://h",
            "auth": {"basic": {"user": "bot", "password": {"file": file}}}
        }));
        assert!(c.check().is_empty());
        match &c.auth {
            Some(Auth::Basic { user, password }) => {
                assert_eq!(user, "bot");
                assert_eq!(password.expose(), "p4ssw0rd-value");
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{c:?}").contains("p4ssw0rd"));
    }

    #[test]
    fn label_names_follow_the_prometheus_rule() {
        for good in ["job", "_x", "level_2"] {
            assert!(valid_label_name(good), "{good}");
        }
        for bad in ["", "2x", "a-b", "a.b", "__name__", "é"] {
            assert!(!valid_label_name(bad), "{bad}");
        }
    }
}
