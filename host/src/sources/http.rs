//! The `http` source: `POST` NDJSON or a JSON array. It answers 200 only once the sinks
//! have acknowledged the records (or 202 at hand-off when `acknowledgements: false`), so a
//! client that retries on error gets at-least-once delivery.

use super::SourceContext;
use crate::ack::{AckStatus, AckToken};
use crate::config::SecretString;
use crate::decode::{Decoding, DECODE_ERROR_FIELD};
use crate::event::{Batch, Record};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    pub address: SocketAddr,
    /// URL path that accepts records.
    #[serde(default = "default_path")]
    pub path: String,
    /// Larger bodies are refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// When set, requests must carry `Authorization: Bearer <token>` (401 otherwise).
    #[serde(default)]
    pub bearer_token: Option<SecretString>,
    /// Answer only after the sinks acknowledged (true) or at hand-off (false).
    #[serde(default = "default_true")]
    pub acknowledgements: bool,
    /// How long to wait for the sinks before answering 503.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
}

fn default_path() -> String {
    "/".into()
}

fn default_max_body_bytes() -> usize {
    10 << 20
}

fn default_true() -> bool {
    true
}

fn default_ack_timeout_ms() -> u64 {
    30_000
}

struct Shared {
    config: HttpSourceConfig,
    cx: SourceContext,
    origin: Arc<str>,
}

impl HttpSourceConfig {
    pub(crate) async fn run(self, cx: SourceContext) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.address)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "source `{}`: cannot listen on {}: {e}",
                    cx.name,
                    self.address
                )
            })?;
        tracing::info!(source = %cx.name, address = %listener.local_addr()?, "http source listening");
        let shutdown = cx.shutdown.clone();
        let limit = self.max_body_bytes;
        let path = self.path.clone();
        let origin = cx.name.as_str().into();
        cx.telemetry
            .set_status(crate::telemetry::Status::Running, None);
        let shared = Arc::new(Shared {
            config: self,
            cx,
            origin,
        });
        let app = Router::new()
            .route(&path, post(ingest))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(shared);
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }
}

async fn ingest(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let config = &shared.config;
    if let Some(token) = &config.bearer_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| token.matches(g)) {
            shared.cx.telemetry.error("unauthorized");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "missing or wrong bearer token\n",
            )
                .into_response();
        }
    }
    let records = parse_body(&body);
    if records.is_empty() {
        return (StatusCode::OK, "0 records\n").into_response();
    }
    let n = records.len();
    shared.cx.telemetry.received(n);
    shared.cx.telemetry.sent("default", n);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ack = config.acknowledgements.then(|| {
        AckToken::new(move |status| {
            let _ = tx.send(status);
        })
    });
    shared
        .cx
        .out
        .send(Batch::new(shared.origin.clone(), records, ack))
        .await;
    if !config.acknowledgements {
        return (StatusCode::ACCEPTED, format!("{n} records accepted\n")).into_response();
    }
    match tokio::time::timeout(Duration::from_millis(config.ack_timeout_ms), rx).await {
        Ok(Ok(AckStatus::Delivered)) => {
            (StatusCode::OK, format!("{n} records delivered\n")).into_response()
        }
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "records could not be delivered; retry\n",
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "sinks did not acknowledge in time; retry\n",
        )
            .into_response(),
    }
}

/// A JSON array of objects, or NDJSON. Anything that does not decode is kept as a
/// `message` with `decode_error`, never dropped.
fn parse_body(body: &[u8]) -> Vec<Record> {
    let trimmed = body.trim_ascii_start();
    if trimmed.starts_with(b"[") {
        // A body that starts like an array but does not parse as one is read as lines
        // below, so each bad line is kept and flagged on its own.
        if let Ok(items) = serde_json::from_slice::<Vec<serde_json::Value>>(trimmed) {
            {
                return items
                    .into_iter()
                    .map(|item| match item {
                        serde_json::Value::Object(mut map) => {
                            if let Err(e) = crate::decode::normalize_timestamp(&mut map) {
                                map.insert(
                                    DECODE_ERROR_FIELD.into(),
                                    format!("bad timestamp: {e}").into(),
                                );
                            }
                            stamp(map)
                        }
                        other => {
                            let mut map = Record::new();
                            map.insert("message".into(), other.to_string().into());
                            map.insert(
                                DECODE_ERROR_FIELD.into(),
                                "JSON value is not an object".into(),
                            );
                            stamp(map)
                        }
                    })
                    .collect();
            }
        }
    }
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.trim_ascii().is_empty())
        .map(|l| stamp(Decoding::Json.decode(l)))
        .collect()
}

fn stamp(mut record: Record) -> Record {
    record
        .entry("timestamp")
        .or_insert_with(|| crate::decode::format_timestamp(chrono::Utc::now()).into());
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arrays_ndjson_and_keeps_garbage() {
        let array = parse_body(br#"[{"a":1},{"b":2}]"#);
        assert_eq!(array.len(), 2);
        assert_eq!(array[1]["b"], 2);
        let nd = parse_body(b"{\"a\":1}\r\n\n{\"b\":2}\nnot json\n");
        assert_eq!(nd.len(), 3);
        assert_eq!(nd[2]["message"], "not json");
        assert!(nd[2].contains_key(DECODE_ERROR_FIELD));
        let bad_array = parse_body(b"[1, 2");
        assert_eq!(bad_array.len(), 1);
        assert!(bad_array[0].contains_key(DECODE_ERROR_FIELD));
        assert!(parse_body(b"  \n").is_empty());
    }
}
