//! Delivery: one task per receiver, fed through a bounded queue, so a slow or failing
//! service delays only its own notifications and never the router (nor the log path
//! behind it).
//!
//! A queued notification is replaced by a newer one of the same group (the newer one is
//! the group's whole current state; resolved alerts only the older one carried are kept),
//! so a receiver that is down or rate-limited gets the latest state when it can take it
//! instead of a backlog. Requests are retried with exponential backoff and jitter, waiting
//! at least what the service asked for (`Retry-After`, or Discord's and Telegram's JSON
//! `retry_after`). URLs and tokens never appear in a message: reqwest errors are stripped
//! of their URL and every message is scrubbed of the receiver's secrets.

use super::payload::{self, PagerDutyTarget};
use super::router::{AlertSnapshot, Notification, Status};
use crate::config::SecretString;
use crate::telemetry::{ComponentTelemetry, Status as Health};
use chrono::Utc;
use prometheus::{IntCounterVec, Opts, Registry};
use rand::Rng;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where and how a receiver sends.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Webhook {
        url: SecretString,
        max_alerts: usize,
    },
    Slack {
        url: SecretString,
    },
    Discord {
        url: SecretString,
    },
    Telegram {
        bot_token: SecretString,
        chat_id: Value,
        api_url: String,
    },
    PagerDuty {
        routing_key: SecretString,
        url: String,
        source: String,
        client: String,
    },
    Alertmanager {
        /// `.../api/v2/alerts`.
        url: String,
        resend: Duration,
        bearer_token: Option<SecretString>,
    },
}

