//! The Loki push endpoint `sluice bench` ships to: it decodes each request the way Loki
//! does (snappy, then protobuf `PushRequest`), counts entries, and times the entries of
//! the live phase from their stamp to their arrival.

use crate::sinks::loki::wire::PushRequest;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use prost::Message;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Counts {
    pub entries: AtomicU64,
    pub bad_requests: AtomicU64,
    /// Nanoseconds from stamp to arrival, for entries whose line holds `live_marker`.
    pub latencies_ns: Mutex<Vec<i64>>,
    live_marker: String,
}

pub async fn start(live_marker: &str) -> std::io::Result<(SocketAddr, Arc<Counts>)> {
    let counts = Arc::new(Counts {
        live_marker: live_marker.to_owned(),
        ..Counts::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/loki/api/v1/push", post(push))
        .with_state(counts.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, counts))
}

async fn push(State(counts): State<Arc<Counts>>, body: Bytes) -> StatusCode {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let request = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .ok()
        .and_then(|raw| PushRequest::decode(raw.as_slice()).ok());
    let Some(request) = request else {
        counts.bad_requests.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    let mut n = 0;
    let mut live = Vec::new();
    for entry in request.streams.iter().flat_map(|s| &s.entries) {
        n += 1;
        if entry.line.contains(&counts.live_marker) {
            if let Some(ts) = &entry.timestamp {
                live.push(now - ts.as_nanos());
            }
        }
    }
    if !live.is_empty() {
        counts.latencies_ns.lock().expect("latencies").extend(live);
    }
    counts.entries.fetch_add(n, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}
