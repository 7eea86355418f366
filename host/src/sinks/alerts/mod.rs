//! The `alerts` sink: an Alertmanager-style router inside Sluice. Alert events (from a
//! transform's `NAME.alerts` output) are routed by label matchers to receivers, grouped,
//! de-duplicated by fingerprint, silenced, rate-limited and delivered to webhooks, Slack,
//! Discord, Telegram, PagerDuty or a real Alertmanager.
//!
//! Alerts are state, not a stream to deliver record by record: the sink acknowledges a
//! batch as soon as the router has taken its events, and delivery happens later, in one
//! task per receiver behind a bounded queue. A receiver that is slow, down or rate-limited
//! therefore never holds back the log path; what it misses is counted and shown in
//! `/health`. See docs/configuration.md for the configuration and the semantics.

mod config;
mod delivery;
mod payload;
mod route;
mod router;

pub use config::AlertSinkConfig;