impl Endpoint {
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Webhook { .. } => "webhook",
            Endpoint::Slack { .. } => "slack",
            Endpoint::Discord { .. } => "discord",
            Endpoint::Telegram { .. } => "telegram",
            Endpoint::PagerDuty { .. } => "pagerduty",
            Endpoint::Alertmanager { .. } => "alertmanager",
        }
    }

    /// Keeps its own alert state, so resolves it never saw fire still matter to it.
    pub fn stateful(&self) -> bool {
        matches!(
            self,
            Endpoint::PagerDuty { .. } | Endpoint::Alertmanager { .. }
        )
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            Endpoint::Webhook { url, .. } | Endpoint::Slack { url } | Endpoint::Discord { url } => {
                vec![url.expose()]
            }
            Endpoint::Telegram { bot_token, .. } => vec![bot_token.expose()],
            Endpoint::PagerDuty { routing_key, .. } => vec![routing_key.expose()],
            Endpoint::Alertmanager { bearer_token, .. } => {
                bearer_token.iter().map(|t| t.expose()).collect()
            }
        }
    }

    /// The requests one notification makes: (URL, JSON body). The URL may hold a secret.
    pub fn requests(
        &self,
        receiver: &str,
        n: &Notification,
        external_url: &str,
    ) -> Vec<(String, Value)> {
        match self {
            Endpoint::Webhook { url, max_alerts } => vec![(
                url.expose().to_owned(),
                payload::webhook(n, receiver, external_url, *max_alerts),
            )],
            Endpoint::Slack { url } => vec![(url.expose().to_owned(), payload::slack(n))],
            Endpoint::Discord { url } => vec![(url.expose().to_owned(), payload::discord(n))],
            Endpoint::Telegram {
                bot_token,
                chat_id,
                api_url,
            } => vec![(
                format!(
                    "{}/bot{}/sendMessage",
                    api_url.trim_end_matches('/'),
                    bot_token.expose()
                ),
                payload::telegram(n, chat_id),
            )],
            Endpoint::PagerDuty {
                routing_key,
                url,
                source,
                client,
            } => payload::pagerduty(
                n,
                &PagerDutyTarget {
                    routing_key: routing_key.expose(),
                    source,
                    client,
                    client_url: external_url,
                },
            )
            .into_iter()
            .map(|body| (url.clone(), body))
            .collect(),
            Endpoint::Alertmanager { url, resend, .. } => vec![(
                url.clone(),
                payload::alertmanager(n, Utc::now(), *resend, external_url),
            )],
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReceiverSpec {
    pub name: Arc<str>,
    pub endpoint: Endpoint,
    pub send_resolved: bool,
    pub max_per_minute: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A request still failing after this long is given up.
    pub max_elapsed: Duration,
}

/// The longest a `Retry-After` is honoured; beyond it the request is given up on the
/// elapsed-time budget instead of parking the receiver for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How much of a failing service's answer goes into a message.
const BODY_EXCERPT: usize = 200;
/// Resolved alerts kept from given-up notifications, per receiver.
const MAX_CARRIED: usize = 1000;

/// `sluice_alert_notifications_total{component, receiver, outcome}`. One process-wide
/// family, registered into each telemetry registry it meets (a reload builds the sink again;
/// two alert sinks share it), so counts survive reloads and never clash.
pub fn notifications_counter(registry: &Registry) -> IntCounterVec {
    static COUNTER: OnceLock<IntCounterVec> = OnceLock::new();
    let counter = COUNTER
        .get_or_init(|| {
            IntCounterVec::new(
                Opts::new(
                    "sluice_alert_notifications_total",
                    "Alert notifications by receiver and outcome: sent, failed (given up), \
                     retried (failed attempts), rate_limited (held back by rate_limit), \
                     coalesced (replaced by a newer one of the same group), queue_full (dropped).",
                ),
                &["component", "receiver", "outcome"],
            )
            .expect("valid metric")
        })
        .clone();
    match registry.register(Box::new(counter.clone())) {
        Ok(()) | Err(prometheus::Error::AlreadyReg) => {}
        Err(e) => tracing::warn!(error = %e, "cannot register sluice_alert_notifications_total"),
    }
    counter
}

/// Which receivers are failing, folded into the sink's one `/health` entry.
pub struct HealthBoard {
    telemetry: ComponentTelemetry,
    failing: Mutex<BTreeMap<String, String>>,
}

impl HealthBoard {
    pub fn new(telemetry: ComponentTelemetry) -> Self {
        Self {
            telemetry,
            failing: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn failing(&self, receiver: &str, message: String) {
        let mut failing = self.failing.lock().unwrap();
        failing.insert(receiver.to_owned(), message);
        self.publish(&failing);
    }

    pub fn recovered(&self, receiver: &str) {
        let mut failing = self.failing.lock().unwrap();
        if failing.remove(receiver).is_some() {
            self.publish(&failing);
        }
    }

    fn publish(&self, failing: &BTreeMap<String, String>) {
        if failing.is_empty() {
            self.telemetry.set_status(Health::Running, None);
        } else {
            let message = failing
                .iter()
                .map(|(r, m)| format!("receiver `{r}`: {m}"))
                .collect::<Vec<_>>()
                .join("; ");
            self.telemetry.set_status(Health::Degraded, Some(message));
        }
    }
}

/// A token bucket: `max_per_minute` notifications at once, refilled evenly over a minute.
#[derive(Debug)]
pub struct Bucket {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(max_per_minute: u32, now: Instant) -> Self {
        let capacity = f64::from(max_per_minute.max(1));
        Self {
            capacity,
            tokens: capacity,
            per_second: capacity / 60.0,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

/// How long a receiver may keep delivering what is queued once the pipeline stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

struct Inbox {
    rx: mpsc::Receiver<Notification>,
    abort: CancellationToken,
    /// Set when the router closed the queue: delivery stops at this instant.
    grace: Option<Instant>,
}

impl Inbox {
    fn open(&self) -> bool {
        self.grace.is_none()
    }

    fn close(&mut self) {
        self.grace
            .get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
    }

    fn stopped(&self) -> bool {
        self.abort.is_cancelled() || self.grace.is_some_and(|g| Instant::now() >= g)
    }
}

async fn stop_signal(grace: Option<Instant>, abort: CancellationToken) {
    match grace {
        Some(g) => tokio::select! {
            _ = abort.cancelled() => {}
            _ = tokio::time::sleep_until(g) => {}
        },
        None => abort.cancelled().await,
    }
}

enum Attempt {
    Done,
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    Fail(String),
}

pub struct Deliverer {
    pub spec: ReceiverSpec,
    pub client: reqwest::Client,
    pub external_url: Arc<str>,
    pub retry: RetryPolicy,
    pub capacity: usize,
    pub telemetry: ComponentTelemetry,
    pub board: Arc<HealthBoard>,
    pub counter: IntCounterVec,
    pending: VecDeque<Notification>,
    carried: HashMap<(usize, Arc<str>), Vec<AlertSnapshot>>,
    bucket: Option<Bucket>,
}

impl Deliverer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: ReceiverSpec,
        client: reqwest::Client,
        external_url: Arc<str>,
        retry: RetryPolicy,
        capacity: usize,
        telemetry: ComponentTelemetry,
        board: Arc<HealthBoard>,
        counter: IntCounterVec,
    ) -> Self {
        let bucket = spec.max_per_minute.map(|m| Bucket::new(m, Instant::now()));
        Self {
            spec,
            client,
            external_url,
            retry,
            capacity,
            telemetry,
            board,
            counter,
            pending: VecDeque::new(),
            carried: HashMap::new(),
            bucket,
        }
    }

    fn count(&self, outcome: &str) {
        self.counter
            .with_label_values(&[&self.telemetry.name, &self.spec.name, outcome])
            .inc();
    }

    /// Runs until the router closes the queue and everything queued is sent (within
    /// `SHUTDOWN_GRACE`), or until the pipeline is torn down hard.
    pub async fn run(mut self, rx: mpsc::Receiver<Notification>, abort: CancellationToken) {
        let mut inbox = Inbox {
            rx,
            abort,
            grace: None,
        };
        loop {
            loop {
                match inbox.rx.try_recv() {
                    Ok(n) => self.enqueue(n),
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        inbox.close();
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                }
            }
            if inbox.stopped() {
                break;
            }
            if self.pending.is_empty() {
                if !inbox.open() {
                    return;
                }
                tokio::select! {
                    n = inbox.rx.recv() => match n {
                        Some(n) => self.enqueue(n),
                        None => inbox.close(),
                    },
                    _ = inbox.abort.cancelled() => break,
                }
                continue;
            }
            if let Some(bucket) = self.bucket.as_mut() {
                if let Err(wait) = bucket.take(Instant::now()) {
                    // Counted once per hold: after the wait a token is there.
                    self.count("rate_limited");
                    if !self.wait(&mut inbox, wait).await {
                        break;
                    }
                    continue;
                }
            }
            let n = self.pending.pop_front().expect("checked non-empty");
            if !self.deliver(n, &mut inbox).await {
                break;
            }
        }
        let left = self.pending.len();
        if left > 0 {
            for _ in 0..left {
                self.count("shutdown");
            }
            self.telemetry.dropped("shutdown", left);
            tracing::warn!(
                component = %self.telemetry.name,
                receiver = %self.spec.name,
                left,
                "stopping with notifications still queued for this receiver"
            );
        }
    }

    fn enqueue(&mut self, mut n: Notification) {
        let slot = (n.route, n.group_key.clone());
        if let Some(alerts) = self.carried.remove(&slot) {
            n.absorb(Notification {
                alerts,
                ..n.clone()
            });
        }
        if let Some(pos) = self
            .pending
            .iter()
            .position(|p| p.route == n.route && p.group_key == n.group_key)
        {
            let older = std::mem::replace(&mut self.pending[pos], n);
            self.pending[pos].absorb(older);
            self.count("coalesced");
            return;
        }
        if self.pending.len() >= self.capacity {
            self.count("queue_full");
            self.telemetry.dropped("queue_full", 1);
            self.telemetry.warn_limited(
                "queue_full",
                &format!(
                    "receiver `{}` has {} notifications queued; dropping a new one",
                    self.spec.name, self.capacity
                ),
            );
            return;
        }
        self.pending.push_back(n);
    }

    /// Waits `duration` while still taking notifications in; false when stopping.
    async fn wait(&mut self, inbox: &mut Inbox, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            let open = inbox.open();
            let stop = stop_signal(inbox.grace, inbox.abort.clone());
            tokio::select! {
                n = inbox.rx.recv(), if open => match n {
                    Some(n) => self.enqueue(n),
                    None => inbox.close(),
                },
                _ = tokio::time::sleep_until(deadline) => return true,
                _ = stop => return false,
            }
        }
    }

    /// Sends every request of one notification; false when stopping (the notification
    /// goes back to the queue, to be counted with what is left).
    async fn deliver(&mut self, n: Notification, inbox: &mut Inbox) -> bool {
        let requests = self
            .spec
            .endpoint
            .requests(&self.spec.name, &n, &self.external_url);
        let mut failed = None;
        for (url, body) in &requests {
            match self.send(url, body, inbox).await {
                Some(Ok(())) => {}
                Some(Err(reason)) => failed = Some(reason),
                None => {
                    self.pending.push_front(n);
                    return false;
                }
            }
        }
        match failed {
            None => {
                self.count("sent");
                self.telemetry.sent(&self.spec.name, 1);
            }
            Some(reason) => {
                self.count("failed");
                self.telemetry.dropped("delivery_failed", 1);
                self.telemetry.warn_limited(
                    &format!("failed:{}", self.spec.name),
                    &format!(
                        "gave up a notification to receiver `{}` ({}): {reason}",
                        self.spec.name,
                        self.spec.endpoint.kind()
                    ),
                );
                self.carry(n);
            }
        }
        true
    }

    /// Keeps the resolved alerts of a notification given up on, for the group's next one:
    /// the group already forgot them, and a lost resolve leaves an incident open.
    fn carry(&mut self, n: Notification) {
        let resolved: Vec<AlertSnapshot> = n
            .alerts
            .into_iter()
            .filter(|a| a.status == Status::Resolved)
            .collect();
        if resolved.is_empty() {
            return;
        }
        let slot = (n.route, n.group_key);
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.route == slot.0 && p.group_key == slot.1)
        {
            let older = Notification {
                receiver: p.receiver,
                route: p.route,
                group_key: slot.1.clone(),
                group_labels: p.group_labels.clone(),
                alerts: resolved,
            };
            p.absorb(older);
            return;
        }
        let held: usize = self.carried.values().map(Vec::len).sum();
        if held + resolved.len() > MAX_CARRIED {
            self.telemetry.dropped("delivery_failed", resolved.len());
            return;
        }
        self.carried.entry(slot).or_default().extend(resolved);
    }

    /// One request with retries: Some(Ok) delivered, Some(Err) given up, None stopping.
    async fn send(
        &mut self,
        url: &str,
        body: &Value,
        inbox: &mut Inbox,
    ) -> Option<Result<(), String>> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = tokio::select! {
                r = self.attempt(url, body) => r,
                _ = stop_signal(inbox.grace, inbox.abort.clone()) => return None,
            };
            match result {
                Attempt::Done => {
                    self.board.recovered(&self.spec.name);
                    return Some(Ok(()));
                }
                Attempt::Fail(reason) => {
                    self.telemetry.error("delivery");
                    self.board.failing(
                        &self.spec.name,
                        format!("{reason}; the service refused the notification (not retried)"),
                    );
                    return Some(Err(reason));
                }
                Attempt::Retry { after, reason } => {
                    self.telemetry.error("delivery");
                    let wait = self.backoff(attempt, after);
                    if started.elapsed() + wait > self.retry.max_elapsed {
                        self.board.failing(
                            &self.spec.name,
                            format!("{reason}; gave up after {attempt} attempts"),
                        );
                        return Some(Err(format!("{reason} (after {attempt} attempts)")));
                    }
                    self.count("retried");
                    self.telemetry.retry();
                    let message = format!(
                        "{reason}; retrying in {:.1} s (attempt {attempt})",
                        wait.as_secs_f64()
                    );
                    self.telemetry.warn_limited(
                        &format!("retry:{}", self.spec.name),
                        &format!("receiver `{}`: {message}", self.spec.name),
                    );
                    self.board.failing(&self.spec.name, message);
                    if !self.wait(inbox, wait).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Exponential backoff with jitter (half fixed, half random), never shorter than what
    /// the service asked for.
    fn backoff(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let exp = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.retry.max_backoff);
        let mut rng = rand::rng();
        let jittered = exp / 2 + exp.mul_f64(rng.random_range(0.0..0.5));
        match asked {
            Some(asked) => {
                let asked = asked.min(MAX_RETRY_AFTER);
                // A little spread, so receivers told the same time do not all come back
                // in the same instant.
                asked + asked.mul_f64(rng.random_range(0.0..0.1)) + Duration::from_millis(10)
            }
            None => jittered,
        }
    }

    async fn attempt(&self, url: &str, body: &Value) -> Attempt {
        // reqwest is built without its `json` feature: serialize here.
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default());
        if let Endpoint::Alertmanager {
            bearer_token: Some(token),
            ..
        } = &self.spec.endpoint
        {
            request = request.bearer_auth(token.expose());
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    after: None,
                    reason: self.scrub(describe(e)),
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Done;
        }
        let header = retry_after_header(response.headers(), SystemTime::now());
        let mut text = Vec::new();
        while text.len() < 16 * 1024 {
            match response.chunk().await {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&text);
        let from_body = retry_after_body(&text);
        let excerpt = payload::truncate(text.trim(), BODY_EXCERPT);
        let reason = self.scrub(if excerpt.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {excerpt}")
        });
        let retryable =
            status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error();
        if retryable {
            Attempt::Retry {
                after: header.max(from_body),
                reason,
            }
        } else {
            Attempt::Fail(reason)
        }
    }

    /// Belt and braces: whatever a message says, it never carries a secret.
    fn scrub(&self, mut message: String) -> String {
        for secret in self.spec.endpoint.secrets() {
            if !secret.is_empty() && message.contains(secret) {
                message = message.replace(secret, "***");
            }
        }
        message
    }
}

/// A reqwest error without the URL it carries (which may hold a token), with its causes.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after_header(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Discord's `{"retry_after": 1.5}` and Telegram's `{"parameters": {"retry_after": 3}}`,
/// both in seconds.
pub fn retry_after_body(body: &str) -> Option<Duration> {
    let v: Value = serde_json::from_str(body).ok()?;
    let seconds = v
        .get("retry_after")
        .and_then(Value::as_f64)
        .or_else(|| v.get("parameters")?.get("retry_after")?.as_f64())?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::alerts::route::Labels;
    use crate::telemetry::Telemetry;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn retry_after_from_headers_and_bodies() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            retry_after_header(&h, SystemTime::now()),
            Some(Duration::from_secs(7))
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after_header(&h, now), Some(Duration::from_secs(30)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after_header(&h, now), None);
        assert_eq!(
            retry_after_body(
                r#"{"message":"You are being rate limited.","retry_after":1.25,"global":false}"#
            ),
            Some(Duration::from_millis(1250))
        );
        assert_eq!(
            retry_after_body(
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#
            ),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after_body("ok"), None);
    }

    #[test]
    fn bucket_allows_a_burst_then_one_per_slot() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        let wait = b.take(t0).unwrap_err();
        assert_eq!(wait.as_secs(), 30);
        assert!(b.take(t0 + Duration::from_secs(29)).is_err());
        assert!(b.take(t0 + Duration::from_secs(31)).is_ok());
    }

    fn secret(value: &str) -> SecretString {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, value).unwrap();
        serde_json::from_value(serde_json::json!({"file": path})).unwrap()
    }

    fn notification(group: &str, fp: &str, status: Status) -> Notification {
        Notification {
            receiver: 0,
            route: 0,
            group_key: group.into(),
            group_labels: Labels::new(),
            alerts: vec![AlertSnapshot {
                fingerprint: fp.into(),
                status,
                labels: [("alertname".to_string(), group.to_string())].into(),
                annotations: Labels::new(),
                plugin: None,
                starts_at: "2025-03-01T12:00:00Z".parse().unwrap(),
                ends_at: None,
            }],
        }
    }

    /// Answers each request with the next scripted response (the last one repeats), and
    /// records request paths and bodies.
    type Reply = (u16, Vec<(&'static str, String)>, String);
    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    fn server(script: Vec<Reply>) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let read = stream.read(&mut chunk).unwrap_or(0);
                    if read == 0 {
                        break (String::new(), String::new());
                    }
                    buf.extend_from_slice(&chunk[..read]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if rest.len() >= len {
                            break (head.to_owned(), rest[..len].to_owned());
                        }
                    }
                };
                if head.is_empty() {
                    continue;
                }
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push((path, body));
                let (status, headers, reply) = script[n.min(script.len() - 1)].clone();
                n += 1;
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                    reply.len()
                );
                for (k, v) in headers {
                    response.push_str(&format!("{k}: {v}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(&reply);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (format!("http://{addr}"), seen)
    }

    /// Each test its own component name: the notifications counter is process-wide.
    fn deliverer(
        component: &str,
        endpoint: Endpoint,
        telemetry: &Telemetry,
        max_per_minute: Option<u32>,
    ) -> Deliverer {
        let component = telemetry.component(component, "sink");
        let counter = notifications_counter(&telemetry.registry);
        Deliverer::new(
            ReceiverSpec {
                name: "ops".into(),
                endpoint,
                send_resolved: true,
                max_per_minute,
            },
            reqwest::Client::new(),
            "".into(),
            RetryPolicy {
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                max_elapsed: Duration::from_secs(5),
            },
            4,
            component.clone(),
            Arc::new(HealthBoard::new(component)),
            counter,
        )
    }

    #[tokio::test]
    async fn retries_honour_retry_after_and_health_names_the_receiver_not_the_url() {
        let (base, seen) = server(vec![
            (
                429,
                vec![],
                r#"{"message":"slow down","retry_after":0.3,"global":false}"#.into(),
            ),
            (503, vec![("Retry-After", "0".into())], "".into()),
            (204, vec![], "".into()),
        ]);
        let telemetry = Telemetry::new();
        let url = secret(&format!("{base}/api/webhooks/1/SECRET-TOKEN"));
        let d = deliverer("alerts_out", Endpoint::Discord { url }, &telemetry, None);
        let (tx, rx) = mpsc::channel(4);
        let abort = CancellationToken::new();
        let started = std::time::Instant::now();
        tx.send(notification("A", "1", Status::Firing))
            .await
            .unwrap();
        let task = tokio::spawn(d.run(rx, abort.clone()));
        // Degraded while failing: the message names the receiver, never the URL.
        let mut degraded = None;
        for _ in 0..400 {
            if let Some(e) = telemetry.health()["alerts_out"].last_error.clone() {
                degraded = Some(e);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let degraded = degraded.expect("went degraded");
        assert!(degraded.contains("receiver `ops`"), "{degraded}");
        assert!(degraded.contains("429"), "{degraded}");
        assert!(
            !degraded.contains("SECRET-TOKEN") && !degraded.contains(&base),
            "{degraded}"
        );
        drop(tx);
        task.await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "retry_after honoured"
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(seen.lock().unwrap()[0].0, "/api/webhooks/1/SECRET-TOKEN");
        assert_eq!(telemetry.health()["alerts_out"].status, Health::Running);
        let text = telemetry.encode();
        assert!(
            text.contains(r#"sluice_alert_notifications_total{component="alerts_out",outcome="retried",receiver="ops"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"sluice_component_errors_total{component="alerts_out",error_kind="delivery"} 2"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn connection_errors_are_retried_and_never_show_the_url() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/hook/SECRETX42");
        let telemetry = Telemetry::new();
        let d = deliverer(
            "alerts_refused",
            Endpoint::Webhook {
                url: secret(&url),
                max_alerts: 0,
            },
            &telemetry,
            None,
        );
        match d.attempt(&url, &serde_json::json!({})).await {
            Attempt::Retry { after, reason } => {
                assert_eq!(after, None);
                assert!(
                    !reason.contains("SECRETX42") && !reason.contains("127.0.0.1"),
                    "{reason}"
                );
                assert!(reason.to_lowercase().contains("connect"), "{reason}");
            }
            _ => panic!("a refused connection is retried"),
        }
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_resolves_are_carried_over() {
        let (base, seen) = server(vec![
            (400, vec![], "invalid_payload".into()),
            (200, vec![], "ok".into()),
        ]);
        let telemetry = Telemetry::new();
        let url = secret(&format!("{base}/services/T0/B0/XXXX"));
        let d = deliverer("alerts_carry", Endpoint::Slack { url }, &telemetry, None);
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(d.run(rx, CancellationToken::new()));
        tx.send(notification("A", "gone", Status::Resolved))
            .await
            .unwrap();
        // Wait for the refusal before the next one, so they are not coalesced.
        for _ in 0..200 {
            if !seen.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(notification("A", "new", Status::Firing))
            .await
            .unwrap();
        drop(tx);
        task.await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "400 is final");
        let second: Value = serde_json::from_str(&seen[1].1).unwrap();
        let text = second["blocks"][2]["text"]["text"].as_str().unwrap_or("");
        assert!(
            text.contains("RESOLVED"),
            "the lost resolve rides along: {second}"
        );
        let metrics = telemetry.encode();
        assert!(metrics.contains(r#"sluice_component_dropped_events_total{component="alerts_carry",reason="delivery_failed"} 1"#), "{metrics}");
    }

    #[tokio::test]
    async fn rate_limit_holds_back_and_coalesces_by_group() {
        let (base, seen) = server(vec![(200, vec![], "ok".into())]);
        let telemetry = Telemetry::new();
        let d = deliverer(
            "alerts_rate",
            Endpoint::Webhook {
                url: secret(&format!("{base}/hook")),
                max_alerts: 0,
            },
            &telemetry,
            Some(1),
        );
        let (tx, rx) = mpsc::channel(16);
        let abort = CancellationToken::new();
        tx.send(notification("A", "1", Status::Firing))
            .await
            .unwrap();
        tx.send(notification("B", "2", Status::Firing))
            .await
            .unwrap();
        tx.send(notification("B", "3", Status::Firing))
            .await
            .unwrap();
        for g in ["C", "D", "E", "F"] {
            tx.send(notification(g, "9", Status::Firing)).await.unwrap();
        }
        let task = tokio::spawn(d.run(rx, abort.clone()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "one per minute: the rest wait"
        );
        abort.cancel();
        task.await.unwrap();
        let metrics = telemetry.encode();
        for (outcome, n) in [
            ("sent", 1),
            ("coalesced", 1),
            ("queue_full", 2),
            ("rate_limited", 1),
            ("shutdown", 3),
        ] {
            let line = format!(
                r#"sluice_alert_notifications_total{{component="alerts_rate",outcome="{outcome}",receiver="ops"}} {n}"#
            );
            assert!(metrics.contains(&line), "{line}\n{metrics}");
        }
    }
}
