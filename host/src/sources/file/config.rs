use crate::decode::Decoding;
use crate::sources::SourceContext;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Glob patterns of files to read, e.g. `/var/log/nautilus/*.log`.
    pub include: Vec<String>,
    /// Glob patterns of files to skip even if `include` matches them (e.g. `*.gz`).
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub decode: Decoding,
    /// Where to start in a file seen for the first time (no checkpoint).
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Longer lines are cut to this size and flagged with `decode_error`.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How often to look for new data and new files, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Field that carries the file's path in each record; `null` leaves it out.
    #[serde(default = "default_file_key")]
    pub file_key: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    #[default]
    Beginning,
    End,
}

fn default_max_line_bytes() -> usize {
    1 << 20
}

fn default_batch_size() -> usize {
    1024
}

fn default_poll_interval_ms() -> u64 {
    250
}

fn default_file_key() -> Option<String> {
    Some("file".into())
}

impl FileSourceConfig {
    pub(crate) fn check(&self) -> Vec<(&'static [&'static str], String)> {
        let mut problems = Vec::new();
        if self.include.is_empty() {
            problems.push((
                &["include"][..],
                "`include` must list at least one glob".to_owned(),
            ));
        }
        for pattern in self.include.iter().chain(&self.exclude) {
            if let Err(e) = glob::Pattern::new(pattern) {
                problems.push((&["include"][..], format!("invalid glob `{pattern}`: {e}")));
            }
        }
        if self.batch_size == 0 {
            problems.push((
                &["batch_size"][..],
                "`batch_size` must be at least 1".to_owned(),
            ));
        }
        problems
    }

    pub(crate) async fn run(self, cx: SourceContext) -> anyhow::Result<()> {
        tokio::task::spawn_blocking(move || super::tail::run(self, cx)).await?
    }
}
