//! One push attempt and the retry policy: what is retried (connection errors, timeouts,
//! 408, 429, 5xx, and redirects, which only a misconfigured URL produces), what is final
//! (other 4xx: Loki refused the data itself), and how long to wait (exponential backoff
//! with jitter, or the server's `Retry-After`).

use super::config::{Auth, LokiSinkConfig};
use super::encoder::Body;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use std::time::{Duration, SystemTime};

/// A `Retry-After` longer than this is cut to it, so one odd answer cannot park the sink
/// for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Enough of an error body to carry Loki's reason without holding a huge page.
const MAX_REASON_BYTES: usize = 1024;

pub struct Service {
    client: reqwest::Client,
    url: reqwest::Url,
    /// The URL as it may be shown: scheme, host, port and path only.
    pub shown_url: String,
    tenant: Option<HeaderValue>,
    auth: Option<Auth>,
    pub backoff: Backoff,
    timeout: Duration,
}

#[derive(Debug, PartialEq)]
pub enum Attempt {
    Delivered,
    /// Worth another try; `after` is the server's `Retry-After`, if it sent one.
    Retry {
        kind: &'static str,
        reason: String,
        after: Option<Duration>,
    },
    /// Loki refused the data: sending it again would be refused again.
    Rejected {
        status: u16,
        reason: String,
    },
}

impl Service {
    pub fn new(config: &LokiSinkConfig, url: reqwest::Url) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let client = reqwest::Client::builder()
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirected POST turns into a GET in most clients; a push URL that
            // redirects is a configuration mistake to report, not to follow.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.concurrency)
            .build()?;
        let tenant = config
            .tenant_id
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()?;
        let shown_url = format!(
            "{}://{}{}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            url.path()
        );
        Ok(Self {
            client,
            url,
            shown_url,
            tenant,
            auth: config.auth.clone(),
            backoff: Backoff {
                initial: Duration::from_millis(config.retry_initial_backoff_ms),
                max: Duration::from_millis(config.retry_max_backoff_ms),
            },
            timeout,
        })
    }

    pub async fn attempt(&self, body: &Body) -> Attempt {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, body.content_type)
            .body(body.bytes.clone());
        if let Some(encoding) = body.content_encoding {
            request = request.header(CONTENT_ENCODING, encoding);
        }
        if let Some(tenant) = &self.tenant {
            request = request.header("X-Scope-OrgID", tenant.clone());
        }
        // reqwest marks both headers sensitive, so they never show in its debug output.
        request = match &self.auth {
            Some(Auth::Basic { user, password }) => {
                request.basic_auth(user, Some(password.expose()))
            }
            Some(Auth::Bearer(token)) => request.bearer_auth(token.expose()),
            None => request,
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.failed(e),
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Attempt::Delivered;
        }
        let after = retry_after(response.headers(), SystemTime::now());
        let reason = read_reason(response, status).await;
        classify(status, reason, after)
    }

    fn failed(&self, e: reqwest::Error) -> Attempt {
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connection"
        } else {
            "request"
        };
        let reason = if e.is_timeout() {
            format!("no answer within {} ms", self.timeout.as_millis())
        } else {
            describe(&e.without_url())
        };
        Attempt::Retry {
            kind,
            reason,
            after: None,
        }
    }
}

/// The status decides: 2xx delivered, 408/429/5xx/3xx retried, other 4xx final.
pub fn classify(status: u16, reason: String, after: Option<Duration>) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered,
        408 | 429 | 500..=599 | 300..=399 => Attempt::Retry {
            kind: match status {
                429 => "http_429",
                408 => "http_408",
                300..=399 => "http_3xx",
                _ => "http_5xx",
            },
            reason: format!("HTTP {status}: {reason}"),
            after,
        },
        _ => Attempt::Rejected { status, reason },
    }
}

/// The error and its causes on one line (`error sending request: connection refused`).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The start of the body, on one line; the status' name when the body is empty.
async fn read_reason(mut response: reqwest::Response, status: u16) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_REASON_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_REASON_BYTES);
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        text.to_owned()
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past
/// means now. Capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// `initial · 2^attempt`, capped at `max`, then a uniform pick in its upper half
    /// ("equal jitter"), so sinks that failed together do not retry together while the
    /// wait still grows.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let half = base / 2;
        half + base.saturating_sub(half).mul_f64(rng.random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_split_into_delivered_retried_and_refused() {
        assert_eq!(classify(204, String::new(), None), Attempt::Delivered);
        for status in [429, 500, 502, 503, 504, 408, 301] {
            assert!(
                matches!(classify(status, "x".into(), None), Attempt::Retry { .. }),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 413, 422] {
            assert!(
                matches!(classify(status, "x".into(), None), Attempt::Rejected { .. }),
                "{status}"
            );
        }
        match classify(429, "slow down".into(), Some(Duration::from_secs(3))) {
            Attempt::Retry {
                kind,
                reason,
                after,
            } => {
                assert_eq!(kind, "http_429");
                assert_eq!(reason, "HTTP 429: slow down");
                assert_eq!(after, Some(Duration::from_secs(3)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_717_372_800); // Mon, 03 Jun 2024 00:00:00 GMT
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&m, now)
        };
        assert_eq!(h("7"), Some(Duration::from_secs(7)));
        assert_eq!(h(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            h("Mon, 03 Jun 2024 00:00:42 GMT"),
            Some(Duration::from_secs(42))
        );
        assert_eq!(h("Sun, 02 Jun 2024 23:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(h("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(h("soon"), None);
        assert_eq!(h("-5"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let mut rng = rand::rng();
        for attempt in 0..40u32 {
            let base =
                Duration::from_millis(100 * 2u64.pow(attempt.min(20))).min(Duration::from_secs(2));
            let mut seen = Vec::new();
            for _ in 0..200 {
                let d = b.delay(attempt, &mut rng);
                assert!(
                    d >= base / 2 && d <= base,
                    "attempt {attempt}: {d:?} outside {:?}..={base:?}",
                    base / 2
                );
                seen.push(d);
            }
            seen.sort();
            assert!(seen[0] < seen[199], "jitter spreads the delays");
        }
    }

    #[test]
    fn errors_read_as_one_line_with_their_causes() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "error sending request",
            Some(Box::new(E("connection refused", None))),
        );
        assert_eq!(describe(&e), "error sending request: connection refused");
    }
}
