//! The admin HTTP server: `/health` (per-component status, 503 when something is
//! degraded), `/ready` (200 once the pipeline runs), `/metrics` (Sluice's own telemetry),
//! `POST /reload` (reload now; answers when the reload is done, with what it changed),
//! `GET /tap/OUTPUT` (the records leaving an output, as JSON lines, until the client goes
//! away, `?limit=N` records were sent, or Sluice stops).

use crate::reload::ReloadHandle;
use crate::tap::TapError;
use crate::telemetry::{Status, Telemetry};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AdminState {
    telemetry: Telemetry,
    ready: Arc<AtomicBool>,
    reload: Option<ReloadHandle>,
    shutdown: CancellationToken,
}

/// Binds first (so a busy port fails the start), then serves until `shutdown`.
pub async fn serve(
    address: SocketAddr,
    telemetry: Telemetry,
    ready: Arc<AtomicBool>,
    reload: Option<ReloadHandle>,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on the admin address {address}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(is_ready))
        .route("/metrics", get(metrics))
        .route("/reload", post(reload_now))
        .route("/tap/{output}", get(tap))
        .with_state(AdminState {
            telemetry,
            ready,
            reload,
            shutdown: shutdown.clone(),
        });
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok((bound, handle))
}

async fn health(State(state): State<AdminState>) -> impl IntoResponse {
    let components = state.telemetry.health();
    let degraded = components.values().any(|c| c.status == Status::Degraded);
    let status = if degraded { "degraded" } else { "ok" };
    let code = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(serde_json::json!({
            "status": status,
            "components": components,
            "reload": state.telemetry.reload_status(),
        })),
    )
}

#[derive(serde::Deserialize)]
struct TapQuery {
    limit: Option<usize>,
}

/// The line a listener gets in place of batches it fell too far behind to receive.
pub const TAP_SKIPPED_KEY: &str = "sluice_tap_skipped_batches";

async fn tap(
    State(state): State<AdminState>,
    Path(output): Path<String>,
    Query(query): Query<TapQuery>,
) -> Response {
    let rx = match state.telemetry.taps().subscribe(&output) {
        Ok(rx) => rx,
        Err(e) => {
            let code = match e {
                TapError::Unknown { .. } => StatusCode::NOT_FOUND,
                TapError::Unredacted { .. } => StatusCode::FORBIDDEN,
            };
            let body = serde_json::json!({"status": "error", "error": e.to_string()});
            return (code, Json(body)).into_response();
        }
    };
    let left = query.limit.unwrap_or(usize::MAX);
    let shutdown = state.shutdown;
    let lines = futures_util::stream::unfold((rx, left), move |(mut rx, left)| {
        let shutdown = shutdown.clone();
        async move {
            use tokio::sync::broadcast::error::RecvError;
            if left == 0 {
                return None;
            }
            let got = tokio::select! {
                _ = shutdown.cancelled() => return None,
                got = rx.recv() => got,
            };
            let (chunk, left) = match got {
                Ok(records) => {
                    let take = records.len().min(left);
                    let mut chunk = Vec::new();
                    for record in &records[..take] {
                        serde_json::to_writer(&mut chunk, record).ok()?;
                        chunk.push(b'\n');
                    }
                    (chunk, left - take)
                }
                Err(RecvError::Lagged(n)) => (
                    format!("{{\"{TAP_SKIPPED_KEY}\":{n}}}\n").into_bytes(),
                    left,
                ),
                Err(RecvError::Closed) => return None,
            };
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(chunk)),
                (rx, left),
            ))
        }
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

async fn is_ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.telemetry.encode(),
    )
}

/// 200 with what changed, or 422 with why nothing did (the running versions stay).
async fn reload_now(State(state): State<AdminState>) -> impl IntoResponse {
    let Some(reload) = state.reload else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "error", "error": "reload is not available"})),
        );
    };
    match reload.reload("POST /reload").await {
        Ok(report) => (
            StatusCode::OK,
            Json(
                serde_json::json!({"status": "ok", "swapped": report.swapped, "unchanged": report.unchanged}),
            ),
        ),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"status": "error", "error": error})),
        ),
    }
}
