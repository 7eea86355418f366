//! The `alerts` sink's configuration, its validation, and the loop that runs it.

use super::delivery::{
    notifications_counter, Deliverer, Endpoint, HealthBoard, ReceiverSpec, RetryPolicy,
};
use super::route::{anchored, GroupBy, MatchKind, Matcher, Route, RouteTable, Silence, Timing};
use super::router::{Alert, Notification, ReceiverTraits, Router};
use crate::config::SecretString;
use crate::sinks::SinkContext;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

type Problems = Vec<(Vec<String>, String)>;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSinkConfig {
    /// Alert outputs to read, e.g. `[alerts.alerts]`.
    pub inputs: Vec<String>,
    /// Where batches wait for this sink (see [`crate::buffers`]).
    #[serde(default)]
    pub buffer: crate::buffers::BufferConfig,
    /// The routing tree; its root takes every alert no child route takes.
    pub route: RouteConfig,
    /// Where notifications go, by name.
    pub receivers: BTreeMap<String, ReceiverConfig>,
    /// Alerts matching a silence are tracked but not notified while it lasts.
    #[serde(default)]
    pub silences: Vec<SilenceConfig>,
    /// Notifications each receiver holds while busy, rate-limited or failing; a new one
    /// beyond it is dropped and counted.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
    /// A firing alert not reported again for this long is resolved by the sink; `0` waits
    /// for the plugin's resolved event forever.
    #[serde(default)]
    pub resolve_timeout_ms: u64,
    /// Alerts tracked at once (per route); new ones beyond it are dropped and counted.
    #[serde(default = "default_max_alerts")]
    pub max_alerts: usize,
    /// Link back to this Sluice (a dashboard, say): the webhook's `externalURL` and
    /// `generatorURL`, PagerDuty's `client_url`, Alertmanager's `generatorURL`.
    #[serde(default)]
    pub external_url: Option<String>,
}

fn default_queue_size() -> usize {
    256
}

fn default_max_alerts() -> usize {
    10_000
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First wait after a failed request; doubles each time.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// A request still failing after this long is given up (counted as failed).
    #[serde(default = "default_max_elapsed")]
    pub max_elapsed_ms: u64,
    /// Deadline of one request.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_initial_backoff() -> u64 {
    1_000
}
fn default_max_backoff() -> u64 {
    60_000
}
fn default_max_elapsed() -> u64 {
    600_000
}
fn default_timeout() -> u64 {
    10_000
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff_ms: default_initial_backoff(),
            max_backoff_ms: default_max_backoff(),
            max_elapsed_ms: default_max_elapsed(),
            timeout_ms: default_timeout(),
        }
    }
}

/// A route; every key but `routes`, `matchers` and `continue` is inherited from the parent
/// when absent.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub receiver: Option<String>,
    /// Labels whose values make a group (`alertname`, `severity` and the event's labels);
    /// `[...]` makes each alert its own group. Root default: `[alertname]`.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits for more alerts before its first notification.
    #[serde(default)]
    pub group_wait_ms: Option<u64>,
    /// How often a group that has notified checks for changes to report; `0` reports each
    /// change at once.
    #[serde(default)]
    pub group_interval_ms: Option<u64>,
    /// How long before an unchanged firing group is notified again.
    #[serde(default)]
    pub repeat_interval_ms: Option<u64>,
    /// Label conditions, all of which must hold.
    #[serde(default)]
    pub matchers: BTreeMap<String, MatcherConfig>,
    /// Keep trying later sibling routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// `value`, `{regex: PATTERN}` (whole value), `{not: value}` or `{not_regex: PATTERN}`.
#[derive(Debug, Clone, PartialEq)]
pub enum MatcherConfig {
    Equal(String),
    NotEqual(String),
    Regex(String),
    NotRegex(String),
}

impl schemars::JsonSchema for MatcherConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Matcher".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let scalar = serde_json::json!({"type": ["string", "number", "boolean"]});
        let one = |key: &str| serde_json::json!({"type": "object", "properties": {key: scalar}, "required": [key], "additionalProperties": false});
        schemars::json_schema!({
            "description": "`value`, `{regex: PATTERN}` (whole value), `{not: value}` or `{not_regex: PATTERN}`.",
            "anyOf": [scalar, one("regex"), one("not"), one("not_regex")]
        })
    }
}

