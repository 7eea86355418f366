//! The admin HTTP server: `/health` (per-component status, 503 when something is
//! degraded), `/ready` (200 once the pipeline runs), `/metrics` (Sluice's own telemetry),
//! `POST /reload` (reload now; answers when the reload is done, with what it changed).

use crate::reload::ReloadHandle;
use crate::telemetry::{Status, Telemetry};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
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
        .with_state(AdminState {
            telemetry,
            ready,
            reload,
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