impl<'de> Deserialize<'de> for MatcherConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        const SHAPE: &str =
            "a matcher is a value, `{regex: PATTERN}`, `{not: VALUE}` or `{not_regex: PATTERN}`";
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let value = Value::deserialize(d)?;
        if let Some(s) = scalar(&value) {
            return Ok(MatcherConfig::Equal(s));
        }
        let Value::Object(map) = &value else {
            return Err(D::Error::custom(SHAPE));
        };
        let mut entries = map.iter();
        match (entries.next(), entries.next()) {
            (Some((k, v)), None) => {
                let v = scalar(v).ok_or_else(|| D::Error::custom(SHAPE))?;
                match k.as_str() {
                    "regex" => Ok(MatcherConfig::Regex(v)),
                    "not" => Ok(MatcherConfig::NotEqual(v)),
                    "not_regex" => Ok(MatcherConfig::NotRegex(v)),
                    _ => Err(D::Error::custom(SHAPE)),
                }
            }
            _ => Err(D::Error::custom(SHAPE)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Notifications a minute (a burst of this many, then evenly spread); more wait, and
    /// a waiting notification is replaced by a newer one of the same group.
    pub max_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReceiverConfig {
    Webhook(WebhookConfig),
    Slack(ChatWebhookConfig),
    Discord(ChatWebhookConfig),
    Telegram(TelegramConfig),
    Pagerduty(PagerDutyConfig),
    Alertmanager(AlertmanagerConfig),
}

/// Alertmanager's webhook format (`version: "4"`), POSTed to `url`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A secret (`{env: X}` or `{file: path}`): webhook URLs usually carry a token.
    pub url: SecretString,
    /// Alerts per notification (the rest are counted in `truncatedAlerts`); `0`: all.
    #[serde(default)]
    pub max_alerts: usize,
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

/// Slack or Discord incoming webhook.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatWebhookConfig {
    /// A secret: the URL is the credential.
    pub webhook_url: SecretString,
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ChatId {
    Number(i64),
    Name(String),
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// A secret: the bot token from @BotFather.
    pub bot_token: SecretString,
    /// A numeric chat id or `@channelname`.
    pub chat_id: ChatId,
    /// The Bot API server; change it only for a local Bot API server or tests.
    #[serde(default = "default_telegram_api")]
    pub api_url: String,
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// A secret: the Events API v2 integration (routing) key.
    pub routing_key: SecretString,
    #[serde(default = "default_pagerduty_url")]
    pub url: String,
    /// `payload.source`: the affected system; default the host name.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default = "default_client")]
    pub client: String,
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

fn default_client() -> String {
    "Sluice".into()
}

/// A real Alertmanager, which groups, silences and notifies on its side.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://alertmanager:9093`; alerts go to `/api/v2/alerts` under it.
    pub url: String,
    /// Firing alerts are sent again this often, as Alertmanager expects of its clients.
    #[serde(default = "default_resend")]
    pub resend_interval_ms: u64,
    #[serde(default)]
    pub bearer_token: Option<SecretString>,
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

fn default_resend() -> u64 {
    60_000
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    pub matchers: BTreeMap<String, MatcherConfig>,
    /// RFC 3339; absent: until the configuration changes.
    #[serde(default)]
    pub until: Option<String>,
    /// Why, for the people reading the configuration.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Everything `run` needs, built by the same code `check` runs.
pub(super) struct Compiled {
    pub table: RouteTable,
    pub silences: Vec<Silence>,
    pub receivers: Vec<ReceiverSpec>,
}

const ROOT_DEFAULTS: Inherited = Inherited {
    receiver: None,
    group_by: None,
    group_wait_ms: 30_000,
    group_interval_ms: 300_000,
    repeat_interval_ms: 14_400_000,
};

/// Shortest repeat (and resend) interval, so a route cannot spin.
const MIN_REPEAT_MS: u64 = 100;

#[derive(Clone)]
struct Inherited {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    group_wait_ms: u64,
    group_interval_ms: u64,
    repeat_interval_ms: u64,
}

fn key(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn with(path: &[String], more: &[&str]) -> Vec<String> {
    let mut p = path.to_vec();
    p.extend(more.iter().map(|s| (*s).to_owned()));
    p
}

fn compile_matchers(
    matchers: &BTreeMap<String, MatcherConfig>,
    path: &[String],
    problems: &mut Problems,
) -> Vec<Matcher> {
    let mut out = Vec::new();
    for (label, m) in matchers {
        let kind = match m {
            MatcherConfig::Equal(v) => MatchKind::Equal(v.clone()),
            MatcherConfig::NotEqual(v) => MatchKind::NotEqual(v.clone()),
            MatcherConfig::Regex(p) | MatcherConfig::NotRegex(p) => match anchored(p) {
                Ok(r) if matches!(m, MatcherConfig::Regex(_)) => MatchKind::Regex(r),
                Ok(r) => MatchKind::NotRegex(r),
                Err(e) => {
                    problems.push((with(path, &[label]), format!("invalid regex: {e}")));
                    continue;
                }
            },
        };
        out.push(Matcher {
            label: label.clone(),
            kind,
        });
    }
    out
}

/// Errors read after "is": "is not a URL (…)".
fn http_url(value: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(_) => Err("not an http:// or https:// URL".into()),
        Err(e) => Err(format!("not a URL ({e})")),
    }
}

fn plain_url(value: &str, path: Vec<String>, problems: &mut Problems) {
    if let Err(e) = http_url(value) {
        problems.push((path, format!("`{value}` is {e}")));
    }
}

/// Checks a URL held in a secret, saying where it came from but never what it is.
fn secret_url(secret: &SecretString, path: Vec<String>, problems: &mut Problems) {
    if let Err(e) = http_url(secret.expose()) {
        problems.push((path, format!("the secret from {} is {e}", secret.source())));
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "sluice".to_owned())
}

impl ReceiverConfig {
    fn compile(&self, name: &str, problems: &mut Problems) -> ReceiverSpec {
        let path = key(&["receivers", name]);
        let (endpoint, send_resolved, rate_limit) = match self {
            ReceiverConfig::Webhook(c) => {
                secret_url(&c.url, with(&path, &["url"]), problems);
                (
                    Endpoint::Webhook {
                        url: c.url.clone(),
                        max_alerts: c.max_alerts,
                    },
                    c.send_resolved,
                    &c.rate_limit,
                )
            }
            ReceiverConfig::Slack(c) | ReceiverConfig::Discord(c) => {
                secret_url(&c.webhook_url, with(&path, &["webhook_url"]), problems);
                let url = c.webhook_url.clone();
                let endpoint = if matches!(self, ReceiverConfig::Slack(_)) {
                    Endpoint::Slack { url }
                } else {
                    Endpoint::Discord { url }
                };
                (endpoint, c.send_resolved, &c.rate_limit)
            }
            ReceiverConfig::Telegram(c) => {
                plain_url(&c.api_url, with(&path, &["api_url"]), problems);
                let token = c.bot_token.expose();
                if token
                    .chars()
                    .any(|ch| ch.is_whitespace() || ch == '/' || ch == '?' || ch == '#')
                {
                    problems.push((
                        with(&path, &["bot_token"]),
                        format!(
                            "the secret from {} is not a bot token (it has spaces or URL characters)",
                            c.bot_token.source()
                        ),
                    ));
                }
                let chat_id = match &c.chat_id {
                    ChatId::Number(n) => Value::from(*n),
                    ChatId::Name(s) => {
                        if s.trim().is_empty() {
                            problems.push((with(&path, &["chat_id"]), "must not be empty".into()));
                        }
                        Value::from(s.clone())
                    }
                };
                (
                    Endpoint::Telegram {
                        bot_token: c.bot_token.clone(),
                        chat_id,
                        api_url: c.api_url.clone(),
                    },
                    c.send_resolved,
                    &c.rate_limit,
                )
            }
            ReceiverConfig::Pagerduty(c) => {
                plain_url(&c.url, with(&path, &["url"]), problems);
                (
                    Endpoint::PagerDuty {
                        routing_key: c.routing_key.clone(),
                        url: c.url.clone(),
                        source: c.source.clone().unwrap_or_else(host_name),
                        client: c.client.clone(),
                    },
                    c.send_resolved,
                    &c.rate_limit,
                )
            }
            ReceiverConfig::Alertmanager(c) => {
                let url = match http_url(&c.url) {
                    Ok(u) => format!("{}/api/v2/alerts", u.as_str().trim_end_matches('/')),
                    Err(e) => {
                        problems.push((with(&path, &["url"]), format!("`{}` is {e}", c.url)));
                        String::new()
                    }
                };
                if c.resend_interval_ms < MIN_REPEAT_MS {
                    problems.push((
                        with(&path, &["resend_interval_ms"]),
                        format!("must be at least {MIN_REPEAT_MS}"),
                    ));
                }
                (
                    Endpoint::Alertmanager {
                        url,
                        resend: Duration::from_millis(c.resend_interval_ms.max(MIN_REPEAT_MS)),
                        bearer_token: c.bearer_token.clone(),
                    },
                    c.send_resolved,
                    &c.rate_limit,
                )
            }
        };
        if let Some(r) = rate_limit {
            if r.max_per_minute == 0 {
                problems.push((
                    with(&path, &["rate_limit", "max_per_minute"]),
                    "must be at least 1".into(),
                ));
            }
        }
        ReceiverSpec {
            name: name.into(),
            endpoint,
            send_resolved,
            max_per_minute: rate_limit.as_ref().map(|r| r.max_per_minute),
        }
    }
}

impl AlertSinkConfig {
    pub(crate) fn check(&self) -> Vec<(Vec<String>, String)> {
        self.compile().err().unwrap_or_default()
    }

    pub(super) fn compile(&self) -> Result<Compiled, Problems> {
        let mut problems = Problems::new();
        if self.receivers.is_empty() {
            problems.push((
                key(&["receivers"]),
                "at least one receiver is needed".into(),
            ));
        }
        let receivers: Vec<ReceiverSpec> = self
            .receivers
            .iter()
            .map(|(name, r)| r.compile(name, &mut problems))
            .collect();
        let index: BTreeMap<&str, usize> = self
            .receivers
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();

        let root = &self.route;
        if root.receiver.is_none() {
            problems.push((
                key(&["route", "receiver"]),
                "the root route needs a receiver".into(),
            ));
        }
        if !root.matchers.is_empty() {
            problems.push((
                key(&["route", "matchers"]),
                "the root route takes every alert: put matchers on child routes".into(),
            ));
        }
        if root.continue_matching {
            problems.push((
                key(&["route", "continue"]),
                "has no meaning on the root route".into(),
            ));
        }
        let mut routes = Vec::new();
        compile_route(
            root,
            &ROOT_DEFAULTS,
            None,
            key(&["route"]),
            &index,
            &receivers,
            &mut routes,
            &mut problems,
        );

        let mut silences = Vec::new();
        for (i, s) in self.silences.iter().enumerate() {
            let path = key(&["silences", &i.to_string()]);
            if s.matchers.is_empty() {
                problems.push((
                    with(&path, &["matchers"]),
                    "a silence needs at least one matcher (an empty one would mute everything)"
                        .into(),
                ));
            }
            let matchers =
                compile_matchers(&s.matchers, &with(&path, &["matchers"]), &mut problems);
            let until = match &s.until {
                None => None,
                Some(text) => match DateTime::parse_from_rfc3339(text) {
                    Ok(t) => Some(t.with_timezone(&Utc)),
                    Err(e) => {
                        problems.push((
                            with(&path, &["until"]),
                            format!("not an RFC 3339 time ({e}), e.g. 2025-06-30T18:00:00Z"),
                        ));
                        None
                    }
                },
            };
            silences.push(Silence { matchers, until });
        }

        if self.queue_size == 0 {
            problems.push((key(&["queue_size"]), "must be at least 1".into()));
        }
        if self.max_alerts == 0 {
            problems.push((key(&["max_alerts"]), "must be at least 1".into()));
        }
        let r = &self.retry;
        if r.initial_backoff_ms == 0 {
            problems.push((
                key(&["retry", "initial_backoff_ms"]),
                "must be at least 1".into(),
            ));
        }
        if r.max_backoff_ms < r.initial_backoff_ms {
            problems.push((
                key(&["retry", "max_backoff_ms"]),
                "must be at least initial_backoff_ms".into(),
            ));
        }
        if r.timeout_ms == 0 {
            problems.push((key(&["retry", "timeout_ms"]), "must be at least 1".into()));
        }
        if let Some(url) = &self.external_url {
            plain_url(url, key(&["external_url"]), &mut problems);
        }
        if problems.is_empty() {
            Ok(Compiled {
                table: RouteTable { routes },
                silences,
                receivers,
            })
        } else {
            Err(problems)
        }
    }

    pub(crate) async fn run(self, mut cx: SinkContext) -> anyhow::Result<()> {
        let compiled = self.compile().map_err(|problems| {
            anyhow::anyhow!(
                "{}",
                problems
                    .iter()
                    .map(|(k, m)| format!("{}: {m}", k.join(".")))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(self.retry.timeout_ms))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let counter = notifications_counter(cx.telemetry.registry());
        let board = Arc::new(HealthBoard::new(cx.telemetry.clone()));
        let external_url: Arc<str> = self.external_url.clone().unwrap_or_default().into();
        let retry = RetryPolicy {
            initial_backoff: Duration::from_millis(self.retry.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.retry.max_backoff_ms),
            max_elapsed: Duration::from_millis(self.retry.max_elapsed_ms),
        };
        let traits = compiled
            .receivers
            .iter()
            .map(|r| ReceiverTraits {
                send_resolved: r.send_resolved,
                stateful: r.endpoint.stateful(),
            })
            .collect();
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for spec in compiled.receivers {
            let (tx, rx) = mpsc::channel(self.queue_size);
            let name = spec.name.clone();
            let deliverer = Deliverer::new(
                spec,
                client.clone(),
                external_url.clone(),
                retry.clone(),
                self.queue_size,
                cx.telemetry.clone(),
                board.clone(),
                counter.clone(),
            );
            tasks.push(tokio::spawn(deliverer.run(rx, cx.abort.clone())));
            queues.push((name, tx));
        }
        let mut router = Router::new(
            compiled.table,
            compiled.silences,
            traits,
            self.max_alerts,
            (self.resolve_timeout_ms > 0).then(|| Duration::from_millis(self.resolve_timeout_ms)),
        );
        cx.telemetry
            .set_status(crate::telemetry::Status::Running, None);
        let dispatch = |notifications: Vec<Notification>| {
            for n in notifications {
                let (name, tx) = &queues[n.receiver];
                if tx.try_send(n).is_err() {
                    counter
                        .with_label_values(&[&cx.telemetry.name, name, "queue_full"])
                        .inc();
                    cx.telemetry.dropped("queue_full", 1);
                    cx.telemetry.warn_limited(
                        "queue_full",
                        &format!("receiver `{name}` is not keeping up; a notification was dropped"),
                    );
                }
            }
        };
        loop {
            let deadline = router
                .next_deadline()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                batch = cx.input.recv() => {
                    let Some(batch) = batch else { break };
                    cx.telemetry.received(batch.len());
                    let (now, wall) = (Instant::now(), Utc::now());
                    for record in &batch.records {
                        match Alert::from_record(record) {
                            Ok(alert) => {
                                let got = router.ingest(&alert, now, wall);
                                if got.silenced {
                                    cx.telemetry.dropped("silenced", 1);
                                }
                                if got.over_limit {
                                    cx.telemetry.dropped("too_many_alerts", 1);
                                    cx.telemetry.warn_limited(
                                        "too_many_alerts",
                                        &format!("{} alerts are tracked (max_alerts); dropping new ones", router.tracked()),
                                    );
                                }
                            }
                            Err(e) => {
                                cx.telemetry.dropped("invalid_alert", 1);
                                cx.telemetry.warn_limited(
                                    "invalid_alert",
                                    &format!("a record is not an alert event: {e}"),
                                );
                            }
                        }
                    }
                    // Alerts are state now: acknowledge at once, whatever the receivers do.
                    drop(batch);
                    dispatch(router.flush_due(now, wall));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    dispatch(router.flush_due(Instant::now(), Utc::now()));
                }
                _ = cx.abort.cancelled() => break,
            }
        }
        if !cx.abort.is_cancelled() {
            // Upstream is done (shutdown): what still waits in group_wait goes out now.
            dispatch(router.flush_all(Instant::now(), Utc::now()));
        }
        drop(queues);
        for task in tasks {
            let _ = task.await;
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_route(
    cfg: &RouteConfig,
    parent: &Inherited,
    parent_key: Option<&str>,
    path: Vec<String>,
    index: &BTreeMap<&str, usize>,
    receivers: &[ReceiverSpec],
    out: &mut Vec<Route>,
    problems: &mut Problems,
) -> usize {
    let own = Inherited {
        receiver: cfg.receiver.clone().or_else(|| parent.receiver.clone()),
        group_by: cfg.group_by.clone().or_else(|| parent.group_by.clone()),
        group_wait_ms: cfg.group_wait_ms.unwrap_or(parent.group_wait_ms),
        group_interval_ms: cfg.group_interval_ms.unwrap_or(parent.group_interval_ms),
        repeat_interval_ms: cfg.repeat_interval_ms.unwrap_or(parent.repeat_interval_ms),
    };
    let receiver = match &cfg.receiver {
        Some(name) => match index.get(name.as_str()) {
            Some(&i) => Some(i),
            None => {
                let known: Vec<&str> = index.keys().copied().collect();
                problems.push((
                    with(&path, &["receiver"]),
                    format!(
                        "unknown receiver `{name}`; receivers are: {}",
                        if known.is_empty() {
                            "(none)".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
                None
            }
        },
        None => own.receiver.as_deref().and_then(|n| index.get(n).copied()),
    };
    if let Some(group_by) = &cfg.group_by {
        if group_by.iter().any(String::is_empty) {
            problems.push((
                with(&path, &["group_by"]),
                "label names must not be empty".into(),
            ));
        }
        if group_by.len() > 1 && group_by.iter().any(|g| g == "...") {
            problems.push((
                with(&path, &["group_by"]),
                "`...` (every label) stands alone".into(),
            ));
        }
    }
    if cfg.repeat_interval_ms.is_some_and(|r| r < MIN_REPEAT_MS) {
        problems.push((
            with(&path, &["repeat_interval_ms"]),
            format!("must be at least {MIN_REPEAT_MS}"),
        ));
    }
    let matchers = compile_matchers(&cfg.matchers, &with(&path, &["matchers"]), problems);
    let route_key = RouteTable::route_key(parent_key, &matchers);
    let mut group_by = GroupBy::parse(own.group_by.as_deref().unwrap_or(&["alertname".to_owned()]));
    let mut timing = Timing {
        group_wait: Duration::from_millis(own.group_wait_ms),
        group_interval: Duration::from_millis(own.group_interval_ms),
        repeat_interval: Duration::from_millis(own.repeat_interval_ms.max(MIN_REPEAT_MS)),
    };
    if let Some(Endpoint::Alertmanager { resend, .. }) = receiver.map(|i| &receivers[i].endpoint) {
        // Alertmanager groups and times notifications itself: it gets the route's whole
        // state at each change and again every resend interval.
        group_by = GroupBy::Labels(Vec::new());
        timing = Timing {
            group_wait: Duration::ZERO,
            group_interval: Duration::ZERO,
            repeat_interval: *resend,
        };
    }
    let id = out.len();
    out.push(Route {
        key: route_key.clone(),
        receiver: receiver.unwrap_or(0),
        group_by,
        timing,
        matchers,
        continue_matching: cfg.continue_matching,
        children: Vec::new(),
    });
    let mut children = Vec::new();
    for (i, child) in cfg.routes.iter().enumerate() {
        children.push(compile_route(
            child,
            &own,
            Some(&route_key),
            with(&path, &["routes", &i.to_string()]),
            index,
            receivers,
            out,
            problems,
        ));
    }
    out[id].children = children;
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<AlertSinkConfig, String> {
        crate::config::with_path::<AlertSinkConfig>(v).map_err(|e| e.to_string())
    }

    fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> Value {
        let path = dir.join(name);
        std::fs::write(&path, value).unwrap();
        json!({"file": path})
    }

    #[test]
    fn a_full_config_compiles_with_inheritance() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse(json!({
            "inputs": ["alerts.alerts"],
            "route": {
                "receiver": "slack",
                "group_by": ["alertname", "trader_id"],
                "group_wait_ms": 1000,
                "routes": [
                    {"receiver": "pager", "matchers": {"severity": "critical"}, "continue": true,
                     "repeat_interval_ms": 60000},
                    {"matchers": {"env": {"regex": "prod|live"}, "team": {"not": "research"}},
                     "routes": [{"receiver": "am", "matchers": {"alertname": {"not_regex": "Test.*"}}}]},
                ],
            },
            "receivers": {
                "slack": {"type": "slack", "webhook_url": secret_file(dir.path(), "s", "https://hooks.slack.com/services/T/B/X"),
                          "rate_limit": {"max_per_minute": 10}},
                "pager": {"type": "pagerduty", "routing_key": secret_file(dir.path(), "p", "0123456789abcdef0123456789abcdef"),
                          "source": "bot-host"},
                "am": {"type": "alertmanager", "url": "http://127.0.0.1:9093/", "resend_interval_ms": 30000},
                "tg": {"type": "telegram", "bot_token": secret_file(dir.path(), "t", "123:ABC"), "chat_id": -100123},
                "dc": {"type": "discord", "webhook_url": secret_file(dir.path(), "d", "https://discord.com/api/webhooks/1/x"),
                       "send_resolved": false},
                "hook": {"type": "webhook", "url": secret_file(dir.path(), "h", "http://127.0.0.1:1/x"), "max_alerts": 5},
            },
            "silences": [{"matchers": {"alertname": "DiskLow"}, "until": "2030-01-01T00:00:00Z", "comment": "new disk"}],
        }))
        .unwrap();
        assert!(config.check().is_empty(), "{:?}", config.check());
        let c = config.compile().unwrap();
        let names: Vec<_> = c.receivers.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["am", "dc", "hook", "pager", "slack", "tg"]);
        let routes = &c.table.routes;
        assert_eq!(routes.len(), 4);
        // Child inherits group_by and group_wait, overrides repeat.
        assert_eq!(routes[1].receiver, 3);
        assert_eq!(routes[1].timing.group_wait, Duration::from_secs(1));
        assert_eq!(routes[1].timing.repeat_interval, Duration::from_secs(60));
        assert_eq!(
            routes[1].group_by,
            GroupBy::Labels(vec!["alertname".into(), "trader_id".into()])
        );
        assert_eq!(routes[1].key, "{}/{severity=\"critical\"}");
        // The intermediate route inherits the root's receiver.
        assert_eq!(routes[2].receiver, 4);
        assert_eq!(routes[2].key, "{}/{env=~\"prod|live\",team!=\"research\"}");
        // Alertmanager routes report changes at once and resend.
        assert_eq!(routes[3].receiver, 0);
        assert_eq!(routes[3].timing.group_interval, Duration::ZERO);
        assert_eq!(routes[3].timing.repeat_interval, Duration::from_secs(30));
        assert_eq!(routes[3].group_by, GroupBy::Labels(vec![]));
        match &c.receivers[0].endpoint {
            Endpoint::Alertmanager { url, .. } => {
                assert_eq!(url, "http://127.0.0.1:9093/api/v2/alerts")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.receivers[5].max_per_minute, None);
        assert_eq!(c.receivers[4].max_per_minute, Some(10));
        assert!(!c.receivers[1].send_resolved);
        // Root defaults are Alertmanager's.
        let plain = parse(json!({
            "inputs": ["a"], "route": {"receiver": "hook"},
            "receivers": {"hook": {"type": "webhook", "url": secret_file(dir.path(), "h", "http://127.0.0.1:1/x")}},
        }))
        .unwrap()
        .compile()
        .unwrap();
        let t = &plain.table.routes[0].timing;
        assert_eq!(
            (t.group_wait, t.group_interval, t.repeat_interval),
            (
                Duration::from_secs(30),
                Duration::from_secs(300),
                Duration::from_secs(4 * 3600)
            )
        );
        assert_eq!(
            plain.table.routes[0].group_by,
            GroupBy::Labels(vec!["alertname".into()])
        );
    }

    #[test]
    fn problems_name_their_keys_and_never_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse(json!({
            "inputs": ["a"],
            "route": {
                "matchers": {"x": "y"},
                "group_by": ["...", "alertname"],
                "routes": [
                    {"receiver": "nope"},
                    {"receiver": "hook", "matchers": {"env": {"regex": "("}}, "repeat_interval_ms": 0},
                ],
            },
            "receivers": {
                "hook": {"type": "webhook", "url": secret_file(dir.path(), "h", "not a url TOKEN123"),
                         "rate_limit": {"max_per_minute": 0}},
                "pd": {"type": "pagerduty", "routing_key": secret_file(dir.path(), "p", "k"), "url": "ftp://x"},
                "am": {"type": "alertmanager", "url": "http://am:9093", "resend_interval_ms": 5},
            },
            "silences": [{"matchers": {}, "until": "tomorrow"}],
            "queue_size": 0,
        }))
        .unwrap();
        let problems: Vec<(String, String)> = config
            .check()
            .into_iter()
            .map(|(k, m)| (k.join("."), m))
            .collect();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        for expected in [
            "route.receiver",
            "route.matchers",
            "route.group_by",
            "route.routes.0.receiver",
            "route.routes.1.matchers.env",
            "route.routes.1.repeat_interval_ms",
            "receivers.hook.url",
            "receivers.hook.rate_limit.max_per_minute",
            "receivers.pd.url",
            "receivers.am.resend_interval_ms",
            "silences.0.matchers",
            "silences.0.until",
            "queue_size",
        ] {
            assert!(
                keys.contains(&expected),
                "{expected} missing from {problems:#?}"
            );
        }
        let unknown = &problems
            .iter()
            .find(|(k, _)| k == "route.routes.0.receiver")
            .unwrap()
            .1;
        assert!(
            unknown.contains("unknown receiver `nope`") && unknown.contains("am, hook, pd"),
            "{unknown}"
        );
        let url = &problems
            .iter()
            .find(|(k, _)| k == "receivers.hook.url")
            .unwrap()
            .1;
        assert!(
            url.contains("the secret from file") && !url.contains("TOKEN123"),
            "{url}"
        );
    }

    #[test]
    fn shapes_are_refused_at_parse() {
        let dir = tempfile::tempdir().unwrap();
        let base = |receiver: Value| json!({"inputs": ["a"], "route": {"receiver": "r"}, "receivers": {"r": receiver}});
        let err = parse(base(
            json!({"type": "slack", "webhook_url": "https://hooks.slack.com/x"}),
        ))
        .unwrap_err();
        assert!(err.contains("cannot be written"), "{err}");
        let err = parse(base(json!({"type": "slack", "webhook_url": secret_file(dir.path(), "s", "https://x"), "colour": 1})))
            .unwrap_err();
        assert!(err.contains("colour"), "{err}");
        let err = parse(base(json!({"type": "sms"}))).unwrap_err();
        assert!(err.contains("sms"), "{err}");
        let err = parse(json!({"inputs": ["a"], "route": {"receiver": "r", "matchers": {"a": {"regexp": "x"}}}, "receivers": {}}))
            .unwrap_err();
        assert!(err.contains("a matcher is a value"), "{err}");
    }
}
